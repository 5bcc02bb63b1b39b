"""The durable record of one workspace's index: SQLite.

It holds what cannot be recomputed cheaply (the embedding cache) and what the derived
structures are rebuilt from (chunks; their BM25 tokens are re-derived from each chunk's
row, `tokenizer.chunk_tokens`, never stored). The usearch and BM25 files
beside it are caches of this database: each carries, in a manifest, the database
identity (`store_id`) and generation it was saved at plus checksums of its own files,
and any mismatch makes the indexer rebuild it from here. SQLite transactions make every
update all-or-nothing, so a crash mid-index leaves the last committed state usable.

Concurrency (ARCHITECTURE.md, invariants): one process at a time writes, holding
`WriteLock` (an OS file lock on the index directory); every write method checks that
the lock is held. Writes go through one connection; reads (searches, the embedding
thread) use a connection per thread, so with WAL they see the last committed state and
never queue behind a write.

Every SQLite or OS error leaves this module as `StoreError` (one line); a damaged
database as `StoreCorrupt`, after which `Store(..., recover=True)` moves the file aside
(renamed with a timestamp, never deleted) and starts a new one, keeping every cached
embedding it can still read.

Only `indexer.Indexer` writes through this class.

Its helpers live beside it: `store_errors` (errors, transactions), `locking`
(`WriteLock`), `schema` (tables and open-time checks), `records` (what it returns),
`salvage` (recovering a damaged file), `embedding_cache` (the vector cache, an object
the store holds as `embeddings`, handed only the store's read and write paths, and the
`shared_cache` under it that every checkout shares); this module re-exports their
public names.
"""


from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from semcode.chunking.names import OTHER_NAMED_KINDS, OTHER_NAMED_LANGUAGES, other_names
from semcode.chunks import Chunk
from semcode.index.chunk_table import ColumnsBuilder, advanced, chunk_ids
from semcode.index.embedding_cache import EmbeddingCache
from semcode.index.locking import LOCK_FILE, WriteLock
from semcode.index.records import (
    CHUNK_COLUMNS,
    REF_COLUMNS,
    ChunkRef,
    ChunkVisitor,
    FileRecord,
    Snapshot,
    parse_int,
    row_to_chunk,
    row_to_file,
    row_to_ref,
    stored_text,
)
from semcode.index.salvage import (
    clear_damage_note,
    file_id,
    move_aside,
    note_damage,
    noted_damage,
)
from semcode.index.schema import (
    NEVER_INDEXED,
    REBUILD_OWED,
    SCHEMA_VERSION,
    bump_counter,
    prepare,
)
from semcode.index.shared_cache import SharedEmbeddings
from semcode.index.store_errors import (
    StoreCorrupt,
    StoreError,
    StoreForeign,
    _describe,
    _errors,
    _Transaction,
)

__all__ = ["BUSY_TIMEOUT_MS", "LOCK_FILE", "NEVER_INDEXED", "REBUILD_OWED",
           "SCHEMA_VERSION", "ChunkRef", "FileRecord", "Snapshot", "Store", "StoreCorrupt",
           "StoreError", "StoreForeign", "WriteLock", "_describe", "_Transaction"]

log = logging.getLogger(__name__)

# A row of a snapshot or delta: the id, the ref's columns, then (for a visitor) the chunk's.
_REFS_END = 1 + len(REF_COLUMNS.split(","))


def _row_columns(visit: ChunkVisitor | None) -> str:
    """What a snapshot or delta reads per chunk: its ref, and the whole chunk for `visit`."""
    return f"id, {REF_COLUMNS}, {CHUNK_COLUMNS}" if visit else f"id, {REF_COLUMNS}"


def _take_rows(rows: Iterable[Sequence[Any]], refs: ColumnsBuilder,
               visit: ChunkVisitor | None) -> None:
    """Each row of `_row_columns(visit)` into `refs`, and its chunk handed to `visit`."""
    for r in rows:
        refs.add(r[0], row_to_ref(r[1:_REFS_END]))
        if visit:
            visit(r[0], row_to_chunk(r[_REFS_END:]))

BUSY_TIMEOUT_MS = 10_000



T = TypeVar("T")


# ====================================================================== the store
class Store:
    """SQLite with one writer connection (under `lock`) and a reader connection per
    thread. See the module docstring."""

    def __init__(self, path: Path, lock: WriteLock | None = None, *, check: bool = False,
                 recover: bool | str = False, workspace: str | None = None,
                 shared: SharedEmbeddings | None = None) -> None:
        """Open (or create) the database. A damaged or older-format file, or one that
        records another `workspace` (its resolved root) than this one, is moved aside
        and a new one started, marked as owing a rebuild (one log line); `check` runs
        SQLite's quick_check first (`index --full`), `recover` moves the file aside
        unconditionally (after a command saw it damaged; a string is that command's
        one line about it). `shared` (the cache every checkout shares) goes to the
        embedding cache, which owns it from then on."""
        self.path = path
        self.workspace = workspace
        self.lock = lock
        self._lock = threading.RLock()
        self._local = threading.local()
        self._readers: list[sqlite3.Connection] = []
        self._closed = False
        self._db: sqlite3.Connection | None = None
        self._file_id: tuple[int, int] | None = None
        self._batching = False  # inside `batch()`: writes are savepoints
        self._epoch = 0  # bumped by `reopen`: thread-local readers reconnect
        self.notices: list[str] = []
        self.embeddings = EmbeddingCache(self._read, self._write_transaction, shared)
        with _errors(path):
            path.parent.mkdir(parents=True, exist_ok=True)
        noted = None if recover else noted_damage(path)  # another process met damage
        try:
            if recover or noted:
                raise StoreCorrupt(recover if isinstance(recover, str) else
                                   noted or f"index database {path} was found damaged")
            self._open(check)
        except StoreCorrupt as exc:
            self._close_all()
            with self._locked():
                if noted and noted_damage(path) is None:
                    # Another process moved that file aside meanwhile: this one is new.
                    self._open(check)
                    return
                self._move_aside(str(exc), "foreign" if isinstance(exc, StoreForeign)
                                 else "damaged")
                self._open(check=False)
                self._salvage()
                clear_damage_note(path)

    # ------------------------------------------------------------------ opening
    def _connect(self) -> sqlite3.Connection:
        db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None,
                             timeout=BUSY_TIMEOUT_MS / 1000)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        return db

    def _open(self, check: bool) -> None:
        path = self.path
        with _errors(path, values=True):
            if (path.is_file() and path.stat().st_size == 0
                    and not _nonempty(Path(f"{path}-wal"))):
                raise StoreCorrupt(f"index database {path} is empty (0 bytes)")
            self._db = self._connect()
            db = self._db
            prepare(db, path, check, self._locked, self.workspace)
            self._file_id = file_id(path)

    def replaced(self) -> bool:
        """Whether the database file is no longer the one this store opened (another
        process moved a damaged one aside and started a new one): `reopen()` then."""
        return file_id(self.path) != self._file_id

    def reopen(self) -> None:
        """Open the file now at `path` (holding the write lock). Other threads' read
        connections reconnect on their next use. A file there that is damaged or
        another workspace's (copied in while this process ran) is moved aside and a new
        one started, as at open."""
        with self._lock:
            self._close_writer()
            self._epoch += 1
            try:
                self._open(check=False)
            except StoreCorrupt as exc:
                self.replace_damaged(exc)

    def foreign(self) -> StoreForeign | None:
        """The error to raise when the database now records another workspace than this
        store's (a file copied over it in place while this process ran), else None."""
        if self.workspace is None:
            return None
        root = self.get_meta("root")
        if root is None or root == self.workspace:
            return None
        return StoreForeign(f"index database {self.path} belongs to another workspace "
                            f"({root[:200]})")

    def replace_damaged(self, exc: StoreCorrupt) -> None:
        """Move the database aside because of `exc` and start a new one (holding the
        write lock), keeping the cached embeddings; other threads' readers reconnect."""
        with self._lock, self._locked():
            self._close_writer()
            self._epoch += 1
            self._move_aside(str(exc), "foreign" if isinstance(exc, StoreForeign)
                             else "damaged")
            self._open(check=False)
            self._salvage()
            clear_damage_note(self.path)

    def _close_writer(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
            self._db = None

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        if self.lock is None:
            yield
        else:
            with self.lock.hold():
                yield

    def _move_aside(self, why: str, label: str) -> None:
        self._damaged = move_aside(self.path, label)
        self._why = why

    def _salvage(self) -> None:
        """Copy every embedding still readable from the damaged copy (the expensive part
        of an index; chunks are cheap to recompute and are not trusted), then say what
        happened in one line."""
        damaged = getattr(self, "_damaged", None)
        kept = self.embeddings.copy_from(damaged) if damaged is not None else 0
        line = (f"{self._why}: moved it to {damaged.name if damaged else '?'} and started "
                f"a new one, to be rebuilt (kept {kept} cached embeddings)")
        # Every later process sees it too (`rebuild_owed`), until a sync completes.
        self.set_meta(REBUILD_OWED, line)
        self.notices.append(line)
        log.warning("%s", line)

    # ------------------------------------------------------------------ connections
    @property
    def _wdb(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError(f"index database {self.path} is closed")
        return self._db

    def _reader(self) -> sqlite3.Connection:
        """This thread's read connection (the writer's own when it holds the lock, so a
        writer reads its own transaction)."""
        if self._closed:
            raise StoreError(f"index database {self.path} is closed")
        if self.lock is not None and self.lock.held:
            return self._wdb
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is not None and getattr(self._local, "epoch", -1) != self._epoch:
            with contextlib.suppress(sqlite3.Error):  # opened on a file since replaced
                db.close()
            db = None
        if db is None:
            db = self._connect()
            self._local.db = db
            self._local.epoch = self._epoch
            with self._lock:
                self._readers.append(db)
        return db

    def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        # `values`: a stored value `fn` cannot decode or convert is damage (StoreCorrupt).
        with self._noting_damage(), _errors(self.path, values=True):
            db = self._reader()
            if db is self._db:
                with self._lock:
                    return fn(db)
            return fn(db)

    @contextlib.contextmanager
    def _write(self) -> Iterator[None]:
        if self.lock is not None and not self.lock.held:
            raise RuntimeError("index store written without holding the write lock")
        with self._noting_damage(), self._lock, _errors(self.path):
            yield

    @contextlib.contextmanager
    def _write_transaction(self) -> Iterator[sqlite3.Connection]:
        """The writer connection inside one transaction (under the write lock)."""
        with self._write(), self._transaction():
            yield self._wdb

    @contextlib.contextmanager
    def _noting_damage(self) -> Iterator[None]:
        """Damage met after opening is noted beside the file, so that every later
        process rebuilds (this one may be a server that cannot repair it mid-request),
        unless the file was replaced meanwhile (the damage was the old file's)."""
        try:
            yield
        except StoreCorrupt as exc:
            if not self.replaced():
                note_damage(self.path, str(exc))
            raise

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        """The value stored under `key` in the meta table (store id, generations, versions), or
        None."""
        return self._read(lambda db: _meta_value(db, key))

    def set_meta(self, key: str, value: str) -> None:
        """Store `value` under `key` in the meta table (needs the write lock; no transaction of its
        own)."""
        with self._write():
            self._wdb.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    def clear_meta(self, key: str) -> None:
        """Remove `key` from the meta table (needs the write lock)."""
        with self._write():
            self._wdb.execute("DELETE FROM meta WHERE key=?", (key,))

    def stamp(self) -> tuple[str, int, int]:
        """(store id, chunk generation, embedding generation), in one read."""
        def read(db: sqlite3.Connection) -> tuple[str, int, int]:
            """The three values, parsed inside the read (bad ones are damage)."""
            rows = dict(db.execute("SELECT key, value FROM meta WHERE key IN "
                                   "('store_id', 'generation', 'embed_generation')"
                                   ).fetchall())
            return (stored_text(rows.get("store_id", "")),
                    parse_int(rows.get("generation", 0)),
                    parse_int(rows.get("embed_generation", 0)))
        return self._read(read)

    @property
    def generation(self) -> int:
        """Bumped by every change to chunks; derived indexes record the value they saw."""
        return self.stamp()[1]

    @property
    def store_id(self) -> str:
        """A random id fixed when the database file was created: chunk ids (and so the
        keys of the derived indexes) mean something only within one database."""
        return self.get_meta("store_id") or ""

    # ------------------------------------------------------------------ files and chunks
    def files(self) -> dict[str, FileRecord]:
        """Every indexed file's record (size, mtime, digest, language, warning), by
        workspace-relative path."""
        return self._read(lambda db: {
            r[0]: row_to_file(r) for r in db.execute(
                "SELECT path, size, mtime_ns, digest, language, warning FROM files")})

    def file(self, path: str) -> FileRecord | None:
        """The record of one indexed file, or None when it is not in the index."""
        def read(db: sqlite3.Connection) -> FileRecord | None:
            """The record, converted inside the read (bad values are damage)."""
            row = db.execute("SELECT path, size, mtime_ns, digest, language, warning "
                             "FROM files WHERE path=?", (path,)).fetchone()
            return row_to_file(row) if row else None
        return self._read(read)

    def replace_file(
        self,
        record: FileRecord,
        chunks: Sequence[Chunk],
        hashes: Sequence[str] | None = None,
    ) -> tuple[list[int], list[int]]:
        """Replace everything stored for `record.path` in one transaction. A chunk stored
        exactly as before (every column) keeps its row and id, so an edit rewrites only
        the chunks it changed. Returns (removed chunk ids, chunk ids in the order of
        `chunks`: kept ones and new ones). `hashes` are the chunks' `content_hash()`s,
        when the caller has them already."""
        with self._write(), self._transaction():
            db = self._wdb
            stored: dict[tuple[object, ...], list[int]] = {}
            for row in db.execute(f"SELECT id, {CHUNK_COLUMNS}, hash FROM chunks "
                                  "WHERE path=?", (record.path,)):
                stored.setdefault(tuple(row[1:]), []).append(row[0])
            db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                (record.path, record.size, record.mtime_ns, record.digest, record.language,
                 record.warning),
            )
            rows = [(chunk.path, chunk.language, int(chunk.kind), chunk.name, chunk.container,
                     chunk.start_line, chunk.end_line, chunk.name_line, chunk.name_start_col,
                     chunk.name_end_col, chunk.part, chunk.text, chunk.content,
                     content_hash)
                    for chunk, content_hash in zip(
                        chunks, hashes or [c.content_hash() for c in chunks], strict=True)]
            kept = [stored[row].pop() if stored.get(row) else None for row in rows]
            removed = [i for ids in stored.values() for i in ids]
            db.executemany("DELETE FROM chunks WHERE id=?", [(i,) for i in removed])
            new_ids = []
            for row, chunk_id in zip(rows, kept, strict=True):
                if chunk_id is None:
                    cur = db.execute(
                        f"INSERT INTO chunks ({CHUNK_COLUMNS}, hash) "
                        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", row)
                    assert cur.lastrowid is not None
                    chunk_id = cur.lastrowid
                new_ids.append(chunk_id)
            self._bump_generation()
        return removed, new_ids

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        """Content unchanged, stat changed (a `touch`, a checkout of the same blob)."""
        with self._write():
            self._wdb.execute(
                "UPDATE files SET size=?, mtime_ns=? WHERE path=?", (size, mtime_ns, path)
            )

    def remove_path(self, path: str, tree: bool = True,
                    keep: Callable[[str], bool] | None = None) -> tuple[list[str], list[int]]:
        """Remove a file and, with `tree`, every file under it as a directory (a deleted
        folder arrives from file watchers as one event), except the files `keep`
        accepts. Returns (removed file paths, removed chunk ids)."""
        with self._write(), self._transaction():
            db = self._wdb
            files = [r[0] for r in db.execute("SELECT path FROM files WHERE path=?", (path,))]
            if tree:
                prefix = path.rstrip("/") + "/"
                files += [r[0] for r in db.execute(
                    "SELECT path FROM files WHERE substr(path, 1, ?) = ?",
                    (len(prefix), prefix)) if keep is None or not keep(r[0])]
            removed: list[int] = []
            for p in files:
                removed += self._chunk_ids(p)
                db.execute("DELETE FROM chunks WHERE path=?", (p,))
                db.execute("DELETE FROM files WHERE path=?", (p,))
            if removed or files:
                self._bump_generation()
        return files, removed

    def clear_chunks(self) -> None:
        """Forget all files and chunks (a chunker upgrade, a full reindex); the embedding
        cache stays, so re-chunking identical code embeds nothing."""
        with self._write(), self._transaction():
            self._wdb.execute("DELETE FROM chunks")
            self._wdb.execute("DELETE FROM files")
            self._bump_generation()

    def chunk_refs(self) -> dict[int, ChunkRef]:
        """The light reference (`ChunkRef`: path, language, kind, content hash, content kind,
        start line, name) of every chunk, by chunk id; what the engine keeps in memory
        instead of the text."""
        rows = self._read(lambda db: db.execute(
            f"SELECT id, {REF_COLUMNS} FROM chunks").fetchall())
        return {r[0]: row_to_ref(r[1:]) for r in rows}

    @contextlib.contextmanager
    def _one_state(self, db: sqlite3.Connection) -> Iterator[None]:
        """Reads inside see one committed state: a read transaction of their own, or the
        writer's transaction when `db` is the writer's connection inside one."""
        own = db is self._db and db.in_transaction
        if not own:
            db.execute("BEGIN")
        try:
            yield
        finally:
            if not own:
                db.execute("COMMIT")

    def snapshot(self, visit: ChunkVisitor | None = None) -> Snapshot:
        """Generation and refs (as `ChunkColumns`) of one committed state (one read
        transaction); with `visit`, every chunk is also read whole and handed to it, row
        by row, inside that transaction (a lexical build from the database re-derives
        the tokens from them; no chunk's text outlives its row)."""
        columns = _row_columns(visit)

        def read(db: sqlite3.Connection) -> Snapshot:
            """The snapshot, read inside one transaction on `db`."""
            with self._one_state(db):
                meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN "
                                       "('store_id', 'generation')").fetchall())
                refs = ColumnsBuilder()
                # Row by row, not fetchall(): the rows never all exist as tuples at once,
                # and into columns: no `ChunkRef` per chunk outlives its row.
                _take_rows(db.execute(f"SELECT {columns} FROM chunks"), refs, visit)
            return Snapshot(stored_text(meta.get("store_id", "")),
                            parse_int(meta.get("generation", 0)), refs.build())
        return self._read(read)

    def advance(self, snap: Snapshot) -> Snapshot:
        """`snap` (the saved chunk table) brought to the committed
        state now: itself when nothing moved since (no chunk row is read), else exactly,
        by id (`delta`: the id column and the new chunks' rows); a snapshot of every row
        when it is of another database."""
        store_id, generation, _ = self.stamp()
        if store_id == snap.store_id and generation == snap.generation:
            return snap
        store_id, generation, ids, added = self.delta(chunk_ids(snap.refs))
        if store_id != snap.store_id:
            return self.snapshot()
        return Snapshot(store_id, generation, advanced(snap.refs, ids, added.refs))

    def delta(self, known: np.ndarray, visit: ChunkVisitor | None = None
              ) -> tuple[str, int, np.ndarray, Snapshot]:
        """What changed relative to a process that holds the chunks `known` (sorted),
        from one committed state (one read transaction): (store id, generation, every
        chunk id sorted, a snapshot of only the chunks not in `known`; with `visit`,
        each of those is also read whole and handed to it inside that transaction).
        Chunk ids are never reused and a chunk's content never changes under its id, so
        ids gone from the result were removed and new ones added: that is the whole
        difference."""
        known = np.asarray(known, np.int64)
        columns = _row_columns(visit)

        def read(db: sqlite3.Connection) -> tuple[str, int, np.ndarray, Snapshot]:
            """The delta, read inside one transaction on `db`."""
            with self._one_state(db):
                meta = dict(db.execute("SELECT key, value FROM meta WHERE key IN "
                                       "('store_id', 'generation')").fetchall())
                # (In whatever order an index hands them out: sorted here.)
                ids = np.sort(np.fromiter((r[0] for r in db.execute("SELECT id FROM chunks")),
                                          np.int64))
                at = np.minimum(np.searchsorted(known, ids), max(len(known) - 1, 0))
                new = (ids[known[at] != ids] if len(known) else ids).tolist()
                refs = ColumnsBuilder()
                for start in range(0, len(new), 500):
                    part = new[start:start + 500]
                    marks = ",".join("?" * len(part))
                    _take_rows(db.execute(f"SELECT {columns} FROM chunks "
                                          f"WHERE id IN ({marks})", part), refs, visit)
            store_id = stored_text(meta.get("store_id", ""))
            generation = parse_int(meta.get("generation", 0))
            return store_id, generation, ids, Snapshot(store_id, generation, refs.build())
        return self._read(read)

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        """The full chunks (text included) for `ids`, by id; ids no longer stored are left out. Read
        in batches of 500 (SQLite's variable limit)."""
        ids = list(ids)

        def read(db: sqlite3.Connection) -> dict[int, Chunk]:
            """The chunks of `ids`, 500 at a time."""
            out: dict[int, Chunk] = {}
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT id, {CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})", part
                ).fetchall()
                for row in rows:
                    out[row[0]] = row_to_chunk(row[1:])
            return out
        return self._read(read)

    def chunks_of_file(self, path: str) -> dict[int, Chunk]:
        """The chunks of the file at `path`, by id, in line order."""
        rows = self._read(lambda db: db.execute(
            f"SELECT id, {CHUNK_COLUMNS} FROM chunks WHERE path=? ORDER BY start_line",
            (path,)).fetchall())
        return {row[0]: row_to_chunk(row[1:]) for row in rows}

    def chunks_named(self, name: str, limit: int = 200) -> dict[int, Chunk]:
        """Chunks whose symbol name is `name`, ignoring case (exact-name lookups); when
        none is, the chunks that answer to `name` as another name (`chunking.names`: a
        typedef'd C struct looked up by its tag)."""
        rows = self._read(lambda db: db.execute(
            f"SELECT id, {CHUNK_COLUMNS} FROM chunks WHERE name = ? COLLATE NOCASE "
            "ORDER BY path, start_line LIMIT ?", (name, limit)).fetchall())
        if rows:
            return {row[0]: row_to_chunk(row[1:]) for row in rows}
        return self._chunks_also_named(name, limit)

    def _chunks_also_named(self, name: str, limit: int) -> dict[int, Chunk]:
        # Only the rows that can have other names and spell `name` in their text are read
        # (a scan, but only when the exact lookup found nothing).
        languages, kinds = sorted(OTHER_NAMED_LANGUAGES), sorted(int(k) for k in OTHER_NAMED_KINDS)
        marks = ", ".join("?" * len(languages)), ", ".join("?" * len(kinds))
        rows = self._read(lambda db: db.execute(
            f"SELECT id, {CHUNK_COLUMNS} FROM chunks WHERE language IN ({marks[0]}) "
            f"AND kind IN ({marks[1]}) AND instr(lower(text), lower(?)) > 0 "
            "ORDER BY path, start_line", (*languages, *kinds, name)).fetchall())
        wanted, found = name.lower(), {}
        for row in rows:
            chunk = row_to_chunk(row[1:])
            if wanted in (other.lower() for other in other_names(chunk)):
                found[row[0]] = chunk
                if len(found) == limit:
                    break
        return found

    def embedding_texts(self, ids: Sequence[int]) -> dict[int, str]:
        """What the embedder sees for each chunk of `ids` (`Chunk.embedding_text`), by id."""
        return {i: c.embedding_text() for i, c in self.chunks(ids).items()}

    def count(self, what: str) -> int:
        """How many rows `what` ("files", "chunks" or "embeddings") holds; any other name is a
        ValueError (the name goes into the SQL)."""
        if what not in ("files", "chunks", "embeddings"):
            raise ValueError(what)
        return int(self._read(lambda db: db.execute(f"SELECT COUNT(*) FROM {what}")
                              .fetchone()[0]))

    def close(self) -> None:
        """Close the writer and every thread's reader connection; later reads and writes raise
        `StoreError`."""
        self._closed = True
        with self._lock:
            self._close_all()
        self.embeddings.close()

    def _close_all(self) -> None:
        for db in [*self._readers, self._db]:
            if db is not None:
                with contextlib.suppress(sqlite3.Error):
                    db.close()
        self._readers.clear()
        self._db = None
        self._local = threading.local()

    # ------------------------------------------------------------------ internals
    def _chunk_ids(self, path: str) -> list[int]:
        return [r[0] for r in self._wdb.execute("SELECT id FROM chunks WHERE path=?", (path,))]

    def _bump_generation(self) -> None:
        bump_counter(self._wdb, "generation")

    def _transaction(self) -> _Transaction:
        return _Transaction(self._wdb, self.path, nested=self._batching)

    @contextlib.contextmanager
    def batch(self) -> Iterator[Callable[[], None]]:
        """Every write inside in one transaction, committed when the block ends and
        whenever it calls the `commit` it is given (which begins the next one). A bulk
        load writes each B-tree page once per commit, not once per file: a cold index
        spends about a third less time in SQLite. Each write inside is a savepoint: one
        that fails undoes only itself. An exception rolls back what was not committed."""
        with self._write():
            db = self._wdb
            db.execute("BEGIN IMMEDIATE")
            self._batching = True

            def commit() -> None:
                db.execute("COMMIT")
                db.execute("BEGIN IMMEDIATE")

            try:
                yield commit
                db.execute("COMMIT")
            finally:
                self._batching = False
                if db.in_transaction:
                    with contextlib.suppress(sqlite3.Error):
                        db.execute("ROLLBACK")



def _meta_value(db: sqlite3.Connection, key: str) -> str | None:
    """The meta table's text under `key` (None when absent; a non-text value is damage)."""
    row = db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
    return stored_text(row[0]) if row else None


def _nonempty(path: Path) -> bool:
    try:
        return path.stat().st_size > 0
    except OSError:
        return False


