"""Dense vectors: a usearch HNSW index keyed by chunk id.

Facts this module is built on (DESIGN §3, re-checked with usearch 2.26):
- f16 storage with cosine metric; f16 recall@10 is ~0.88 at expansion_search 64 and
  ~0.99 at 256, so searches use 256 (the default of 64 is *not* persisted: `restore`
  brings back 64, hence it is set again after loading).
- A duplicate key raises: replacing = remove + add. Removal leaves a tombstone (reused
  by later adds); removed keys never come back from `search` (approximate or exact).
- There is no filter predicate in Python: with `allow`, the search over-fetches and
  post-filters, growing the fetch until `k` pass or the index is exhausted.
- Below `EXACT_BELOW` vectors a brute-force (`exact=True`) search is cheap (~ms) and
  has perfect recall, so it is used there.
- `restore(view=True)` memory-maps read-only and `add()` on it segfaults: never used.

All methods take one lock, so a writer thread and a searching thread can share it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
from usearch.index import Index

CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 256
EXACT_BELOW = 20_000


class VectorIndexError(Exception):
    """A saved vector index is missing, corrupt, or has other dimensions; rebuild it."""


class VectorIndex:
    """Cosine-similarity search over chunk embeddings (see the module docstring)."""

    def __init__(self, dims: int) -> None:
        if dims <= 0:
            raise ValueError(f"vector dimensions must be > 0, got {dims}")
        self.dims = dims
        self._lock = threading.RLock()
        self._index = self._new_index(dims)
        # Orders equal similarities (chunk id -> sortable key); None: by chunk id.
        self.order_key: Callable[[int], Any] | None = None

    @staticmethod
    def _new_index(dims: int) -> Index:
        return Index(ndim=dims, metric="cos", dtype="f16", connectivity=CONNECTIVITY,
                     expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)

    def __len__(self) -> int:
        with self._lock:
            return len(self._index)

    def __contains__(self, chunk_id: object) -> bool:
        if not isinstance(chunk_id, int | np.integer) or int(chunk_id) < 0:
            return False
        with self._lock:
            return bool(self._index.contains(int(chunk_id)))

    def ids(self) -> list[int]:
        """Every stored chunk id, ascending."""
        with self._lock:
            keys = np.asarray(self._index.keys, dtype=np.uint64)
        return sorted(int(k) for k in keys)

    def _check(self, vectors: np.ndarray) -> np.ndarray:
        arr = np.asarray(vectors, dtype=np.float32)
        if arr.ndim == 1:
            arr = arr[None, :]
        if arr.ndim != 2 or arr.shape[1] != self.dims:
            raise ValueError(f"expected vectors of {self.dims} dimensions, got shape "
                             f"{np.shape(vectors)}")
        return arr

    def add(self, ids: np.ndarray, vectors: np.ndarray) -> None:
        """Add vectors under uint64 `ids`, replacing any existing ones with those ids."""
        keys = np.asarray(ids, dtype=np.uint64).reshape(-1)
        arr = self._check(vectors)
        if len(keys) != len(arr):
            raise ValueError(f"{len(keys)} ids for {len(arr)} vectors")
        if len(keys) == 0:
            return
        if len(np.unique(keys)) != len(keys):  # keep the last vector of a repeated id
            _, last = np.unique(keys[::-1], return_index=True)
            keep = np.sort(len(keys) - 1 - last)
            keys, arr = keys[keep], arr[keep]
        with self._lock:
            present = np.asarray(self._index.contains(keys), dtype=bool).reshape(-1)
            if present.any():
                self._index.remove(keys[present])
            self._index.add(keys, arr)

    def remove(self, ids: Iterable[int]) -> None:
        """Remove vectors; ids that are not present are ignored."""
        keys = np.fromiter((int(i) for i in ids), dtype=np.uint64)
        if len(keys) == 0:
            return
        with self._lock:
            self._index.remove(keys)

    def get(self, chunk_id: int) -> np.ndarray | None:
        """The stored vector (float32; stored as f16, so ~3 significant digits)."""
        if chunk_id < 0:
            return None
        with self._lock:
            vec = self._index.get(int(chunk_id))
        return None if vec is None else np.asarray(vec, dtype=np.float32).reshape(-1)

    def search(self, vector: np.ndarray, k: int,
               allow: Callable[[int], bool] | None = None) -> list[tuple[int, float]]:
        """The `k` nearest (chunk_id, cosine similarity) pairs, most similar first;
        equal similarities (identical chunks) by `order_key`, else by id, and a tie at
        the k-th place fetches further so which of the tied chunks are kept does not
        depend on the index's history."""
        query = self._check(vector)[0]
        key_of = self.order_key or int
        with self._lock:
            total = len(self._index)
            if k <= 0 or total == 0:
                return []
            exact = total < EXACT_BELOW
            fetch = min(total, k + 1 if allow is None else max(4 * k, 64))
            while True:
                matches = self._index.search(query, fetch, exact=exact)
                out: list[tuple[int, float]] = []
                for key, dist in zip(matches.keys.tolist(), matches.distances.tolist(),
                                     strict=True):
                    if allow is None or allow(int(key)):
                        out.append((int(key), 1.0 - float(dist)))
                out.sort(key=lambda h: (-h[1], key_of(h[0])))
                exhausted = fetch >= total or len(matches.keys) < fetch
                if exhausted or (len(out) > k and out[k][1] < out[k - 1][1]):
                    return out[:k]
                fetch = min(total, fetch * 4)

    def save(self, path: Path) -> tuple[int, str]:
        """Write atomically: a temp file beside `path`, fsynced, then `os.replace`.
        Returns (size, checksum) of what was written, for the caller's manifest."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        try:
            with self._lock:
                self._index.save(tmp)
            size, digest = file_digest(Path(tmp))
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return size, digest

    @classmethod
    def load(cls, path: Path, dims: int, size: int, digest: str) -> VectorIndex:
        """Load a saved index into memory (never a read-only view). Raises
        `VectorIndexError` when the file is missing, is not the `size` bytes with the
        checksum `digest` that `save` returned (usearch is native code: a garbled file
        must never reach it), or holds vectors of other dimensions (e.g. the embedding
        model changed): the caller re-embeds."""
        path = Path(path)
        if not path.is_file():
            raise VectorIndexError(f"no vector index at {path}")
        try:
            found = file_digest(path)
        except OSError as exc:
            raise VectorIndexError(f"vector index at {path} is unreadable "
                                   f"({exc.strerror})") from None
        if found != (size, digest):
            raise VectorIndexError(f"vector index at {path} does not match its manifest "
                                   "(size or checksum)")
        try:
            meta = Index.metadata(str(path))
        except Exception as exc:
            raise VectorIndexError(f"vector index at {path} is corrupt ({exc}); "
                                   "rebuild it") from exc
        if meta is None:
            raise VectorIndexError(f"vector index at {path} is corrupt; rebuild it")
        stored = int(meta["dimensions"])
        if stored != dims:
            raise VectorIndexError(f"vector index at {path} has {stored} dimensions but the "
                                   f"embedding model gives {dims}; re-embed")
        self = cls(dims)
        try:
            self._index.load(str(path))
        except Exception as exc:
            raise VectorIndexError(f"vector index at {path} is corrupt ({exc}); "
                                   "rebuild it") from exc
        # Not persisted by usearch (restore gives 64); mypy misses the property setters.
        self._index.expansion_search = EXPANSION_SEARCH  # type: ignore[misc]
        self._index.expansion_add = EXPANSION_ADD  # type: ignore[misc]
        return self


def file_digest(path: Path) -> tuple[int, str]:
    """(size, blake2b-128 hex) of a file."""
    h = hashlib.blake2b(digest_size=16)
    size = 0
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
            size += len(block)
    return size, h.hexdigest()


__all__ = ["file_digest", "VectorIndex", "VectorIndexError", "EXACT_BELOW", "EXPANSION_SEARCH"]
