"""What the training data must never contain: the projects semcode is judged on.

Two lists, both recorded in the manifest: the held-out projects of issue 18 (questions
about them are never seen here) and every project of the quality bench
(`bench/quality/corpora.toml`, by name and by the package its spec fetches). A package
is excluded when its name, loosely matched, contains one of them (`python-requests`,
`golang-github-spf13-cobra-dev`, `libgoogle-gson-java`, `@fastify/cors`); a file is skipped
when a directory on its path is one of them (a vendored copy: `pip/_vendor/requests/`,
`vendor/github.com/gin-gonic/gin/`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from bench.quality.corpora import load_manifest

HELD_OUT = ("requests", "click", "flask", "httpx", "SQLAlchemy", "pytest", "pylint", "xarray",
            "seaborn", "Sphinx", "cobra", "axum", "gin", "hono", "gson", "fastify", "jq",
            "sinatra")
_SPLIT = re.compile(r"[^a-z0-9]+")


def name_tokens(name: str) -> tuple[str, ...]:
    """A name as lowercase alphanumeric words, trailing version digits dropped from each
    (`libuv1` -> `libuv`, `@tanstack/query-core` -> tanstack, query, core)."""
    words = [w.rstrip("0123456789") or w for w in _SPLIT.split(name.lower())]
    return tuple(w for w in words if w)


def _spec_name(spec: str) -> str:
    """The package a bench spec fetches: `requests==2.32.3` -> requests,
    `golang-github-spf13-cobra-dev=1.6.1-1` -> golang-github-spf13-cobra-dev."""
    return re.split(r"==|=", spec, maxsplit=1)[0]


def bench_names(manifest: Path | None = None) -> tuple[str, ...]:
    """The bench corpora's names and the package names their specs fetch."""
    corpora = load_manifest(manifest) if manifest else load_manifest()
    names: set[str] = set()
    for corpus in corpora:
        names.add(corpus["name"])
        if corpus.get("spec"):
            names.add(_spec_name(corpus["spec"]))
        if corpus.get("url"):  # npm: the package is the tarball's directory
            names.add(corpus["url"].split("/-/", 1)[0].rsplit("registry.npmjs.org/", 1)[-1])
    return tuple(sorted(names))


def _contains(haystack: tuple[str, ...], needle: tuple[str, ...]) -> bool:
    n = len(needle)
    return n > 0 and any(haystack[i:i + n] == needle for i in range(len(haystack) - n + 1))


@dataclass(frozen=True)
class Exclusions:
    """The excluded project names, and the tests a package name or a file path must pass."""

    held_out: tuple[str, ...]
    bench: tuple[str, ...]

    @classmethod
    def default(cls) -> Exclusions:
        """Issue 18's held-out projects and this checkout's bench corpora."""
        return cls(HELD_OUT, bench_names())

    def _needles(self) -> list[tuple[tuple[str, ...], str]]:
        """(words, name) of every excluded name that has words."""
        return [(name_tokens(n), n) for n in (*self.held_out, *self.bench) if name_tokens(n)]

    def excludes_package(self, name: str) -> str | None:
        """The excluded project a package name contains (loosely: as whole words, also with a
        `lib` prefix dropped), or None when the package may be used."""
        words = name_tokens(name)
        unprefixed = tuple(w[3:] if w.startswith("lib") and len(w) > 3 else w for w in words)
        for needle, original in self._needles():
            if _contains(words, needle) or _contains(unprefixed, needle):
                return original
        return None

    def excludes_path(self, path: str) -> str | None:
        """The excluded project a directory on `path` is named after (a vendored copy), or
        None."""
        dirs = path.split("/")[:-1]
        wanted = {needle for needle, _ in self._needles() if len(needle) == 1}
        joined = {"-".join(needle) for needle, _ in self._needles()}
        for d in dirs:
            words = name_tokens(d)
            if len(words) == 1 and words in wanted or "-".join(words) in joined:
                return d
        return None
