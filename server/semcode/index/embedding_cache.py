"""The embedding cache of the `Store` (a mixin): vectors keyed by (model identity,
content hash), the one part of an index that is expensive to recompute. Kept apart from
the chunk tables because its rules differ: it survives re-chunking, a model change and
even a damaged database (what can still be read is copied into the new one).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import numpy as np

from semcode.index.salvage import embedding_batches
from semcode.index.store_errors import _Transaction

T = TypeVar("T")


class EmbeddingCache:
    """`Store` methods that read and write cached vectors (see the module docstring)."""

    if TYPE_CHECKING:
        @property
        def _wdb(self) -> sqlite3.Connection: ...
        def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T: ...
        def _write(self) -> AbstractContextManager[None]: ...
        def _transaction(self) -> _Transaction: ...
        def _bump(self, key: str) -> None: ...

    def cached_vectors(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        """The cached vectors of `model` (a model identity) for those content `hashes` that have
        one, by hash; a blob that is not a whole number of float32s is skipped (read as missing, so
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
        with self._write(), self._transaction():
            self._wdb.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
            self._bump("embed_generation")

    def _copy_embeddings(self, damaged: Path) -> int:
        return sum(self._put_raw(batch) for batch in embedding_batches(damaged))

    def _put_raw(self, rows: list[tuple[str, str, bytes]]) -> int:
        if not rows:
            return 0
        with self._write(), self._transaction():
            self._wdb.executemany("INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)", rows)
        return len(rows)
