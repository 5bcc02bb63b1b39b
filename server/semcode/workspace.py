"""Which files of a workspace count: ignore rules, size/binary/minified/generated filters,
and symlink safety. Knows nothing of chunking, indexes or LSP.

Ignore rules, in the order they are applied to a workspace-relative path:

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

Content filters (`read_text`, `check_text`): larger than `settings.max_file_bytes`
(checked from `stat` before reading; at most max+1 bytes are ever read), binary (a known
binary extension, or a NUL byte in the first 8 KB; UTF-16 with a BOM is decoded, not
skipped), minified (`*.min.js`-style names, or an average line over
`MINIFIED_AVG_LINE` characters in a file of at least 2 KB), generated (lock files, source
maps, `*_pb2.py`..., or a generated-code marker in the first 5 lines). Invalid UTF-8 is
decoded with U+FFFD replacements, never dropped; a UTF-8 BOM is stripped.

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
import re
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

from pathspec import GitIgnoreSpec

from .config import Settings


class SkipReason(StrEnum):
    IGNORED = "ignored"
    HIDDEN = "hidden"
    BINARY = "binary"
    TOO_LARGE = "too large"
    MINIFIED = "minified"
    GENERATED = "generated"
    SYMLINK_OUTSIDE = "symlink outside the workspace"
    SYMLINK_LOOP = "symlink loop"
    UNREADABLE = "unreadable"
    SYMLINK_DUPLICATE = "symlink to an included path"
    BAD_NAME = "file name is not valid UTF-8"


@dataclass(frozen=True)
class FileEntry:
    rel_path: str  # workspace-relative, '/'-separated
    abs_path: Path  # root / rel_path (may be under a followed symlink)
    size: int
    mtime_ns: int


class FileSkipped(Exception):
    """A file is not worth indexing; `str(exc)` is one line for the user."""

    def __init__(self, rel_path: str, reason: SkipReason, detail: str = "") -> None:
        self.rel_path = rel_path
        self.reason = reason
        self.message = f"{rel_path}: skipped ({reason}{': ' + detail if detail else ''})"
        super().__init__(self.message)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


VCS_DIRS = frozenset({".git", ".hg", ".svn", ".bzr", "_darcs", ".jj"})
HIDDEN_ALLOWED = frozenset({".github"})
JUNK_DIRS = frozenset({
    "node_modules", "bower_components", "__pycache__", ".venv", ".tox", ".nox",
    ".mypy_cache", ".pytest_cache", ".ruff_cache", ".gradle", ".next", ".nuxt",
    ".svelte-kit", ".terraform",
})
JUNK_DIR_SUFFIXES = (".egg-info",)
DIR_MARKERS = ("pyvenv.cfg", "CACHEDIR.TAG")

BINARY_EXTENSIONS = _words("""
png jpg jpeg gif bmp ico icns webp tif tiff psd xcf heic avif
pdf doc docx xls xlsx ppt pptx odt ods odp epub
zip gz tgz bz2 xz zst lz4 7z rar tar jar war ear apk ipa aar
class so dylib dll exe o a obj lib pdb pyc pyo pyd whl egg nupkg
woff woff2 ttf otf eot mp3 mp4 m4a wav ogg oga flac aac avi mov mkv webm wmv flv
db sqlite sqlite3 mdb bin npy npz pkl pickle h5 hdf5 parquet feather arrow onnx pt pth
safetensors gguf ckpt tflite pb wasm iso dmg img deb rpm msi lockb jks keystore p12
""")
MINIFIED_SUFFIXES = (".min.js", ".min.mjs", ".min.cjs", ".min.css", "-min.js", ".min.map")
GENERATED_NAMES = frozenset({
    "package-lock.json", "npm-shrinkwrap.json", "yarn.lock", "pnpm-lock.yaml",
    "Cargo.lock", "poetry.lock", "Pipfile.lock", "composer.lock", "Gemfile.lock",
    "go.sum", "uv.lock", "pdm.lock", "flake.lock", "mix.lock", "pubspec.lock",
    "Podfile.lock", "packages.lock.json", "gradle.lockfile", "deno.lock",
})
GENERATED_SUFFIXES = (".lock", ".map", "_pb2.py", "_pb2.pyi", "_pb2_grpc.py", ".pb.go",
                      ".pb.cc", ".pb.h", ".g.dart", ".freezed.dart")
_GENERATED_MARKER = re.compile(
    r"@generated\b|\bDO NOT EDIT\b|\bauto-?generated\b|\bautomatically generated\b"
    r"|^\W*(?:this file (?:is|was) )?generated (?:by|from|with)\b",
    re.IGNORECASE | re.MULTILINE)
MARKER_LINES = 5
MINIFIED_AVG_LINE = 300
MINIFIED_MIN_BYTES = 2048
BINARY_SNIFF = 8192


def _join(parent: str, name: str) -> str:
    return f"{parent}/{name}" if parent else name


def _spec(lines: list[str]) -> GitIgnoreSpec | None:
    lines = [ln for ln in lines if ln.strip() and not ln.lstrip().startswith("#")]
    return GitIgnoreSpec.from_lines(lines) if lines else None


def _read_spec(path: Path) -> GitIgnoreSpec | None:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    return _spec(text.splitlines())


@dataclass(frozen=True)
class _Layer:
    """A pattern file: applies to paths under `base` (workspace-relative dir); the path
    matched is `prefix` + the path relative to `base`."""

    spec: GitIgnoreSpec
    base: str = ""
    prefix: str = ""

    def check(self, rel: str, is_dir: bool) -> bool | None:
        if self.base:
            if not rel.startswith(self.base + "/"):
                return None
            rel = rel[len(self.base) + 1:]
        path = self.prefix + rel + ("/" if is_dir else "")
        return self.spec.check_file(path).include


def name_reason(rel_path: str) -> SkipReason | None:
    """Skip reasons decidable from the file name alone."""
    name = rel_path.rsplit("/", 1)[-1]
    lower = name.lower()
    ext = lower.rsplit(".", 1)[-1] if "." in lower else ""
    if ext in BINARY_EXTENSIONS:
        return SkipReason.BINARY
    if lower.endswith(MINIFIED_SUFFIXES):
        return SkipReason.MINIFIED
    if name in GENERATED_NAMES or lower.endswith(GENERATED_SUFFIXES):
        return SkipReason.GENERATED
    return None


def content_reason(text: str) -> SkipReason | None:
    """Skip reasons decided from decoded text (binary, minified, generated)."""
    if "\x00" in text[:BINARY_SNIFF]:
        return SkipReason.BINARY
    if len(text) >= MINIFIED_MIN_BYTES and len(text) / (text.count("\n") + 1) > MINIFIED_AVG_LINE:
        return SkipReason.MINIFIED
    head_end = -1
    for _ in range(MARKER_LINES):
        head_end = text.find("\n", head_end + 1)
        if head_end < 0:
            break
    head = text[: head_end if head_end >= 0 else 4096][:4096]
    if _GENERATED_MARKER.search(head):
        return SkipReason.GENERATED
    return None


class Workspace:
    """The files of one workspace root that are worth indexing (module docstring)."""

    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = Path(root).resolve()
        self.settings = settings
        self.skipped: list[tuple[str, SkipReason]] = []
        self._dir_layers: dict[str, tuple[tuple[int, ...], _Layer | None, _Layer | None]] = {}
        self._outer_layers = self._find_outer_layers()
        self._exclude_layer = (_Layer(spec) if (spec := _spec(list(settings.exclude)))
                               else None)

    # ------------------------------------------------------------------ rules
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
        if (spec := _read_spec(top / ".git" / "info" / "exclude")) is not None:
            layers.append(_Layer(spec, "", prefix))
        d = top
        parts = [] if rel_root == "." else rel_root.split("/")
        for i in range(len(parts)):
            if (spec := _read_spec(d / ".gitignore")) is not None:
                layers.append(_Layer(spec, "", "/".join(parts[i:]) + "/"))
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

    def invalidate_rules(self) -> None:
        """Forget cached .gitignore/.semcodeignore contents (also done by `scan`)."""
        self._dir_layers.clear()
        self._outer_layers = self._find_outer_layers()

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
        layers = (_Layer(git, dir_rel) if git else None, _Layer(sem, dir_rel) if sem else None)
        self._dir_layers[dir_rel] = (key, *layers)
        return layers

    def _rule_reason(self, rel: str, is_dir: bool, ancestors: list[str],
                     trust: bool = False) -> SkipReason | None:
        """The ignore decision for one path whose ancestor directories (workspace-relative,
        root first, '' for the root) are `ancestors`. Ancestors themselves are assumed
        included (the walk prunes; `is_included` checks each)."""
        name = rel.rsplit("/", 1)[-1]
        if name in VCS_DIRS:
            return SkipReason.IGNORED
        default: SkipReason | None = None
        if name.startswith(".") and not self.settings.include_hidden and (
                name not in HIDDEN_ALLOWED or not is_dir):
            default = SkipReason.HIDDEN
        elif is_dir and (name in JUNK_DIRS or name.endswith(JUNK_DIR_SUFFIXES)):
            default = SkipReason.IGNORED
        git: bool | None = None
        for layer in self._outer_layers:
            if (r := layer.check(rel, is_dir)) is not None:
                git = r
        sem: bool | None = None
        for a in ancestors:
            g, s = self._layers_of(a, trust=trust)
            if g is not None and (r := g.check(rel, is_dir)) is not None:
                git = r
            if s is not None and (r := s.check(rel, is_dir)) is not None:
                sem = r
        if self._exclude_layer is not None and (
                r := self._exclude_layer.check(rel, is_dir)) is not None:
            sem = r
        if sem is not None:
            return SkipReason.IGNORED if sem else None
        if default is not None:
            return default
        return SkipReason.IGNORED if git else None

    def _marker_reason(self, rel: str, ancestors: list[str], names: set[str],
                       trust: bool = False) -> bool:
        """A directory holding a venv/cache marker, unless semcode rules re-include it."""
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

    @staticmethod
    def _normalize(rel_path: str) -> str | None:
        # A backslash is a separator only where the OS says so: `back\slash.py` is one
        # POSIX file name.
        rel = (rel_path.replace("\\", "/") if os.sep == "\\" else rel_path).strip("/")
        parts = [p for p in rel.split("/") if p not in ("", ".")]
        if not parts or ".." in parts:
            return None
        return "/".join(parts)

    def is_included(self, rel_path: str) -> bool:
        """Whether the ignore/hidden rules (and venv/cache markers of its directories)
        include this workspace-relative path; no content checks. For LSP file events and
        didOpen. An existing directory is judged as a directory, anything else as a file."""
        rel = self._normalize(rel_path)
        if rel is None:
            return False
        parts = rel.split("/")
        ancestors = [""]
        for i in range(len(parts) - 1):
            d = "/".join(parts[: i + 1])
            if self._rule_reason(d, True, ancestors) is not None:
                return False
            if any(os.path.exists(self.root / d / m) for m in DIR_MARKERS) and \
                    self._marker_reason(d, ancestors, set(DIR_MARKERS)):
                return False
            ancestors.append(d)
        is_dir = (self.root / rel).is_dir()
        return self._rule_reason(rel, is_dir, ancestors) is None

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

    # ------------------------------------------------------------------ scanning
    def scan(self) -> Iterator[FileEntry]:
        """Every file worth indexing, in a deterministic order (each directory's entries
        sorted by name, depth first). Fills `self.skipped`. Never reads file contents."""
        self.skipped = []
        self.invalidate_rules()
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
        if dir_rel and self._marker_reason(dir_rel, ancestors, names, trust=True):
            self.skipped.append((dir_rel + "/", SkipReason.IGNORED))
            return
        self._layers_of(dir_rel, names)  # load this directory's rule files, fresh
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
            reason = self._rule_reason(rel, is_dir, ancestors, trust=True)
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
                if target_rel != "." and self.is_included(target_rel):
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
        rel = self._normalize(rel_path)
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


def valid_name(name: str) -> bool:
    """Whether a path from the OS is valid Unicode (undecodable bytes arrive as lone
    surrogates, which SQLite, JSON and URIs cannot carry)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _why(exc: OSError) -> str:
    return (exc.strerror or str(exc)).lower()


def decode(data: bytes) -> str | None:
    """Bytes to text: UTF-16 with a BOM, else UTF-8 (BOM stripped, invalid bytes
    replaced). None for binary data (a NUL byte in the first 8 KB)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data[:BINARY_SNIFF]:
        return None
    return data.decode("utf-8-sig", errors="replace")


__all__ = ["SkipReason", "FileEntry", "FileSkipped", "Workspace", "name_reason",
           "content_reason", "decode", "valid_name", "VCS_DIRS", "JUNK_DIRS", "HIDDEN_ALLOWED"]
