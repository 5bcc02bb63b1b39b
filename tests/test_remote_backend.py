"""The remote backend against real servers on loopback.

* llama-cpp-python's own OpenAI-compatible server (`python -m llama_cpp.server`) serving
  the tiny Qwen3 embedding GGUF: vectors must equal the in-process backend's.
* tests/rerank_server.py wrapping the in-process reranker: scores must equal it.
* a stdlib fault server for what real servers do on bad days: connection refused, HTTP
  500, too slow, wrong width, malformed JSON, and recovery afterwards.

Speeds are printed by the `bench` tests (pytest -m bench), never asserted."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# fastapi ... uvicorn: llama_cpp.server's own dependencies (the dev extra), imported so
# that a missing one fails here instead of skipping the server tests.
import fastapi  # noqa: F401
import numpy as np
import pydantic_settings  # noqa: F401
import pytest
import sse_starlette  # noqa: F401
import starlette_context  # noqa: F401
import uvicorn  # noqa: F401

from rerank_server import RerankServer
from semcode.kinds import Role
from semcode.models.base import ModelError
from semcode.models.llama_cpp import LlamaCppEmbedder, LlamaCppReranker
from semcode.models.profiles import QWEN3_EMBEDDING
from semcode.models.remote import RemoteConfig, RemoteEmbedder, RemoteReranker

TEXTS = [
    "def refresh_token(session, expires_at):\n    return fetch_new_token(session.user)",
    "class UserAccount:\n    def __init__(self, name): self.name = name",
    "The quick brown fox jumps over the lazy dog.",
    'function parseConfig(path) { return JSON.parse(fs.readFileSync(path, "utf8")); }',
    "für größere Ströme: ünïcödé ✓ 日本語",
    "x",
    "for i in range(10):\n    print(i)\n" * 8,
]
QUERY = "where do we refresh expired tokens"



def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ----------------------------------------------------------------- llama_cpp.server


@pytest.fixture(scope="module")
def llama_server(tiny_models, tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("llama-server") / "server.log"
    cmd = [sys.executable, "-m", "llama_cpp.server", "--model", str(tiny_models.embedder),
           "--model_alias", "tiny-qwen3-embedding", "--embedding", "true",
           "--host", "127.0.0.1", "--port", str(port), "--n_threads", "2",
           "--n_ctx", "2048", "--n_batch", "2048", "--n_ubatch", "2048", "--verbose", "false"]
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(url + "/v1/models", timeout=1).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"llama_cpp.server did not start:\n{log.read_text()[-2000:]}")
                time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="module")
def local_embedder(tiny_models):
    e = LlamaCppEmbedder(tiny_models.embedder, n_threads=2)
    yield e
    e.close()


def test_llama_server_embeddings_equal_in_process(llama_server, local_embedder):
    remote = RemoteEmbedder(RemoteConfig(llama_server, model="tiny-qwen3-embedding"),
                            profile=QWEN3_EMBEDDING)
    assert remote.dims == local_embedder.dims == 64
    a = remote.embed_documents(TEXTS)
    b = local_embedder.embed_documents(TEXTS)
    assert a.shape == b.shape and a.dtype == np.float32
    cos = (a * b).sum(axis=1)
    assert cos.min() >= 0.9999, cos
    # The query instruction is applied client-side, as in process.
    q_remote, q_local = remote.embed_query(QUERY), local_embedder.embed_query(QUERY)
    assert float(q_remote @ q_local) >= 0.9999
    assert float(q_remote @ remote.embed_documents([QUERY])[0]) < 0.999


def test_llama_server_profile_from_model_name(llama_server):
    # A Qwen3 name picks the Qwen3-Embedding recipe without being told.
    e = RemoteEmbedder(RemoteConfig(llama_server, model="Qwen3-Embedding-0.6B"))
    assert e.profile.name == "qwen3-embedding"


def test_identity_rule(llama_server, local_embedder):
    cfg = RemoteConfig(llama_server, model="tiny-qwen3-embedding")
    a = RemoteEmbedder(cfg, profile=QWEN3_EMBEDDING)
    b = RemoteEmbedder(RemoteConfig(llama_server + "/v1/", model="tiny-qwen3-embedding"),
                       profile=QWEN3_EMBEDDING)
    other_url = RemoteEmbedder(RemoteConfig(llama_server.replace("127.0.0.1", "localhost"),
                                            model="tiny-qwen3-embedding"),
                               profile=QWEN3_EMBEDDING)
    assert a.info.identity == b.info.identity  # same server, same model: shared vectors
    assert a.info.identity.startswith("remote:")
    assert a.info.identity != other_url.info.identity
    assert a.info.identity != local_embedder.info.identity  # never shared with local
    assert a.info.backend == "remote" and a.info.dims == 64


@pytest.mark.bench
def test_speed_report_remote_embeddings(llama_server, local_embedder, capsys):
    remote = RemoteEmbedder(RemoteConfig(llama_server, model="tiny-qwen3-embedding"),
                            profile=QWEN3_EMBEDDING)
    docs = [f"{TEXTS[i % len(TEXTS)]} # {i}" for i in range(128)]
    rates = {}
    for name, e in (("remote", remote), ("llama.cpp", local_embedder)):
        e.embed_documents(docs[:8])
        t = time.perf_counter()
        e.embed_documents(docs)
        rates[name] = len(docs) / (time.perf_counter() - t)
        t = time.perf_counter()
        for _ in range(10):
            e.embed_query(QUERY)
        rates[name + " query/s"] = 10 / (time.perf_counter() - t)
    with capsys.disabled():
        print("\nspeed (tiny, embed docs/s):", {k: round(v, 1) for k, v in rates.items()})


# ----------------------------------------------------------------- rerank server


@pytest.fixture(scope="module")
def rerank_server(tiny_models):
    served = LlamaCppReranker(tiny_models.reranker, n_threads=2)
    server = RerankServer(served).start()
    yield server
    server.stop()
    served.close()


@pytest.fixture(scope="module")
def local_reranker(tiny_models):
    r = LlamaCppReranker(tiny_models.reranker, n_threads=2)
    yield r
    r.close()


@pytest.mark.parametrize("api", ["auto", "tei"])
def test_rerank_scores_equal_in_process(rerank_server, local_reranker, api):
    remote = RemoteReranker(RemoteConfig(rerank_server.url, model="tiny-reranker",
                                         rerank_api=api))
    got = remote.score(QUERY, TEXTS)
    want = local_reranker.score(QUERY, TEXTS)
    assert len(got) == len(TEXTS)
    assert max(abs(x - y) for x, y in zip(got, want, strict=True)) <= 1e-6
    assert remote.score(QUERY, []) == []
    assert remote.info.backend == "remote" and remote.tokens_per_second()


@pytest.mark.bench
def test_speed_report_remote_rerank(rerank_server, local_reranker, capsys):
    remote = RemoteReranker(RemoteConfig(rerank_server.url))
    docs = [f"{TEXTS[i % len(TEXTS)]} # {i}" for i in range(30)]
    rates = {}
    for name, r in (("remote", remote), ("llama.cpp", local_reranker)):
        r.score(QUERY, docs[:4])
        t = time.perf_counter()
        r.score(QUERY, docs)
        rates[name] = len(docs) / (time.perf_counter() - t)
    with capsys.disabled():
        print("\nspeed (tiny, rerank pairs/s):", {k: round(v, 1) for k, v in rates.items()})


# ----------------------------------------------------------------- fault injection


class FaultServer:
    """Answers /v1/embeddings, /v1/rerank and /v1/models; `mode` says how to misbehave."""

    def __init__(self, dims: int = 8, rerank_paths: tuple[str, ...] = ("/v1/rerank",)) -> None:
        self.mode = "ok"
        self.dims = dims
        self.requests: list[tuple[str, dict[str, str], Any]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _send(self, code: int, body: bytes) -> None:
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:  # noqa: N802
                self._send(200, json.dumps({"data": [{"id": "fake", "owned_by": "t",
                                                      "meta": {"n_embd": outer.dims}}]}).encode())

            def do_POST(self) -> None:  # noqa: N802
                req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.requests.append((self.path, dict(self.headers), req))
                mode = outer.mode
                if mode == "500":
                    self._send(500, b'{"error": {"message": "model crashed"}}')
                    return
                if mode == "slow":
                    time.sleep(3)
                if mode == "malformed":
                    self._send(200, b'{"data": [{"embedding": [0.1, ')
                    return
                if self.path == "/v1/embeddings":
                    width = outer.dims - 1 if mode == "wrong_dim" else outer.dims
                    data = [{"index": i, "object": "embedding",
                             "embedding": [float(len(t) + j + 1) for j in range(width)]}
                            for i, t in enumerate(req["input"])]
                    if mode == "few":
                        data = data[:-1]
                    self._send(200, json.dumps({"data": data, "model": "fake",
                                                "usage": {"prompt_tokens": 5}}).encode())
                elif self.path in rerank_paths:
                    docs = req["documents"]
                    if mode == "logits":
                        results = [{"index": i, "relevance_score": float(len(d)) - 3}
                                   for i, d in enumerate(docs)]
                    elif mode == "no_index":
                        results = [{"relevance_score": 0.5} for _ in docs]
                    else:
                        results = [{"index": i, "relevance_score": 1 / (1 + len(d))}
                                   for i, d in enumerate(docs)]
                    self._send(200, json.dumps({"results": results}).encode())
                else:
                    self._send(404, b'{"error": "not found"}')

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def fault():
    s = FaultServer()
    yield s
    s.stop()


def _cfg(url: str, **kw: Any) -> RemoteConfig:
    base = dict(timeout_s=1.0, retries=2, backoff_s=0.01, cooldown_s=0.3)
    base.update(kw)
    return RemoteConfig(url, model="fake", **base)  # type: ignore[arg-type]


def _one_line(exc: pytest.ExceptionInfo[ModelError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and "Traceback" not in msg
    return msg


def test_connection_refused():
    port = _free_port()  # closed again: nothing listens there
    t = time.monotonic()
    with pytest.raises(ModelError) as exc:
        RemoteEmbedder(_cfg(f"http://127.0.0.1:{port}"))
    assert "cannot connect" in _one_line(exc) and f"127.0.0.1:{port}" in str(exc.value)
    assert time.monotonic() - t < 2
    with pytest.raises(ModelError, match="cannot connect"):
        RemoteReranker(_cfg(f"http://127.0.0.1:{port}"))


def test_http_500_retried_then_cooldown_then_recovery(fault):
    e = RemoteEmbedder(_cfg(fault.url))
    assert e.dims == 8
    fault.mode = "500"
    n = len(fault.requests)
    with pytest.raises(ModelError) as exc:
        e.embed_query("q")
    assert "HTTP 500" in _one_line(exc) and "model crashed" in str(exc.value)
    assert len(fault.requests) - n == 3  # one try and two retries
    # Down: the next call fails at once, without a request.
    n = len(fault.requests)
    with pytest.raises(ModelError, match="unavailable"):
        e.embed_query("q")
    assert len(fault.requests) == n
    # The server comes back: after the cooldown, calls work again.
    fault.mode = "ok"
    time.sleep(0.35)
    assert e.embed_query("q").shape == (8,)


def test_timeout_is_a_deadline(fault):
    e = RemoteEmbedder(_cfg(fault.url, timeout_s=0.5))
    fault.mode = "slow"
    t = time.monotonic()
    with pytest.raises(ModelError) as exc:
        e.embed_documents(["a", "b"])
    elapsed = time.monotonic() - t
    assert "timed out" in _one_line(exc) or "no answer" in str(exc.value)
    assert elapsed < 1.0, elapsed


def test_wrong_dimension(fault):
    e = RemoteEmbedder(_cfg(fault.url))
    fault.mode = "wrong_dim"
    with pytest.raises(ModelError) as exc:
        e.embed_documents(["a"])
    assert "7-dimensional vectors, expected 8" in _one_line(exc)


def test_malformed_json(fault):
    e = RemoteEmbedder(_cfg(fault.url))
    fault.mode = "malformed"
    n = len(fault.requests)
    with pytest.raises(ModelError) as exc:
        e.embed_query("q")
    assert "malformed JSON" in _one_line(exc)
    assert len(fault.requests) - n == 1  # not retried: a broken server stays broken


def test_wrong_count(fault):
    e = RemoteEmbedder(_cfg(fault.url))
    fault.mode = "few"
    with pytest.raises(ModelError, match="1 vectors for 2 inputs"):
        e.embed_documents(["a", "b"])


def test_rerank_faults_and_logits(fault):
    r = RemoteReranker(_cfg(fault.url))
    assert r.score("q", ["ab", "abcd"]) == pytest.approx([1 / 3, 1 / 5])
    fault.mode = "logits"  # raw logits (llama-server's rank head) become probabilities
    s = r.score("q", ["ab", "abcdef"])
    assert s == pytest.approx([1 / (1 + np.exp(1)), 1 / (1 + np.exp(-3))])
    fault.mode = "no_index"
    with pytest.raises(ModelError, match="malformed rerank response"):
        r.score("q", ["a"])
    time.sleep(0.35)
    fault.mode = "500"
    with pytest.raises(ModelError, match="HTTP 500"):
        r.score("q", ["a"])
    fault.mode = "malformed"
    time.sleep(0.35)
    with pytest.raises(ModelError, match="malformed JSON"):
        r.score("q", ["a"])


def test_rerank_path_fallback():
    s = FaultServer(rerank_paths=("/rerank",))  # TEI-like: no /v1 prefix
    try:
        r = RemoteReranker(_cfg(s.url))
        assert r.score("q", ["ab"]) == pytest.approx([1 / 3])
        assert {p for p, _, _ in s.requests[-1:]} == {"/rerank"}
    finally:
        s.stop()


def test_api_key_sent_never_shown(fault, monkeypatch):
    monkeypatch.setenv("SEMCODE_TEST_KEY", "sk-secret-123")
    e = RemoteEmbedder(_cfg(fault.url, api_key_env="SEMCODE_TEST_KEY"))
    e.embed_query("q")
    assert fault.requests[-1][1].get("Authorization") == "Bearer sk-secret-123"
    assert "sk-secret" not in repr(e.info)
    fault.mode = "500"
    with pytest.raises(ModelError) as exc:
        e.embed_query("q")
    assert "sk-secret" not in str(exc.value)


def test_credentials_in_url_not_in_identity(fault):
    url = fault.url.replace("http://", "http://user:pw@")
    e = RemoteEmbedder(_cfg(url))
    assert "pw" not in e.info.path and "user" not in e.info.identity


def test_bad_config():
    with pytest.raises(ModelError, match="remote_url"):
        RemoteConfig("")
    with pytest.raises(ModelError, match="http"):
        RemoteConfig("ftp://x")



# ----------------------------------------------------------------- through the engine


def test_engine_on_remote_servers_and_a_server_going_down(llama_server, tiny_models, workspace,
                                                          tmp_path):
    """Settings alone send the engine to remote servers (`remote_url` makes `auto` pick
    the remote backend); a server going down costs one notice, never an exception."""
    from semcode.config import Settings
    from semcode.search.engine import Engine, SearchRequest

    served = LlamaCppReranker(tiny_models.reranker, n_threads=2)
    reranks = RerankServer(served).start()
    settings = Settings.from_mapping({
        "remote_url": llama_server, "remote_reranker_url": reranks.url,
        "remote_embedding_model": "tiny-qwen3-embedding", "remote_timeout_s": 5,
        "index_dir": str(tmp_path / "index")})
    engine = Engine.open(workspace, settings)
    try:
        engine.sync()
        report = engine.embed_pending()
        assert report.embedded > 0 and report.pending == 0 and not report.error
        req = SearchRequest("refresh expired token", limit=5)
        first = engine.search(req)
        assert first.mode == "hybrid" and any("dense" in h.stages for h in first.hits)
        assert engine.rerank(req, first).reranked
        status = engine.models.status()
        embedder, reranker = status[Role.EMBEDDER].info, status[Role.RERANKER].info
        assert embedder is not None and reranker is not None
        assert embedder.backend == reranker.backend == "remote"

        reranks.stop()  # the rerank server dies: first-stage results, one notice
        second = engine.rerank(req, engine.search(req))
        assert not second.reranked
        assert any(n.startswith("reranking is off") for n in second.notices)
    finally:
        engine.close()
        engine.models.close()
        reranks.stop()
        served.close()
