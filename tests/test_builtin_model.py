"""The static code embedder shipped inside the package (`embedding_model = "builtin"`):
it loads through the real loader with the profile it was trained with, its identity (the
embedding-cache key) is its files' content, `auto` picks it on a CPU, and a fresh machine
with no network searches semantically with it on the first run."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from sample_workspace import FILES, write_files
from semcode.config import Settings
from semcode.models import machine as machine_probe
from semcode.models.auto import model_for
from semcode.models.base import ModelError
from semcode.models.builtin import EMBEDDER_DIR, embedder_folder, model_meta
from semcode.models.factory import ModelRequest, build_model
from semcode.models.registry import ModelSpec
from semcode.models.static import StaticEmbedder

pytestmark = pytest.mark.skipif(embedder_folder() is None,
                                reason="this checkout ships no built-in model")


def test_the_shipped_folder_is_a_small_model2vec_model() -> None:
    folder = embedder_folder()
    assert folder == EMBEDDER_DIR
    names = {p.name for p in folder.iterdir()}
    assert {"config.json", "model.safetensors", "tokenizer.json", "semcode.json"} <= names
    assert sum(p.stat().st_size for p in folder.iterdir()) <= 32 << 20
    meta = model_meta(folder)
    assert meta["profile"] == "static-code-words" and float(meta["fusion_weight"]) > 0
    assert isinstance(meta["quality"], str) and meta["data"]["manifest_sha256"]


def test_builtin_loads_through_the_factory_with_its_own_profile_and_weight() -> None:
    settings = Settings.from_mapping({"embedding_model": "builtin"})
    spec = ModelSpec.parse("builtin")
    assert spec.local_path == EMBEDDER_DIR
    emb = build_model("model2vec", ModelRequest(role="embedder", spec="builtin",
                                                settings=settings, download=False))
    assert isinstance(emb, StaticEmbedder)
    assert emb.profile.name == "static-code-words"
    assert emb.fusion_weight == pytest.approx(float(model_meta(EMBEDDER_DIR)["fusion_weight"]))
    q = emb.embed_query("retry a failed http request")
    d = emb.embed_documents(["def retry_request(session, url):\n    return session.get(url)",
                             "def parse_color(text):\n    return text.lower()"])
    assert (d @ q)[0] > (d @ q)[1]  # meaning: the retry function is nearer


def test_identity_is_the_content_not_the_path(tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(EMBEDDER_DIR, copy)
    shipped = StaticEmbedder(EMBEDDER_DIR).info.identity
    assert StaticEmbedder(copy).info.identity == shipped
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    assert StaticEmbedder(copy).info.identity != shipped  # an upgrade re-embeds once


def test_auto_on_a_cpu_is_the_builtin_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(machine_probe, "_hardware", machine_probe.Hardware(False, "test"))
    spec, why = model_for(Settings(), "embedder")
    assert spec == "builtin" and "static" in why


def test_a_missing_builtin_model_is_one_line(monkeypatch: pytest.MonkeyPatch,
                                             tmp_path: Path) -> None:
    from semcode.models import builtin, registry

    monkeypatch.setattr(builtin, "EMBEDDER_DIR", tmp_path / "none")
    monkeypatch.setattr(registry, "embedder_folder", builtin.embedder_folder)
    with pytest.raises(ModelError, match="ships no built-in model"):
        ModelSpec.parse("builtin")


def _fresh_env(tmp_path: Path) -> dict[str, str]:
    """A machine that never ran semcode, with no network (the hub is a closed port) and
    no user config: only what the package ships."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "SEMCODE_"))}
    env.update({"HF_ENDPOINT": "http://127.0.0.1:9", "HF_HOME": str(tmp_path / "hf"),
                "SEMCODE_CACHE_DIR": str(tmp_path / "cache"),
                "SEMCODE_CONFIG": str(tmp_path / "no-config.toml"), "SEMCODE_GPU": "0",
                "PYTHONPATH": os.pathsep.join(sys.path)})
    return env


def test_a_fresh_offline_machine_searches_semantically_on_the_first_run(tmp_path: Path) -> None:
    workspace = tmp_path / "ws"
    write_files(workspace, FILES)
    env = _fresh_env(tmp_path)
    out = subprocess.run([sys.executable, "-m", "semcode", "search", "-w", str(workspace),
                          "--json", "--no-rerank", "--reranker-model", "off",
                          "where are tokens cached"], capture_output=True, text=True,
                         env=env, timeout=180)
    assert out.returncode == 0, out.stderr
    hits = json.loads(out.stdout)
    assert hits and all("dense" in h["stages"] for h in hits), out.stderr
    assert "semantic search is off" not in out.stderr
    listed = json.loads(subprocess.run(
        [sys.executable, "-m", "semcode", "models", "--json", "-w", str(workspace)],
        capture_output=True, text=True, env=env, timeout=120, check=True).stdout)
    embedder = next(r for r in listed if r["role"] == "embedder")
    assert embedder["state"] == "built-in" and embedder["spec"] == "builtin"
    assert embedder["quality"] and embedder["backend"] == "model2vec"
