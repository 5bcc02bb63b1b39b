"""The files of a saved lexical index (`lexical/` in an index directory): their names,
reading a manifest cheaply, checksums, and removing what killed saves left behind.
`LexicalIndex.save`/`load` (lexical.py) write and read the files themselves; this module
holds what other modules need to know about them without loading an index (the indexer
looks at the manifest before every search to notice another process's new build).
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

ARRAYS_FILE = "arrays.bin"  # every array of a build, each at an aligned offset
META_FILE = "meta.json"
# The files of format 1 (one .npz per part, a JSON vocabulary), recognised to say why
# such an index is rebuilt.
OLD_FILES = ("docs.npz", "built.npz", "vocab.json")
MAGIC = b"SEMCODE-LEXICAL\n"
ALIGN = 64


def write_arrays(path: Path, arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    """Write `arrays` into one file (a magic header, then each array's raw bytes at a
    64-byte aligned offset); returns the layout `map_arrays` needs (name -> [offset,
    dtype, length]). Only 1-D arrays."""
    layout: dict[str, Any] = {}
    with open(path, "wb") as f:
        f.write(MAGIC)
        for name, array in arrays.items():
            data = np.ascontiguousarray(array)
            if data.ndim != 1:
                raise ValueError(f"{name}: only 1-D arrays are saved")
            pad = -f.tell() % ALIGN
            f.write(b"\0" * pad)
            layout[name] = [f.tell(), data.dtype.str, len(data)]
            f.write(data.tobytes())
        f.flush()
        os.fsync(f.fileno())
    return layout


def map_arrays(path: Path, layout: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The arrays `write_arrays` wrote, read-only views of the file mapped in memory
    (the OS page cache is shared by every process that maps it; a save replaces the
    file by rename, never in place, so a mapping stays what it was). ValueError when
    the layout does not fit the file."""
    with open(path, "rb") as f:
        size = os.fstat(f.fileno()).st_size
        if size < len(MAGIC):
            raise ValueError("file too short")
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if mapped[:len(MAGIC)] != MAGIC:
        raise ValueError("not a lexical arrays file")
    out = {}
    for name, (offset, dtype, length) in layout.items():
        dt = np.dtype(dtype)
        if not (isinstance(offset, int) and isinstance(length, int) and offset >= 0
                and length >= 0 and offset + dt.itemsize * length <= size):
            raise ValueError(f"{name} lies outside the file")
        out[name] = np.frombuffer(mapped, dtype=dt, count=length, offset=offset)
    return out


def file_signature(path: Path) -> list[int]:
    """[size, mtime ns] of a saved file, recorded in the manifest and compared on every
    load: any rewrite, truncation or replacement of the file changes it (copies that
    keep times, `cp -p`, keep it too). A full checksum is compared only when asked
    (`LexicalIndex.load(verify=True)`): hashing every file on every open costs time in
    proportion to the index."""
    st = os.stat(path)
    return [st.st_size, st.st_mtime_ns]


@dataclass(frozen=True)
class SavedBuild:
    """What a saved lexical index says of itself, read from its manifest alone (cheap:
    done before every search to notice another process's new build)."""

    signature: tuple[int, int, int]  # (inode, mtime ns, size) of the manifest
    build_id: str
    store_id: str
    generation: int


def saved_build(directory: Path) -> SavedBuild | None:
    """The manifest of the lexical index saved in `directory`, or None when there is
    none or it cannot be read (a save is replacing it: look again later)."""
    signature = manifest_signature(directory)
    if signature is None:
        return None
    try:
        meta = json.loads((Path(directory) / META_FILE).read_text(encoding="utf-8"))
        stamp = meta.get("stamp") or {}
        return SavedBuild(signature,
                          str(meta.get("build_id", "")), str(stamp.get("store_id", "")),
                          int(stamp.get("generation", -1)))
    except (OSError, ValueError, TypeError, AttributeError):
        return None


def manifest_signature(directory: Path) -> tuple[int, int, int] | None:
    """(inode, mtime ns, size) of the saved manifest: changes with every save."""
    try:
        st = os.stat(Path(directory) / META_FILE)
    except OSError:
        return None
    return (st.st_ino, st.st_mtime_ns, st.st_size)


def remove_stale_temp(directory: Path) -> int:
    """Delete what killed saves left beside `directory` (`.NAME.tmp-*`, `NAME.old` when
    `NAME` is whole). Call it only while holding the index's write lock (another
    process could be saving). Returns how many were removed."""
    directory = Path(directory)
    removed = 0
    try:
        names = os.listdir(directory.parent)
    except OSError:
        return 0
    for name in names:
        stale = name.startswith(f".{directory.name}.tmp-") or (
            name == directory.name + ".old" and (directory / META_FILE).is_file())
        if stale:
            shutil.rmtree(directory.parent / name, ignore_errors=True)
            removed += 1
    return removed


def digest(path: Path) -> str:
    """A file's checksum as the manifest records it."""
    h = hashlib.blake2b(digest_size=16)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fsync(path: Path) -> None:
    """Flush a written file to the disk before it is renamed into place."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
