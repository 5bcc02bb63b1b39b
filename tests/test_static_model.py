"""The static (model2vec) embedder tier and the hardware-chosen `auto` defaults.

A tiny random static model is written here in model2vec's own on-disk format (see
tiny_static.py) and loaded through the real loading code; nothing is downloaded."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from semcode.config import Settings
from semcode.kinds import Role
from semcode.models import factory
from semcode.models import machine as machine_probe
from semcode.models.auto import (
    GPU_EMBEDDING_MODEL,
    GPU_RERANKER_MODEL,
    HUB_CODE_EMBEDDING_MODEL,
    cpu_embedding_model,
    model_for,
)
from semcode.models.backends import choose_backend, is_mlx_spec, is_static_spec
from semcode.models.base import ModelError
from semcode.models.factory import ModelRequest, build_model, register_backend
from semcode.models.hub import ModelSpec, resolve_model_folder
from semcode.models.machine import Hardware
from semcode.models.registry import ModelSet
from semcode.models.static import StaticEmbedder, is_static_folder
from semcode.search.engine import Engine, SearchRequest
from tiny_static import write_hub_cache, write_static_model

TEXTS = ["def parse_config(path): return json.loads(open(path).read())",
         "retry the request with exponential backoff until the deadline expires",
         "hash the password with a salt and compare it in constant time",
         "class TokenCache: def get(self, key): return self.items.get(key)"]


@pytest.fixture(scope="module")
def static_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_static_model(tmp_path_factory.mktemp("static") / "tiny-m2v")


def settings_for(tmp_path: Path, model: str, **extra: object) -> Settings:
    return Settings.from_mapping({"embedding_model": model, "reranker_model": "off",
                                  "index_dir": str(tmp_path / "index"), **extra})


# ------------------------------------------------------------------------- the model

def test_vectors_match_model2vec_itself(static_model):
    from model2vec import StaticModel

    ours = StaticEmbedder(static_model)
    theirs = StaticModel.from_pretrained(str(static_model), normalize=True)
    texts = [*TEXTS, "", "Ünïcode tokens ½ and an unknown ✓ symbol", "x " * 3000]
    got = ours.embed_documents(texts)
    want = theirs.encode(texts)
    assert got.shape == (len(texts), 24) and got.dtype == np.float32
    assert np.abs(got - want).max() < 1e-5
    norms = np.linalg.norm(got[:4], axis=1)
    assert np.allclose(norms, 1.0, atol=1e-5)
    # Queries are embedded like documents (a static model has no instruction).
    assert np.allclose(ours.embed_query(TEXTS[1]), got[1], atol=1e-6)
    # Batches split across DOCS_PER_BATCH give the same rows.
    many = ours.embed_documents(TEXTS * 300)
    assert np.allclose(many[-4:], got[:4], atol=1e-6)


def test_identity_follows_content_not_path(static_model, tmp_path):
    copy = tmp_path / "elsewhere"
    shutil.copytree(static_model, copy)
    a, b = StaticEmbedder(static_model), StaticEmbedder(copy)
    assert a.info.identity == b.info.identity and str(static_model) not in a.info.identity
    assert a.info.backend == "model2vec" and a.info.dims == 24
    other = StaticEmbedder(write_static_model(tmp_path / "other", seed=99))
    assert other.info.identity != a.info.identity


def test_broken_or_foreign_folders_fail_in_one_line(static_model, tmp_path):
    with pytest.raises(ModelError, match="not a model2vec model"):
        StaticEmbedder(tmp_path)
    broken = tmp_path / "broken"
    shutil.copytree(static_model, broken)
    (broken / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ModelError, match="cannot read") as exc:
        StaticEmbedder(broken)
    assert "\n" not in str(exc.value)
    assert is_static_folder(static_model) and not is_static_folder(tmp_path)


def test_no_torch_at_run_time(static_model):
    code = ("import sys; from semcode.models.static import StaticEmbedder; "
            f"m = StaticEmbedder({str(static_model)!r}); m.embed_documents(['a b']); "
            "import semcode.models.costs, semcode.models.registry; "
            "print(sorted(k for k in ('torch', 'transformers', 'model2vec', 'joblib') "
            "if k in sys.modules))")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, timeout=60, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------------- specs

def test_static_specs_pick_the_model2vec_backend(static_model):
    assert is_static_spec(str(static_model)) and is_static_spec(HUB_CODE_EMBEDDING_MODEL)
    assert is_static_spec("builtin") and is_static_spec("Built-in")
    assert not is_static_spec(GPU_EMBEDDING_MODEL) and not is_static_spec("off")
    # On Apple silicon a static repository is not mistaken for an MLX checkpoint.
    mac = {"system": "darwin", "machine": "arm64"}
    assert choose_backend("auto", HUB_CODE_EMBEDDING_MODEL, **mac)[0] == "model2vec"
    assert choose_backend("auto", "builtin", **mac)[0] == "model2vec"
    assert not is_mlx_spec(HUB_CODE_EMBEDDING_MODEL) and not is_mlx_spec("builtin")
    assert choose_backend("llama.cpp", str(static_model))[0] == "model2vec"
    assert choose_backend("remote", str(static_model), remote_url="http://h:1")[0] == "remote"
    spec = ModelSpec.parse("hf:minishlab/potion-code-16M-v2")
    assert spec.repo_id == "minishlab/potion-code-16M-v2" and spec.filename is None
    # A repository whose name says nothing, not cached yet: llama.cpp cannot take a
    # repository and MLX does not run here, so it can only be a static model.
    linux = {"system": "linux", "machine": "x86_64"}
    unnamed = "hf:someone/distilled-code-embedder"
    assert not is_static_spec(unnamed)
    name, why = choose_backend("auto", unnamed, **linux)
    assert name == "model2vec" and "static" in why
    assert choose_backend("auto", unnamed + "/model.gguf", **linux)[0] == "llama.cpp"
    assert choose_backend("auto", unnamed, **mac)[0] != "model2vec"  # may be MLX there


def test_hub_spec_resolves_from_the_hub_cache_offline(tmp_path, monkeypatch):
    from huggingface_hub import constants

    snapshot = write_hub_cache(tmp_path / "hf", "someone/tiny-static-m2v")
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path / "hf" / "hub"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    spec = ModelSpec.parse("hf:someone/tiny-static-m2v")
    assert resolve_model_folder(spec, offline=True) == snapshot
    models = ModelSet(settings_for(tmp_path, "hf:someone/tiny-static-m2v"))
    embedder = models.embedder()
    assert embedder is not None and embedder.info.backend == "model2vec"
    info = models.status()[Role.EMBEDDER].info
    assert info is not None and info.backend == "model2vec"
    # Not cached and offline: one line, the engine degrades.
    missing = ModelSet(settings_for(tmp_path, "hf:someone/not-cached-m2v"))
    assert missing.embedder() is None
    (line,) = [n.line() for n in missing.notices() if n.role == Role.EMBEDDER]
    assert "not in the cache (offline mode" in line and "\n" not in line


# ------------------------------------------------------------------------- the engine

def test_index_embeds_once_and_a_model_change_reembeds(workspace, tmp_path, static_model):
    settings = settings_for(tmp_path, str(static_model))
    engine = Engine.open(workspace, settings)
    engine.sync()
    first = engine.embed_pending()
    assert first.embedded > 0 and first.pending == 0
    response = engine.search(SearchRequest("retry with exponential backoff"))
    assert response.mode == "hybrid" and any("dense" in h.stages for h in response.hits)
    total = len(engine.indexer.refs)
    engine.close()
    engine.models.close()
    again = Engine.open(workspace, settings)
    again.sync()
    assert again.embed_pending().embedded == 0  # the cache answers: nothing re-embedded
    again.close()
    again.models.close()
    # Another width: everything is re-embedded through the new model, no dimension error.
    wider = write_static_model(tmp_path / "wider", dims=40, seed=5)
    engine = Engine.open(workspace, settings_for(tmp_path, str(wider)))
    engine.sync()
    assert engine.embed_pending().embedded == total
    assert engine.search(SearchRequest("token cache")).mode == "hybrid"
    engine.close()
    engine.models.close()


def test_missing_model_degrades_to_lexical_in_one_line(workspace, tmp_path):
    engine = Engine.open(workspace, settings_for(tmp_path, str(tmp_path / "no-such-model")))
    engine.sync()
    response = engine.search(SearchRequest("refresh expired token"))
    assert response.mode == "lexical" and response.hits
    off = [n for n in response.notices if n.startswith("semantic search is off")]
    assert len(off) == 1 and "\n" not in off[0]
    engine.close()
    engine.models.close()


# ------------------------------------------------------------------------- auto

@pytest.fixture
def machine(monkeypatch):
    """Pretend hardware: set(gpu, gflops)."""

    def set_machine(gpu: bool, gflops: float = 190.0) -> None:
        monkeypatch.setattr(machine_probe, "_hardware", Hardware(gpu, "test machine"))
        monkeypatch.setattr(machine_probe, "_gflops", gflops)

    return set_machine


def test_auto_picks_the_static_model_on_a_cpu_and_qwen3_on_a_gpu(machine, tmp_path):
    settings = Settings.from_mapping({"index_dir": str(tmp_path)})
    assert settings.embedding_model == "auto" and settings.reranker_model == "auto"
    machine(gpu=False, gflops=190.0)  # the 2-core reference machine
    spec, why = model_for(settings, "embedder")
    assert spec == cpu_embedding_model() and "static" in why
    spec, why = model_for(settings, "reranker")
    assert spec == "off" and "budget 4000 ms" in why and "\n" not in why
    status = ModelSet(settings).status()
    reranker, embedder = status[Role.RERANKER], status[Role.EMBEDDER]
    assert reranker.state == "off" and reranker.setting == "auto"
    assert embedder.spec == cpu_embedding_model() and embedder.choice
    machine(gpu=False, gflops=2000.0)  # a big CPU fits RERANK_MIN documents in the budget
    assert model_for(settings, "reranker")[0] == GPU_RERANKER_MODEL
    machine(gpu=True)
    assert model_for(settings, "embedder")[0] == GPU_EMBEDDING_MODEL
    assert model_for(settings, "reranker")[0] == GPU_RERANKER_MODEL
    explicit = Settings.from_mapping({"embedding_model": "off"})
    assert model_for(explicit, "embedder") == ("off", "")


def test_auto_reranker_off_is_said_once(machine, tmp_path):
    machine(gpu=False, gflops=190.0)
    models = ModelSet(Settings.from_mapping({"embedding_model": "off",
                                             "index_dir": str(tmp_path)}))
    assert models.reranker() is None
    lines = [n.line() for n in models.notices() if n.role == Role.RERANKER]
    assert len(lines) == 1 and "set reranker_model to rerank anyway" in lines[0]


def test_gpu_detection_on_this_machine_and_override(monkeypatch):
    monkeypatch.setenv("SEMCODE_GPU", "0")
    assert machine_probe._detect().gpu is False
    monkeypatch.setenv("SEMCODE_GPU", "1")
    assert machine_probe._detect().gpu is True
    monkeypatch.delenv("SEMCODE_GPU")
    found = machine_probe._detect()  # whatever this machine has; never raises
    assert isinstance(found.gpu, bool) and found.why


# ------------------------------------------------------------------------- the factory

def test_one_factory_builds_every_backend(static_model, tmp_path):
    settings = settings_for(tmp_path, str(static_model))
    model = build_model("model2vec", ModelRequest("embedder", str(static_model), settings))
    assert isinstance(model, StaticEmbedder)
    with pytest.raises(ModelError, match="not a reranker"):
        build_model("model2vec", ModelRequest("reranker", str(static_model), settings))
    with pytest.raises(ModelError, match="not available"):
        build_model("nope", ModelRequest("embedder", "x", settings))
    seen: list[ModelRequest] = []

    def fake(request: ModelRequest) -> StaticEmbedder:
        seen.append(request)
        return StaticEmbedder(static_model)

    register_backend("fake", fake)
    try:
        build_model("fake", ModelRequest("embedder", "spec", settings, download=False))
        assert seen[0].spec == "spec" and seen[0].download is False
    finally:
        factory._FACTORIES.pop("fake")


# ------------------------------------------------------------------------- the CLI

def test_cli_index_and_search_with_a_static_hub_model(workspace, tmp_path):
    write_hub_cache(tmp_path / "hf", "someone/tiny-static-m2v")
    env = {**os.environ, "SEMCODE_CACHE_DIR": str(tmp_path / "cache"),
           "HF_HOME": str(tmp_path / "hf"), "HF_HUB_OFFLINE": "1", "SEMCODE_GPU": "0",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    model = ["--embedding-model", "hf:someone/tiny-static-m2v", "--reranker-model", "off"]

    def semcode(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "semcode", *args], capture_output=True,
                              text=True, env=env, timeout=120, check=True)

    first = semcode("index", str(workspace), *model)
    assert "(0 pending)" in first.stderr and "embedded 0 chunks" not in first.stderr
    second = semcode("index", str(workspace), *model)
    assert "embedded 0 chunks" in second.stderr
    out = semcode("search", "-w", str(workspace), "--json", *model, "token cache lookup")
    results = json.loads(out.stdout)
    assert results and any("dense" in r["stages"] for r in results)
    assert not [ln for ln in out.stderr.splitlines() if "semantic search is off" in ln]
    listed = json.loads(semcode("models", "--json", "-w", str(workspace)).stdout)
    rows = {r["role"]: r for r in listed}
    assert rows["embedder"]["spec"] == cpu_embedding_model()  # auto on a CPU
    assert rows["embedder"]["backend"] == "model2vec" and "static" in rows["embedder"]["choice"]
    assert "SEMCODE_GPU=0" in rows["reranker"]["choice"]  # on or off: it depends on the CPU
    assert "chunks/s" in rows["embedder"]["cost"]


def test_queries_share_the_static_model(static_model, tmp_path):
    models = ModelSet(settings_for(tmp_path, str(static_model)))
    docs, queries = models.embedder(), models.query_embedder()
    assert docs is not None and queries is docs
    models.close()
    assert models.embedder() is not None  # reloads after close


def test_static_models_weigh_less_in_fusion(static_model, tmp_path):
    from semcode.models.static import FUSION_WEIGHT

    models = ModelSet(settings_for(tmp_path, str(static_model), dense_weight=0.8))
    assert models.dense_weight() == pytest.approx(0.8)  # nothing loaded yet
    assert models.embedder() is not None
    assert models.dense_weight() == pytest.approx(0.8 * FUSION_WEIGHT)


def test_models_says_what_a_heavy_embedder_costs_on_this_cpu(machine, static_model, tmp_path):
    from semcode.models.costs import embedding_cost

    machine(gpu=False, gflops=190.0)
    settings = Settings.from_mapping({"index_dir": str(tmp_path)})
    line = embedding_cost(settings, GPU_EMBEDDING_MODEL, "llama.cpp", None, 20_000)
    assert line is not None and "(estimated)" in line and "20,000 chunks" in line
    assert re.search(r"in ~[\d.]+ (h|days);", line) and cpu_embedding_model() in line
    fast = embedding_cost(settings, str(static_model), "model2vec", static_model, 20_000)
    assert fast is not None and "(measured)" in fast
    machine(gpu=True)
    assert embedding_cost(settings, GPU_EMBEDDING_MODEL, "llama.cpp", None, 20_000) is None
