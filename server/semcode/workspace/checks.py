"""What a file's name or text says about it: binary, minified or generated (not worth
indexing), and how its bytes become text. Also the skip vocabulary every part of the
workspace room reports in (`SkipReason`, `FileSkipped`).

Separate from the ignore rules (`ignore.py`) because these look at the file itself,
not at where it is: the same checks run on files read from disk (`Workspace.read_text`)
and on text an editor sends (`Workspace.check_text`).

Content filters: larger than `settings.max_file_bytes` (checked from `stat` before
reading; at most max+1 bytes are ever read), binary (a known binary extension, a NUL
byte in the first 8 KB, or more than 30% control characters and invalid UTF-8 there:
`looks_binary`; UTF-16 with a BOM is decoded, not skipped), minified
(`*.min.js`-style names, or an average line over `MINIFIED_AVG_LINE` characters in a file
of at least 2 KB), generated (lock files, source maps, `*_pb2.py`..., or a generated-code
marker in the first 5 lines). Invalid UTF-8 is decoded with U+FFFD replacements, never
dropped; a UTF-8 BOM is stripped.
"""

from __future__ import annotations

import re
from enum import StrEnum


class SkipReason(StrEnum):
    """Why a path is not indexed; the value is the words the user sees."""

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


class FileSkipped(Exception):
    """A file is not worth indexing; `str(exc)` is one line for the user."""

    def __init__(self, rel_path: str, reason: SkipReason, detail: str = "") -> None:
        self.rel_path = rel_path
        self.reason = reason
        self.message = f"{rel_path}: skipped ({reason}{': ' + detail if detail else ''})"
        super().__init__(self.message)


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


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
BINARY_ODD_SHARE = 0.3  # as Perl's -B test: more than 30% odd characters is binary
# Control characters other than tab, line feed, vertical tab, form feed and carriage
# return; DEL and the C1 controls; U+FFFD, what invalid UTF-8 decodes to.
_ODD = re.compile("[\x01-\x08\x0e-\x1f\x7f-\x9f\ufffd]")


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


def looks_binary(sample: str) -> bool:
    """Whether decoded text is binary data that merely has no NUL byte: more than
    `BINARY_ODD_SHARE` of it control characters (tab, line breaks and form feed aside)
    or U+FFFD (bytes that were not UTF-8). Text in a legacy encoding (Latin-1 accents)
    stays far below that; random bytes are mostly odd."""
    if not sample:
        return False
    odd = len(_ODD.findall(sample))
    return odd > BINARY_ODD_SHARE * len(sample)


def content_reason(text: str) -> SkipReason | None:
    """Skip reasons decided from decoded text (binary, minified, generated)."""
    sample = text[:BINARY_SNIFF]
    if "\x00" in sample or looks_binary(sample):
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


def valid_name(name: str) -> bool:
    """Whether a path from the OS is valid Unicode (undecodable bytes arrive as lone
    surrogates, which SQLite, JSON and URIs cannot carry)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def decode(data: bytes) -> str | None:
    """Bytes to text: UTF-16 with a BOM, else UTF-8 (BOM stripped, invalid bytes
    replaced). None for binary data (a NUL byte in the first 8 KB)."""
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        return data.decode("utf-16", errors="replace")
    if b"\x00" in data[:BINARY_SNIFF]:
        return None
    return data.decode("utf-8-sig", errors="replace")
