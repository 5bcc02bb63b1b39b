"""The saved chunk table: one file, `chunks.bin` in an index directory, that the
`ChunkColumns` of one database state are written to and mapped read-only from (issue
19: an open with a current table reads no chunk row and builds no object per chunk;
every process on the index shares its pages in the OS cache).

Layout (format 1), little-endian:

    prefix   magic (16 bytes), file size (u64), modification time in ns (i64), header
             offset (u64), header length (u64)
    arrays   each array of `chunk_table.ARRAY_NAMES`, raw, at a 64-byte aligned offset
    header   JSON: format, store id and generation (the database state the table is
             exactly), chunk count, the language and content-kind tables, each array's
             [offset, dtype, length], and the arrays' checksum

A load checks the magic, that the file's size and modification time are the ones its
prefix records (any rewrite, truncation or copy that does not keep times changes
them: the writer sets the time itself before the rename, then records it), the
header, every array lying inside the file, and the columns agreeing with each other
(`ChunkColumns.check`: cheap, vectorised); the checksum only when asked (`semcode
index --full`). Any failure is a `ChunkTableError`: the indexer reads every chunk's
row instead, with one log line, and writes the table again at the next save. A save
writes a temporary file beside it and renames it into place: a process that mapped
the previous file keeps reading it as it was.

It must not read the database nor decide when to save (the `Indexer` and `Saving` do).
"""

from __future__ import annotations

import hashlib
import json
import logging
import mmap
import os
import struct
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

from semcode.index.chunk_table import ARRAY_NAMES, ChunkColumns

log = logging.getLogger(__name__)

CHUNKS_FILE = "chunks.bin"
MAGIC = b"SEMCODE-CHUNKS\n\0"
FORMAT = 1
PREFIX = struct.Struct("<16sQqQQ")  # magic, size, mtime ns, header offset, header length
ALIGN = 64


class ChunkTableError(Exception):
    """A saved chunk table that is missing, damaged, of another format or of another
    state; the indexer reads the chunk rows instead."""


def save_table(path: Path, columns: ChunkColumns, store_id: str, generation: int) -> None:
    """Write `columns`, the chunks of database state (`store_id`, `generation`), to
    `path` atomically (a temporary file beside it, renamed into place)."""
    tmp = path.with_name(f".{path.name}.tmp-{uuid.uuid4().hex}")
    try:
        with open(tmp, "wb") as f:
            f.write(b"\0" * PREFIX.size)
            checksum = hashlib.blake2b(digest_size=16)
            layout: dict[str, list[Any]] = {}
            for name in ARRAY_NAMES:
                data = np.ascontiguousarray(columns.arrays[name])
                pad = b"\0" * (-f.tell() % ALIGN)
                f.write(pad)
                checksum.update(pad)
                layout[name] = [f.tell(), data.dtype.str, len(data)]
                raw = data.view(np.uint8).data if data.size else memoryview(b"")
                f.write(raw)
                checksum.update(raw)
            header_offset = f.tell()
            header = json.dumps({
                "format": FORMAT, "store_id": store_id, "generation": generation,
                "count": len(columns), "languages": list(columns.languages),
                "contents": list(columns.contents), "arrays": layout,
                "digest": checksum.hexdigest()}).encode("utf-8")
            f.write(header)
            size = f.tell()
            f.flush()
            os.fsync(f.fileno())
        _stamp_time(tmp, size, header_offset, len(header))
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _stamp_time(path: Path, size: int, header_offset: int, header_length: int) -> None:
    """Give `path` a modification time of our choosing and record it in its prefix
    (written, then the time set again: writing moved it)."""
    now = time.time_ns()
    os.utime(path, ns=(now, now))
    mtime = os.stat(path).st_mtime_ns  # as the file system keeps it (its resolution)
    with open(path, "r+b") as f:
        f.write(PREFIX.pack(MAGIC, size, mtime, header_offset, header_length))
        f.flush()
        os.fsync(f.fileno())
    os.utime(path, ns=(mtime, mtime))


def read_table(path: Path, verify: bool = False) -> ChunkColumns:
    """The columns saved at `path`, mapped read-only, with their `stamp` (store id,
    generation); `verify` also compares the checksum. `ChunkTableError` (one line)
    when it is missing, damaged or of another format."""
    try:
        return _read(path, verify)
    except ChunkTableError:
        raise
    except FileNotFoundError:
        raise ChunkTableError(f"no chunk table at {path}") from None
    except Exception as exc:  # any decoding or shape problem means damage
        raise ChunkTableError(f"chunk table {path} is unreadable "
                              f"({type(exc).__name__}: {exc})") from None


def _read(path: Path, verify: bool) -> ChunkColumns:
    with open(path, "rb") as f:
        st = os.fstat(f.fileno())
        prefix = f.read(PREFIX.size)
        if len(prefix) < PREFIX.size or prefix[:len(MAGIC)] != MAGIC:
            raise ChunkTableError(f"{path} is not a chunk table (too short or no magic)")
        _, size, mtime, header_offset, header_length = PREFIX.unpack(prefix)
        if size != st.st_size:
            raise ChunkTableError(f"chunk table {path} is {st.st_size} bytes, its "
                                  f"header says {size} (truncated?)")
        if mtime != st.st_mtime_ns:
            raise ChunkTableError(f"chunk table {path} was changed after it was saved")
        if header_offset + header_length != size or header_offset < PREFIX.size:
            raise ChunkTableError(f"chunk table {path}: its header lies outside it")
        f.seek(header_offset)
        header = json.loads(f.read(header_length).decode("utf-8"))
        if not isinstance(header, dict) or header.get("format") != FORMAT:
            found = header.get("format") if isinstance(header, dict) else None
            raise ChunkTableError(f"chunk table {path} has format {found!r}, "
                                  f"expected {FORMAT}")
        mapped = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
    if verify:
        checksum = hashlib.blake2b(memoryview(mapped)[PREFIX.size:header_offset],
                                   digest_size=16)
        if checksum.hexdigest() != header["digest"]:
            raise ChunkTableError(f"chunk table {path}: checksum mismatch")
    arrays = {}
    for name in ARRAY_NAMES:
        offset, dtype, length = header["arrays"][name]
        dt = np.dtype(dtype)
        if not (isinstance(offset, int) and isinstance(length, int) and offset >= PREFIX.size
                and length >= 0 and offset + dt.itemsize * length <= header_offset):
            raise ChunkTableError(f"chunk table {path}: {name} lies outside it")
        arrays[name] = np.frombuffer(mapped, dtype=dt, count=length, offset=offset)
    languages, contents = header["languages"], header["contents"]
    if not all(isinstance(s, str) for s in [*languages, *contents]):
        raise ChunkTableError(f"chunk table {path}: its string tables hold non-strings")
    stamp = (str(header["store_id"]), int(header["generation"]))
    columns = ChunkColumns(arrays, languages, contents, stamp=stamp)
    columns.check()
    if len(columns) != header["count"]:
        raise ChunkTableError(f"chunk table {path}: {len(columns)} chunks, its header "
                              f"says {header['count']}")
    return columns


def load_saved(path: Path, store_id: str, verify: bool = False) -> ChunkColumns | None:
    """The saved table when it is one of database `store_id`, else None with one log
    line saying why (none for no table at all: an index saved before there was one, or
    never saved, is read from its rows without a word)."""
    if not path.exists():
        log.debug("no saved chunk table at %s", path)
        return None
    try:
        columns = read_table(path, verify)
    except ChunkTableError as exc:
        log.warning("reading every chunk's row (%s)", exc)
        return None
    if columns.stamp is None or columns.stamp[0] != store_id:
        log.info("reading every chunk's row (the saved chunk table belongs to another "
                 "index database)")
        return None
    return columns


def saved_stamp(path: Path) -> tuple[str, int] | None:
    """(store id, generation) the saved table says it holds, from its prefix and header
    alone; None when there is none or it cannot be read."""
    try:
        with open(path, "rb") as f:
            prefix = f.read(PREFIX.size)
            if len(prefix) < PREFIX.size or prefix[:len(MAGIC)] != MAGIC:
                return None
            _, _, _, header_offset, header_length = PREFIX.unpack(prefix)
            f.seek(header_offset)
            header = json.loads(f.read(header_length).decode("utf-8"))
        return str(header["store_id"]), int(header["generation"])
    except (OSError, ValueError, KeyError, TypeError, OverflowError):
        return None


def remove_stale_temp(directory: Path) -> None:
    """What killed saves left in `directory` (call it holding the write lock: nobody is
    saving)."""
    for tmp in directory.glob(f".{CHUNKS_FILE}.tmp-*"):
        tmp.unlink(missing_ok=True)
