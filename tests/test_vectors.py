"""Vector index keyed by chunk id: the exact (matrix) tier and the usearch HNSW tier."""

from __future__ import annotations

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
    monkeypatch.setattr(vectors_mod, "HNSW_FROM", 100)  # the HNSW tier
    monkeypatch.setattr(vectors_mod, "EXACT_BELOW", 100)  # and its approximate search
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


def test_a_tie_at_k_fetches_past_the_tie_not_the_whole_index(
        monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(6)
    q = np.zeros(16, np.float32)
    q[0] = 1.0
    copies = np.tile(q + 0.1, (3, 1))  # three identical chunks (copies of a file)
    others = unit(rng, 997, 16)
    others[:, 0] = -np.abs(others[:, 0])  # all farther from q than the copies
    x = np.vstack([copies, others])
    idx = VectorIndex(16)
    idx.add(np.arange(1000, dtype=np.uint64), x)
    idx.order_key = lambda i: -i
    fetched: list[int] = []
    top = idx._top
    monkeypatch.setattr(idx, "_top", lambda qv, fetch, total: (fetched.append(fetch),
                                                                top(qv, fetch, total))[1])
    assert [i for i, _ in idx.search(q, 2)] == [2, 1]  # the tie straddles k = 2
    assert max(fetched) < 1000, fetched


@pytest.mark.bench  # ~20 s of HNSW building
def test_search_latency_report(capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    """10k x 1024 dims: add time, exact and HNSW search median (printed only)."""
    rng = np.random.default_rng(4)
    x = unit(rng, 10_000, 1024)
    monkeypatch.setattr(vectors_mod, "HNSW_FROM", 1)  # time the HNSW build
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


def test_exact_tier_remove_readd_and_recall() -> None:
    rng = np.random.default_rng(5)
    x = unit(rng, 300, 16)
    ids = np.arange(300, dtype=np.uint64) * 7
    idx = VectorIndex(16)
    for lo in range(0, 300, 64):  # grows in batches
        idx.add(ids[lo:lo + 64], x[lo:lo + 64])
    assert idx._index is None and len(idx) == 300
    for i in range(0, 300, 17):  # exact: the brute-force top 10, in order
        assert [c for c, _ in idx.search(x[i], 10)] == brute(x, ids, x[i], 10)
    gone = [int(ids[i]) for i in (0, 5, 299, 150)]
    idx.remove(gone + [3])  # 3 is not present
    assert len(idx) == 296 and all(g not in idx for g in gone)
    assert idx.ids() == sorted(set(ids.tolist()) - set(gone))
    assert all(c not in gone for c, _ in idx.search(x[5], 300))
    for i in range(300):  # the rows that moved into the holes kept their vectors
        if int(ids[i]) not in gone:
            np.testing.assert_allclose(idx.get(int(ids[i])), x[i], atol=2e-3)
    idx.add(np.array([ids[5]], np.uint64), x[5:6])  # re-add
    assert idx.search(x[5], 1)[0][0] == ids[5] and len(idx) == 297
    idx.remove(ids.tolist())
    assert len(idx) == 0 and idx.search(x[0], 3) == [] and idx.ids() == []
    idx.add(ids[:3], x[:3])
    assert [c for c, _ in idx.search(x[1], 3)] == brute(x[:3], ids[:3], x[1], 3)


def test_exact_tier_ties_and_allow() -> None:
    idx = VectorIndex(4)
    v = np.array([[1.0, 0, 0, 0]] * 6 + [[0, 1.0, 0, 0]] * 2, np.float32)
    idx.add(np.arange(8, dtype=np.uint64), v)
    assert [i for i, _ in idx.search(v[0], 3)] == [0, 1, 2]
    idx.remove([1])
    idx.add(np.array([1], np.uint64), v[1:2])  # history must not change the order
    assert [i for i, _ in idx.search(v[0], 3)] == [0, 1, 2]
    idx.order_key = lambda i: -i
    assert [i for i, _ in idx.search(v[0], 3)] == [5, 4, 3]
    assert [i for i, _ in idx.search(v[0], 2, allow=lambda c: c % 2 == 0)] == [4, 2]
    assert [i for i, _ in idx.search(v[0], 10, allow=lambda c: c > 5)] == [7, 6]
    assert len(idx.search(np.zeros(4), 2)) <= 2  # a zero query is no crash


def test_exact_tier_save_load_roundtrip(tmp_path: Path) -> None:
    rng = np.random.default_rng(6)
    x = unit(rng, 50, 8)
    idx = VectorIndex(8)
    idx.add(np.arange(50, dtype=np.uint64), x)
    idx.remove([7, 8])
    path = tmp_path / "vectors.usearch"
    size, digest = idx.save(path)
    assert path.read_bytes()[:8] == vectors_mod._MAGIC
    loaded = VectorIndex.load(path, 8, size, digest)
    assert loaded._index is None and loaded.ids() == idx.ids()
    for i in (0, 9, 49):
        assert loaded.search(x[i], 5) == idx.search(x[i], 5)
        np.testing.assert_array_equal(loaded.get(i), idx.get(i))
    loaded.add(np.array([7, 1000], np.uint64), x[7:9])  # writable, grows
    assert 7 in loaded and 1000 in loaded and len(loaded) == 50
    with pytest.raises(VectorIndexError, match="8 dimensions.*gives 16"):
        VectorIndex.load(path, 16, size, digest)
    cut = tmp_path / "cut.usearch"  # a consistent manifest but a short body
    cut.write_bytes(path.read_bytes()[:-2])
    with pytest.raises(VectorIndexError, match="corrupt"):
        VectorIndex.load(cut, 8, *file_digest(cut))
    with pytest.raises(VectorIndexError, match="corrupt"):
        cut.write_bytes(vectors_mod._MAGIC + b"\x01")
        VectorIndex.load(cut, 8, *file_digest(cut))


def test_old_usearch_file_loads_into_the_exact_tier(tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    rng = np.random.default_rng(7)
    x = unit(rng, 80, 8)
    old = VectorIndex._new_index(8)  # what saves wrote before the exact tier
    old.add(np.arange(80, dtype=np.uint64), x)
    old.remove(3)
    path = tmp_path / "old.usearch"
    old.save(str(path))
    loaded = VectorIndex.load(path, 8, *file_digest(path))
    assert loaded._index is None and len(loaded) == 79 and 3 not in loaded
    assert [c for c, _ in loaded.search(x[10], 5)] == brute(
        np.delete(x, 3, axis=0), np.delete(np.arange(80), 3), x[10], 5)
    monkeypatch.setattr(vectors_mod, "HNSW_FROM", 50)  # big enough: stays HNSW
    loaded = VectorIndex.load(path, 8, *file_digest(path))
    assert loaded._index is not None and len(loaded) == 79
    assert loaded.search(x[10], 1)[0][0] == 10


def test_threshold_switches_to_hnsw(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(vectors_mod, "HNSW_FROM", 100)
    rng = np.random.default_rng(8)
    x = unit(rng, 160, 8)
    ids = np.arange(160, dtype=np.uint64)
    idx = VectorIndex(8)
    idx.order_key = lambda i: -i
    idx.add(ids[:60], x[:60])
    idx.remove([2])
    path = tmp_path / "v.usearch"
    small = VectorIndex.load(path, 8, *idx.save(path))
    assert idx._index is None and small._index is None
    idx.add(ids[60:], x[60:])  # crosses the threshold: the graph is built once
    assert idx._index is not None and len(idx) == 159 and 2 not in idx
    assert idx.ids() == [i for i in range(160) if i != 2]
    assert idx.search(x[120], 1)[0][0] == 120
    np.testing.assert_allclose(idx.get(30), x[30], atol=2e-3)
    idx.remove([30])
    assert 30 not in idx and len(idx) == 158
    size, digest = idx.save(path)
    assert path.read_bytes()[:8] != vectors_mod._MAGIC  # usearch's own format
    loaded = VectorIndex.load(path, 8, size, digest)
    assert loaded._index is not None and loaded.ids() == idx.ids()
    assert loaded.search(x[77], 3) == idx.search(x[77], 3)
    # an exact-tier file of more vectors than the threshold loads as HNSW
    monkeypatch.setattr(vectors_mod, "HNSW_FROM", 1000)
    big = VectorIndex(8)
    big.add(ids, x)
    size, digest = big.save(path)
    monkeypatch.setattr(vectors_mod, "HNSW_FROM", 100)
    loaded = VectorIndex.load(path, 8, size, digest)
    assert loaded._index is not None and len(loaded) == 160
