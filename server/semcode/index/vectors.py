"""Dense vectors keyed by chunk id: an exact tier (a plain f16 matrix) and, from
`HNSW_FROM` vectors on, a usearch HNSW index.

Facts this module is built on (DESIGN §3, re-checked with usearch 2.26):
- Below `HNSW_FROM` (200k) vectors the index is a contiguous f16 matrix plus a key
  array (amortised growth; removal moves the last row into the hole). Search is exact
  (`usearch.index.search(..., exact=True)`, SIMD f16 cosine): recall 1.0 and no build
  cost. Building the graph was ~69% of the vector phase of a cold index (100k chunks,
  256 dims: ~45 s of HNSW insertion at expansion_add 128, while lowering that to 64
  cost recall). An exact query over 100k x 256 f16 takes ~10 ms on one core of this
  2-core machine (~16 ms at 1024 dims) against ~2 ms for HNSW: cheap beside the rest
  of a search. The one-time graph build at `HNSW_FROM` holds the lock (minutes).
- Crossing `HNSW_FROM` builds the HNSW index once from the matrix and stays HNSW from
  then on: f16 storage with cosine metric; f16 recall@10 is ~0.88 at expansion_search
  64 and ~0.99 at 256, so searches use 256 (the default of 64 is *not* persisted:
  `restore` brings back 64, hence it is set again after loading).
- A duplicate key raises in usearch: replacing = remove + add. Removal leaves a
  tombstone (reused by later adds); removed keys never come back from `search`.
- There is no filter predicate in Python: with `allow`, the search over-fetches and
  post-filters, growing the fetch until `k` pass or the index is exhausted.
- Saved files: the exact tier writes its own format (magic, dims, count, keys, f16
  rows; parsed with NumPy only), the HNSW tier usearch's. `load` checks size and digest
  first and tells the two apart by the magic; a usearch file of fewer than `HNSW_FROM`
  vectors (written before the exact tier existed) loads into the exact tier.
- `restore(view=True)` memory-maps read-only and `add()` on it segfaults: never used.

All methods take one lock, so a writer thread and a searching thread can share it.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from usearch.index import Index, MetricKind
from usearch.index import search as exact_search

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

CONNECTIVITY = 16
EXPANSION_ADD = 128
EXPANSION_SEARCH = 256
EXACT_BELOW = 20_000  # HNSW tier: brute-force search below this many vectors
HNSW_FROM = 200_000  # from this many vectors on, an HNSW graph instead of the exact tier

_MAGIC = b"SEMCVEC1"  # exact-tier file: magic, u64 dims, u64 count, keys u64, rows f16
_HEADER = len(_MAGIC) + 16


class VectorIndexError(Exception):
    """A saved vector index is missing, corrupt, or has other dimensions; rebuild it."""


class VectorIndex:
    """Cosine-similarity search over chunk embeddings (see the module docstring)."""

    def __init__(self, dims: int) -> None:
        if dims <= 0:
            raise ValueError(f"vector dimensions must be > 0, got {dims}")
        self.dims = dims
        self._lock = threading.RLock()
        # Exact tier (while `_index` is None): rows [0, _n) of `_mat` under `_keys`.
        self._index: Index | None = None
        self._mat = np.empty((0, dims), dtype=np.float16)
        self._keys = np.empty(0, dtype=np.uint64)
        self._row: dict[int, int] = {}
        self._n = 0
        # Orders equal similarities (chunk id -> sortable key); None: by chunk id.
        self.order_key: Callable[[int], SupportsRichComparison] | None = None

    @staticmethod
    def _new_index(dims: int) -> Index:
        return Index(ndim=dims, metric="cos", dtype="f16", connectivity=CONNECTIVITY,
                     expansion_add=EXPANSION_ADD, expansion_search=EXPANSION_SEARCH)

    def atomically(self) -> AbstractContextManager[object]:
        """Hold the index's lock across several `add`/`remove` calls, so that a search in
        another thread sees all of them or none."""
        return self._lock

    def __len__(self) -> int:
        with self._lock:
            return self._n if self._index is None else len(self._index)

    def __contains__(self, chunk_id: object) -> bool:
        if not isinstance(chunk_id, int | np.integer) or int(chunk_id) < 0:
            return False
        with self._lock:
            if self._index is None:
                return int(chunk_id) in self._row
            return bool(self._index.contains(int(chunk_id)))

    def id_array(self) -> np.ndarray:
        """Every stored chunk id, ascending (int64: no Python int per vector)."""
        with self._lock:
            if self._index is None:
                keys = self._keys[:self._n].copy()
            else:
                keys = np.asarray(self._index.keys, dtype=np.uint64)
        return np.sort(keys).astype(np.int64)

    def ids(self) -> list[int]:
        """Every stored chunk id, ascending."""
        return self.id_array().tolist()

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
            if self._index is None:
                self._add_exact(keys, arr)
                if self._n >= HNSW_FROM:
                    self._build_hnsw()
                return
            present = np.asarray(self._index.contains(keys), dtype=bool).reshape(-1)
            if present.any():
                self._index.remove(keys[present])
            self._index.add(keys, arr)

    def _add_exact(self, keys: np.ndarray, arr: np.ndarray) -> None:
        rows = self._row
        new = np.fromiter((int(k) not in rows for k in keys.tolist()), dtype=bool,
                          count=len(keys))
        if not new.all():  # replace in place
            old = ~new
            at = np.fromiter((rows[int(k)] for k in keys[old].tolist()), dtype=np.intp)
            self._mat[at] = arr[old]
            keys, arr = keys[new], arr[new]
        if len(keys) == 0:
            return
        n, need = self._n, self._n + len(keys)
        if need > len(self._mat):  # amortised growth
            cap = max(need, len(self._mat) * 5 // 4, 1024)  # +25%: little slack in RAM
            mat = np.empty((cap, self.dims), dtype=np.float16)
            mat[:n] = self._mat[:n]
            kk = np.empty(cap, dtype=np.uint64)
            kk[:n] = self._keys[:n]
            self._mat, self._keys = mat, kk
        self._mat[n:need] = arr
        self._keys[n:need] = keys
        rows.update(zip(keys.tolist(), range(n, need), strict=True))
        self._n = need

    def _build_hnsw(self) -> None:
        index = self._new_index(self.dims)
        if self._n:
            index.add(self._keys[:self._n].copy(), self._mat[:self._n])
        self._index = index
        self._mat = np.empty((0, self.dims), dtype=np.float16)
        self._keys = np.empty(0, dtype=np.uint64)
        self._row, self._n = {}, 0

    def remove(self, ids: Iterable[int]) -> None:
        """Remove vectors; ids that are not present are ignored."""
        keys = np.fromiter((int(i) for i in ids), dtype=np.uint64)
        if len(keys) == 0:
            return
        with self._lock:
            if self._index is not None:
                self._index.remove(keys)
                return
            rows = self._row
            for key in keys.tolist():
                row = rows.pop(int(key), None)
                if row is None:
                    continue
                last = self._n - 1
                if row != last:  # move the last row into the hole
                    moved = int(self._keys[last])
                    self._mat[row] = self._mat[last]
                    self._keys[row] = moved
                    rows[moved] = row
                self._n = last

    def get(self, chunk_id: int) -> np.ndarray | None:
        """The stored vector (float32; stored as f16, so ~3 significant digits)."""
        if chunk_id < 0:
            return None
        with self._lock:
            if self._index is None:
                row = self._row.get(int(chunk_id))
                return None if row is None else self._mat[row].astype(np.float32)
            vec = self._index.get(int(chunk_id))
        return None if vec is None else np.asarray(vec, dtype=np.float32).reshape(-1)

    def _top(self, query: np.ndarray, fetch: int, total: int) -> tuple[list[int], list[float]]:
        """The `fetch` nearest (keys, cosine distances), nearest first."""
        if self._index is None:
            m = exact_search(self._mat[:self._n], query.astype(np.float16), fetch,
                             MetricKind.Cos, exact=True, threads=1)
            rows = np.asarray(m.keys, dtype=np.intp).reshape(-1)
            dist = np.asarray(m.distances, dtype=np.float64).reshape(-1)
            ok = rows < self._n  # usearch pads with a sentinel key when short
            return self._keys[rows[ok]].tolist(), dist[ok].tolist()
        matches = self._index.search(query, fetch, exact=total < EXACT_BELOW)
        return matches.keys.tolist(), matches.distances.tolist()

    def search(self, vector: np.ndarray, k: int,
               allow: Callable[[int], bool] | None = None) -> list[tuple[int, float]]:
        """The `k` nearest (chunk_id, cosine similarity) pairs, most similar first;
        equal similarities (identical chunks) by `order_key`, else by id, and a tie at
        the k-th place fetches further so which of the tied chunks are kept does not
        depend on the index's history."""
        query = self._check(vector)[0]
        key_of = self.order_key or int
        with self._lock:
            total = len(self)
            if k <= 0 or total == 0:
                return []
            fetch = min(total, k + 1 if allow is None else max(4 * k, 64))
            while True:
                keys, dists = self._top(query, fetch, total)
                out: list[tuple[int, float]] = []
                for key, dist in zip(keys, dists, strict=True):
                    if allow is None or allow(int(key)):
                        out.append((int(key), 1.0 - float(dist)))
                out.sort(key=lambda h: (-h[1], key_of(h[0])))
                exhausted = fetch >= total or len(keys) < fetch
                # Every chunk tied with the k-th is here once the farthest one fetched is
                # strictly farther; then `key_of` alone picks among them. (Comparing the
                # k-th with the (k+1)-th instead fetched the whole index whenever a tie
                # straddled k: copies of a file, ~1 s at 100k vectors.)
                if exhausted or (len(out) >= k and 1.0 - float(dists[-1]) < out[k - 1][1]):
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
                if self._index is not None:
                    self._index.save(tmp)
                else:
                    with open(tmp, "wb") as f:
                        f.write(_MAGIC)
                        f.write(np.array([self.dims, self._n], dtype="<u8").tobytes())
                        f.write(self._keys[:self._n].astype("<u8").tobytes())
                        f.write(self._mat[:self._n].astype("<f2").tobytes())
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
            with open(path, "rb") as f:
                magic = f.read(len(_MAGIC))
        except OSError as exc:
            raise VectorIndexError(f"vector index at {path} is unreadable "
                                   f"({exc.strerror})") from None
        if magic == _MAGIC:
            return cls._load_exact(path, dims)
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
        index = cls._new_index(dims)
        try:
            index.load(str(path))
        except Exception as exc:
            raise VectorIndexError(f"vector index at {path} is corrupt ({exc}); "
                                   "rebuild it") from exc
        # Not persisted by usearch (restore gives 64); mypy misses the property setters.
        index.expansion_search = EXPANSION_SEARCH  # type: ignore[misc]
        index.expansion_add = EXPANSION_ADD  # type: ignore[misc]
        self = cls(dims)
        if len(index) >= HNSW_FROM:
            self._index = index
            return self
        keys = np.asarray(index.keys, dtype=np.uint64)  # an older small file: exact tier
        if len(keys):
            vecs = np.asarray(index.get(keys, dtype="f16")).reshape(len(keys), dims)
            self._add_exact(keys, vecs.astype(np.float32))
        return self

    @classmethod
    def _load_exact(cls, path: Path, dims: int) -> VectorIndex:
        data = path.read_bytes()
        if len(data) < _HEADER:
            raise VectorIndexError(f"vector index at {path} is corrupt; rebuild it")
        stored, n = (int(v) for v in np.frombuffer(data, dtype="<u8", count=2,
                                                    offset=len(_MAGIC)))
        if stored != dims:
            raise VectorIndexError(f"vector index at {path} has {stored} dimensions but the "
                                   f"embedding model gives {dims}; re-embed")
        if len(data) != _HEADER + n * 8 + n * dims * 2:
            raise VectorIndexError(f"vector index at {path} is corrupt (wrong length); "
                                   "rebuild it")
        keys = np.frombuffer(data, dtype="<u8", count=n, offset=_HEADER).astype(np.uint64)
        mat = np.frombuffer(data, dtype="<f2", count=n * dims, offset=_HEADER + 8 * n)
        if len(np.unique(keys)) != n:
            raise VectorIndexError(f"vector index at {path} is corrupt (repeated ids); "
                                   "rebuild it")
        self = cls(dims)
        self._mat = mat.astype(np.float16).reshape(n, dims)  # a writable copy
        self._keys = keys
        self._row = dict(zip(keys.tolist(), range(n), strict=True))
        self._n = n
        if n >= HNSW_FROM:
            self._build_hnsw()
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


__all__ = ["file_digest", "VectorIndex", "VectorIndexError", "EXACT_BELOW", "EXPANSION_SEARCH",
           "HNSW_FROM"]
