"""`Workspace`: the files of one workspace root that are worth indexing — a walk that
applies the ignore rules (`ignore.py`) and keeps symlinks safe, and the reading of a
file's text through the content checks (`checks.py`).

Separate from the rules and checks because it is the one place that touches the file
system for them: it stats and lists (the walk) and reads (`read_text`), and knows the
order those happen in.

`scan()` only applies rules, names and `stat` (size, regular file, readable): reading
content is `read_text`'s job, so the indexer reads each file once.

Symlinks: a symlink is never followed out of the workspace (SYMLINK_OUTSIDE). A symlink
to a directory that contains it, or to a directory already being walked, is a loop
(SYMLINK_LOOP). A symlink to a file or directory *inside* the workspace is skipped when
its target is itself included by the rules (SYMLINK_DUPLICATE: the target is indexed
once, under its real path); otherwise (the target is ignored, so the link is the only
way to it) it is followed and its files are indexed under the link's path. Broken
symlinks are UNREADABLE.

Skipped paths are recorded in `Workspace.skipped` as (rel_path, reason); pruned
directories are recorded once, with a trailing '/'.
"""

from __future__ import annotations

import os
import stat
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from semcode.config import Settings
from semcode.workspace.checks import (
    FileSkipped,
    SkipReason,
    content_reason,
    decode,
    name_reason,
    valid_name,
)
from semcode.workspace.ignore import IgnoreRule, IgnoreRules


@dataclass(frozen=True)
class FileEntry:
    """A file `scan()` found worth indexing, with the `stat` it was judged by."""

    rel_path: str  # workspace-relative, '/'-separated
    abs_path: Path  # root / rel_path (may be under a followed symlink)
    size: int
    mtime_ns: int


def normalize(rel_path: str) -> str | None:
    """A workspace-relative path in canonical form ('/'-separated, no '.', no empty
    parts), or None when it is empty or climbs out ('..')."""
    # A backslash is a separator only where the OS says so: `back\slash.py` is one
    # POSIX file name.
    rel = (rel_path.replace("\\", "/") if os.sep == "\\" else rel_path).strip("/")
    parts = [p for p in rel.split("/") if p not in ("", ".")]
    if not parts or ".." in parts:
        return None
    return "/".join(parts)


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _why(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


@dataclass(frozen=True)
class IgnoreCause:
    """Why a scan skipped what it did: the rule-file line that excluded the most
    entries (`excluded` of them; `example` is one)."""

    rule: IgnoreRule
    excluded: int
    example: str


class Workspace:
    """The files of one workspace root that are worth indexing (module docstring)."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = Path(root).resolve()
        self.settings = settings
        self.rules = IgnoreRules(self.root, settings)
        self.skipped: list[tuple[str, SkipReason]] = []

    def is_included(self, rel_path: str) -> bool:
        """Whether the ignore/hidden rules (and venv/cache markers of its directories)
        include this workspace-relative path; no content checks. For LSP file events and
        didOpen. An existing directory is judged as a directory, anything else as a file."""
        rel = normalize(rel_path)
        return rel is not None and self.rules.is_included(rel)

    def rel_path(self, path: Path | str) -> str | None:
        """Workspace-relative '/' path of `path` (symlinks resolved), or None when it is
        outside the root (or is the root)."""
        p = Path(path)
        if not p.is_absolute():
            p = self.root / p
        try:
            rel = p.resolve().relative_to(self.root)
        except (ValueError, OSError, RuntimeError):
            return None
        s = rel.as_posix()
        return None if s in ("", ".") else s

    def ignore_cause(self, limit: int = 10_000) -> IgnoreCause | None:
        """The rule-file line that excluded the most of the last scan's skipped entries
        (a pruned directory counts once), or None when no rule file excluded any. Looks
        at the first `limit` skipped entries at most."""
        counts: Counter[IgnoreRule] = Counter()
        examples: dict[IgnoreRule, str] = {}
        for rel, reason in self.skipped[:limit]:
            if reason != SkipReason.IGNORED or not rel.strip("/"):
                continue
            rule = self.rules.rule_for(rel.rstrip("/"), rel.endswith("/"))
            if rule is not None:
                counts[rule] += 1
                examples.setdefault(rule, rel)
        if not counts:
            return None
        rule, n = counts.most_common(1)[0]
        return IgnoreCause(rule, n, examples[rule])

    # ------------------------------------------------------------------ scanning
    def scan(self) -> Iterator[FileEntry]:
        """Every file worth indexing, in a deterministic order (each directory's entries
        sorted by name, depth first). Fills `self.skipped`. Never reads file contents."""
        self.skipped = []
        self.rules.invalidate()
        try:
            st = os.stat(self.root)
        except OSError:
            self.skipped.append(("", SkipReason.UNREADABLE))
            return
        visited = {(st.st_dev, st.st_ino)}
        yield from self._walk("", self.root, str(self.root), [""], visited)

    def scan_under(self, rel_dir: str) -> Iterator[FileEntry]:
        """The files `scan()` would yield below `rel_dir`. It walks from the root so that
        every ancestor's ignore rules apply exactly as in a full scan; a directory
        appearing is rare enough (a checkout, an unpacked archive) for that to be fine."""
        prefix = rel_dir.strip("/") + "/"
        skipped = self.skipped
        try:
            yield from (e for e in self.scan() if e.rel_path.startswith(prefix))
        finally:
            self.skipped = skipped

    def _walk(self, dir_rel: str, dir_abs: Path, dir_real: str, ancestors: list[str],
              visited: set[tuple[int, int]]) -> Iterator[FileEntry]:
        """Walk one included directory; `ancestors` ends with `dir_rel` itself."""
        try:
            with os.scandir(dir_abs) as it:
                entries = sorted(it, key=lambda e: e.name)
        except OSError:
            self.skipped.append((dir_rel + "/", SkipReason.UNREADABLE))
            return
        names = {e.name for e in entries}
        if dir_rel and self.rules.marked(dir_rel, ancestors, names, trust=True):
            self.skipped.append((dir_rel + "/", SkipReason.IGNORED))
            return
        self.rules.load(dir_rel, names)  # this directory's rule files, fresh
        skipped = self.skipped
        root_real = str(self.root)
        for e in entries:
            rel = _join(dir_rel, e.name)
            if not valid_name(e.name):  # undecodable bytes: no URI, no database key
                skipped.append((rel, SkipReason.BAD_NAME))
                continue
            try:
                is_link = e.is_symlink()
                is_dir = e.is_dir()  # follows symlinks
            except OSError:
                skipped.append((rel, SkipReason.UNREADABLE))
                continue
            reason = self.rules.reason(rel, is_dir, ancestors, trust=True)
            if reason is not None:
                skipped.append((rel + "/" if is_dir else rel, reason))
                continue
            abs_path = dir_abs / e.name
            real = dir_real + os.sep + e.name
            if is_link:
                target = os.path.realpath(abs_path)
                if not os.path.exists(target):
                    skipped.append((rel, SkipReason.UNREADABLE))
                    continue
                if target != root_real and not target.startswith(root_real + os.sep):
                    skipped.append((rel, SkipReason.SYMLINK_OUTSIDE))
                    continue
                if is_dir and (dir_real == target or dir_real.startswith(target + os.sep)):
                    skipped.append((rel + "/", SkipReason.SYMLINK_LOOP))
                    continue
                target_rel = os.path.relpath(target, root_real).replace(os.sep, "/")
                if target_rel != "." and self.rules.is_included(target_rel):
                    skipped.append((rel + "/" if is_dir else rel, SkipReason.SYMLINK_DUPLICATE))
                    continue
                real = target
            if is_dir:
                try:
                    st = os.stat(abs_path)
                except OSError:
                    skipped.append((rel + "/", SkipReason.UNREADABLE))
                    continue
                key = (st.st_dev, st.st_ino)
                if key in visited:
                    skipped.append((rel + "/", SkipReason.SYMLINK_LOOP))
                    continue
                visited.add(key)
                yield from self._walk(rel, abs_path, real, [*ancestors, rel], visited)
                visited.discard(key)
                continue
            reason = name_reason(rel)
            if reason is not None:
                skipped.append((rel, reason))
                continue
            try:
                st = e.stat()  # follows symlinks
            except OSError:
                skipped.append((rel, SkipReason.UNREADABLE))
                continue
            if not stat.S_ISREG(st.st_mode) or not os.access(abs_path, os.R_OK):
                skipped.append((rel, SkipReason.UNREADABLE))
                continue
            if st.st_size > self.settings.max_file_bytes:
                skipped.append((rel, SkipReason.TOO_LARGE))
                continue
            yield FileEntry(rel, abs_path, st.st_size, st.st_mtime_ns)

    # ------------------------------------------------------------------ reading
    def read_text(self, rel_path: str) -> str:
        """The text of a file, after the content checks. Raises `FileSkipped` for binary,
        too large, minified, generated, unreadable (including: deleted meanwhile, reason
        UNREADABLE, "no such file") or out-of-workspace files, so a caller that drops a
        skipped file from its index handles a deletion race too. Invalid UTF-8 becomes
        U+FFFD, never an error."""
        rel = normalize(rel_path)
        if rel is None:
            raise FileSkipped(rel_path, SkipReason.SYMLINK_OUTSIDE, "outside the workspace")
        if (reason := name_reason(rel)) is not None:
            raise FileSkipped(rel, reason)
        path = self.root / rel
        try:
            st = os.stat(path)
        except OSError as exc:
            raise FileSkipped(rel, SkipReason.UNREADABLE, _why(exc)) from None
        real = os.path.realpath(path)
        root = str(self.root)
        if real != root and not real.startswith(root + os.sep):
            raise FileSkipped(rel, SkipReason.SYMLINK_OUTSIDE, f"resolves to {real}")
        if not stat.S_ISREG(st.st_mode):
            raise FileSkipped(rel, SkipReason.UNREADABLE, "not a regular file")
        limit = self.settings.max_file_bytes
        if st.st_size > limit:
            raise FileSkipped(rel, SkipReason.TOO_LARGE, f"{st.st_size} bytes > {limit}")
        try:
            with open(path, "rb") as f:
                data = f.read(limit + 1)
        except OSError as exc:
            raise FileSkipped(rel, SkipReason.UNREADABLE, _why(exc)) from None
        if len(data) > limit:
            raise FileSkipped(rel, SkipReason.TOO_LARGE, f"more than {limit} bytes")
        text = decode(data)
        if text is None:
            raise FileSkipped(rel, SkipReason.BINARY, "NUL byte in the first 8 KB")
        if (reason := content_reason(text)) is not None:
            raise FileSkipped(rel, reason)
        return text

    def check_text(self, rel_path: str, text: str) -> SkipReason | None:
        """The same content checks for text an editor gave us (an unsaved buffer)."""
        if (reason := name_reason(rel_path)) is not None:
            return reason
        limit = self.settings.max_file_bytes
        if len(text) > limit or (len(text) * 4 > limit
                                 and len(text.encode("utf-8", "surrogatepass")) > limit):
            return SkipReason.TOO_LARGE
        return content_reason(text)
