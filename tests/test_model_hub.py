"""The first run on a fresh CPU-only machine configured with a hub static model
(`embedding_model = "hf:minishlab/potion-code-16M-v2"`, the CPU default before semcode
shipped its own), against a local fake hub (fake_hub.py): `semcode search` downloads it
(one line, then huggingface_hub's progress) and uses it at once; later runs touch no
network; an unreachable hub costs one line and lexical results.

The hub serves a tiny random model2vec model (tiny_static.py) under that repository's
real name; nothing leaves 127.0.0.1."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from fake_hub import FakeHub
from semcode.models import registry
from semcode.models.auto import HUB_CODE_EMBEDDING_MODEL as HUB_MODEL
from tiny_static import write_static_model

REPO = HUB_MODEL.removeprefix("hf:")  # minishlab/potion-code-16M-v2
QUERY = "token cache lookup"
FILES = ["config.json", "model.safetensors", "tokenizer.json"]


@pytest.fixture(scope="module")
def model_files(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_static_model(tmp_path_factory.mktemp("hub") / "potion")


def fresh_machine(tmp_path: Path, endpoint: str, name: str = "m") -> dict[str, str]:
    """The environment of a machine that has never run semcode: empty index cache and
    hub cache, a user config naming the hub model and nothing else, CPU only; the hub at
    `endpoint`. TQDM_POSITION=-1 is huggingface_hub's switch for progress bars where
    stderr is not a terminal."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("HF_", "SEMCODE_")) and k not in ("TRANSFORMERS_OFFLINE",)}
    config = tmp_path / name / "config.toml"
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text(f'embedding_model = "{HUB_MODEL}"\n')
    env.update({"HF_ENDPOINT": endpoint, "HF_HOME": str(tmp_path / name / "hf"),
                "SEMCODE_CACHE_DIR": str(tmp_path / name / "semcode"),
                "SEMCODE_CONFIG": str(config),
                "SEMCODE_GPU": "0", "TQDM_POSITION": "-1",
                "PYTHONPATH": os.pathsep.join(sys.path)})
    return env


def semcode(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "semcode", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=True)


def search(env: dict[str, str], workspace: Path, *extra: str
           ) -> tuple[list[dict[str, object]], list[str]]:
    """(the --json hits, semcode's own stderr lines) of the default search, reranker off
    (whether `auto` reranks depends on this CPU's speed)."""
    out = semcode(env, "search", "-w", str(workspace), "--json", "--no-rerank",
                  "--reranker-model", "off", *extra, QUERY)
    lines = [ln for ln in out.stderr.splitlines() if ln.startswith("semcode:")]
    return json.loads(out.stdout), lines


def dense_everywhere(hits: list[dict[str, object]]) -> bool:
    return bool(hits) and all("dense" in hit["stages"] for hit in hits)  # type: ignore[operator]


def test_first_search_downloads_the_cpu_model_and_is_semantic_at_once(
        workspace, tmp_path, model_files):
    # The weights arrive 1.5 s after they are asked for, longer than the search's
    # embedding budget (--embed-budget 1): the download must not use the budget up.
    hub = FakeHub({REPO: model_files}, delay_s={"model.safetensors": 1.5}).start()
    env = fresh_machine(tmp_path, hub.url)
    try:
        first = semcode(env, "search", "-w", str(workspace), "--json", "--no-rerank",
                        "--reranker-model", "off", "--embed-budget", "1", QUERY)
        hits = json.loads(first.stdout)
        assert dense_everywhere(hits), first.stderr  # semantic on the first run
        said = [ln for ln in first.stderr.splitlines() if ln.startswith("semcode:")]
        assert said == [f"semcode: downloading {HUB_MODEL} from 127.0.0.1 "
                        f"(first use; cached in {tmp_path / 'm' / 'hf' / 'hub'})"], said
        assert "model.safetensors: 100%" in first.stderr  # huggingface_hub's progress bar
        assert hub.fetched() == [f"{REPO}/{name}" for name in FILES]

        # Every later run: from the cache, not one request (not even the hub client's
        # telemetry), with the hub up...
        before = list(hub.requests)
        hits, said = search(env, workspace)
        assert dense_everywhere(hits) and said == []
        assert hub.requests == before
        listed = json.loads(semcode(env, "models", "--json", "-w", str(workspace)).stdout)
        embedder = next(row for row in listed if row["role"] == "embedder")
        assert embedder["spec"] == HUB_MODEL and embedder["backend"] == "model2vec"
        assert hub.requests == before
    finally:
        hub.stop()
    # ...and down.
    hits, said = search(env, workspace)
    assert dense_everywhere(hits) and said == []


def test_hub_down_on_a_fresh_machine_is_one_line_and_lexical_results(
        workspace, tmp_path, model_files):
    hub = FakeHub({REPO: model_files}).start()
    hub.stop()  # its port now refuses connections
    env = fresh_machine(tmp_path, hub.url)
    hits, said = search(env, workspace)
    assert said == [f"semcode: semantic search is off: cannot download {HUB_MODEL}: "
                    f"127.0.0.1 is unreachable (Connection refused)"]
    assert hits and all("lexical" in h["stages"] and "dense" not in h["stages"]  # type: ignore[operator]
                        for h in hits)
    assert hits[0]["name"] == "TokenCache" or hits[0]["container"] == "TokenCache"


@pytest.mark.parametrize(("broken", "why"), [
    (503, "HfHubHTTPError: Server error '503 Service Unavailable' for url "),
    (200, "127.0.0.1 does not answer like a Hugging Face hub (check HF_ENDPOINT and any proxy)"),
])
def test_a_hub_that_fails_is_one_line_at_once(workspace, tmp_path, model_files, broken, why):
    """Reachable but failing (an outage; a captive portal): one HEAD and one line, not
    huggingface_hub's retries (~25 s per file, a log line each) nor "no config.json"."""
    with FakeHub({REPO: model_files}, broken=broken) as hub:
        hits, said = search(fresh_machine(tmp_path, hub.url), workspace)
        heads = [path for method, path in hub.requests if method == "HEAD"]
    assert len(said) == 1 and said[0].startswith(
        f"semcode: semantic search is off: cannot download {HUB_MODEL}: {why}"), said
    assert heads == [f"/{REPO}/resolve/main/config.json"]
    assert hits and all("dense" not in h["stages"] for h in hits)  # type: ignore[operator]


def test_a_sentence_transformers_layout_downloads_and_then_loads_offline(
        workspace, tmp_path, model_files):
    """A repository without model2vec's config.json (the sentence-transformers layout):
    the hub's 404 for it is remembered in the cache, so an offline run finds the second
    layout instead of calling the model missing."""
    from safetensors.numpy import load_file, save_file

    st = tmp_path / "st-layout"
    st.mkdir()
    table = load_file(str(model_files / "model.safetensors"))["embeddings"]
    save_file({"embedding.weight": table}, str(st / "model.safetensors"))
    (st / "tokenizer.json").write_bytes((model_files / "tokenizer.json").read_bytes())
    (st / "config_sentence_transformers.json").write_text("{}", encoding="utf-8")
    with FakeHub({"minishlab/st-static-test": st}) as hub:
        env = fresh_machine(tmp_path, hub.url)
        model = ["--embedding-model", "hf:minishlab/st-static-test", "--reranker-model", "off"]
        semcode(env, "models", "--download", "-w", str(workspace), *model)
        assert sorted(hub.fetched()) == sorted(
            f"minishlab/st-static-test/{n}" for n in ("config_sentence_transformers.json",
                                               "model.safetensors", "tokenizer.json"))
    env["HF_HUB_OFFLINE"] = "1"
    hits, said = search(env, workspace, *model)
    assert dense_everywhere(hits) and said == [], said


# ------------------------------------------------------------------ the probe (in process)

def test_the_reachability_probe_goes_where_the_client_would_connect(monkeypatch):
    for var in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY",
                "all_proxy", "NO_PROXY", "no_proxy"):
        monkeypatch.delenv(var, raising=False)
    assert registry._probe_target("https://huggingface.co") == (
        "huggingface.co", 443, "huggingface.co")
    assert registry._probe_target("http://127.0.0.1:8123") == ("127.0.0.1", 8123, "127.0.0.1")
    monkeypatch.setenv("https_proxy", "http://proxy.example:3128")
    assert registry._probe_target("https://huggingface.co") == (
        "proxy.example", 3128, "the proxy proxy.example:3128 (for huggingface.co)")
    monkeypatch.setenv("no_proxy", "huggingface.co")
    assert registry._probe_target("https://huggingface.co")[0] == "huggingface.co"


def test_a_static_repository_with_any_name_loads_from_the_hub(workspace, tmp_path,
                                                               model_files):
    """`hf:OWNER/REPO` whose name does not say "static", on a machine without MLX: the
    only thing it can be is a static model (llama.cpp takes one GGUF file)."""
    repo = "someone/distilled-code-embedder"
    hub = FakeHub({repo: model_files}).start()
    env = fresh_machine(tmp_path, hub.url)
    try:
        hits, said = search(env, workspace, "--embedding-model", f"hf:{repo}")
    finally:
        hub.stop()
    assert dense_everywhere(hits), said
    assert said == [f"semcode: downloading hf:{repo} from 127.0.0.1 "
                    f"(first use; cached in {tmp_path / 'm' / 'hf' / 'hub'})"], said
