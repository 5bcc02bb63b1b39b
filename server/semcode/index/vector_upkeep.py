"""The vector side of the `Indexer`: attaching an embedder's identity to the index (load
the saved usearch file when its manifest says it is that model's and this database's,
else rebuild from the embedding cache), reconciling it with the chunks, and taking
freshly computed vectors. `VectorUpkeep` owns the live `VectorIndex` (None: no model
attached), the identity of the model whose vectors it holds, and whether it changed
since its last save.

It knows nothing of models beyond an identity string and a dimension; it must not
chunk, scan files or write chunks (the `Indexer` does). Every method takes the
indexer's memory lock itself or is called under it.
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np

from semcode.index.catch_up import MemoryStamp
from semcode.index.chunk_table import ChunkTable
from semcode.index.embedding_cache import EmbeddingCache
from semcode.index.layout import MANIFEST_FORMAT, VECTORS_FILE, VECTORS_MANIFEST
from semcode.index.vectors import VectorIndex, VectorIndexError

log = logging.getLogger(__name__)

OrderKey = Callable[[int], tuple[str, int, str, int]]


class VectorUpkeep:
    """Keeps the live vector index in step with the chunks (see the module docstring)."""

    def __init__(self, directory: Path, cache: EmbeddingCache, lock: threading.RLock,
                 refs: ChunkTable, stamp: MemoryStamp,
                 order_key: OrderKey) -> None:
        """Keep the vectors saved in `directory`, filled from `cache`. `refs` is the
        indexer's chunk table (read only, under `lock`: its column questions, so that no
        pass over every chunk is a Python loop), `stamp` the database state memory
        holds (a saved index of another database is not loaded)."""
        self._dir = directory
        self._cache = cache
        self._lock = lock
        self._refs = refs
        self._stamp = stamp
        self._order_key = order_key
        self.index: VectorIndex | None = None
        self.model_id: str | None = None  # identity of the embedder `index` holds
        self.dirty = False  # changed since the last save

    def attach(self, model_id: str, dims: int) -> int:
        """Make `index` hold `model_id`'s vectors: load the saved index if its manifest
        says it is that model's (and its checksum matches), reconcile it with the
        chunks, and fill gaps from the embedding cache. A different model than last time
        re-embeds (through the cache) instead of failing on a dimension mismatch.
        Returns how many chunks still lack a vector."""
        with self._lock:
            if self.model_id == model_id and self.index is not None:
                return self.pending_count()
            vectors = self._load_saved(model_id, dims)
            fresh = vectors is None
            if vectors is None:
                vectors = VectorIndex(dims)
            vectors.order_key = self._order_key
            self.index, self.model_id = vectors, model_id
            self.dirty = fresh
            self.reconcile()
            return self.pending_count()

    def detach(self) -> None:
        """Drop the live vector index (no embedder configured): dense search is off until
        `attach`; the cached vectors stay in the store."""
        with self._lock:
            self.index, self.model_id = None, None

    def restart(self) -> None:
        """Empty the live index, keeping its model (the database was replaced: chunk ids
        of another database mean nothing here); `reconcile` fills it again."""
        if self.index is not None:
            self.index = VectorIndex(self.index.dims)
            self.index.order_key = self._order_key

    def _load_saved(self, model_id: str, dims: int) -> VectorIndex | None:
        path = self._dir / VECTORS_FILE
        manifest_path = self._dir / VECTORS_MANIFEST
        if not path.exists() and not manifest_path.exists():
            return None
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
                raise VectorIndexError("its manifest is missing or of another format")
            if manifest.get("model") != model_id or manifest.get("dims") != dims:
                log.info("vector index is of another model: rebuilding from the cache")
                return None
            if manifest.get("store_id") != self._stamp.store_id:  # the database was rebuilt
                log.info("vector index belongs to another index database: rebuilding it")
                return None
            return VectorIndex.load(path, dims, int(manifest["size"]), str(manifest["digest"]))
        except (OSError, ValueError, KeyError, TypeError, VectorIndexError) as exc:
            why = exc if isinstance(exc, VectorIndexError) else f"manifest unreadable: {exc}"
            log.warning("rebuilding the vector index (%s)", why)
            return None

    def reconcile(self) -> None:
        """Drop vectors of chunks that are gone, add cached ones that are missing. Chunk
        ids are never reused within one database, so a vector index of any generation
        of it is reconciled exactly."""
        if self.index is None:
            return
        stale, missing = self._refs.missing_from(self.index.id_array())
        if len(stale):
            self.index.remove(stale.tolist())
            self.dirty = True
        self.add_cached(missing)

    def add_cached(self, chunk_ids: Iterable[int]) -> None:
        """Add the cached vectors of these chunks (those this index's own table has: the
        shared cache's reach it through the embedder path, which stores them here first)."""
        if self.index is None or self.model_id is None:
            return
        hashes = self._refs.hashes(chunk_ids)
        if not hashes:
            return
        cached = self._cache.own_vectors(self.model_id, hashes.values())
        ids = [i for i, h in hashes.items()
               if h in cached and len(cached[h]) == self.index.dims]
        if ids:
            matrix = np.stack([cached[hashes[i]] for i in ids])
            self.index.add(np.asarray(ids, dtype=np.uint64), matrix)
            self.dirty = True

    def add_missing_cached(self) -> None:
        """Add cached vectors for every chunk that lacks one (another process cached
        some)."""
        if self.index is not None:
            self.add_cached(self._refs.missing_from(self.index.id_array())[1])

    def forget(self, chunk_ids: Sequence[int]) -> None:
        """Drop the vectors of removed chunks."""
        if self.index is not None and chunk_ids:
            self.index.remove(chunk_ids)
            self.dirty = True

    def take(self, model_id: str, chunk_ids: Sequence[int], hashes: Sequence[str],
             vectors: np.ndarray) -> None:
        """Add freshly computed vectors (holding the memory lock) for the chunks that
        still exist with the same content, when `model_id` is the attached model."""
        if self.index is None or self.model_id != model_id:
            return
        held = self._refs.hashes(chunk_ids)
        keep = [n for n, (i, h) in enumerate(zip(chunk_ids, hashes, strict=True))
                if held.get(i) == h]
        if keep:
            self.index.add(np.asarray([chunk_ids[n] for n in keep], dtype=np.uint64),
                           np.asarray(vectors)[keep])
            self.dirty = True

    def pending(self, priority: Sequence[str] = ()) -> list[int]:
        """Chunks of the attached model still without a vector, priority paths first."""
        with self._lock:  # `refs` changes under the writer: read it only under the lock
            if self.index is None:
                return []
            missing = self._refs.missing_from(self.index.id_array())[1]
        return self._refs.pending_order(missing, priority)

    def pending_count(self) -> int:
        """How many chunks lack a vector of the attached model (all of them when none is
        attached)."""
        with self._lock:
            if self.index is None:
                return len(self._refs)
            return len(self._refs) - len(self.index)
