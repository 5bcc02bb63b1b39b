"""An archive's files as semcode would index them, in memory as {relative path: text}.

Paths are relative to the package's top directory (a wheel's root, npm's `package/`, a
source tarball's `name-version/`, a `.deb`'s `usr/`). Kept: source files of the
languages semcode chunks and documentation prose (Markdown/rst, changelogs; a wheel's
README is its METADATA description); skipped, as the workspace rules skip them: binary,
minified and generated files and junk directories; and, for the training data: tests,
type declarations (`.d.ts`), files over `MAX_FILE_BYTES`, vendored copies of excluded
projects, and files past the per-package bounds (a stable sample is kept).
"""

from __future__ import annotations

import gzip
import hashlib
import subprocess
import tarfile
import tempfile
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

from bench.quality.corpora import SOURCE_EXTS, is_doc_name

from semcode.evaluation.protocols import is_test_path
from semcode.workspace.checks import content_reason, name_reason
from semcode.workspace.ignore import JUNK_DIR_SUFFIXES, JUNK_DIRS
from training.data.exclusions import Exclusions

MAX_FILE_BYTES = 300_000
MAX_CODE_FILES = 800
MAX_DOC_FILES = 60
MAX_PACKAGE_BYTES = 12_000_000
_DEBIAN_DOC_SKIP = ("copyright", "changelog.debian", "readme.debian", "news.debian")


def _members(archive: Path) -> Iterator[tuple[str, bytes]]:
    """(path below the package's top directory, bytes) of every regular file."""
    if archive.suffix == ".whl":
        with zipfile.ZipFile(archive) as z:
            for info in z.infolist():
                if info.is_dir() or info.file_size > MAX_FILE_BYTES * 4:
                    continue
                name = info.filename
                if ".dist-info/" in name:
                    if name.endswith(".dist-info/METADATA"):
                        yield from _wheel_readme(z.read(info).decode("utf-8", "replace"))
                    continue
                yield name, z.read(info)
        return
    if archive.suffix == ".deb":
        with tempfile.TemporaryDirectory() as tmp:
            subprocess.run(["dpkg-deb", "-x", str(archive), tmp], check=True,
                           capture_output=True)
            root = Path(tmp) / "usr"
            for path in sorted(root.rglob("*")):
                if path.is_file() and not path.is_symlink() and (
                        path.stat().st_size <= MAX_FILE_BYTES * 4):
                    yield path.relative_to(root).as_posix(), path.read_bytes()
        return
    with tarfile.open(archive) as tar:
        for member in tar:
            name = member.name.removeprefix("./")
            if member.isfile() and "/" in name and member.size <= MAX_FILE_BYTES * 4:
                data = tar.extractfile(member)
                if data is not None:
                    yield name.split("/", 1)[1], data.read()


def _wheel_readme(metadata: str) -> Iterator[tuple[str, bytes]]:
    """A wheel's long description (its README) as README.md or README.rst."""
    message = Parser().parsestr(metadata)
    body = message.get_payload()
    if not isinstance(body, str) or not body.strip():
        body = message.get("Description", "") or ""
    if body.strip():
        kind = (message.get("Description-Content-Type") or "").lower()
        yield ("README.md" if "markdown" in kind else "README.rst"), body.encode()


def wanted(rel: str, exclusions: Exclusions) -> bool:
    """Whether a file is read at all (by its path)."""
    parts = rel.split("/")
    if any(p in JUNK_DIRS or p.endswith(JUNK_DIR_SUFFIXES) for p in parts[:-1]):
        return False
    if rel.endswith((".d.ts", ".d.mts", ".d.cts")) or name_reason(rel) is not None:
        return False
    base = parts[-1].lower()
    if base in _DEBIAN_DOC_SKIP or base.startswith(_DEBIAN_DOC_SKIP):
        return False
    if not (rel.endswith(SOURCE_EXTS) or is_doc_name(rel)):
        return False
    return not is_test_path(rel) and exclusions.excludes_path(rel) is None


def _stable_sample(paths: list[str], limit: int) -> list[str]:
    if len(paths) <= limit:
        return paths
    return sorted(sorted(paths, key=lambda p: hashlib.blake2b(p.encode()).digest())[:limit])


def read_package(archive: Path, exclusions: Exclusions) -> dict[str, str]:
    """{relative path: text} of the files of an archive that the training data uses."""
    files: dict[str, str] = {}
    for rel, data in _members(archive):
        if rel.endswith(".gz"):  # Debian compresses documentation
            if not is_doc_name(rel[:-3]):
                continue
            try:
                data = gzip.decompress(data)
            except (OSError, EOFError):
                continue
            rel = rel[:-3]
        if len(data) > MAX_FILE_BYTES or not wanted(rel, exclusions):
            continue
        if b"\x00" in data[:8192]:
            continue
        text = data.decode("utf-8", "replace")
        if content_reason(text) is None:
            files[rel] = text
    code = _stable_sample(sorted(p for p in files if not is_doc_name(p)), MAX_CODE_FILES)
    docs = _stable_sample(sorted(p for p in files if is_doc_name(p)), MAX_DOC_FILES)
    kept: dict[str, str] = {}
    total = 0
    for path in sorted(code + docs):
        total += len(files[path])
        if total > MAX_PACKAGE_BYTES:
            break
        kept[path] = files[path]
    return kept
