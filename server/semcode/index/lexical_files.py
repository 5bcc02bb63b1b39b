"""The files of a saved lexical index (`lexical/` in an index directory): their names,
reading a manifest cheaply, checksums, and removing what killed saves left behind.
`LexicalIndex.save`/`load` (lexical.py) write and read the files themselves; this module
holds what other modules need to know about them without loading an index (the indexer
looks at the manifest before every search to notice another process's new build).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

DOCS_FILE = "docs.npz"
BUILT_FILE = "built.npz"
VOCAB_FILE = "vocab.json"
META_FILE = "meta.json"


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
