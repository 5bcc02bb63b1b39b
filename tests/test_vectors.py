"""usearch HNSW vector index keyed by chunk id."""

from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import pytest

from semcode.index import vectors as vectors_mod
from semcode.index.vectors import VectorIndex, VectorIndexError, file_digest


def unit(rng: np.random.Generator, n: int, dims: int) -> np.ndarray:
    x = rng.standard_normal((n, dims)).astype(np.float32)
    return x / np.linalg.norm(x, axis=1, keepdims=True)


def brute(x: np.ndarray, ids: np.ndarray, q: np.ndarray, k: int) -> list[int]:
    sims = x @ q
    return [int(ids[i]) for i in np.argsort(-sims)[:k]]


def test_empty_index() -> None:
    idx = VectorIndex(8)
    assert len(idx) == 0 and idx.search(np.ones(8), 5) == [] and 3 not in idx
    assert idx.get(3) is None
    idx.remove([1, 2])
    with pytest.raises(ValueError):
        VectorIndex(0)


def test_add_replace_remove_search() -> None:
    rng = np.random.default_rng(0)
    x = unit(rng, 200, 16)
    ids = np.arange(1000, 1200, dtype=np.uint64)
    idx = VectorIndex(16)
    idx.add(ids, x)
    assert len(idx) == 200 and 1000 in idx and 5 not in idx and -1 not in idx
    hits = idx.search(x[7], 5)
    assert hits[0][0] == 1007 and hits[0][1] == pytest.approx(1.0, abs=1e-3)
    assert [c for c, _ in hits] == brute(x, ids, x[7], 5)
    sims = [s for _, s in hits]
    assert sims == sorted(sims, reverse=True)
    # replace: same key, new vector
    idx.add(np.array([1007], np.uint64), x[8:9])
    assert len(idx) == 200
    np.testing.assert_allclose(idx.get(1007), x[8], atol=2e-3)  # f16 storage
    assert {c for c, _ in idx.search(x[8], 2)} == {1007, 1008}
    # repeated id inside one batch: the last vector wins
    idx.add(np.array([1, 1], np.uint64), np.stack([x[0], x[1]]))
    np.testing.assert_allclose(idx.get(1), x[1], atol=2e-3)
    idx.remove([1007, 1, 424242])
    assert 1007 not in idx and len(idx) == 199
    assert idx.ids() == [i for i in range(1000, 1200) if i != 1007]
    assert VectorIndex(4).ids() == []
    assert all(c != 1007 for c, _ in idx.search(x[8], 50))
    with pytest.raises(ValueError):
        idx.add(np.array([1], np.uint64), np.ones((1, 15), np.float32))
    with pytest.raises(ValueError):
        idx.add(np.array([1, 2], np.uint64), np.ones((1, 16), np.float32))
    with pytest.raises(ValueError):
        idx.search(np.ones(15), 3)


def test_allow_filter_over_fetches() -> None:
    rng = np.random.default_rng(1)
    x = unit(rng, 500, 8)
    ids = np.arange(500, dtype=np.uint64)
    idx = VectorIndex(8)
    idx.add(ids, x)
    allowed = lambda c: c % 50 == 0  # noqa: E731 - 10 of 500 pass
    hits = idx.search(x[3], 10, allow=allowed)
    assert len(hits) == 10 and all(c % 50 == 0 for c, _ in hits)
    keep = ids[ids % 50 == 0]
    assert [c for c, _ in hits] == brute(x[keep.astype(int)], keep, x[3], 10)
    assert idx.search(x[3], 5, allow=lambda c: False) == []


def test_approximate_search_on_larger_index(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors_mod, "EXACT_BELOW", 100)  # force the HNSW path
    rng = np.random.default_rng(2)
    x = unit(rng, 3000, 32)
    ids = np.arange(3000, dtype=np.uint64)
    idx = VectorIndex(32)
    idx.add(ids, x)
    recall = np.mean([len(set(c for c, _ in idx.search(x[i], 10))
                          & set(brute(x, ids, x[i], 10))) / 10 for i in range(50)])
    assert recall > 0.9
    hits = idx.search(x[0], 10, allow=lambda c: c % 2 == 1)
    assert len(hits) == 10 and all(c % 2 == 1 for c, _ in hits)


def test_save_load_roundtrip_and_errors(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    x = unit(rng, 100, 12)
    idx = VectorIndex(12)
    idx.add(np.arange(100, dtype=np.uint64), x)
    idx.remove([5])
    path = tmp_path / "sub" / "vectors.usearch"
    idx.save(path)
    size, digest = idx.save(path)  # overwrite
    assert not [p for p in path.parent.iterdir() if p.name != path.name]
    loaded = VectorIndex.load(path, 12, size, digest)
    assert len(loaded) == 99 and 5 not in loaded and loaded.dims == 12
    assert loaded.search(x[9], 5) == idx.search(x[9], 5)
    loaded.add(np.array([5], np.uint64), x[5:6])  # writable (not a view)
    assert 5 in loaded and loaded.search(x[5], 1)[0][0] == 5
    with pytest.raises(VectorIndexError, match="12 dimensions.*gives 1024"):
        VectorIndex.load(path, 1024, size, digest)
    with pytest.raises(VectorIndexError, match="no vector index"):
        VectorIndex.load(tmp_path / "missing.usearch", 12, size, digest)
    bad = tmp_path / "bad.usearch"
    bad.write_bytes(b"garbage" * 20)
    with pytest.raises(VectorIndexError, match="corrupt"):
        VectorIndex.load(bad, 12, *file_digest(bad))
    # A garbled file never reaches usearch (native code): the checksum stops it first.
    garbled = bytearray(path.read_bytes())
    garbled[len(garbled) // 2: len(garbled) // 2 + 64] = b"\xff" * 64
    path.write_bytes(bytes(garbled))
    with pytest.raises(VectorIndexError, match="manifest"):
        VectorIndex.load(path, 12, size, digest)
    empty = tmp_path / "empty.usearch"
    assert len(VectorIndex.load(empty, 12, *VectorIndex(12).save(empty))) == 0


def test_ties_are_ordered_by_the_order_key_not_by_id() -> None:
    idx = VectorIndex(4)
    v = np.array([[1.0, 0, 0, 0]] * 6, np.float32)
    idx.add(np.arange(6, dtype=np.uint64), v)
    idx.order_key = lambda i: -i  # e.g. (path, line, name): anything but insertion order
    assert [i for i, _ in idx.search(v[0], 3)] == [5, 4, 3]


@pytest.mark.skipif(not os.environ.get("SEMCODE_BENCH"),
                    reason="slow (~20 s of HNSW building): set SEMCODE_BENCH=1")
def test_search_latency_report(capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """10k x 1024 dims: add time, exact and HNSW search median (printed only)."""
    rng = np.random.default_rng(4)
    x = unit(rng, 10_000, 1024)
    idx = VectorIndex(1024)
    t0 = time.perf_counter()
    idx.add(np.arange(10_000, dtype=np.uint64), x)
    add = time.perf_counter() - t0
    med = {}
    for mode, exact_below in (("exact", 20_000), ("hnsw", 0)):
        monkeypatch.setattr(vectors_mod, "EXACT_BELOW", exact_below)
        lat = []
        for i in range(30):
            t0 = time.perf_counter()
            idx.search(x[i], 100)
            lat.append(time.perf_counter() - t0)
        med[mode] = sorted(lat)[15] * 1e3
    with capsys.disabled():
        print(f"\n[measure] vectors 10k x 1024 f16: add {add:.2f}s, search k=100 median: "
              f"exact {med['exact']:.2f} ms, HNSW (ef=256) {med['hnsw']:.2f} ms")
