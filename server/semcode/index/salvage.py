"""Recovering from a damaged index database: move the file (and its -wal/-shm) aside
under a timestamped name, never deleting it, read back every embedding still readable
from it (the expensive part of an index), and the note a process that met damage
mid-command leaves for the next one to open the database (`<name>.damage-found`).

It must not write the new database itself (`Store` does, in its own transactions) and
must not trust anything else from the damaged copy: chunks are recomputed.
"""

from __future__ import annotations

import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from semcode.index.store_errors import _errors

BATCH = 500


def move_aside(path: Path, label: str = "damaged") -> Path:
    """Rename `path` and its WAL/SHM side files to `<name>.<label>-<stamp>[-n]`
    (`damaged`, or `foreign` for another workspace's database); returns the new name."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    target = path.with_name(f"{path.name}.{label}-{stamp}")
    n = 1
    while target.exists():
        n += 1
        target = path.with_name(f"{path.name}.{label}-{stamp}-{n}")
    with _errors(path):
        if path.exists():
            os.replace(path, target)
        for suffix in ("-wal", "-shm"):
            side = Path(f"{path}{suffix}")
            if side.exists():
                os.replace(side, Path(f"{target}{suffix}"))
    return target


def _note_path(path: Path) -> Path:
    return path.with_name(f"{path.name}.damage-found")


def note_damage(path: Path, why: str) -> None:
    """Leave `why` (a `StoreCorrupt` line) beside the database at `path`: a process that
    met damage mid-command (a server's search) cannot repair it there, so the next one
    to open the database moves it aside and rebuilds. Best effort (a read-only index
    directory keeps no note)."""
    tmp = path.with_name(f".{path.name}.damage-found.tmp")
    try:
        tmp.write_text(why, encoding="utf-8")
        os.replace(tmp, _note_path(path))
    except OSError:
        tmp.unlink(missing_ok=True)


def noted_damage(path: Path) -> str | None:
    """The line `note_damage` left beside `path`, or None."""
    try:
        return _note_path(path).read_text(encoding="utf-8", errors="replace").strip() or \
            f"index database {path} was found damaged"
    except OSError:
        return None


def clear_damage_note(path: Path) -> None:
    """Remove the note (the damaged file it was about has been moved aside)."""
    _note_path(path).unlink(missing_ok=True)


def embedding_batches(damaged: Path) -> Iterator[list[tuple[str, str, bytes]]]:
    """The well-formed (model, hash, vector) rows still readable from `damaged`, in
    batches of up to `BATCH` (the last may be empty); stops quietly at the first
    unreadable page."""
    if not damaged.exists():
        return
    try:
        src = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True)
    except sqlite3.Error:
        return
    # Text as bytes, decoded here: a row whose text no longer decodes is skipped, not
    # the end of the cursor (sqlite3 raises on it, and the rows after it would be lost).
    src.text_factory = bytes
    try:
        rows = src.execute("SELECT model, hash, vector FROM embeddings")
        batch: list[tuple[str, str, bytes]] = []
        while True:
            try:
                row = rows.fetchone()
            except sqlite3.Error:
                break
            if row is None:
                break
            if (isinstance(row[0], bytes) and isinstance(row[1], bytes)
                    and isinstance(row[2], bytes) and len(row[2]) % 4 == 0
                    and (model := decoded_text(row[0])) and (content := decoded_text(row[1]))):
                batch.append((model, content, row[2]))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        yield batch
    except sqlite3.Error:
        pass
    finally:
        src.close()


def decoded_text(raw: object) -> str | None:
    """`raw` (bytes read with `CAST(... AS BLOB)` or a bytes text factory) as UTF-8, or
    None when it is not bytes or not UTF-8 (damaged)."""
    if not isinstance(raw, bytes):
        return None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return None


def file_id(path: Path) -> tuple[int, int] | None:
    """Which file is at `path` (device, inode), or None without one: a database another
    process moved aside and replaced shows as another id."""
    try:
        st = path.stat()
    except OSError:
        return None
    return (st.st_dev, st.st_ino)
