"""The embedding cache: vectors keyed by (model identity, content hash), the one part of
an index that is expensive to recompute. Kept apart from the chunk tables because its
rules differ: it survives re-chunking, a model change and even a damaged database (what
can still be read is copied into the new one).

The `Store` holds one `EmbeddingCache` and hands it the two ways in to its database it
may use: `read` (the calling thread's reader connection, errors translated) and `write`
(the writer connection inside one transaction, under the write lock). The cache owns
the `embeddings` table, the `embed_generation` counter and the `shared_cache:` meta
keys; it never opens a connection to the workspace's database.

Below it, when the user has not turned it off, sits the cache every checkout shares
(`shared_cache.SharedEmbeddings`, handed in by the indexer and owned from then on): a
lookup that misses this index's own table asks it, every put writes both, and the
vectors of an index from before the shared cache existed are copied up once per model
(`share_own`). The workspace's table stays complete for what its index holds (the
embedder path puts what it found in the shared cache here too), so eviction from the
shared cache, or its loss, never changes what this index has.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Protocol, TypeVar

import numpy as np

from semcode.index.salvage import embedding_batches
from semcode.index.schema import bump_counter
from semcode.index.shared_cache import SharedEmbeddings

T = TypeVar("T")
EMBED_GENERATION = "embed_generation"  # meta counter: bumped by every put
SHARED_KEY_PREFIX = "shared_cache:"  # meta: this model's vectors were copied up (share_own)
SHARE_BATCH = 2000


class Reader(Protocol):
    """Runs `fn` on the calling thread's read connection (`Store._read`)."""

    def __call__(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        """The value of `fn` on a read connection."""
        ...


Writer = Callable[[], AbstractContextManager[sqlite3.Connection]]


class EmbeddingCache:
    """Reads and writes cached vectors (see the module docstring)."""

    def __init__(self, read: Reader, write: Writer,
                 shared: SharedEmbeddings | None = None) -> None:
        """`read` runs a function on a read connection; `write` opens one write
        transaction on the writer connection (both the `Store`'s); `shared` is the cache
        every checkout shares (None: turned off)."""
        self._read = read
        self._write = write
        self._shared = shared
        # Models `share_own` copied up in this process: not again, even when the meta key
        # could not be written (another process held the write lock).
        self._shared_here: set[str] = set()

    def cached_vectors(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """The vectors known for `model` (a model identity) and those content `hashes`, by
        hash: this index's own, then the shared cache's for the rest. What the embedder
        path asks before embedding; it puts every vector it uses, so the shared ones
        land in this index's table too."""
        hashes = list(set(hashes))
        own = self.own_vectors(model, hashes)
        if self._shared is not None and len(own) < len(hashes):
            own.update(self._shared.vectors(model, [h for h in hashes if h not in own]))
        return own

    def own_vectors(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """The vectors of `model` this index's own table holds for those content `hashes`, by
        hash; a blob that is not a whole number of float32s is skipped (read as missing, so
        it is re-embedded)."""
        hashes = list(set(hashes))

        def read(db: sqlite3.Connection) -> dict[str, np.ndarray]:
            """The cached vectors, 500 hashes at a time."""
            out: dict[str, np.ndarray] = {}
            for start in range(0, len(hashes), 500):
                part = hashes[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = db.execute(
                    f"SELECT hash, vector FROM embeddings WHERE model=? AND hash IN ({marks})",
                    [model, *part],
                ).fetchall()
                for h, blob in rows:
                    if isinstance(blob, bytes) and len(blob) % 4 == 0 and blob:
                        out[h] = np.frombuffer(blob, dtype=np.float32)
            return out
        return self._read(read)

    def missing_embeddings(self, model: str) -> list[tuple[int, str]]:
        """(chunk id, hash) of chunks with no cached vector for `model`."""
        return self._read(lambda db: db.execute(
            "SELECT c.id, c.hash FROM chunks c LEFT JOIN embeddings e "
            "ON e.model=? AND e.hash=c.hash WHERE e.hash IS NULL ORDER BY c.id",
            (model,)).fetchall())

    def embedded_count(self, model: str) -> int:
        """How many chunks have a cached vector of `model` (a model identity)."""
        return int(self._read(lambda db: db.execute(
            "SELECT COUNT(*) FROM chunks c JOIN embeddings e ON e.model=? AND e.hash=c.hash",
            (model,)).fetchone()[0]))

    def put_vectors(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        """Cache (content hash, vector) pairs for `model` in one transaction, replacing older ones,
        and bump the embedding generation so other processes notice."""
        rows = [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items]
        if not rows:
            return
        with self._write() as db:
            db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
            bump_counter(db, EMBED_GENERATION)
        if self._shared is not None:  # after the commit: this index never waits on it
            self._shared.put(model, [(h, blob) for _, h, blob in rows])

    def share_owed(self, model: str) -> bool:
        """Whether this index's vectors of `model` were never copied into the shared cache
        (an index from before it existed, or one rebuilt since)."""
        return self._shared is not None and model not in self._shared_here and \
            self._read(lambda db: db.execute(
                "SELECT 1 FROM meta WHERE key=?", (f"{SHARED_KEY_PREFIX}{model}",)
            ).fetchone()) is None

    def share_own(self, model: str) -> int:
        """Copy this index's vectors of `model` into the shared cache, `SHARE_BATCH` at a
        time (no lock needed: reads here, and the shared cache's own transactions there);
        returns how many were written. `mark_shared` records it done."""
        if self._shared is None:
            return 0
        written, after = 0, ""

        def page(db: sqlite3.Connection) -> list[tuple[str, bytes]]:
            """The next rows after `after`, in hash order."""
            return db.execute("SELECT hash, vector FROM embeddings WHERE model=? AND hash>? "
                              "ORDER BY hash LIMIT ?", (model, after, SHARE_BATCH)).fetchall()
        while rows := self._read(page):
            after = rows[-1][0]
            written += self._shared.put(model, [
                (h, v) for h, v in rows if isinstance(h, str) and isinstance(v, bytes)])
        self._shared_here.add(model)
        return written

    def mark_shared(self, model: str) -> None:
        """Record that `share_own(model)` was done (needs the write lock)."""
        with self._write() as db:
            db.execute("INSERT OR REPLACE INTO meta VALUES (?, '1')",
                       (f"{SHARED_KEY_PREFIX}{model}",))

    def close(self) -> None:
        """Close the shared cache's connection (the store closes its own)."""
        if self._shared is not None:
            self._shared.close()

    def copy_from(self, damaged: Path) -> int:
        """Copy every embedding still readable from the `damaged` database file; returns
        how many were kept."""
        return sum(self._put_raw(batch) for batch in embedding_batches(damaged))

    def _put_raw(self, rows: list[tuple[str, str, bytes]]) -> int:
        if not rows:
            return 0
        with self._write() as db:
            db.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
        return len(rows)
