"""The vector side of the `Indexer` (a mixin): attaching an embedder's identity to the
index (load the saved usearch file when its manifest says it is that model's and this
database's, else rebuild from the embedding cache), reconciling it with the chunks,
and taking freshly computed vectors.

It knows nothing of models beyond an identity string and a dimension; it must not
chunk, scan files or write chunks (the `Indexer` does).
"""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Iterable, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from semcode.index.layout import MANIFEST_FORMAT, VECTORS_FILE, VECTORS_MANIFEST
from semcode.index.store import ChunkRef, Store
from semcode.index.vectors import VectorIndex, VectorIndexError

log = logging.getLogger("semcode.index.indexer")


class VectorUpkeep:
    """`Indexer` methods that keep `vectors` in step with the chunks (see the module
    docstring); every one takes `self.lock` itself or is called under it."""

    if TYPE_CHECKING:
        dir: Path
        store: Store
        lock: threading.RLock
        refs: dict[int, ChunkRef]
        vectors: VectorIndex | None
        model_id: str | None
        _store_id: str
        _embed_generation: int
        _vectors_dirty: bool
        _own_writes: bool

        def order_key(self, chunk_id: int) -> tuple[str, int, str, int]:
            """`Indexer.order_key` (declared here for the type checker)."""
        def _writing(self) -> AbstractContextManager[None]: ...

    def attach_model(self, model_id: str, dims: int) -> int:
        """Make `vectors` hold `model_id`'s vectors: load the saved index if its manifest
        says it is that model's (and its checksum matches), reconcile it with the
        chunks, and fill gaps from the embedding cache. A different model than last time
        re-embeds (through the cache) instead of failing on a dimension mismatch.
        Returns how many chunks still lack a vector."""
        with self.lock:
            if self.model_id == model_id and self.vectors is not None:
                return self.pending_count()
            vectors = self._load_vectors(model_id, dims)
            fresh = vectors is None
            if vectors is None:
                vectors = VectorIndex(dims)
            vectors.order_key = self.order_key
            self.vectors, self.model_id = vectors, model_id
            self._vectors_dirty = fresh
            self._reconcile_vectors()
            return self.pending_count()

    def _load_vectors(self, model_id: str, dims: int) -> VectorIndex | None:
        path = self.dir / VECTORS_FILE
        manifest_path = self.dir / VECTORS_MANIFEST
        if not path.exists() and not manifest_path.exists():
            return None
        try:
            manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
            if not isinstance(manifest, dict) or manifest.get("format") != MANIFEST_FORMAT:
                raise VectorIndexError("its manifest is missing or of another format")
            if manifest.get("model") != model_id or manifest.get("dims") != dims:
                log.info("vector index is of another model: rebuilding from the cache")
                return None
            if manifest.get("store_id") != self._store_id:  # the database was rebuilt
                log.info("vector index belongs to another index database: rebuilding it")
                return None
            return VectorIndex.load(path, dims, int(manifest["size"]), str(manifest["digest"]))
        except (OSError, ValueError, KeyError, TypeError, VectorIndexError) as exc:
            why = exc if isinstance(exc, VectorIndexError) else f"manifest unreadable: {exc}"
            log.warning("rebuilding the vector index (%s)", why)
            return None

    def _reconcile_vectors(self) -> None:
        """Drop vectors of chunks that are gone, add cached ones that are missing. Chunk
        ids are never reused within one database, so a vector index of any generation
        of it is reconciled exactly."""
        assert self.vectors is not None
        stale = [i for i in self.vectors.ids() if i not in self.refs]
        self.vectors.remove(stale)
        if stale:
            self._vectors_dirty = True
        self._add_cached_vectors([i for i in self.refs if i not in self.vectors])

    def detach_model(self) -> None:
        """Drop the live vector index (no embedder configured): dense search is off until
        `attach_model`; the cached vectors stay in the store."""
        with self.lock:
            self.vectors, self.model_id = None, None


    def _add_cached_vectors(self, chunk_ids: Iterable[int]) -> None:
        if self.vectors is None or self.model_id is None:
            return
        refs = {i: self.refs[i] for i in chunk_ids if i in self.refs}
        if not refs:
            return
        cached = self.store.cached_vectors(self.model_id, (r.hash for r in refs.values()))
        ids = [i for i, r in refs.items()
               if r.hash in cached and len(cached[r.hash]) == self.vectors.dims]
        if ids:
            matrix = np.stack([cached[refs[i].hash] for i in ids])
            self.vectors.add(np.asarray(ids, dtype=np.uint64), matrix)
            self._vectors_dirty = True

    def pending_embeddings(self, priority: Sequence[str] = ()) -> list[int]:
        """Chunks of the attached model still without a vector, priority paths first."""
        rank = {p: n for n, p in enumerate(priority)}
        last = len(rank)
        with self.lock:  # `refs` changes under the writer: read it only under the lock
            if self.vectors is None:
                return []
            keyed = [(rank.get(ref.path, last), i) for i, ref in self.refs.items()
                     if i not in self.vectors]
        return [i for _, i in sorted(keyed)]

    def pending_count(self) -> int:
        """How many chunks lack a vector of the attached model (all of them when none is
        attached)."""
        with self.lock:
            if self.vectors is None:
                return len(self.refs)
            return len(self.refs) - len(self.vectors)

    def add_vectors(self, model_id: str, chunk_ids: Sequence[int], hashes: Sequence[str],
                    vectors: np.ndarray) -> None:
        """Store freshly computed vectors (cache first, then the live index for the
        chunks that still exist with the same content)."""
        with self._writing():
            self.store.put_vectors(model_id, zip(hashes, vectors, strict=True))
            with self.lock:
                self._embed_generation = self.store.stamp()[2]
                self._own_writes = True
                if self.vectors is None or self.model_id != model_id:
                    return
                keep = [n for n, (i, h) in enumerate(zip(chunk_ids, hashes, strict=True))
                        if (ref := self.refs.get(i)) is not None and ref.hash == h]
                if keep:
                    self.vectors.add(np.asarray([chunk_ids[n] for n in keep], dtype=np.uint64),
                                     np.asarray(vectors)[keep])
                    self._vectors_dirty = True

