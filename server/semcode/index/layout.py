"""The files of one index directory: their names, the manifest format, and the small
file operations the indexer does on them (an atomic JSON write, removing what killed
saves left behind, the directory's size).

It must not read or write the database, nor decide when to save (`indexer.py` does).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Mapping
from pathlib import Path

from semcode.index.chunk_files import CHUNKS_FILE, saved_stamp
from semcode.index.chunk_files import remove_stale_temp as _remove_table_temp
from semcode.index.lexical_files import remove_stale_temp as _remove_lexical_temp

VECTORS_FILE = "vectors.usearch"
VECTORS_MANIFEST = "vectors.json"
LEXICAL_DIR = "lexical"
MANIFEST_FORMAT = 1


def write_json(path: Path, value: Mapping[str, object]) -> None:
    """Write `value` to `path` atomically (temp file, fsync, rename)."""
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(value, f)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def remove_stale_temp(directory: Path) -> None:
    """What killed saves left behind in `directory` (call it holding the write lock:
    nobody is saving)."""
    _remove_lexical_temp(directory / LEXICAL_DIR)
    _remove_table_temp(directory)
    for tmp in [*directory.glob(f".{VECTORS_FILE}.*.tmp"),
                directory / f".{VECTORS_MANIFEST}.tmp"]:
        tmp.unlink(missing_ok=True)


def saved_generations(directory: Path, store_id: str) -> list[int]:
    """The generations the saved derived indexes in `directory` say they hold, for
    those saved from database `store_id`."""
    out = []
    for path in (directory / LEXICAL_DIR / "meta.json", directory / VECTORS_MANIFEST):
        try:
            meta = json.loads(path.read_text(encoding="utf-8"))
            stamp = meta.get("stamp", meta) if isinstance(meta, dict) else {}
            if stamp.get("store_id") == store_id and isinstance(stamp.get("generation"),
                                                                int):
                out.append(stamp["generation"])
        except (OSError, ValueError, AttributeError):
            continue
    table = saved_stamp(directory / CHUNKS_FILE)
    if table is not None and table[0] == store_id:
        out.append(table[1])
    return out


def dir_size(path: Path) -> int:
    """Bytes under `path` (files removed while counting are skipped)."""
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a file removed while we count
                total += os.path.getsize(os.path.join(dirpath, name))
    return total
