"""`semcode mcp` driven by the official MCP SDK's own stdio client, as an agent runs it: a
real subprocess, a real index on disk. Models are off (lexical search) unless a test says
otherwise; nothing is downloaded."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import textwrap
import time
import tomllib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp.client.session import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from semcode.chunks import Chunk, SymbolKind
from semcode.mcp.configs import CLIENTS, snippet
from semcode.mcp.service import estimate_tokens, render_hits
from semcode.search.engine import Hit, SearchResponse, StageScore

sys.path.insert(0, str(Path(__file__).parent / "lsp"))
from client import LspClient  # noqa: E402

SERVER = str(Path(__file__).resolve().parents[1] / "server")
OFF = ["--embedding-model", "off", "--reranker-model", "off"]
TIMEOUT_S = 90


def _env(tmp_path: Path) -> dict[str, str]:
    return {"SEMCODE_CACHE_DIR": str(tmp_path / "cache"),
            "SEMCODE_CONFIG": str(tmp_path / "no-config.toml"), "HF_HUB_OFFLINE": "1",
            "HF_HOME": str(tmp_path / "hf"),
            "PYTHONPATH": os.pathsep.join(filter(None, [SERVER, os.environ.get("PYTHONPATH")]))}


@asynccontextmanager
async def mcp_session(workspace: Path, tmp_path: Path, *args: str) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "semcode", "mcp", "-w", str(workspace), "--index-dir",
              str(tmp_path / "index"), *args],
        env=_env(tmp_path))
    with open(tmp_path / "mcp.stderr", "a") as errlog:
        async with stdio_client(params, errlog=errlog) as (read, write), \
                ClientSession(read, write) as session:
            await session.initialize()
            yield session


def run_async(fn: Callable[[], Awaitable[None]]) -> None:
    async def bounded() -> None:
        with anyio.fail_after(TIMEOUT_S):
            await fn()

    anyio.run(bounded)


async def call(session: ClientSession, tool: str, **arguments: Any) -> dict[str, Any]:
    result = await session.call_tool(tool, arguments)
    assert not result.is_error, result.content
    assert result.structured_content is not None
    text = result.content[0].text  # type: ignore[union-attr]
    return {**result.structured_content, "text": text}


async def call_error(session: ClientSession, tool: str, **arguments: Any) -> str:
    result = await session.call_tool(tool, arguments)
    assert result.is_error
    text = result.content[0].text  # type: ignore[union-attr]
    assert "\n" not in text and "Traceback" not in text, text
    return text


def test_tools_over_stdio(workspace: Path, tmp_path: Path) -> None:
    async def scenario() -> None:
        async with mcp_session(workspace, tmp_path, *OFF) as s:
            tools = {t.name: t for t in (await s.list_tools()).tools}
            assert set(tools) == {"search", "related", "symbol", "status"}
            props = tools["search"].input_schema["properties"]
            assert {"query", "limit", "mode", "languages", "paths", "contents",
                    "max_tokens"} <= props.keys()
            assert tools["search"].input_schema["required"] == ["query"]
            assert set(props["contents"]["items"]["enum"]) >= {"code", "test", "docs"}
            assert all(t.description for t in tools.values())

            # search: the right method first, with its code, under the budget
            out = await call(s, "search", query="sleep with exponential backoff between attempts",
                             limit=3, max_tokens=200)
            top = out["hits"][0]
            assert (top["path"], top["start_line"], top["end_line"], top["symbol"],
                    top["kind"]) == ("src/http_client.py", 11, 17, "HttpClient.get_with_retry",
                                     "method")
            assert "def get_with_retry" in top["code"] and "def get_with_retry" in out["text"]
            assert estimate_tokens(out["text"]) <= 200
            assert len(out["hits"]) <= 3 and out["mode"] == "lexical"
            assert any("semantic search is off" in n for n in out["notices"])
            small = await call(s, "search", query="exponential backoff", max_tokens=100)
            assert estimate_tokens(small["text"]) <= 100 and small["hits"]

            # filters
            out = await call(s, "search", query="configuration file", languages=["go"])
            assert [h["symbol"] for h in out["hits"]] == ["ParseConfigFile"]
            out = await call(s, "search", query="token", paths=["src/*.ts"])
            assert {h["path"] for h in out["hits"]} == {"src/tokens.ts"}
            await call(s, "search", query="token", contents=["code"])  # accepted either way

            # symbol: exact, qualified, case-insensitive fallback, missing
            out = await call(s, "symbol", name="get_with_retry")
            assert [(h["path"], h["start_line"]) for h in out["hits"]] == \
                [("src/http_client.py", 11)]
            out = await call(s, "symbol", name="HttpClient.get_with_retry")
            assert out["hits"][0]["symbol"] == "HttpClient.get_with_retry"
            out = await call(s, "symbol", name="tokencache")
            assert out["hits"][0]["symbol"] == "TokenCache"
            out = await call(s, "symbol", name="OtherClass.get_with_retry")
            assert out["hits"] == [] and "no definition" in out["notices"][0]

            # related needs vectors: models are off, so one clear line
            msg = await call_error(s, "related", path="src/http_client.py", line=12)
            assert "semantic search" in msg

            status = await call(s, "status")
            assert status["index"]["files"] == 4 and status["index"]["chunks"] > 0
            assert status["models"]["embedder"]["state"] == "off"
            assert any("semantic search is off" in d for d in status["degraded"])
            assert status["workspace"] == str(workspace)

            # bad arguments: one line each, never a traceback
            assert "query" in await call_error(s, "search", query="")
            assert "limit" in await call_error(s, "search", query="x", limit=0)
            assert "mode" in await call_error(s, "search", query="x", mode="fuzzy")
            assert "contents" in await call_error(s, "search", query="x", contents=["tests"])
            assert "query" in await call_error(s, "search", limit=3)
            assert "not inside the workspace" in await call_error(
                s, "related", path="/etc/passwd", line=1)
            assert "not indexed" in await call_error(s, "related", path="nope.py", line=1)
            assert "line" in await call_error(s, "related", path="src/tokens.ts", line=0)
            await call_error(s, "nonexistent_tool")

            # a file edited on disk between two searches shows up (and a deleted one goes)
            query = "compute the invoice total with discounts"
            before = await call(s, "search", query=query, limit=5)
            assert all(h["symbol"] != "compute_invoice_total" for h in before["hits"])
            (workspace / "src" / "billing.py").write_text(textwrap.dedent('''
                def compute_invoice_total(lines, discount):
                    """Sum the invoice lines and apply the discount."""
                    return sum(lines) * (1 - discount)
                '''))
            after = await call(s, "search", query=query, limit=5)
            assert after["hits"][0]["symbol"] == "compute_invoice_total"
            (workspace / "src" / "billing.py").unlink()
            gone = await call(s, "search", query=query, limit=5)
            assert all(h["path"] != "src/billing.py" for h in gone["hits"])

    run_async(scenario)
    assert "Traceback" not in (tmp_path / "mcp.stderr").read_text()


def test_tiny_models_embed_in_the_background(workspace: Path, tmp_path: Path,
                                              tiny_models: Any) -> None:
    """With (tiny, random) models: the server embeds in the background, `related` answers
    from the stored vectors, searches are hybrid and reranked."""
    models = ["--embedding-model", str(tiny_models.embedder),
              "--reranker-model", str(tiny_models.reranker)]

    async def scenario() -> None:
        async with mcp_session(workspace, tmp_path, *models) as s:
            for _ in range(200):  # bounded: the tiny models embed 11 chunks in well under 1 s
                status = await call(s, "status")
                if status["state"] == "ready" and status["index"]["embedded"] > 0:
                    break
                await anyio.sleep(0.1)
            assert status["index"]["pendingEmbeddings"] == 0, status
            assert status["models"]["embedder"]["state"] == "loaded"
            out = await call(s, "related", path=str(workspace / "src/http_client.py"), line=12)
            assert out["hits"] and all(
                (h["path"], h["start_line"]) != ("src/http_client.py", 11) for h in out["hits"])
            out = await call(s, "search", query="token cache lookup", limit=3)
            assert out["mode"] == "hybrid" and out["reranked"] is True and out["hits"]

    run_async(scenario)


def test_searches_do_not_wait_for_models_to_load(workspace: Path, tmp_path: Path,
                                                 tiny_models: Any,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Before the background thread has loaded the models, a search answers lexically and
    unreranked, and says so; it never loads (or downloads) a model itself."""
    from semcode.config import load_settings
    from semcode.mcp.service import McpService

    for key, value in _env(tmp_path).items():
        if key != "PYTHONPATH":
            monkeypatch.setenv(key, value)
    settings = load_settings(None, {"embedding_model": str(tiny_models.embedder),
                                    "reranker_model": str(tiny_models.reranker),
                                    "index_dir": str(tmp_path / "index")})
    service = McpService(workspace, settings)  # not started: nothing loads the models
    try:
        out = service.search("token cache lookup", 3, "hybrid", [], [], [], 600)
        assert out["mode"] == "lexical" and out["reranked"] is False and out["hits"]
        assert any("still loading" in n for n in out["notices"])
        assert {r: s["state"] for r, s in service.status()["models"].items()} == \
            {"embedder": "not loaded", "reranker": "not loaded"}
        service._warm_models()
        service.engine.embed_pending()
        out = service.search("token cache lookup", 3, "hybrid", [], [], [], 600)
        assert out["mode"] == "hybrid" and out["reranked"] is True
        assert not any("still loading" in n for n in out["notices"])
    finally:
        service.close()


def test_mcp_and_language_server_on_one_workspace(workspace: Path, tmp_path: Path) -> None:
    """Both servers index the same workspace into the same index directory at the same
    time; after each edit on disk they agree on what a search finds."""
    env = _env(tmp_path)
    lsp = LspClient(env=env, stderr_path=tmp_path / "lsp.stderr")
    try:
        lsp.initialize([workspace], {"indexDir": str(tmp_path / "index"),
                                     "embeddingModel": "off", "rerankerModel": "off"})
        lsp.wait_ready(timeout=60)

        async def scenario() -> None:
            async with mcp_session(workspace, tmp_path, *OFF) as s:
                edits = [
                    ("src/billing.py", "def compute_invoice_total(lines, discount):\n"
                                       "    return sum(lines) * (1 - discount)\n",
                     "invoice total with discount", "compute_invoice_total"),
                    ("src/billing.py", "def compute_invoice_total(lines, discount):\n"
                                       "    return sum(lines) * (1 - discount)\n\n\n"
                                       "def send_payment_reminder(customer):\n"
                                       "    customer.email('please pay')\n",
                     "email a payment reminder to the customer", "send_payment_reminder"),
                    ("pkg/parse.go", "package pkg\n\n// LoadYamlSettings reads YAML.\n"
                                     "func LoadYamlSettings(path string) error {\n"
                                     "    return nil\n}\n",
                     "load yaml settings", "LoadYamlSettings"),
                ]
                for n, (rel, text, query, expect) in enumerate(edits):
                    path = workspace / rel
                    existed = path.exists()
                    path.write_text(text)
                    if n % 2 == 0:  # the MCP server sees the change first, then the LSP
                        mcp_top = (await call(s, "search", query=query, limit=5))["hits"]
                        lsp_notify(lsp, path, changed=existed)
                        lsp_top = lsp_hits(lsp, query, expect)
                    else:
                        lsp_notify(lsp, path, changed=existed)
                        lsp_top = lsp_hits(lsp, query, expect)
                        mcp_top = (await call(s, "search", query=query, limit=5))["hits"]
                    assert mcp_top and mcp_top[0]["symbol"] == expect, f"edit {n}: MCP missed it"
                    assert [(h["path"], h["start_line"], h["symbol"]) for h in mcp_top] == \
                        lsp_top, f"edit {n}: MCP and LSP disagree"
                # Then many small edits, each side writing in turn, so that BM25 rebuilds
                # happen in both processes: same hits, same scores (one shared build).
                for n in range(12):
                    name = f"handle_{WORDS[n % 7]}_{WORDS[(3 * n + 1) % 7]}_{n}"
                    path = workspace / "src" / f"gen_{n % 3}.py"
                    existed = path.exists()
                    path.write_text(f"def {name}(x):\n    return x\n")
                    query = name.replace("_", " ")
                    lsp_notify(lsp, path, changed=existed)
                    lsp_hits(lsp, query, name)
                    mcp_top = (await call(s, "search", query=query, limit=8))["hits"]
                    lsp_top = lsp_hits(lsp, query, name, scores=True)
                    assert mcp_top[0]["symbol"] == name
                    assert [(h["path"], h["start_line"], h["symbol"], round(h["score"], 4))
                            for h in mcp_top] == lsp_top, f"round {n}: MCP and LSP disagree"
                status = await call(s, "status")
                assert status["index"]["files"] == 8
        run_async(scenario)
        assert lsp.close() == 0
    finally:
        lsp.kill()
    for name in ("mcp.stderr", "lsp.stderr"):
        log = (tmp_path / name).read_text()
        assert "Traceback" not in log and "locked" not in log, log


def lsp_notify(lsp: LspClient, path: Path, changed: bool) -> None:
    lsp.notify("workspace/didChangeWatchedFiles",
               {"changes": [{"uri": path.as_uri(), "type": 2 if changed else 1}]})


WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf")


def lsp_hits(lsp: LspClient, query: str, expect: str, scores: bool = False) -> list[Any]:
    # The watched-file event is applied by the server's writer thread: poll (bounded)
    # until the search reflects it; the caller then compares the whole lists.
    deadline = time.monotonic() + 10
    while True:
        items = lsp.search(query, limit=8 if scores else 5, mode="lexical")["items"]
        if (items and items[0]["name"] == expect) or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    return [(i["path"], i["range"]["start"]["line"] + 1,
             f"{i['containerName']}.{i['name']}" if i["containerName"] else i["name"],
             *([round(i["score"], 4)] if scores else [])) for i in items]


def test_streamable_http_on_localhost(workspace: Path, tmp_path: Path) -> None:
    from mcp.client.streamable_http import streamable_http_client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "semcode", "mcp", "-w", str(workspace), "--http", str(port),
         "--index-dir", str(tmp_path / "index"), *OFF],
        env={**os.environ, **_env(tmp_path)}, stdout=subprocess.DEVNULL,
        stderr=open(tmp_path / "http.stderr", "wb"))  # noqa: SIM115
    try:
        deadline = time.monotonic() + 60
        while True:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert proc.poll() is None, (tmp_path / "http.stderr").read_text()
            assert time.monotonic() < deadline, "the HTTP server did not start"
            time.sleep(0.1)

        async def scenario() -> None:
            async with streamable_http_client(f"http://127.0.0.1:{port}/mcp") as (read, write), \
                    ClientSession(read, write) as s:
                await s.initialize()
                out = await call(s, "search", query="exponential backoff", limit=2)
                assert out["hits"][0]["symbol"] == "HttpClient.get_with_retry"

        run_async(scenario)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(30)
        finally:
            proc.kill()
    assert "Traceback" not in (tmp_path / "http.stderr").read_text()


@pytest.mark.parametrize("client", CLIENTS)
def test_print_config(client: str, tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "semcode", "mcp", "--print-config", client],
                          capture_output=True, text=True, env={**os.environ, **_env(tmp_path)},
                          timeout=60, check=True)
    assert proc.stdout == snippet(client)
    body = "\n".join(ln for ln in proc.stdout.splitlines()
                     if not ln.startswith(("#", "//", "claude ")))
    if client == "codex":
        entry = tomllib.loads(body)["mcp_servers"]["semcode"]
    else:
        data = json.loads(body)
        entry = data["servers" if client == "vscode" else "mcpServers"]["semcode"]
    assert entry["command"] == sys.executable
    assert entry["args"][:3] == ["-m", "semcode", "mcp"]
    fixed = snippet(client, tmp_path, command=["/opt/semcode"])
    assert str(tmp_path) in fixed and "/opt/semcode" in fixed


def _hit(n: int, lines: int, path: str = "src/mod.py") -> Hit:
    text = "\n".join([f"def function_{n}(argument):"] +
                     [f"    statement_{i} = argument * {i}  # some code" for i in range(lines)])
    chunk = Chunk(path=path, language="python", kind=SymbolKind.Function,
                  name=f"function_{n}", container="", start_line=10 * n + 1,
                  end_line=10 * n + 1 + lines, text=text)
    return Hit(n, chunk, 1.0 / (n + 1), {"fused": StageScore(n + 1, 0.1)})


@pytest.mark.parametrize("budget", [100, 300, 600, 2000])
def test_token_budget_trims_bodies_before_hits(budget: int) -> None:
    hits = [_hit(n, 30) for n in range(8)]
    out, text, omitted = render_hits(SearchResponse(hits, False, "hybrid"), budget)
    assert estimate_tokens(text) <= budget
    if budget >= 300:
        assert omitted == 0 and len(out) == 8  # every hit keeps its header and signature
        assert all(h["code"].startswith(f"def function_{h['rank'] - 1}") for h in out)
        # the best hit gets the most code
        assert len(out[0]["code"]) >= max(len(h["code"]) for h in out)
    if budget == 2000:
        assert "code_truncated_lines" not in out[0]
    assert out[0]["code"].startswith("def function_0")  # even at 100 tokens
    for h in out:
        if h.get("code_truncated_lines") and h["code"]:
            start = h["start_line"] + len(h["code"].splitlines())
            assert f"trimmed: read src/mod.py:{start}-{h['end_line']}" in text


def test_budget_is_kept_with_notices_and_long_lines() -> None:
    chunk = Chunk(path="a.min.js", language="javascript", kind=SymbolKind.Function, name="f",
                  container="", start_line=1, end_line=1, text="x" * 5000)
    response = SearchResponse([Hit(1, chunk, 1.0, {})], False, "lexical",
                              notices=["semantic search is off: the embedding model is off"])
    out, text, omitted = render_hits(response, 100, reserved_chars=200)
    assert estimate_tokens(text) + 50 <= 100 and out[0]["code"] == "" and omitted == 0


def test_the_service_settles_the_heap_after_indexing(workspace: Path, tmp_path: Path) -> None:
    """No full garbage collection walks the loaded index during a tool call (semcode.heap),
    as in the language server."""
    import gc

    from semcode.config import Settings
    from semcode.mcp.service import McpService
    from semcode.states import ServeState

    gc.unfreeze()
    settings = Settings.from_mapping({"index_dir": str(tmp_path / "index"),
                                      "embedding_model": "off", "reranker_model": "off"})
    service = McpService(workspace, settings)
    try:
        service.start()
        deadline = time.monotonic() + TIMEOUT_S
        while service.state != ServeState.READY and time.monotonic() < deadline:
            time.sleep(0.05)
        assert service.state == ServeState.READY
        assert gc.get_freeze_count() > 0
    finally:
        service.close()
        gc.unfreeze()
