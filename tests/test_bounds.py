"""Issue 22, part B: no input hangs or crashes, and a cut list says so. The CLI as a
subprocess, the MCP server through the SDK's stdio client, the language server over
stdio: a pathological path glob answers (the matcher is RE2 and each path is matched
once: a bounded pattern check, never a timing), an invalid glob is one line (CLI), an
InvalidParams error (LSP) or a tool error (MCP), and the other inputs that raised a
traceback are one line each."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sample_workspace import write_files
from semcode.config import Settings
from semcode.search import paths as path_globs
from semcode.search.engine import Engine, SearchError, SearchRequest

sys.path.insert(0, str(Path(__file__).parent / "lsp"))
from client import LspClient, LspError  # noqa: E402

SEMCODE = [sys.executable, "-m", "semcode"]
OFF = ["--embedding-model", "off", "--reranker-model", "off"]
# `*?` fourteen times then `*#`: over 40 s per search on flask with a backtracking matcher.
BACKTRACKING = "*?" * 14 + "*#"
INVALID = ["!", "\\", "[z-a]"]
LEXICAL_LSP = {"embeddingModel": "off", "rerankerModel": "off"}


def run(args: list[str], tmp_path: Path, check: bool = False) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "SEMCODE_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "SEMCODE_CONFIG": str(tmp_path / "no-config.toml"), "HF_HOME": str(tmp_path / "hf")}
    proc = subprocess.run([*SEMCODE, *args], capture_output=True, text=True, env=env,
                          timeout=300, stdin=subprocess.DEVNULL)
    assert "Traceback" not in proc.stderr, proc.stderr
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def one_line(proc: subprocess.CompletedProcess[str], code: int, *words: str) -> str:
    """The command failed with `code` and said why in one line holding `words`."""
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == code and len(lines) == 1, proc.stderr
    assert all(w in lines[0] for w in words), lines[0]
    return lines[0]


@pytest.fixture
def many(tmp_path: Path) -> Path:
    """A workspace where more than 100 chunks match `gizmo` (the candidate cap)."""
    root = tmp_path / "many"
    files = {f"pkg/mod{f}.py": "\n\n".join(
        f"def widget_{f}_{n}():\n    return 'gizmo {f} {n}'\n" for n in range(10))
        for f in range(13)}
    write_files(root, files)
    return root


# ---------------------------------------------------------------- the matcher itself
def test_globs_are_checked_compiled_once_and_matched_by_re2() -> None:
    globs = path_globs.compile_globs([BACKTRACKING])
    assert globs is not None and globs.backend == "re2"
    assert path_globs.compile_globs([BACKTRACKING]) is globs  # compiled once
    assert not globs.matches("src/flask/helpers_and_other_things.py")
    assert path_globs.compile_globs(["src/**", "!*.md"]).allowed(  # type: ignore[union-attr]
        ["src/a.py", "src/a.py", "src/b.md", "lib/c.py"]) == {"src/a.py"}
    for bad, words in [("!", "not a gitignore-style pattern"),
                       ("\\", "not a gitignore-style pattern"),
                       ("[z-a]", "bad character range z-a"),
                       ("#comment", "matches no path"), ("  ", "empty"),
                       ("*" * (path_globs.MAX_GLOB_CHARS + 1), "too long")]:
        with pytest.raises(path_globs.PathGlobError, match=words.replace("[", r"\[")):
            path_globs.compile_globs([bad])
    with pytest.raises(path_globs.PathGlobError, match="too many path globs"):
        path_globs.compile_globs([f"d{n}/**" for n in range(path_globs.MAX_GLOBS + 1)])
    with pytest.raises(SearchError, match="invalid path glob"):
        SearchRequest("x", paths=("[z-a]",)).validate()


def test_a_search_matches_each_path_once_not_each_chunk(many: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    settings = Settings(index_dir=str(tmp_path / "index"), embedding_model="off",
                        reranker_model="off")
    engine = Engine.open(many, settings)
    try:
        engine.sync()
        calls: list[str] = []
        real = path_globs.PathFilter.matches
        monkeypatch.setattr(path_globs.PathFilter, "matches",
                            lambda self, p: calls.append(p) or real(self, p))
        response = engine.search(SearchRequest("gizmo", mode="lexical",
                                               paths=(BACKTRACKING,)))
        assert response.hits == []
        chunks = len(engine.indexer.refs)
        assert sorted(calls) == sorted({f"pkg/mod{f}.py" for f in range(13)}) and chunks > 13
        found = engine.search(SearchRequest("gizmo", mode="lexical", paths=("pkg/mod3.py",)))
        assert {h.chunk.path for h in found.hits} == {"pkg/mod3.py"}
    finally:
        engine.close()


# ---------------------------------------------------------------- the CLI
def test_cli_path_globs(workspace: Path, tmp_path: Path) -> None:
    run(["index", str(workspace), *OFF], tmp_path, check=True)
    proc = run(["search", "-w", str(workspace), *OFF, "--path", BACKTRACKING, "--json",
                "parse config file"], tmp_path, check=True)
    assert json.loads(proc.stdout) == []
    for bad in INVALID:
        proc = run(["search", "-w", str(workspace), *OFF, "--path", bad, "x"], tmp_path)
        one_line(proc, 2, "semcode search: invalid path glob", repr(bad))
        assert proc.stdout == ""
    proc = run(["search", "-w", str(workspace), *OFF, "--path", "a" * 300, "x"], tmp_path)
    one_line(proc, 2, "too long: 300 characters (at most 256)")


def test_cli_queries_file_that_is_not_utf8(workspace: Path, tmp_path: Path) -> None:
    queries = tmp_path / "queries.txt"
    queries.write_bytes(b"parse config\n\xff\xfe broken \x80\n")
    proc = run(["search", "-w", str(workspace), *OFF, "--queries", str(queries)], tmp_path)
    one_line(proc, 2, "--queries file", "is not UTF-8 text")


def test_cli_workspace_that_is_a_symlink_loop(tmp_path: Path) -> None:
    loop = tmp_path / "loop"
    loop.symlink_to(tmp_path / "other")
    (tmp_path / "other").symlink_to(loop)
    for args in (["index", str(loop)], ["search", "-w", str(loop), "x"],
                 ["mcp", "-w", str(loop)]):
        proc = run([*args, *OFF], tmp_path)
        one_line(proc, 2, f"semcode: cannot open the workspace {loop}: a symlink loop")


def test_cli_says_when_the_list_was_cut(many: Path, tmp_path: Path) -> None:
    proc = run(["search", "-w", str(many), *OFF, "--json", "-k", "1000", "gizmo"], tmp_path,
               check=True)
    results = json.loads(proc.stdout)
    assert isinstance(results, list) and len(results) == 100
    assert ("semcode: the list was cut at 100 of the 1000 results asked: each retriever "
            "keeps its best 100 candidates (the `candidates` setting)") in proc.stderr
    # Enough candidates for all: nothing was cut, nothing is said.
    proc = run(["search", "-w", str(many), *OFF, "--json", "-k", "1000", "--set",
                "candidates=500", "gizmo"], tmp_path, check=True)
    assert len(json.loads(proc.stdout)) == 130 and "cut" not in proc.stderr
    proc = run(["search", "-w", str(many), *OFF, "--json", "-k", "5", "gizmo"], tmp_path,
               check=True)
    assert len(json.loads(proc.stdout)) == 5 and "cut" not in proc.stderr


# ---------------------------------------------------------------- the language server
def test_lsp_path_globs_and_a_cut_list(many: Path, tmp_path: Path) -> None:
    env = {"SEMCODE_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "SEMCODE_CONFIG": str(tmp_path / "no-config.toml")}
    client = LspClient(env=env, stderr_path=tmp_path / "server.stderr")
    try:
        client.initialize([many], {"indexDir": str(tmp_path / "index"),
                                   "embeddingModel": "off", "rerankerModel": "off"})
        client.wait_ready()
        result = client.search("gizmo", mode="lexical", paths=[BACKTRACKING])
        assert result["items"] == []
        for bad in INVALID:
            with pytest.raises(LspError) as err:
                client.search("gizmo", paths=[bad])
            assert err.value.code == -32602 and "invalid path glob" in err.value.message
        result = client.search("gizmo", mode="lexical", limit=150)
        assert len(result["items"]) == 100
        assert any(n.startswith("the list was cut at 100 of the 150 results asked")
                   for n in result["notices"])
        assert client.close() == 0
    finally:
        client.kill()


# ---------------------------------------------------------------- the MCP server
def test_mcp_path_globs(workspace: Path, tmp_path: Path) -> None:
    from test_mcp import call, call_error, mcp_session, run_async

    async def body() -> None:
        async with mcp_session(workspace, tmp_path, *OFF) as session:
            answer = await call(session, "search", query="parse config file",
                                mode="lexical", paths=[BACKTRACKING])
            assert answer["hits"] == []
            for bad in INVALID:
                message = await call_error(session, "search", query="x", paths=[bad])
                assert "invalid path glob" in message, message

    run_async(body)



# ---------------------------------------------------------------- smaller LSP inputs
def _server(tmp_path: Path, cmd: list[str] | None = None, cwd: Path | None = None
            ) -> LspClient:
    env = {"SEMCODE_CACHE_DIR": str(tmp_path / "cache"), "HF_HUB_OFFLINE": "1",
           "SEMCODE_CONFIG": str(tmp_path / "no-config.toml")}
    return LspClient(cmd=cmd, env=env, stderr_path=tmp_path / "server.stderr", cwd=cwd)


def test_workspace_symbol_with_a_query_that_is_not_a_string(workspace: Path,
                                                            tmp_path: Path) -> None:
    client = _server(tmp_path)
    try:
        client.initialize([workspace], {"indexDir": str(tmp_path / "index"), **LEXICAL_LSP})
        client.wait_ready()
        for query in (5, None, ["retry"], {"q": "retry"}):
            with pytest.raises(LspError) as err:
                client.request("workspace/symbol", {"query": query})
            assert err.value.code == -32602 and "params.query" in err.value.message
        symbols = client.request("workspace/symbol", {"query": "retry with backoff"})
        assert any(s["name"] == "get_with_retry" for s in symbols)
        assert client.close() == 0
    finally:
        client.kill()


def test_a_workspace_uri_that_is_not_file_is_refused(workspace: Path, tmp_path: Path) -> None:
    # The server's working directory holds what `https://example.com/proj` would become
    # as a relative path: it must not be indexed.
    cwd = tmp_path / "cwd"
    write_files(cwd / "https:" / "example.com" / "proj", {"leak.py": "def leak(): pass\n"})
    client = _server(tmp_path, cwd=cwd)
    try:
        client.request("initialize", {
            "processId": os.getpid(), "rootUri": None, "capabilities": {},
            "workspaceFolders": [{"uri": "https://example.com/proj", "name": "proj"},
                                 {"uri": workspace.as_uri(), "name": "ws"}],
            "initializationOptions": {"indexDir": str(tmp_path / "index"), **LEXICAL_LSP}})
        client.notify("initialized", {})
        status = client.wait_ready()
        assert [w["root"] for w in status["workspaces"]] == [str(workspace)]
        (shown,) = [m["message"] for m in client.received("window/showMessage")
                    if "example.com" in m["message"]]
        assert shown == ("semcode: workspace folder 'https://example.com/proj' is not a local "
                         "folder (a file: URI with an absolute path): it is not indexed")
        assert client.close() == 0
    finally:
        client.kill()


def test_serve_writes_no_debug_lines_to_stderr(workspace: Path, tmp_path: Path) -> None:
    client = _server(tmp_path, cmd=[*SEMCODE, "serve", "--stdio", "--log-file",
                                    str(tmp_path / "server.log")])
    try:
        client.initialize([workspace], {"indexDir": str(tmp_path / "index"), **LEXICAL_LSP})
        client.wait_ready()
        path = workspace / "src/http_client.py"
        uri = client.open(path, path.read_text())
        client.change(uri, 2, [{"text": path.read_text() + "\ndef stderr_probe():\n    pass\n"}])
        assert "stderr_probe" in [i["name"] for i in client.search("stderr probe")["items"]]
        assert client.close() == 0
    finally:
        client.kill()
    stderr = (tmp_path / "server.stderr").read_text()
    assert "DEBUG" not in stderr and "Attempting" not in stderr and "indexed" not in stderr, \
        stderr[:2000]
