"""BM25 over chunk tokens: checked against a brute-force reference BM25."""

from __future__ import annotations

import math
import os
import random
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from semcode.index import bm25, lexical
from semcode.index.lexical import K1, B, LexicalIndex, LexicalIndexError


def reference(corpus: dict[int, list[str]], query: list[str],
              stats: dict[int, list[str]] | None = None) -> dict[int, float]:
    """Brute-force Lucene BM25 (bm25s method="lucene") of every document with a score > 0.
    `stats`: the corpus whose N/df/avgdl are used (default: `corpus` itself)."""
    stats = corpus if stats is None else stats
    n = len(stats)
    avgdl = sum(len(d) for d in stats.values()) / n
    df: Counter[str] = Counter()
    for doc in stats.values():
        df.update(set(doc))
    out = {}
    for cid, doc in corpus.items():
        tf = Counter(doc)
        s = 0.0
        for t in query:
            if tf[t]:
                idf = math.log(1 + (n - df[t] + 0.5) / (df[t] + 0.5))
                s += idf * tf[t] / (tf[t] + K1 * (1 - B + B * len(doc) / avgdl))
        if s > 0:
            out[cid] = s
    return out


def as_dict(results: list[tuple[int, float]]) -> dict[int, float]:
    return dict(results)


def close(a: dict[int, float], b: dict[int, float], rel: float = 1e-5) -> bool:
    return a.keys() == b.keys() and all(math.isclose(a[k], b[k], rel_tol=rel) for k in a)


WORDS = [f"w{i}" for i in range(60)]


def random_doc(rng: random.Random) -> list[str]:
    # Zipf-ish: low-numbered words are common
    return [WORDS[min(int(rng.expovariate(0.12)), 59)] for _ in range(rng.randint(1, 40))]


def random_corpus(n: int, seed: int = 0) -> dict[int, list[str]]:
    rng = random.Random(seed)
    return {cid: random_doc(rng) for cid in rng.sample(range(10 * n), n)}


QUERIES = [["w0"], ["w3", "w17"], ["w1", "w1", "w40"], ["w59", "w2", "w8", "w30"], ["zzz"]]


def build(corpus: dict[int, list[str]]) -> LexicalIndex:
    idx = LexicalIndex()
    for cid, doc in corpus.items():
        idx.upsert(cid, doc)
    idx.rebuild()
    return idx


def test_empty_index() -> None:
    idx = LexicalIndex()
    assert idx.search(["a"], 10) == [] and len(idx) == 0 and idx.pending == 0
    idx.rebuild()
    assert idx.search(["a"], 10) == [] and idx.search([], 10) == []
    idx.upsert(1, [])
    idx.rebuild()
    assert idx.search(["a"], 10) == []
    idx.upsert(2, ["a", "b"])
    assert idx.search(["a"], 10)[0][0] == 2  # scored with its own stats


def test_built_index_equals_reference() -> None:
    corpus = random_corpus(300)
    idx = build(corpus)
    assert idx.pending == 0 and len(idx) == 300
    for q in QUERIES:
        got = idx.search(q, 1000)
        assert close(as_dict(got), reference(corpus, q)), q
        scores = [s for _, s in got]
        assert scores == sorted(scores, reverse=True)
        assert idx.search(q, 5) == got[:5]


def test_unbuilt_pending_equals_reference() -> None:
    corpus = random_corpus(200, seed=1)
    idx = LexicalIndex()
    for cid, doc in corpus.items():
        idx.upsert(cid, doc)
    assert idx.pending == 200
    for q in QUERIES:
        assert close(as_dict(idx.search(q, 1000)), reference(corpus, q)), q


def test_mixed_built_and_pending() -> None:
    rng = random.Random(2)
    old = random_corpus(400, seed=2)
    idx = build(old)
    new = dict(old)
    ids = sorted(old)
    for cid in ids[:10]:  # removed
        idx.remove(cid)
        del new[cid]
    for cid in ids[10:25]:  # changed
        new[cid] = random_doc(rng)
        idx.upsert(cid, new[cid])
    for cid in range(10_000, 10_010):  # added, some with a term never seen before
        new[cid] = random_doc(rng) + ["brandnew"]
        idx.upsert(cid, new[cid])
    assert idx.pending == 35 and len(idx) == len(new)
    pending_ids = set(ids[10:25]) | set(range(10_000, 10_010))
    for q in [*QUERIES, ["brandnew", "w5"]]:
        got = as_dict(idx.search(q, 10_000))
        # What holds exactly: every live chunk is scored by BM25 with the *built*
        # corpus' statistics (N, df, avgdl); stale versions never show up.
        # ("brandnew" is not in the built corpus: df 0 there, the highest IDF.)
        assert close(got, reference(new, q, stats=old)), q
        assert not set(got) & set(ids[:10])
        # ...and that is close to a fresh full build: the same hits; scores drift with
        # the statistics (35 of 400 chunks changed here; a rare term's IDF moves most).
        fresh = reference(new, q)
        assert got.keys() == fresh.keys()
        if fresh and "brandnew" not in q:
            drift = [abs(got[c] - fresh[c]) / fresh[c] for c in fresh]
            assert max(drift) < 0.15, (q, max(drift))  # measured: up to ~6%
    # after a rebuild: exactly a fresh build
    idx.rebuild()
    assert idx.pending == 0
    for q in [*QUERIES, ["brandnew", "w5"]]:
        assert close(as_dict(idx.search(q, 10_000)), reference(new, q)), q
    assert pending_ids <= set(new)


def test_replace_hides_old_content_and_noop_upsert() -> None:
    idx = build({1: ["alpha", "beta"], 2: ["beta"], 3: ["gamma"]})
    idx.upsert(1, ["alpha", "beta"])  # unchanged: stays built
    assert idx.pending == 0
    idx.upsert(1, ["delta"])
    assert [c for c, _ in idx.search(["alpha"], 10)] == []
    assert [c for c, _ in idx.search(["delta"], 10)] == [1]
    idx.remove(3)
    idx.remove(3)
    idx.remove(999)
    assert idx.search(["gamma"], 10) == [] and idx.pending == 2 and 3 not in idx
    idx.upsert(3, ["gamma"])  # re-added after removal: pending again, found
    assert [c for c, _ in idx.search(["gamma"], 10)] == [3]


def test_allow_filter_and_ties() -> None:
    corpus = {i: ["common", f"u{i}"] for i in range(100)}
    idx = build(corpus)
    got = idx.search(["common"], 5, allow=lambda c: c % 7 == 0)
    assert [c for c, _ in got] == [0, 7, 14, 21, 28]  # equal scores: by chunk id
    assert idx.search(["common"], 5, allow=lambda c: False) == []
    assert len(idx.search(["common"], 1000, allow=lambda c: c >= 90)) == 10
    idx.upsert(500, ["common", "common"])
    assert idx.search(["common"], 1, allow=lambda c: c > 99)[0][0] == 500


def test_save_load_roundtrip(tmp_path: Path) -> None:
    rng = random.Random(3)
    corpus = random_corpus(100, seed=3)
    idx = build(corpus)
    idx.upsert(5555, random_doc(rng))
    idx.remove(next(iter(corpus)))
    target = tmp_path / "lex"
    idx.save(target)
    idx.save(target)  # overwrite in place
    loaded = LexicalIndex.load(target)
    assert len(loaded) == len(idx) and loaded.pending == idx.pending == 2
    for q in QUERIES:
        assert loaded.search(q, 50) == idx.search(q, 50)
    loaded.rebuild()
    idx.rebuild()
    for q in QUERIES:
        assert close(as_dict(loaded.search(q, 500)), as_dict(idx.search(q, 500)))
    assert not list(tmp_path.glob(".lex.tmp-*")) and not (tmp_path / "lex.old").exists()
    empty = tmp_path / "empty"
    LexicalIndex().save(empty)
    assert len(LexicalIndex.load(empty)) == 0


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(LexicalIndexError, match="no lexical index"):
        LexicalIndex.load(tmp_path / "missing")
    idx = build(random_corpus(50))
    target = tmp_path / "lex"
    idx.save(target)
    data = bytearray((target / "arrays.bin").read_bytes())
    data[len(data) // 2] ^= 0xFF
    (target / "arrays.bin").write_bytes(bytes(data))
    with pytest.raises(LexicalIndexError, match="corrupt"):
        LexicalIndex.load(target)
    idx.save(target)
    (target / "meta.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(LexicalIndexError, match="unreadable"):
        LexicalIndex.load(target)
    # a crash between the two renames of save(): the previous copy is used
    idx.save(target)
    target.rename(tmp_path / "lex.old")
    assert len(LexicalIndex.load(target)) == 50


def test_mapped_load_answers_exactly_as_the_eager_index(tmp_path: Path) -> None:
    """Issue 19: a loaded index reads its arrays in place (mapped, overlays for what
    changes); it answers byte for byte what the in-memory index it was saved from
    answers (same ids, same float scores, same order), through edits made to both, a
    rebuild of both, and another save/load round; a verified load is the same."""
    rng = random.Random(11)
    corpus = random_corpus(400, seed=11)
    corpus[5] = ["§name", "ünïcödé", "\udcff", "w1"]  # non-ASCII and a lone surrogate
    eager = build(corpus)
    for cid in rng.sample(sorted(corpus), 30):  # pending chunks, hidden rows
        eager.upsert(cid, random_doc(rng) + ["fresh" + str(cid % 7)])
    for cid in rng.sample(sorted(corpus), 20):
        eager.remove(cid)
    queries = [[WORDS[rng.randrange(60)] for _ in range(rng.randint(1, 4))]
               for _ in range(40)] + [["fresh3", "w2"], ["ünïcödé"], ["\udcff"], ["nope"]]

    def same(a: LexicalIndex, b: LexicalIndex) -> None:
        assert len(a) == len(b) and a.pending == b.pending
        assert a.chunk_ids() == b.chunk_ids() and a.vocabulary_size == b.vocabulary_size
        for q in queries:
            assert a.search(q, 1000) == b.search(q, 1000), q
            assert a.search(q, 3, allow=lambda c: c % 2 == 0) == b.search(
                q, 3, allow=lambda c: c % 2 == 0)
        for cid in sorted(a.chunk_ids())[::37]:
            assert a.tokens(cid) == b.tokens(cid)

    eager.save(tmp_path / "lex")
    mapped = LexicalIndex.load(tmp_path / "lex")
    same(mapped, eager)
    same(LexicalIndex.load(tmp_path / "lex", verify=True), eager)
    for ix in (mapped, eager):  # the same edits on both
        ix.upsert(100_000, ["w3", "newterm", "w3"])
        ix.upsert(5, ["w9"])
        ix.remove(sorted(corpus)[7])
        ix.reconcile([*sorted(ix.chunk_ids())[2:], 100_001], lambda c: ["w4", "late"])
    same(mapped, eager)
    mapped.rebuild()
    eager.rebuild()
    same(mapped, eager)
    mapped.save(tmp_path / "again")
    same(LexicalIndex.load(tmp_path / "again"), eager)


def test_a_mapped_build_stays_whole_when_a_save_replaces_it(tmp_path: Path) -> None:
    """A process holds the saved build mapped while another saves a new one in its place
    (and the previous copy is deleted): the holder keeps answering from what it mapped,
    exactly as before; a new load sees the new build."""
    target = tmp_path / "lex"
    old = build(random_corpus(200, seed=3))
    old.save(target)
    held = LexicalIndex.load(target)
    queries = [[w] for w in WORDS[:20]]
    before = [held.search(q, 50) for q in queries]
    new = build(random_corpus(300, seed=4))
    new.save(target)
    new.save(target)  # twice: the first replacement's copy is deleted too
    assert [held.search(q, 50) for q in queries] == before
    assert [LexicalIndex.load(target).search(q, 50) for q in queries] == [
        new.search(q, 50) for q in queries]


def test_old_format_and_changed_files_are_refused(tmp_path: Path) -> None:
    """A format-1 index (an older semcode's .npz files) is refused in one line that says
    so (the indexer rebuilds it: tests/test_index_robustness.py); a file rewritten after
    the save is refused without hashing it; a flipped byte that keeps the file's size
    and time is caught by a verified load."""
    target = tmp_path / "lex"
    build(random_corpus(50)).save(target)
    meta = (target / "meta.json").read_text(encoding="utf-8")
    data = (target / "arrays.bin").read_bytes()
    st = (target / "arrays.bin").stat()
    flipped = bytearray(data)
    flipped[-3] ^= 0xFF
    (target / "arrays.bin").write_bytes(bytes(flipped))
    os.utime(target / "arrays.bin", ns=(st.st_atime_ns, st.st_mtime_ns))
    assert len(LexicalIndex.load(target)) == 50  # size and time as saved: not hashed
    with pytest.raises(LexicalIndexError, match="checksum mismatch"):
        LexicalIndex.load(target, verify=True)
    (target / "arrays.bin").write_bytes(data)
    with pytest.raises(LexicalIndexError, match="changed after it was saved"):
        LexicalIndex.load(target)
    (target / "meta.json").write_text(meta.replace('"format": 2', '"format": 1'))
    (target / "docs.npz").write_bytes(b"old")
    with pytest.raises(LexicalIndexError, match="format 1, expected 2 .saved by an older"):
        LexicalIndex.load(target)


def test_changes_during_rebuild_stay_pending(monkeypatch: pytest.MonkeyPatch) -> None:
    idx = build({1: ["a"], 2: ["b"], 3: ["c"]})
    started, release = threading.Event(), threading.Event()
    real_build = lexical._build_flat

    def slow_build(*args: object) -> object:
        started.set()
        release.wait(5)
        return real_build(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(lexical, "_build_flat", slow_build)
    t = threading.Thread(target=idx.rebuild)
    t.start()
    assert started.wait(5)
    idx.upsert(1, ["z"])  # changed during the build
    idx.remove(2)  # removed during the build
    idx.upsert(4, ["c"])  # added during the build
    assert sorted(c for c, _ in idx.search(["c"], 10)) == [3, 4]  # searches work meanwhile
    release.set()
    t.join(5)
    assert idx.pending == 3
    assert idx.search(["a"], 10) == [] and idx.search(["b"], 10) == []
    assert [c for c, _ in idx.search(["z"], 10)] == [1]
    assert sorted(c for c, _ in idx.search(["c"], 10)) == [3, 4]
    monkeypatch.setattr(lexical, "_build_flat", real_build)
    idx.rebuild()
    assert idx.pending == 0
    corpus = {1: ["z"], 3: ["c"], 4: ["c"]}
    for q in (["z"], ["c"], ["a"]):
        assert close(as_dict(idx.search(q, 10)), reference(corpus, q))


def test_concurrent_rebuilds_and_writes() -> None:
    rng = random.Random(4)
    corpus = random_corpus(300, seed=4)
    idx = build(corpus)
    stop = threading.Event()
    errors: list[BaseException] = []

    def rebuilder() -> None:
        try:
            while not stop.is_set():
                idx.rebuild()
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    t = threading.Thread(target=rebuilder)
    t.start()
    try:
        for i in range(400):
            cid = rng.choice(list(corpus))
            if rng.random() < 0.2:
                idx.remove(cid)
                corpus.pop(cid)
            else:
                corpus[cid] = random_doc(rng)
                idx.upsert(cid, corpus[cid])
            new_id = 100_000 + i
            corpus[new_id] = random_doc(rng)
            idx.upsert(new_id, corpus[new_id])
            hits = idx.search(["w1", "w9"], 20)
            assert all(c in corpus for c, _ in hits)
    finally:
        stop.set()
        t.join(30)
    assert not errors
    idx.rebuild()
    assert len(idx) == len(corpus)
    for q in QUERIES:
        assert close(as_dict(idx.search(q, 10_000)), reference(corpus, q)), q


@pytest.mark.bench
def test_build_and_query_speed_report(capsys: pytest.CaptureFixture[str]) -> None:
    """~10k synthetic chunks: build time and median query latency (printed only)."""
    rng = random.Random(5)
    vocab = [f"t{i}" for i in range(20_000)]
    idx = LexicalIndex()
    for cid in range(10_000):
        idx.upsert(cid, [vocab[min(int(rng.paretovariate(1.1)) - 1, 19_999)]
                         for _ in range(rng.randint(20, 200))])
    t0 = time.perf_counter()
    idx.rebuild()
    built = time.perf_counter() - t0
    lat = []
    for _ in range(50):
        q = [vocab[rng.randint(0, 300)] for _ in range(4)]
        t0 = time.perf_counter()
        idx.search(q, 100)
        lat.append(time.perf_counter() - t0)
    with capsys.disabled():
        print(f"\n[measure] lexical 10k chunks: rebuild {built:.2f}s, "
              f"query median {sorted(lat)[25] * 1e3:.2f} ms")


@pytest.mark.parametrize("block_tokens", [bm25.BLOCK_TOKENS, 97, 1])
def test_vectorised_matrix_equals_bm25s_build(block_tokens: int,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """`_score_matrix` must build what bm25s' own (slow) builder builds, in one block of
    documents or in many (a block of 1 token: every document its own block)."""
    import bm25s

    monkeypatch.setattr(bm25, "BLOCK_TOKENS", block_tokens)

    corpus = random_corpus(500, seed=6)
    idx = LexicalIndex()
    for cid, doc in corpus.items():
        idx.upsert(cid, doc)
    docs = [(cid, idx._docs_of(cid)) for cid in sorted(corpus)]
    ours = bm25.build(docs, idx.vocabulary_size).bm25
    assert ours is not None
    ref = bm25s.BM25(method="lucene", k1=K1, b=B).build_index_from_ids(
        unique_token_ids=list(range(idx.vocabulary_size)),
        corpus_token_ids=[ids.tolist() for _, ids in docs], show_progress=False)
    np.testing.assert_array_equal(ours.scores["indptr"], ref["indptr"])
    np.testing.assert_array_equal(ours.scores["indices"], ref["indices"])
    np.testing.assert_allclose(ours.scores["data"], ref["data"], rtol=1e-6)
    assert ours.scores["data"].dtype == ref["data"].dtype
    assert ours.scores["indices"].dtype == ref["indices"].dtype
    # and it is queried exactly as bm25s queries it (semcode does not import bm25s)
    theirs = bm25s.BM25(method="lucene", k1=K1, b=B, backend="numpy")
    theirs.scores = ours.scores
    theirs.nonoccurrence_array = None
    rng = random.Random(8)
    mask = np.ones(500, np.float32)
    mask[::7] = 0.0
    for _ in range(30):
        q = [rng.randrange(idx.vocabulary_size) for _ in range(rng.randint(1, 5))]
        for m in (None, mask):
            np.testing.assert_array_equal(ours.get_scores_from_ids(q, weight_mask=m),
                                          theirs.get_scores_from_ids(q, weight_mask=m))


def test_bm25f_field_weights_scale_term_frequency() -> None:
    """A term in a weighted field counts its weight; markers are not terms, do not count
    in the length, and leave unmarked documents scored exactly as before."""
    from semcode.index.tokenizer import FIELD_WEIGHTS

    name_w = FIELD_WEIGHTS["§name"]
    idx = LexicalIndex()
    idx.upsert(1, ["§name", "parse", "§body", "other", "words"])
    idx.upsert(2, ["§name", "other", "§body", "parse", "words"])
    idx.upsert(3, ["plain", "words", "here"])
    for layer in ("pending", "built"):
        if layer == "built":
            idx.rebuild()
        hits = dict(idx.search(["parse"], 10))
        assert set(hits) == {1, 2}
        assert hits[1] > hits[2]
        # Same length (3 tokens, markers excluded) and avgdl: the ratio is BM25's tf curve.
        k1_norm = lexical.K1 * 1.0  # length == avgdl
        expected = (name_w / (name_w + k1_norm)) / (1 / (1 + k1_norm))
        assert hits[1] / hits[2] == pytest.approx(expected, rel=1e-4)
        assert idx.search(["§name"], 10) == []


def test_bm25f_matrix_is_the_same_in_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Field-weighted term frequencies give the same matrix built in one block or many."""
    rng = random.Random(11)
    n_vocab, markers = 40, {38: 3.0, 39: 1.5}
    docs = [(cid, np.array([rng.randrange(n_vocab) for _ in range(rng.randint(0, 30))],
                           np.int32)) for cid in range(300)]
    whole = bm25.build(docs, n_vocab, markers).bm25
    monkeypatch.setattr(bm25, "BLOCK_TOKENS", 13)
    blocked = bm25.build(docs, n_vocab, markers).bm25
    assert whole is not None and blocked is not None
    for key in ("indptr", "indices", "data"):
        np.testing.assert_array_equal(whole.scores[key], blocked.scores[key])


def test_doc_tokens_flat_is_in_id_order_whatever_was_added() -> None:
    """Saved chunks plus added ones, flattened in id order: added after every saved
    one (no reorder needed), between them, and after a removal."""
    from semcode.index.lexical_docs import DocTokens

    def saved() -> DocTokens:
        return DocTokens(np.array([1, 5, 9], np.int64), np.array([0, 2, 3, 6], np.int64),
                         np.array([10, 11, 50, 90, 91, 92], np.int32))

    def flat(docs: DocTokens) -> list[tuple[int, list[int]]]:
        ids, lengths, tokens = docs.flat()
        starts = np.concatenate([[0], np.cumsum(lengths)])
        return [(int(i), tokens[starts[n]:starts[n + 1]].tolist()) for n, i in enumerate(ids)]

    after = saved()
    after.put(12, np.array([120], np.int32))
    assert flat(after) == [(1, [10, 11]), (5, [50]), (9, [90, 91, 92]), (12, [120])]
    between = saved()
    between.put(3, np.array([30, 31], np.int32))
    between.put(12, np.array([120], np.int32))
    assert flat(between) == [(1, [10, 11]), (3, [30, 31]), (5, [50]), (9, [90, 91, 92]),
                             (12, [120])]
    removed = saved()
    removed.pop(9)
    removed.put(7, np.array([70], np.int32))
    removed.put(5, np.array([55, 56], np.int32))  # replaces a saved row
    assert flat(removed) == [(1, [10, 11]), (5, [55, 56]), (7, [70])]
