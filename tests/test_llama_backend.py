"""The llama.cpp backend on real GGUFs: tiny random-weight Qwen3 models (exact checks)
and the real Gemma 3 270M from PyPI (the yes/no scoring path on a real model).

Speeds are printed by the `bench` tests (pytest -m bench), never asserted."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from semcode.models.base import ModelError
from semcode.models.llama_cpp import LlamaCppEmbedder, LlamaCppReranker
from tiny_models import SAMPLE_QUERY as QUERY
from tiny_models import SAMPLE_TEXTS as TEXTS


@pytest.fixture(scope="module")
def embedder(tiny_models):
    e = LlamaCppEmbedder(tiny_models.embedder, n_threads=2)
    yield e
    e.close()


@pytest.fixture(scope="module")
def reranker(tiny_models):
    # A small batch so that scoring below spans several decode rounds.
    r = LlamaCppReranker(tiny_models.reranker, n_threads=2, batch_tokens=256)
    yield r
    r.close()


# ----------------------------------------------------------------------------- embedder


def test_embedder_profile_and_info(embedder, tiny_models):
    assert embedder.profile.name == "qwen3-embedding"
    assert embedder.dims == 64
    info = embedder.info
    assert info.backend == "llama.cpp" and info.device == "cpu" and info.dims == 64
    # The identity is the content, not the path: a copy elsewhere gets the same one.
    assert str(tiny_models.embedder) not in info.identity


def test_identity_follows_content_not_path(tiny_models, tmp_path):
    copy = tmp_path / "renamed.gguf"
    copy.write_bytes(tiny_models.embedder.read_bytes())
    a = LlamaCppEmbedder(tiny_models.embedder)
    b = LlamaCppEmbedder(copy)
    c = LlamaCppReranker(tiny_models.reranker)
    try:
        assert a.info.identity == b.info.identity
        assert a.info.identity.split(":")[1] != c.info.identity.split(":")[1]
    finally:
        a.close(), b.close(), c.close()


def test_batch_equals_one_at_a_time(embedder):
    batch = embedder.embed_documents(TEXTS)
    single = np.stack([embedder.embed_documents([t])[0] for t in TEXTS])
    assert batch.shape == (len(TEXTS), 64) and batch.dtype == np.float32
    cos = (batch * single).sum(axis=1)
    assert cos.min() >= 0.9999, cos


def test_unit_norm_and_distinct(embedder):
    v = embedder.embed_documents(TEXTS)
    assert np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    sims = v @ v.T
    off = sims[~np.eye(len(TEXTS), dtype=bool)]
    assert off.max() < 0.98, "different texts must give clearly different vectors"
    assert np.isfinite(v).all()


def test_query_formatting_applied(embedder):
    q = embedder.embed_query(QUERY)
    assert q.shape == (64,)
    as_doc = embedder.embed_documents([QUERY])[0]
    formatted = embedder.embed_documents([embedder.profile.format_query(QUERY)])[0]
    assert float(q @ formatted) >= 0.9999
    assert float(q @ as_doc) < 0.999
    assert embedder.profile.format_query("q").endswith("\nQuery:q")


def test_eos_appended_and_kept_on_truncation(embedder):
    eos = embedder._model.eos
    short = embedder.tokenize("def f(): pass")
    assert short[-1] == eos and short.count(eos) == 1
    huge = "def f(x):\n    return x + 1\n" * 2000  # ~50k characters
    assert len(huge) >= 50_000
    ids = embedder.tokenize(huge)
    assert len(ids) == embedder.profile.max_tokens and ids[-1] == eos
    v = embedder.embed_documents([huge, "short"])
    assert np.isfinite(v).all() and v.shape == (2, 64)


def test_progress_and_early_stop(embedder):
    calls = []
    embedder.embed_documents(TEXTS, progress=lambda d, t: calls.append((d, t)))
    assert calls[-1] == (len(TEXTS), len(TEXTS))
    partial = embedder.embed_documents(TEXTS * 30, progress=lambda d, t: True)
    assert 0 < len(partial) < len(TEXTS) * 30


# ----------------------------------------------------------------------------- reranker


def test_prefix_split_matches_full_prompt_tokens(reranker):
    for doc in TEXTS:
        full = reranker.full_prompt_tokens(QUERY, doc)
        assert reranker.prefix_tokens(QUERY) + reranker.document_tokens(doc) == full


def test_shared_prefix_batch_equals_plain_scoring(reranker):
    docs = TEXTS * 3  # 24 documents over several decode rounds (batch_tokens=256)
    batched = reranker.score(QUERY, docs)
    plain = [reranker.score_plain(QUERY, d) for d in docs]
    assert len(batched) == len(docs)
    assert np.allclose(batched, plain, atol=1e-4, rtol=0), (batched, plain)
    assert all(0.0 <= s <= 1.0 and math.isfinite(s) for s in batched)
    assert max(batched) - min(batched) > 1e-3, "scores must depend on the document"


def test_rerank_long_document_trimmed(reranker):
    huge = "x = compute(a, b) + other(c)\n" * 2000
    ids = reranker.document_tokens(huge)
    assert len(ids) <= reranker.profile.max_doc_tokens + len(reranker._suffix)
    assert ids[-len(reranker._suffix) :] == reranker._suffix
    (s,) = reranker.score(QUERY, [huge])
    assert 0.0 <= s <= 1.0
    assert reranker.score(QUERY, []) == []
    assert reranker.tokens_per_second() is not None


# ----------------------------------------------------------------------------- errors


def test_missing_model_file(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        LlamaCppEmbedder(tmp_path / "nope.gguf")


def test_not_a_gguf(tmp_path):
    junk = tmp_path / "junk.gguf"
    junk.write_bytes(b"PK\x03\x04" + bytes(range(256)) * 10)
    with pytest.raises(ModelError, match="not a GGUF"):
        LlamaCppReranker(junk)


def test_truncated_gguf(tmp_path, tiny_models):
    broken = tmp_path / "broken.gguf"
    broken.write_bytes(tiny_models.embedder.read_bytes()[:5000])
    with pytest.raises(ModelError, match="could not load") as exc:
        LlamaCppEmbedder(broken)
    assert "\n" not in str(exc.value)


def test_wrong_role(tiny_models):
    with pytest.raises(ModelError, match="embedding model"):
        LlamaCppReranker(tiny_models.embedder)


# ----------------------------------------------------------------------------- gemma

RELEVANT = (
    "def refresh_token(session):\n    if session.expired():\n"
    "        session.token = fetch_new_token(session.user)\n    return session.token"
)
UNRELATED = "The recipe calls for two cups of flour, one egg and a pinch of salt."


def test_gemma_yes_no_scoring(gemma_gguf):
    r = LlamaCppReranker(gemma_gguf, n_threads=2)
    try:
        assert r.profile.name == "gemma-yes-no"  # detected from general.architecture
        docs = [RELEVANT, UNRELATED, TEXTS[1]]
        first = r.score(QUERY, docs)
        again = r.score(QUERY, docs)
        assert first == again, "scoring must be deterministic"
        assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in first)
        plain = [r.score_plain(QUERY, d) for d in docs]
        assert all(math.isfinite(s) and 0.0 <= s <= 1.0 for s in plain)
        # Not asserted: a 270M general chat model is no reranker, and here it prefers
        # the recipe. Nor batched == plain: on this Q4_K Gemma (iSWA cache) llama.cpp's
        # numerics depend on the batch's make-up (see the backend report).
        print(
            f"\ngemma P(yes): relevant={first[0]:.3f} unrelated={first[1]:.3f} "
            f"(plain {plain[0]:.3f}/{plain[1]:.3f})"
        )
    finally:
        r.close()


# ----------------------------------------------------------------------------- speed


def _raw_prompt_tps(r: LlamaCppReranker, n_tokens: int) -> float:
    """Raw prompt processing of the same model: one sequence, one decode, no outputs."""
    ids = (r.full_prompt_tokens(QUERY, TEXTS[0] * 50))[:n_tokens]
    times = []
    for _ in range(3):  # the first decode also allocates buffers: take the median
        r._model.lib.llama_memory_clear(r._mem, True)
        t0 = time.perf_counter()
        r._decode_sequence(ids, seq=0, start=0, want_last=False)
        times.append(time.perf_counter() - t0)
    return len(ids) / sorted(times)[1]


def _speed_line(name: str, r: LlamaCppReranker, docs: list[str]) -> str:
    raw = _raw_prompt_tps(r, 256)
    t0 = time.perf_counter()
    r.score(QUERY, docs)
    wall = time.perf_counter() - t0
    rr = r.tokens_per_second() or float("nan")
    return (
        f"speed {name}: rerank {len(docs)} docs in {wall * 1000:.0f} ms, {rr:.0f} tok/s; "
        f"raw prompt {raw:.0f} tok/s; ratio {rr / raw:.2f}"
    )


@pytest.mark.bench
def test_speed_report(tiny_models, capsys):
    docs = [TEXTS[i % len(TEXTS)] * 3 for i in range(32)]
    e = LlamaCppEmbedder(tiny_models.embedder, n_threads=2)
    r = LlamaCppReranker(tiny_models.reranker, n_threads=2)
    try:
        t0 = time.perf_counter()
        e.embed_documents(docs * 4)
        wall = time.perf_counter() - t0
        lines = [
            f"speed tiny embed: {len(docs) * 4} docs in {wall * 1000:.0f} ms, "
            f"{e.tokens_per_second():.0f} tok/s",
            _speed_line("tiny", r, docs),
        ]
    finally:
        e.close(), r.close()
    with capsys.disabled():
        print("\n" + "\n".join(lines))


@pytest.mark.bench
def test_speed_report_gemma(gemma_gguf, capsys):
    docs = [RELEVANT, UNRELATED, *TEXTS] * 2
    r = LlamaCppReranker(gemma_gguf, n_threads=2)
    try:
        line = _speed_line("gemma-270m-q4_k_m", r, docs)
    finally:
        r.close()
    with capsys.disabled():
        print("\n" + line)
