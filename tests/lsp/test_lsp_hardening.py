"""Issue 12, the language server's side: each finding reproduced against a real server over
stdio (framing, JSON-RPC errors, shutdown, buffers that must not be indexed, a close
racing the writer, lone surrogates, empty settings), plus the races found by reading the
code (a model unloaded under a search, a reopen under a search, an embedding failure
reported as an indexing failure)."""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from client import LspClient, LspError
from lsp_helpers import LEXICAL, names
from test_lsp_lexical import eventually, find

from semcode.config import Settings
from semcode.models.base import ModelError
from semcode.models.registry import ModelSet


def raw_request(client: LspClient, msg_id: str, body: bytes, timeout: float = 20) -> Any:
    """Send a framed body as it is; the response (or LspError) to `msg_id`."""
    fut = client.expect(msg_id)
    client.send_raw(f"Content-Length: {len(body)}\r\n\r\n".encode() + body)
    return fut.result(timeout)


def error_of(client: LspClient, msg_id: str, body: bytes) -> LspError:
    with pytest.raises(LspError) as info:
        raw_request(client, msg_id, body)
    return info.value


def null_id_errors(client: LspClient) -> list[dict[str, Any]]:
    return [r["error"] for r in list(client.responses) if r.get("id") is None and "error" in r]


def dialogs(client: LspClient) -> list[Any]:
    return client.received("window/showMessage")


def still_searches(client: LspClient) -> None:
    assert names(client.search("token bucket rate limiter"))[0] == "AllowRequestWithTokenBucket"


# ---------------------------------------------------------------------- finding 9: framing
def test_framing_bad_lengths_never_kill_or_deafen_the_server(spawn, workspace: Path) -> None:
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    search = {"jsonrpc": "2.0", "id": "after", "method": "semcode/search",
              "params": {"query": "token bucket rate limiter"}}
    body = json.dumps(search).encode()

    # A length of a terabyte (it used to end the server with MemoryError).
    client.send_raw(b"Content-Length: 1000000000000\r\n\r\n{\"jsonrpc\": \"2.0\"}")
    assert raw_request(client, "after", body)["items"]
    # A bad, a missing, a short and a long length (each used to leave it deaf for good).
    for n, junk in enumerate([b"Content-Length: twelve\r\n\r\n{}",
                              b"\r\n\r\n" + body,
                              b"Content-Length: 40\r\n\r\n" + body,
                              b"Content-Length: 5\n\n{}"]):
        client.send_raw(junk)
        search["id"] = f"after-{n}"
        assert raw_request(client, f"after-{n}", json.dumps(search).encode())["items"]
    # Too long by a few bytes: that request is answered as well, and the next one.
    search["id"] = "long"
    long_body = json.dumps(search).encode()
    fut = client.expect("long")
    client.send_raw(f"Content-Length: {len(long_body) + 7}\r\n\r\n".encode() + long_body)
    search["id"] = "next"
    assert raw_request(client, "next", json.dumps(search).encode())["items"]
    assert fut.result(20)["items"]
    # Too long with nothing after it: answered once the line goes quiet.
    search["id"] = "quiet"
    quiet = json.dumps(search).encode()
    fut = client.expect("quiet")
    client.send_raw(f"Content-Length: {len(quiet) + 30}\r\n\r\n".encode() + quiet)
    assert fut.result(20)["items"]
    # A real message over the limit (64 MiB) is skipped, not read into memory.
    huge = json.dumps({"jsonrpc": "2.0", "id": "huge", "method": "semcode/search",
                       "params": {"query": "x" * (65 * 1024 * 1024)}}).encode()
    client.send_raw(encode_raw(huge))
    still_searches(client)
    assert not any(r.get("id") == "huge" for r in client.responses)
    assert client.proc.poll() is None and dialogs(client) == []
    assert client.close() == 0


def encode_raw(body: bytes) -> bytes:
    return f"Content-Length: {len(body)}\r\n\r\n".encode() + body


def test_json_rpc_errors_per_spec(spawn, workspace: Path) -> None:
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    # Invalid JSON: -32700 with a null id (the id cannot be read).
    client.send_raw(encode_raw(b'{"jsonrpc": "2.0", "id": "bad", "method": "semcode/search",'))
    still_searches(client)
    assert [e["code"] for e in null_id_errors(client)] == [-32700]
    # Invalid UTF-8 in a request: -32700 for that id.
    e = error_of(client, "utf8", b'{"jsonrpc": "2.0", "id": "utf8", "method": "semcode/search",'
                                 b' "params": {"query": "caf\xe9"}}')
    assert e.code == -32700
    # Wrong `jsonrpc`, a method that is not a string, params that are a string.
    e = error_of(client, "v1", json.dumps({"jsonrpc": "1.0", "id": "v1",
                                           "method": "semcode/search"}).encode())
    assert e.code == -32600 and "jsonrpc" in e.message
    e = error_of(client, "m42", b'{"jsonrpc": "2.0", "id": "m42", "method": 42}')
    assert e.code == -32600 and "method" in e.message and "TypeError" not in e.message
    e = error_of(client, "ps", b'{"jsonrpc": "2.0", "id": "ps", "method": "semcode/search",'
                               b' "params": "query"}')
    assert e.code == -32600
    # Not an object: -32600, null id.
    client.send_raw(encode_raw(b"[1, 2, 3]"))
    still_searches(client)
    assert [e["code"] for e in null_id_errors(client)] == [-32700, -32600]
    # Malformed notifications: a log line each, no answer and no dialog.
    before = len(client.responses)
    for body in (b'{"jsonrpc": "2.0", "method": 42}',
                 b'{"jsonrpc": "2.0", "method": "textDocument/didChange", "params": 7}',
                 json.dumps({"jsonrpc": "2.0", "method": "textDocument/didChange", "params": {
                     "textDocument": {"uri": "file:///not/open.py", "version": 2},
                     "contentChanges": [{"text": "x"}]}}).encode(),
                 json.dumps({"jsonrpc": "2.0", "method": "textDocument/didClose", "params": {
                     "textDocument": {"uri": "file:///never/opened.py"}}}).encode(),
                 json.dumps({"jsonrpc": "2.0", "method": "textDocument/didOpen",
                             "params": {"textDocument": {"uri": 5}}}).encode(),
                 b'{"jsonrpc": "2.0", "method": "semcode/cancelSearch", "params": {"x": 1}}'):
        client.send_raw(encode_raw(body))
    still_searches(client)
    time.sleep(0.3)
    assert len(client.responses) == before + 1  # the search's own answer only
    assert dialogs(client) == []
    logs = [m["message"] for m in client.received("window/logMessage")]
    assert not any("Traceback" in m for m in logs)
    # After shutdown: requests get InvalidRequest, and exit still ends the process.
    assert client.request("shutdown", None) is None
    with pytest.raises(LspError) as info:
        client.search("token")
    assert info.value.code == -32600
    client.notify("exit")
    assert client.proc.wait(20) == 0


# ---------------------------------------------------------------------- finding 10
def test_lone_surrogate_in_a_buffer_is_indexed_without_a_traceback(spawn, workspace: Path
                                                                   ) -> None:
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    path = workspace / "auth/tokens.py"
    uri = client.open(path, path.read_text() + "\ndef surrogate_marker_fn():\n    return 1\n")
    eventually(lambda: find(client, "surrogate marker fn", "surrogate_marker_fn"))
    # json.dumps writes "\ud800" as the escape a client sends; the server gets a lone
    # surrogate in a Python str.
    client.change(uri, 2, [{"text": "def lonely_replacement_fn():\n    return '\ud800'\n"}])
    item = eventually(lambda: find(client, "lonely replacement fn", "lonely_replacement_fn"))
    assert item["selectionRange"]["start"] == {"line": 0, "character": 4}
    assert find(client, "surrogate marker fn", "surrogate_marker_fn") is None  # old text gone
    logs = [m["message"] for m in client.received("window/logMessage")]
    assert not any("Traceback" in m or "UnicodeEncodeError" in m for m in logs)
    assert client.close() == 0


# ---------------------------------------------------------------------- finding 4
def test_buffer_through_a_symlink_leaving_the_workspace_is_not_indexed(
        spawn, workspace: Path, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.py").write_text("def outside_secret_fn():\n    return 1\n")
    (workspace / "linked").symlink_to(outside, target_is_directory=True)
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    assert find(client, "outside secret fn", "outside_secret_fn") is None
    client.open(workspace / "linked/secret.py",
                "def outside_secret_fn():\n    return 1\n\ndef outside_unsaved_fn():\n    pass\n")
    inside = workspace / "auth/tokens.py"
    client.open(inside, inside.read_text() + "\ndef inside_probe_fn():\n    pass\n")
    eventually(lambda: find(client, "inside probe fn", "inside_probe_fn"))  # both were applied
    assert find(client, "outside unsaved fn", "outside_unsaved_fn") is None
    assert find(client, "outside secret fn", "outside_secret_fn") is None
    assert client.close() == 0


# ---------------------------------------------------------------------- finding 2 (LSP)
def test_did_open_of_a_directory_is_not_indexed_and_keeps_the_directory(
        spawn, workspace: Path) -> None:
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    uri = client.open(workspace / "server", "def directory_as_file_fn():\n    pass\n")
    probe = workspace / "auth/tokens.py"
    probe_uri = client.open(probe, probe.read_text() + "\ndef probe_two_fn():\n    pass\n")
    eventually(lambda: find(client, "probe two fn", "probe_two_fn"))
    assert find(client, "directory as file fn", "directory_as_file_fn") is None
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    client.notify("textDocument/didClose", {"textDocument": {"uri": probe_uri}})
    eventually(lambda: find(client, "probe two fn", "probe_two_fn") is None)
    still_searches(client)  # server/ratelimit.go is still there
    assert client.status()["workspaces"][0]["files"] == 4
    assert client.close() == 0


# ---------------------------------------------------------------------- finding 3
def test_close_between_debounce_and_writer_reverts_the_buffer(spawn, workspace: Path) -> None:
    """The writer is kept busy with a big buffer so that the small buffer's debounced
    update is queued (not applied) when its didClose arrives."""
    client = spawn([workspace], {**LEXICAL, "maxFileBytes": 20_000_000})
    client.wait_ready()
    big = "".join(f"def filler_{i}(a, b):\n    return a + b * {i}\n\n" for i in range(12_000))
    path = workspace / "auth/tokens.py"
    disk = path.read_text()
    client.open(workspace / "big.py", big)
    uri = client.open(path, disk)
    client.change(uri, 2, [{"text": disk + "\ndef unsaved_ghost_fn():\n    pass\n"}])
    time.sleep(0.6)  # both debounces (300 ms) fired; the writer chews on big.py
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    eventually(lambda: find(client, "filler 11999", "filler_11999"), timeout=60)
    time.sleep(0.5)
    assert find(client, "unsaved ghost fn", "unsaved_ghost_fn") is None
    # and the file is the disk's again: an edit on disk is picked up by a rescan
    path.write_text(disk + "\ndef saved_later_fn():\n    pass\n")
    client.command("semcode.reindex")
    eventually(lambda: find(client, "saved later fn", "saved_later_fn"), timeout=30)
    assert client.close() == 0


# ---------------------------------------------------------------------- finding 12 (server)
@pytest.mark.parametrize("options", [[], None])
def test_empty_settings_mean_no_settings(spawn, workspace: Path, tmp_path: Path,
                                         options: Any) -> None:
    client = spawn([workspace], initialize=False)
    result = client.request("initialize", {
        "processId": os.getpid(), "rootUri": workspace.as_uri(),
        "workspaceFolders": [{"uri": workspace.as_uri(), "name": "ws"}],
        "initializationOptions": options, "capabilities": {}})
    assert result["capabilities"]["experimental"]["semcode"]["protocolVersion"] == 1
    client.notify("initialized", {})
    client.notify("workspace/didChangeConfiguration", {"settings": options})
    client.notify("workspace/didChangeConfiguration", {"settings": {"semcode": []}})
    client.wait_ready(timeout=120)
    assert dialogs(client) == [] or all(d["type"] != 1 for d in dialogs(client))
    assert client.close() == 0


# ---------------------------------------------------------------------- finding 11: races
class _FakeModel:
    def __init__(self) -> None:
        self.closed = False
        self.info = SimpleNamespace(identity="fake", backend="fake", device="cpu", path="",
                                    dims=4)

    def close(self) -> None:
        self.closed = True


def test_a_model_unloaded_between_taking_and_using_it_is_never_used() -> None:
    models = ModelSet(Settings.from_mapping({"embedding_model": "a.gguf",
                                             "reranker_model": "b.gguf"}), download=False)
    for role in ("query_embedder", "reranker"):
        slot = models._slots[role]
        slot.model, slot.state = _FakeModel(), "loaded"
        taken = slot.model
        with models.using(role, taken):  # still current: fine
            pass
    taken = models._slots["reranker"].model
    models.reconfigure(Settings.from_mapping({"embedding_model": "a.gguf",
                                              "reranker_model": "c.gguf"}))
    assert taken.closed
    with pytest.raises(ModelError), models.using("reranker", taken):
        raise AssertionError("a closed model was used")


def test_reopen_waits_for_running_searches(tmp_path: Path) -> None:
    from semcode.lsp.session import Session

    session = Session(SimpleNamespace())  # type: ignore[arg-type]
    folder = session.ctx.add_folder((tmp_path / "ws").as_uri(), "ws")
    events: list[str] = []
    running, release = threading.Event(), threading.Event()

    class Engine:
        def search(self) -> str:
            running.set()
            release.wait(10)
            events.append("search done")
            return "hits"

        def flush(self) -> None:
            events.append("flush")

        def close(self) -> None:
            events.append("close")

    folder.engine = Engine()  # type: ignore[assignment]
    reader = threading.Thread(target=lambda: events.append(
        str(folder.read(lambda engine: engine.search()))))
    reader.start()
    assert running.wait(10)
    closer = threading.Thread(target=session.indexing.close_engine, args=(folder,))
    closer.start()
    time.sleep(0.3)
    assert "close" not in events  # the search still runs on the open database
    release.set()
    reader.join(10)
    closer.join(10)
    assert events == ["search done", "hits", "flush", "close"]
    assert folder.read(lambda engine: "never") is None  # closed: new readers get nothing
    for pool in (session.ctx.reads, session.ctx.embeds, session.ctx.reranks, folder.writer):
        pool.shutdown(wait=False)


def test_an_embedding_failure_is_not_an_indexing_failure(tmp_path: Path) -> None:
    from lsprotocol import types

    from semcode.lsp.session import Session

    async def run() -> Any:
        session = Session(SimpleNamespace(  # type: ignore[arg-type]
            client_capabilities=types.ClientCapabilities()))
        session.ctx.loop = asyncio.get_running_loop()
        folder = session.ctx.add_folder((tmp_path / "ws").as_uri(), "ws")
        session.indexing.sync = lambda *args: "synced"  # type: ignore[method-assign]

        async def broken_embedder(*args: Any) -> None:
            raise RuntimeError("the embedder fell over")

        session.embedding.embed = broken_embedder  # type: ignore[method-assign]
        await session.indexing.index(folder)
        await asyncio.sleep(0)
        for pool in (session.ctx.reads, session.ctx.embeds, session.ctx.reranks, folder.writer):
            pool.shutdown(wait=False)
        return folder

    folder = asyncio.run(run())
    assert folder.state == "ready"
    assert folder.error == "embedding failed: the embedder fell over"


# ---------------------------------------------------------------------- issue 13, item 1
def test_a_search_sees_the_edit_made_just_before_it(spawn, workspace: Path) -> None:
    """No waiting for the 300 ms debounce: a search applies pending edits first."""
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    path = workspace / "auth/tokens.py"
    text = path.read_text()
    uri = client.open(path, text)
    for version in range(2, 7):
        text += f"\ndef keystroke_probe_{version}():\n    pass\n"
        client.change(uri, version, [{"text": text}])
        assert find(client, f"keystroke probe {version}", f"keystroke_probe_{version}"), version
        symbols = client.request("workspace/symbol", {"query": f"keystroke probe {version}"})
        assert any(s["name"] == f"keystroke_probe_{version}" for s in symbols)
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert find(client, "keystroke probe 6", "keystroke_probe_6") is None  # the revert, too
    assert client.close() == 0
