"""The ignore rules of a workspace: which paths count by where they are and what the
rule files say, never by their content.

Separate from the walk (`files.py`) because the same rules answer two questions: the
walk's ("skip this entry, prune this directory?") and a single path's, for LSP file
events and didOpen (`is_included`), without a walk.

Rules, in the order they are applied to a workspace-relative path:

1. Always skipped, whatever any rule says: version-control directories (`VCS_DIRS`:
   `.git` (directory or worktree file), `.hg`, `.svn`, `.bzr`, `_darcs`, `.jj`).
2. Defaults (reason HIDDEN or IGNORED):
   - dot-files and dot-directories unless `settings.include_hidden` — except
     `HIDDEN_ALLOWED` (`.github`: CI workflows and actions are code people search);
   - `JUNK_DIRS` by name (dependency and tool caches that are never the user's code:
     `node_modules`, `bower_components`, `__pycache__`, `.venv`, `.tox`, `.nox`,
     `.mypy_cache`, `.pytest_cache`, `.ruff_cache`, `.gradle`, `.next`, `.nuxt`,
     `.svelte-kit`, `.terraform`, `*.egg-info`);
   - any directory holding `pyvenv.cfg` (a virtualenv, whatever its name) or
     `CACHEDIR.TAG` (the standard cache-directory marker: Cargo's `target/`, ruff, pytest...).
   `dist/`, `build/`, `target/`, `out/`, `vendor/` are deliberately *not* skipped by
   name: they are source directories in enough projects; their `.gitignore` (or the
   CACHEDIR.TAG above) normally covers them.
3. Git's rules: the repository's `.git/info/exclude`, `.gitignore` files of the
   directories above the workspace root inside the same repository, then every
   `.gitignore` from the root down, each relative to its own directory, negation
   included; the last matching pattern wins (the outer files are dropped when they
   ignore the root itself: opening a directory is an explicit choice). These can only
   add ignores to the defaults: a `!` in a .gitignore re-includes what an earlier git
   pattern excluded, not a default. (Git's global `core.excludesFile` is not read.)
4. semcode's rules, last, so they win over 2 and 3: `.semcodeignore` files (gitignore
   syntax, each relative to its directory, root down), then `settings.exclude` (relative
   to the root). `!node_modules/` or `!.github/` there re-includes.
As in git, nothing inside an excluded directory is looked at (the walk prunes it), so a
huge ignored `node_modules` costs one directory entry.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from pathspec import GitIgnoreSpec

from semcode.config import Settings
from semcode.workspace.checks import SkipReason

VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", ".jj"})
HIDDEN_ALLOWED = frozenset({".github"})
JUNK_DIRS = frozenset({
    "node_modules", "bower_components", "__pycache__", ".venv", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".gradle", ".next", ".nuxt",
    ".svelte-kit", ".terraform",
})
JUNK_DIR_SUFFIXES = (".egg-info",)
DIR_MARKERS = ("pyvenv.cfg", "CACHEDIR.TAG")


@dataclass(frozen=True)
class _Patterns:
    """A rule file's patterns, with the line number and text of each (in the order of
    `spec.patterns`), to say which line decided."""

    spec: GitIgnoreSpec
    lines: tuple[tuple[int, str], ...]


def _spec(lines: list[str]) -> _Patterns | None:
    kept = tuple((n, ln) for n, ln in enumerate(lines, start=1)
                 if ln.strip() and not ln.lstrip().startswith("#"))
    if not kept:
        return None
    return _Patterns(GitIgnoreSpec.from_lines([ln for _, ln in kept]), kept)


def _read_spec(path: Path) -> _Patterns | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return _spec(text.splitlines())


@dataclass(frozen=True)
class IgnoreRule:
    """One line of a rule file: where it is (`source`: a path relative to the workspace
    root, an absolute path for files above it, or "the exclude setting"), its line
    number and its text."""

    source: str
    line: int
    pattern: str


@dataclass(frozen=True)
class _Layer:
    """A pattern file: applies to paths under `base` (workspace-relative dir); the path
    matched is `prefix` + the path relative to `base`. `source` names it for messages."""

    patterns: _Patterns
    base: str = ""
    prefix: str = ""
    source: str = ""

    @property
    def spec(self) -> GitIgnoreSpec:
        """The compiled patterns."""
        return self.patterns.spec

    def check(self, rel: str, is_dir: bool) -> bool | None:
        """True: `rel` is ignored by this file; False: re-included (`!pattern`); None:
        this file says nothing about it."""
        found = self.match(rel, is_dir)
        return None if found is None else found[0]

    def match(self, rel: str, is_dir: bool) -> tuple[bool, IgnoreRule] | None:
        """(ignored?, the deciding line) for `rel`, or None when no line matches."""
        if self.base:
            if not rel.startswith(self.base + "/"):
                return None
            rel = rel[len(self.base) + 1:]
        path = self.prefix + rel + ("/" if is_dir else "")
        result = self.spec.check_file(path)
        if result.include is None or result.index is None:
            return None
        line, text = self.patterns.lines[result.index]
        return result.include, IgnoreRule(self.source, line, text)


class IgnoreRules:
    """The rules above for one workspace root, with each directory's rule files cached
    (and re-read when they change)."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root
        self.settings = settings
        self._dir_layers: dict[str, tuple[tuple[int, ...], _Layer | None, _Layer | None]] = {}
        self._outer_layers = self._find_outer_layers()
        self._exclude_layer = (_Layer(spec, source="the exclude setting")
                               if (spec := _spec(list(settings.exclude))) else None)

    def _find_outer_layers(self) -> list[_Layer]:
        """info/exclude and .gitignore files above the root, inside the same repository."""
        top = None
        for d in (self.root, *self.root.parents):
            if (d / ".git").exists():
                top = d
                break
        if top is None:
            return []
        layers: list[_Layer] = []
        rel_root = self.root.relative_to(top).as_posix()
        prefix = "" if rel_root == "." else rel_root + "/"
        exclude = top / ".git" / "info" / "exclude"
        if (spec := _read_spec(exclude)) is not None:
            layers.append(_Layer(spec, "", prefix, str(exclude)))
        d = top
        parts = [] if rel_root == "." else rel_root.split("/")
        for i in range(len(parts)):
            if (spec := _read_spec(d / ".gitignore")) is not None:
                layers.append(_Layer(spec, "", "/".join(parts[i:]) + "/",
                                     str(d / ".gitignore")))
            d = d / parts[i]
        # The user opened a directory git ignores (e.g. a checkout inside an ignored
        # folder of another repository): the outer rules would hide everything, so an
        # explicit choice of root wins and they are not applied.
        for i in range(len(parts)):
            path = "/".join(parts[: i + 1]) + "/"
            verdict = None
            for layer in layers:
                if (r := layer.spec.check_file(path).include) is not None:
                    verdict = r
            if verdict:
                return []
        return layers

    def invalidate(self) -> None:
        """Forget cached .gitignore/.semcodeignore contents (a scan starts with this)."""
        self._dir_layers.clear()
        self._outer_layers = self._find_outer_layers()

    def load(self, dir_rel: str, names: set[str]) -> None:
        """Read a directory's rule files fresh, given its listing (the walk's entry to
        every directory, before `reason` is asked about what it holds)."""
        self._layers_of(dir_rel, names)

    def _layers_of(self, dir_rel: str, names: set[str] | None = None, trust: bool = False
                   ) -> tuple[_Layer | None, _Layer | None]:
        """(.gitignore layer, .semcodeignore layer) of a directory, cached and re-read
        when either file's mtime/size changes. `names` (a listing) saves the stats of
        absent files; `trust` (during a scan, which loaded them fresh) skips the stats."""
        cached = self._dir_layers.get(dir_rel)
        if trust and cached is not None:
            return cached[1], cached[2]
        d = self.root / dir_rel if dir_rel else self.root
        stamp: list[int] = []
        for fname in (".gitignore", ".semcodeignore"):
            if names is not None and fname not in names:
                stamp += [-1, -1]
                continue
            try:
                st = os.stat(d / fname)
                stamp += [st.st_mtime_ns, st.st_size]
            except OSError:
                stamp += [-1, -1]
        key = tuple(stamp)
        if cached is not None and cached[0] == key:
            return cached[1], cached[2]
        git = _read_spec(d / ".gitignore") if key[0] != -1 else None
        sem = _read_spec(d / ".semcodeignore") if key[2] != -1 else None
        where = f"{dir_rel}/" if dir_rel else ""
        layers = (_Layer(git, dir_rel, source=f"{where}.gitignore") if git else None,
                  _Layer(sem, dir_rel, source=f"{where}.semcodeignore") if sem else None)
        self._dir_layers[dir_rel] = (key, *layers)
        return layers

    def reason(self, rel: str, is_dir: bool, ancestors: list[str],
               trust: bool = False) -> SkipReason | None:
        """The ignore decision for one path whose ancestor directories (workspace-relative,
        root first, '' for the root) are `ancestors`. Ancestors themselves are assumed
        included (the walk prunes; `is_included` checks each). `trust`: the ancestors'
        rule files were just loaded by the walk, so they are not stat'ed again."""
        return self._decide(rel, is_dir, ancestors, trust)[0]

    def rule_for(self, rel: str, is_dir: bool) -> IgnoreRule | None:
        """The rule-file line that excludes `rel` (a workspace-relative path whose
        ancestors are included), or None when no rule file does (a default: hidden,
        a junk directory, or not excluded at all). For messages, not for the walk."""
        parts = rel.split("/")
        ancestors = ["", *("/".join(parts[: i + 1]) for i in range(len(parts) - 1))]
        return self._decide(rel, is_dir, ancestors, False)[1]

    def _decide(self, rel: str, is_dir: bool, ancestors: list[str], trust: bool
                ) -> tuple[SkipReason | None, IgnoreRule | None]:
        """`reason`, with the rule-file line that decided it when one did."""
        name = rel.rsplit("/", 1)[-1]
        if name in VCS_DIRS:
            return SkipReason.IGNORED, None
        default: SkipReason | None = None
        if name.startswith(".") and not self.settings.include_hidden and (
                name not in HIDDEN_ALLOWED or not is_dir):
            default = SkipReason.HIDDEN
        elif is_dir and (name in JUNK_DIRS or name.endswith(JUNK_DIR_SUFFIXES)):
            default = SkipReason.IGNORED
        # The last matching line of each family wins: (ignored?, that line).
        git: tuple[bool, IgnoreRule] | None = None
        for layer in self._outer_layers:
            if (m := layer.match(rel, is_dir)) is not None:
                git = m
        sem: tuple[bool, IgnoreRule] | None = None
        for a in ancestors:
            g, s = self._layers_of(a, trust=trust)
            if g is not None and (m := g.match(rel, is_dir)) is not None:
                git = m
            if s is not None and (m := s.match(rel, is_dir)) is not None:
                sem = m
        if self._exclude_layer is not None and (
                m := self._exclude_layer.match(rel, is_dir)) is not None:
            sem = m
        if sem is not None:
            return (SkipReason.IGNORED, sem[1]) if sem[0] else (None, None)
        if default is not None:
            return default, None
        return (SkipReason.IGNORED, git[1]) if git is not None and git[0] else (None, None)

    def marked(self, rel: str, ancestors: list[str], names: set[str],
               trust: bool = False) -> bool:
        """Whether a directory (listing `names`) holds a venv/cache marker, unless
        semcode rules re-include it."""
        if not any(m in names for m in DIR_MARKERS):
            return False
        sem: bool | None = None
        for a in ancestors:
            if a == rel:
                continue
            _, s = self._layers_of(a, trust=trust)
            if s is not None and (r := s.check(rel, True)) is not None:
                sem = r
        if self._exclude_layer is not None and (
                r := self._exclude_layer.check(rel, True)) is not None:
            sem = r
        return sem is not False

    def is_included(self, rel: str) -> bool:
        """Whether the rules (and venv/cache markers of its directories) include this
        normalised workspace-relative path; no content checks. An existing directory is
        judged as a directory, anything else as a file."""
        parts = rel.split("/")
        ancestors = [""]
        for i in range(len(parts) - 1):
            d = "/".join(parts[: i + 1])
            if self.reason(d, True, ancestors) is not None:
                return False
            if any(os.path.exists(self.root / d / m) for m in DIR_MARKERS) and \
                    self.marked(d, ancestors, set(DIR_MARKERS)):
                return False
            ancestors.append(d)
        is_dir = (self.root / rel).is_dir()
        return self.reason(rel, is_dir, ancestors) is None
