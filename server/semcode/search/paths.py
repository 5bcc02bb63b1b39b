"""Path filters: the gitignore-style globs of a search (`--path`, MCP `paths`, LSP `paths`),
validated, length-limited and compiled once.

Any client can send a glob, so matching one must cost a bounded amount of work whatever
it says. Python's regular expressions backtrack: `*?` fourteen times then `*#` took over
40 s on a small repository (one match per chunk, each exponential in the glob). Here the
globs are compiled by pathspec's RE2 backend (google-re2: no backtracking, linear in
the path), a glob is at most `MAX_GLOB_CHARS` long and a request has at most
`MAX_GLOBS`, and a search matches each distinct path once, not each chunk.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

import pathspec
from pathspec.patterns.gitignore import GitIgnorePatternError

MAX_GLOB_CHARS = 256
MAX_GLOBS = 32
# The matcher: RE2 never backtracks (pathspec's default Python backend does).
BACKEND = "re2"
_CACHE = 128  # compiled glob lists kept (a per-keystroke client repeats the same one)


class PathGlobError(ValueError):
    """A path glob that is not valid, too long, or one of too many; one line naming it
    (`SearchRequest.validate` turns it into a `SearchError`)."""


class PathFilter:
    """Compiled path globs (gitignore semantics, later globs win, `!` re-excludes):
    `matches(path)` for one workspace-relative path, `allowed(paths)` for many, each
    distinct path matched once."""

    def __init__(self, globs: tuple[str, ...]) -> None:
        self.globs = globs
        self._spec = pathspec.GitIgnoreSpec.from_lines(globs, backend=BACKEND)

    @property
    def backend(self) -> str:
        """The name of the regular-expression engine that matches (always `re2`)."""
        return str(getattr(self._spec, "_backend_name", BACKEND))

    def matches(self, path: str) -> bool:
        """Whether the workspace-relative `path` is selected by the globs."""
        return bool(self._spec.match_file(path))

    def allowed(self, paths: Iterable[str]) -> set[str]:
        """The selected paths among `paths` (duplicates matched once)."""
        return {p for p in set(paths) if self.matches(p)}


def compile_globs(globs: Iterable[str]) -> PathFilter | None:
    """The `PathFilter` of `globs` (None for none), compiled once per distinct list;
    `PathGlobError` naming the first bad glob."""
    key = tuple(globs)
    return _compiled(key) if key else None


@functools.lru_cache(maxsize=_CACHE)
def _compiled(globs: tuple[str, ...]) -> PathFilter:
    if len(globs) > MAX_GLOBS:
        raise PathGlobError(f"too many path globs: {len(globs)} (at most {MAX_GLOBS})")
    for glob in globs:
        _check(glob)
    try:
        return PathFilter(globs)
    except Exception as exc:  # RE2 refused the combination (memory): still one line
        raise PathGlobError(f"path globs cannot be compiled: {_first_line(exc)}") from None


def _check(glob: str) -> None:
    """One glob on its own: not too long, valid, and able to match something."""
    shown = glob if len(glob) <= 60 else glob[:57] + "..."
    if len(glob) > MAX_GLOB_CHARS:
        raise PathGlobError(f"path glob {shown!r} is too long: {len(glob)} characters "
                            f"(at most {MAX_GLOB_CHARS})")
    if not glob.strip():
        raise PathGlobError("path glob is empty")
    try:
        spec = pathspec.GitIgnoreSpec.from_lines([glob], backend=BACKEND)
    except (GitIgnorePatternError, re.error, ValueError) as exc:
        raise PathGlobError(f"invalid path glob {shown!r}: {_reason(exc)}") from None
    except Exception as exc:  # e.g. RE2 out of memory for this glob
        raise PathGlobError(f"invalid path glob {shown!r}: {_first_line(exc)}") from None
    if all(p.include is None for p in spec.patterns):
        # gitignore reads these as a comment or as nothing: a filter that selects nothing.
        raise PathGlobError(f"invalid path glob {shown!r}: it matches no path "
                            "(a comment, or an unclosed '[')")


def _reason(exc: Exception) -> str:
    if isinstance(exc, GitIgnorePatternError):
        return "not a gitignore-style pattern"
    if isinstance(exc, re.error):
        return exc.msg  # without the position in the regular expression it became
    return _first_line(exc)


def _first_line(exc: BaseException) -> str:
    lines = str(exc).strip().splitlines()
    return lines[0] if lines else type(exc).__name__
