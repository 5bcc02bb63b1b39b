"""MLX backend parity with llama.cpp on the same tiny Qwen3 weights (GGUF and an HF/MLX
folder written from it by tests/tiny_models_mlx.py), run for real on Linux (mlx[cpu]).

Speeds are printed by the `bench` test (pytest -m bench), never asserted."""

from __future__ import annotations

import platform
import sys
import time

import numpy as np
import pytest

# mlx exists for macOS arm64 and (mlx[cpu], the dev extra) Linux x86_64 only: elsewhere
# this module skips, an expected skip listed in tests/runner_rules.py. Where mlx exists its
# modules are imported, never skipped.
if (sys.platform, platform.machine()) not in {("darwin", "arm64"), ("linux", "x86_64")}:
    pytest.skip(f"MLX has no build for this platform ({sys.platform} {platform.machine()})",
                allow_module_level=True)

# The engine loads usearch before any model, and with it loaded MLX's CPU JIT breaks
# (see semcode.models.mlx._mx): keep the tests in the same situation as users.
import usearch  # noqa: E402, F401, I001
import mlx.core  # noqa: E402, F401
import mlx_lm  # noqa: E402, F401
import llama_cpp  # noqa: E402, F401

from semcode.models.backends import choose_backend, is_mlx_spec  # noqa: E402
from semcode.models.base import ModelError  # noqa: E402
from semcode.models.llama_cpp import LlamaCppEmbedder, LlamaCppReranker  # noqa: E402
from semcode.models.mlx import MlxEmbedder, MlxReranker  # noqa: E402
from tiny_models import SAMPLE_QUERY as QUERY  # noqa: E402
from tiny_models import SAMPLE_TEXTS as TEXTS  # noqa: E402
from tiny_models_mlx import write_tiny_mlx_models  # noqa: E402


@pytest.fixture(scope="module")
def folders(tiny_models):
    return write_tiny_mlx_models(tiny_models.embedder.parent)


@pytest.fixture(scope="module")
def pair_embedders(tiny_models, folders):
    m = MlxEmbedder(folders.embedder)
    ll = LlamaCppEmbedder(tiny_models.embedder, n_threads=2)
    yield m, ll
    ll.close()


@pytest.fixture(scope="module")
def pair_rerankers(tiny_models, folders):
    m = MlxReranker(folders.reranker, batch_tokens=256)
    ll = LlamaCppReranker(tiny_models.reranker, n_threads=2, batch_tokens=256)
    yield m, ll
    ll.close()


def test_same_tokens(pair_embedders, pair_rerankers):
    me, le = pair_embedders
    for t in [*TEXTS, QUERY]:
        doc = me.profile.format_document(t)
        assert me.tokenize(doc) == le.tokenize(doc)
        assert me.tokenize(me.profile.format_query(t)) == le.tokenize(le.profile.format_query(t))
    mr, lr = pair_rerankers
    for t in TEXTS:
        assert mr.document_tokens(t) == lr.document_tokens(t)
        assert mr.full_prompt_tokens(QUERY, t) == lr.full_prompt_tokens(QUERY, t)
    assert mr.prefix_tokens(QUERY) == lr.prefix_tokens(QUERY)


def test_embedding_parity(pair_embedders):
    me, le = pair_embedders
    assert me.profile == le.profile and me.dims == le.dims == 64
    a, b = me.embed_documents(TEXTS), le.embed_documents(TEXTS)
    assert a.shape == b.shape and a.dtype == np.float32
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.9999, cos
    assert float(me.embed_query(QUERY) @ le.embed_query(QUERY)) >= 0.9999


def test_padded_batch_equals_one_at_a_time(pair_embedders):
    me, _ = pair_embedders
    batch = me.embed_documents(TEXTS)
    single = np.stack([me.embed_documents([t])[0] for t in TEXTS])
    assert (batch * single).sum(axis=1).min() >= 0.9999
    assert np.allclose(np.linalg.norm(batch, axis=1), 1, atol=1e-5)


def test_progress_early_stop_returns_prefix(pair_embedders):
    me, _ = pair_embedders
    full = me.embed_documents(TEXTS)
    part = MlxEmbedder(me.info.path, batch_tokens=64).embed_documents(TEXTS, lambda d, t: True)
    assert 0 < len(part) < len(TEXTS)
    assert (part * full[: len(part)]).sum(axis=1).min() >= 0.9999


def test_rerank_parity_and_prefix_reuse(pair_rerankers):
    mr, lr = pair_rerankers
    shared = mr.score(QUERY, TEXTS)
    plain = [mr.score_plain(QUERY, t) for t in TEXTS]
    reference = lr.score(QUERY, TEXTS)
    assert max(abs(x - y) for x, y in zip(shared, plain, strict=True)) <= 1e-4
    assert max(abs(x - y) for x, y in zip(shared, reference, strict=True)) <= 1e-3
    assert len(set(np.round(shared, 4))) > 1  # scores depend on the document
    assert mr.score(QUERY, []) == []


def test_identity_and_info(pair_embedders, folders):
    me, le = pair_embedders
    assert me.info.backend == "mlx" and me.info.identity.startswith("mlx:")
    # Same weights, different file format: llama.cpp and MLX keep separate caches
    # (quantisation and kernels differ in real models), same recipe part.
    assert me.info.identity.split(":", 2)[2] == le.info.identity.split(":", 2)[2]


def test_errors(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        MlxEmbedder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="config.json"):
        MlxEmbedder(tmp_path / "empty")
    with pytest.raises(ModelError, match="not in the cache"):
        MlxEmbedder("hf:semcode-test/does-not-exist", offline=True)


def test_backend_choice(folders):
    assert is_mlx_spec(str(folders.embedder)) and is_mlx_spec("hf:mlx-community/Qwen3-X")
    assert not is_mlx_spec("hf:Qwen/Qwen3-Embedding-0.6B-GGUF/q.gguf")
    mac = {"system": "darwin", "machine": "arm64"}
    assert choose_backend("auto", str(folders.embedder), **mac)[0] == "mlx"
    assert choose_backend("auto", "x.gguf", **mac)[0] == "llama.cpp"
    assert choose_backend("auto", str(folders.embedder), system="linux",
                          machine="x86_64")[0] == "llama.cpp"
    assert choose_backend("auto", "x.gguf", remote_url="http://h:1")[0] == "remote"
    name, why = choose_backend("mlx", "x")
    assert name == "mlx" and "setting" in why


@pytest.mark.bench
def test_speed_report(pair_embedders, pair_rerankers, capsys):
    docs = [f"{TEXTS[i % len(TEXTS)]} # {i}" for i in range(64)]
    rates = {}
    for name, e in zip(("mlx", "llama.cpp"), pair_embedders, strict=True):
        e.embed_documents(docs[:4])
        t = time.perf_counter()
        e.embed_documents(docs)
        rates[f"{name} embed docs/s"] = len(docs) / (time.perf_counter() - t)
    for name, r in zip(("mlx", "llama.cpp"), pair_rerankers, strict=True):
        r.score(QUERY, docs[:4])
        t = time.perf_counter()
        r.score(QUERY, docs[:30])
        rates[f"{name} rerank pairs/s"] = 30 / (time.perf_counter() - t)
    with capsys.disabled():
        print("\nspeed (tiny):", {k: round(v, 1) for k, v in rates.items()})
