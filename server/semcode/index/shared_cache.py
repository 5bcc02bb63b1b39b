"""The embedding cache every checkout shares: vectors keyed by (model identity, content
hash) in one SQLite file beside the per-workspace index directories
(`<index base>/embeddings/vectors.sqlite`), so a second worktree or clone of a project
embeds nothing that a first one already embedded.

It sits *under* each workspace's own `embeddings` table, never instead of it: a workspace
copies what it takes from here into its own database (`EmbeddingCache`), so evicting a
row here, or losing the whole file, costs a later checkout model time and nothing else.

Rules, with any number of semcode processes on the machine using the file at once:
- WAL; every write is one short `BEGIN IMMEDIATE` transaction with a busy timeout. No lock
  is held between transactions (there is no derived state to keep in step, unlike a
  workspace's index), so two workspaces indexing at once interleave batch by batch.
- Every row carries a CRC-32 of (model identity, content hash, vector): a row that does
  not match is read as missing and replaced by the next put, so damage never becomes a
  wrong vector (SQLite itself has no page checksums).
- A file SQLite calls damaged (or one that is not this cache) is moved aside as
  `vectors.sqlite.damaged-<time>` (never deleted) and a new one started with every row
  that still verifies, under `repair.lock` so that processes meeting the same damage
  move it once; the others see the replaced file (its inode) and reconnect.
- Size: when its live pages pass `cap_bytes`, the least recently used rows (by the last
  time a workspace put or took them) are deleted down to `LOW_WATER` of it; freed pages
  are reused, so the file stays near the cap.
- Nothing here is fatal: an error is one warning line and the operation reads as a miss
  or is skipped (the workspace's own table holds its vectors).

It must not touch a workspace's database or index directory.
"""

from __future__ import annotations

import contextlib
import logging
import sqlite3
import threading
import time
import zlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import numpy as np
from filelock import FileLock, Timeout

from semcode.index.salvage import decoded_text, file_id, move_aside
from semcode.index.schema import use_wal
from semcode.index.store_errors import StoreCorrupt, StoreError, _describe, _Transaction

log = logging.getLogger(__name__)

T = TypeVar("T")

SHARED_DIR = "embeddings"  # under the index base; never a workspace's `<name>-<hash>`
DB_FILE = "vectors.sqlite"
REPAIR_LOCK = "repair.lock"
SCHEMA_VERSION = "1"
BUSY_TIMEOUT_MS = 10_000
REPAIR_WAIT_S = 60.0
LOW_WATER = 0.9  # eviction frees down to this share of the cap: not once per put
BATCH = 500  # SQLite's variable limit is 999 (older builds)
MIB = 1 << 20

_SCHEMA = """
BEGIN IMMEDIATE;
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS models (
    id INTEGER PRIMARY KEY,
    identity TEXT NOT NULL UNIQUE,   -- the embedder's identity (models/): its content
    dims INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY,
    model INTEGER NOT NULL,          -- models.id
    hash TEXT NOT NULL,              -- Chunk.content_hash()
    used INTEGER NOT NULL,           -- unix seconds of the last put: the eviction order
    crc INTEGER NOT NULL,            -- CRC-32 of identity, hash and vector
    vector BLOB NOT NULL             -- float32, dims of its model
);
CREATE UNIQUE INDEX IF NOT EXISTS vectors_by_key ON vectors(model, hash);
CREATE INDEX IF NOT EXISTS vectors_by_use ON vectors(used);
INSERT OR IGNORE INTO meta VALUES ('schema_version', '1');
COMMIT;
"""


@dataclass(frozen=True)
class SharedCacheUsage:
    """How much the shared cache holds (`SharedEmbeddings.usage`)."""

    vectors: int
    live_bytes: int  # pages in use; the file may be larger by its free pages


def row_check(model: str, content_hash: str, vector: bytes) -> int:
    """The CRC-32 a row carries: of the model identity, the content hash and the vector
    bytes, so a flipped bit in any of them (or a row filed under another key) shows."""
    return zlib.crc32(vector, zlib.crc32(f"{model}\0{content_hash}".encode("utf-8",
                                                                           "surrogatepass")))


class SharedEmbeddings:
    """The shared vector cache at `directory` (see the module docstring). One SQLite
    connection, opened on first use and guarded by a mutex; thread-safe."""

    def __init__(self, directory: Path, cap_bytes: int,
                 clock: Callable[[], float] = time.time) -> None:
        """Use the cache in `directory` (created on first use), evicting past `cap_bytes`;
        `clock` stamps rows for the eviction order (tests pass their own)."""
        self.directory = directory
        self.path = directory / DB_FILE
        self.cap_bytes = cap_bytes
        self._clock = clock
        self._mutex = threading.Lock()
        # Who reshapes the file (repairs it, or sets its journal mode) across processes;
        # one instance, so that a repair that opens the new file takes it again freely.
        self._reshaping = FileLock(directory / REPAIR_LOCK)
        self._db: sqlite3.Connection | None = None
        self._file_id: tuple[int, int] | None = None
        self._models: dict[str, tuple[int, int]] = {}  # identity -> (id, dims) in this file
        self._refused: str | None = None  # why this process does not use the file at all
        self._said: set[str] = set()  # warning lines already logged (each once)
        self.notices: list[str] = []

    # ------------------------------------------------------------------ reading
    def vectors(self, model: str, hashes: Sequence[str]) -> dict[str, np.ndarray]:
        """The cached vectors of `model` for those `hashes` that have one that verifies,
        by hash; a row that fails its check is left out (and said once)."""
        wanted = sorted(set(hashes))
        if not wanted:
            return {}

        def read(db: sqlite3.Connection) -> dict[str, np.ndarray]:
            """The verified rows, `BATCH` hashes per query."""
            known = self._model(db, model, None)
            if known is None:
                return {}
            model_id, dims = known
            out: dict[str, np.ndarray] = {}
            bad = 0
            for start in range(0, len(wanted), BATCH):
                part = wanted[start:start + BATCH]
                rows = db.execute(
                    "SELECT CAST(hash AS BLOB), crc, vector FROM vectors WHERE model=? "
                    f"AND hash IN ({','.join('?' * len(part))})", [model_id, *part])
                for raw, crc, blob in rows:
                    content = decoded_text(raw)
                    if (content is None or not isinstance(blob, bytes)
                            or len(blob) != 4 * dims or crc != row_check(model, content, blob)):
                        bad += 1
                        continue
                    out[content] = np.frombuffer(blob, dtype=np.float32)
            if bad:
                self._say(f"the shared embedding cache {self.path} had {bad} damaged "
                          "vectors: ignored (they are embedded again)")
            return out
        return self._use(read, {})

    def usage(self) -> SharedCacheUsage:
        """How many vectors the cache holds and the bytes of its pages in use."""
        return self._use(lambda db: SharedCacheUsage(
            int(db.execute("SELECT COUNT(*) FROM vectors").fetchone()[0]), _live_bytes(db)),
            SharedCacheUsage(0, 0))

    # ------------------------------------------------------------------ writing
    def put(self, model: str, items: Sequence[tuple[str, bytes]]) -> int:
        """Cache (content hash, float32 vector bytes) pairs of `model` in one transaction,
        stamping them as just used (a row already there is touched, and replaced when it
        differs: a damaged one heals), then evict past the cap. Returns how many rows
        were written (0 when the cache could not be used)."""
        if not items:
            return 0
        dims = len(items[0][1]) // 4
        now = int(self._clock())

        def write(db: sqlite3.Connection) -> int:
            """The upsert and the eviction, inside one transaction."""
            known = self._model(db, model, dims)
            if known is None or known[1] != dims:  # an identity names one shape
                return 0
            rows = [(known[0], h, now, row_check(model, h, v), v) for h, v in items
                    if len(v) == 4 * dims and dims > 0]
            db.executemany(
                "INSERT INTO vectors (model, hash, used, crc, vector) VALUES (?, ?, ?, ?, ?) "
                "ON CONFLICT(model, hash) DO UPDATE SET used=excluded.used, "
                "crc=excluded.crc, vector=excluded.vector WHERE used < excluded.used "
                "OR crc != excluded.crc OR vector IS NOT excluded.vector", rows)
            self._evict(db)
            return len(rows)
        return self._use(write, 0, write=True)

    def _evict(self, db: sqlite3.Connection) -> int:
        """Delete the least recently used rows while the live pages pass the cap, down to
        `LOW_WATER` of it (inside the caller's transaction). Returns how many went."""
        live = _live_bytes(db)
        if live <= self.cap_bytes:
            return 0
        target = int(self.cap_bytes * LOW_WATER)
        removed, step = 0, 64
        while live > target:
            gone = db.execute("DELETE FROM vectors WHERE id IN (SELECT id FROM vectors "
                              "ORDER BY used, id LIMIT ?)", (step,)).rowcount
            if gone <= 0:
                break
            removed += gone
            after = _live_bytes(db)
            per_row = (live - after) / gone
            live = after
            # Pages free only when they empty: measure what a row frees, then aim.
            step = max(64, int((live - target) / per_row) + 1) if per_row > 0 else step * 2
        log.info("shared embedding cache: evicted %d least recently used vectors", removed)
        return removed

    def _model(self, db: sqlite3.Connection, model: str,
               dims: int | None) -> tuple[int, int] | None:
        """(id, dims) of `model` in this file; with `dims` (a write), registered when new."""
        known = self._models.get(model)
        if known is None:
            if dims is not None:
                db.execute("INSERT OR IGNORE INTO models (identity, dims) VALUES (?, ?)",
                           (model, dims))
            row = db.execute("SELECT id, dims FROM models WHERE identity=?",
                             (model,)).fetchone()
            if row is None:
                return None
            if not (isinstance(row[0], int) and isinstance(row[1], int)):
                raise StoreCorrupt("a model row does not parse")
            known = self._models[model] = (row[0], row[1])
        return known

    def close(self) -> None:
        """Close the connection (a later use opens it again)."""
        with self._mutex:
            self._close()

    # ------------------------------------------------------------------ the connection
    def _use(self, fn: Callable[[sqlite3.Connection], T], default: T,
             write: bool = False) -> T:
        """`fn` on the connection (in one write transaction with `write`); damage is
        repaired and `fn` run once more; any other failure is one line and `default`."""
        with self._mutex:
            for attempt in (1, 2):
                if self._refused is not None:
                    return default
                try:
                    db = self._connection()
                    if not write:
                        return fn(db)
                    with _Transaction(db, self.path):
                        return fn(db)
                except (sqlite3.Error, OSError, StoreError) as exc:
                    error = self._error(exc)
                    if isinstance(error, StoreCorrupt) and attempt == 1:
                        self._repair(error)
                        continue
                    # Reopened next time: never left inside a failed transaction.
                    self._close()
                    if self._refused is None:
                        self._say(f"shared embedding cache skipped: {error}")
                    return default
            return default

    def _error(self, exc: BaseException) -> StoreError:
        """`exc` as one line; damage as `StoreCorrupt` saying only what SQLite said (the
        line about it names the file)."""
        if isinstance(exc, StoreError):
            return exc
        if isinstance(exc, OSError):
            return StoreError(f"cannot use {exc.filename or self.directory}: "
                              f"{exc.strerror or exc}")
        error = _describe(exc, self.path)
        if isinstance(error, StoreCorrupt):
            return StoreCorrupt(str(exc).strip().splitlines()[0][:120] or "damaged")
        return error

    def _connection(self) -> sqlite3.Connection:
        """The open connection, reopened when the file was replaced (another process moved
        a damaged one aside); `StoreCorrupt` when the file is not a usable cache."""
        if self._db is not None and file_id(self.path) == self._file_id:
            return self._db
        self._close()
        self.directory.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000,
                             isolation_level=None, check_same_thread=False)
        self._db, self._file_id = db, file_id(self.path)
        db.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        self._prepare(db)
        return db

    def _prepare(self, db: sqlite3.Connection) -> None:
        """WAL, the tables (created when new), the version; raises `StoreCorrupt` for a
        file that is not this cache, refuses one made by a newer semcode."""
        use_wal(db, self._setup_lock)
        db.execute("PRAGMA synchronous=NORMAL")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}
        if not tables:
            db.executescript(_SCHEMA)
        elif not {"meta", "models", "vectors"} <= tables:
            raise StoreCorrupt("not a semcode embedding cache")
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        version = row[0] if row is not None else None
        if version != SCHEMA_VERSION:
            if isinstance(version, str) and version.isdigit() \
                    and int(version) > int(SCHEMA_VERSION):
                self._refused = (f"the shared embedding cache {self.path} was made by a "
                                 "newer semcode: not used by this one")
                self._say(self._refused)
                raise StoreError(self._refused)
            raise StoreCorrupt("of an unknown format")
        for table in ("models", "vectors"):  # a damaged root page shows now
            db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()

    @contextlib.contextmanager
    def _setup_lock(self) -> Iterator[None]:
        """Held while this process sets the file's journal mode (the lock a repair holds)."""
        with self._reshaping.acquire(timeout=REPAIR_WAIT_S):
            yield

    def _repair(self, error: StoreCorrupt) -> None:
        """Move the damaged file aside and start a new one with every row that verifies
        (once across processes: `repair.lock`, then only when the file is still the one
        this connection found damaged)."""
        damaged_id = self._file_id
        self._close()
        try:
            with self._reshaping.acquire(timeout=REPAIR_WAIT_S):
                if file_id(self.path) != damaged_id:
                    return  # another process moved it aside meanwhile: use the new one
                aside = move_aside(self.path, "damaged")
                kept = sum(self._copy(batch) for batch in readable_rows(aside))
        except (Timeout, OSError, sqlite3.Error, StoreError) as exc:
            self._close()
            self._say(f"the shared embedding cache {self.path} is damaged and could not "
                      f"be replaced: {self._error(exc)}")
            return
        line = (f"the shared embedding cache {self.path} was damaged ({error}): moved it "
                f"to {aside.name} and started a new one (kept {kept} vectors)")
        self.notices.append(line)
        log.warning("%s", line)

    def _copy(self, rows: list[tuple[str, int, str, int, bytes]]) -> int:
        """Insert verified (identity, dims, hash, used, vector) rows into the new file."""
        if not rows:
            return 0
        db = self._connection()
        with _Transaction(db, self.path):
            for identity, dims, content, used, blob in rows:
                known = self._model(db, identity, dims)
                if known is not None and known[1] == dims:
                    db.execute("INSERT OR IGNORE INTO vectors (model, hash, used, crc, "
                               "vector) VALUES (?, ?, ?, ?, ?)",
                               (known[0], content, used, row_check(identity, content, blob),
                                blob))
        return len(rows)

    def _close(self) -> None:
        if self._db is not None:
            with contextlib.suppress(sqlite3.Error):
                self._db.close()
        self._db, self._file_id = None, None
        self._models.clear()

    def _say(self, line: str) -> None:
        """Log a warning line once per process (a busy or read-only cache would say the
        same thing for every batch)."""
        if line not in self._said:
            self._said.add(line)
            self.notices.append(line)
            log.warning("%s", line)


def readable_rows(damaged: Path) -> Iterator[list[tuple[str, int, str, int, bytes]]]:
    """The rows of a moved-aside cache file that still verify, as (identity, dims, hash,
    used, vector), `BATCH` at a time; stops quietly at the first unreadable page."""
    try:
        src = sqlite3.connect(f"file:{damaged}?mode=ro", uri=True)
    except sqlite3.Error:
        return
    src.text_factory = bytes  # decoded here: an undecodable row is skipped, not the end
    try:
        models = {}
        with contextlib.suppress(sqlite3.Error):
            for model_id, raw, dims in src.execute("SELECT id, identity, dims FROM models"):
                if (identity := decoded_text(raw)) is not None and isinstance(dims, int):
                    models[model_id] = (identity, dims)
        rows = src.execute("SELECT model, hash, used, crc, vector FROM vectors")
        batch: list[tuple[str, int, str, int, bytes]] = []
        while True:
            try:
                row = rows.fetchone()
            except sqlite3.Error:
                break
            if row is None:
                break
            model_id, raw, used, crc, blob = row
            known = models.get(model_id)
            content = decoded_text(raw)
            if (known is not None and content is not None and isinstance(blob, bytes)
                    and isinstance(used, int) and len(blob) == 4 * known[1]
                    and crc == row_check(known[0], content, blob)):
                batch.append((known[0], known[1], content, used, blob))
            if len(batch) >= BATCH:
                yield batch
                batch = []
        yield batch
    except sqlite3.Error:
        pass
    finally:
        src.close()


def _live_bytes(db: sqlite3.Connection) -> int:
    """Bytes of the pages in use (the file's pages less its free list)."""
    pages = int(db.execute("PRAGMA page_count").fetchone()[0])
    free = int(db.execute("PRAGMA freelist_count").fetchone()[0])
    return (pages - free) * int(db.execute("PRAGMA page_size").fetchone()[0])
