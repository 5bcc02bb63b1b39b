"""The pinned real-code corpora of `corpora.toml`: download once (cached), verify sha256,
read the included source and documentation files into memory as {relative path: text}
(paths relative to the package's top directory; for .deb files relative to `usr/`)."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
import tarfile
import tempfile
import tomllib
import urllib.request
from pathlib import Path
from typing import Any

MANIFEST = Path(__file__).with_name("corpora.toml")
REPO = Path(__file__).resolve().parents[2]
SOURCE_EXTS = (".py", ".js", ".mjs", ".cjs", ".ts", ".tsx", ".go", ".rs", ".java", ".c", ".h",
               ".cc", ".cpp", ".cxx", ".hpp", ".hh", ".hxx", ".rb", ".php")
DOC_EXTS = (".md", ".rst", ".markdown")
DOC_NAMES = ("CHANGES", "HISTORY", "CHANGELOG", "NEWS")
MAX_FILE_BYTES = 1_000_000


def cache_dir() -> Path:
    """${XDG_CACHE_HOME:-~/.cache}/semcode-build/bench (created)."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    path = Path(base) / "semcode-build" / "bench"
    path.mkdir(parents=True, exist_ok=True)
    return path


def prepared_root() -> Path:
    """Where this checkout's prepared corpora live: `<bench cache>/prepared/<checkout>`.
    One directory per checkout, so two checkouts whose generators differ never rewrite
    each other's workspaces (or each other's indexes through them)."""
    key = hashlib.sha256(str(REPO).encode()).hexdigest()[:8]
    return cache_dir() / "prepared" / f"{REPO.name}-{key}"


def load_manifest(path: Path = MANIFEST) -> list[dict[str, Any]]:
    """Every `[[corpus]]` of the manifest, in file order."""
    corpora: list[dict[str, Any]] = tomllib.loads(path.read_text())["corpus"]
    return corpora


def sha256(path: Path | str) -> str:
    """Hex sha256 of a file."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(corpus: dict[str, Any]) -> Path:
    """The verified archive of one corpus, downloaded into the cache if missing."""
    target = cache_dir() / corpus["file"]
    if not target.is_file():
        with tempfile.TemporaryDirectory(dir=cache_dir()) as tmp:
            method = corpus["fetch"]
            if method == "pip":
                base = [sys.executable, "-m", "pip", "download", "-q", "--no-deps",
                        "--no-binary", ":all:", "-d", tmp, corpus["spec"]]
                if subprocess.run([*base, "--no-build-isolation"]).returncode != 0:
                    subprocess.run(base, check=True)
            elif method == "npm":
                urllib.request.urlretrieve(corpus["url"], Path(tmp) / corpus["file"])
            elif method == "apt":
                subprocess.run(["apt-get", "download", corpus["spec"]], cwd=tmp, check=True,
                               capture_output=True)
            elif method == "apt-src":
                subprocess.run(["apt-get", "source", "--download-only", corpus["spec"]],
                               cwd=tmp, check=True, capture_output=True)
            else:
                raise ValueError(f"unknown fetch method {method!r}")
            (Path(tmp) / corpus["file"]).rename(target)
    digest = sha256(target)
    if digest != corpus["sha256"]:
        target.unlink()
        raise RuntimeError(f"{corpus['file']}: sha256 {digest} != pinned {corpus['sha256']}")
    return target


def is_doc_name(name: str) -> bool:
    """Documentation prose we read: Markdown/reStructuredText, CHANGES-like files."""
    base = name.rsplit("/", 1)[-1]
    return base.lower().endswith(DOC_EXTS) or base.split(".")[0].upper() in DOC_NAMES


def _wanted(rel: str, corpus: dict[str, Any]) -> bool:
    def under(prefixes: list[str]) -> bool:
        return any(p == "" or rel == p or rel.startswith(p.rstrip("/") + "/") for p in prefixes)

    if not (rel.endswith(SOURCE_EXTS) or is_doc_name(rel)):
        return False
    if rel.rsplit("/", 1)[-1].lower() in ("copyright", "changelog.debian"):
        return False
    return under(corpus["include"]) and not under(corpus.get("exclude", []))


def read_corpus(corpus: dict[str, Any]) -> dict[str, str]:
    """{relative path: text} of the corpus' included source and documentation files."""
    archive = fetch(corpus)
    files: dict[str, str] = {}

    def add(rel: str, data: bytes) -> None:
        if rel.endswith(".gz"):
            try:
                data = gzip.decompress(data)
            except OSError:
                return
            rel = rel[:-3]
        if len(data) <= MAX_FILE_BYTES and _wanted(rel, corpus):
            files[rel] = data.decode("utf-8", "replace")

    if archive.suffix == ".deb":
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(archive), tmp], check=True)
            root = Path(tmp) / "usr"
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.is_symlink():
                    add(path.relative_to(root).as_posix(), path.read_bytes())
        return files
    with tarfile.open(archive) as tar:
        for member in tar.getmembers():
            name = member.name.removeprefix("./")
            if member.isfile() and "/" in name:
                data = tar.extractfile(member)
                if data is not None:
                    add(name.split("/", 1)[1], data.read())
    return dict(sorted(files.items()))


def describe(corpus: dict[str, Any]) -> dict[str, str]:
    """What a report says about a corpus."""
    keys = ("name", "language", "split", "file", "sha256")
    return {k: corpus.get(k, "") for k in keys}
