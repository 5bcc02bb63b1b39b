"""The language server over real stdio, lexical only (no models): lifecycle, indexing,
search, workspace/symbol, live updates from buffers and the file watcher, errors."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from client import LspClient, LspError
from lsp_helpers import LEXICAL, names, write_workspace


def eventually(fn: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1) -> Any:
    """Call `fn` until it returns something truthy; return that."""
    deadline = time.monotonic() + timeout
    while True:
        value = fn()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"condition not met in {timeout}s (last: {value!r})")
        time.sleep(interval)


def find(client: LspClient, query: str, name: str, **params: Any) -> dict[str, Any] | None:
    for item in client.search(query, **params)["items"]:
        if item["name"] == name:
            return item
    return None


def test_initialize_index_search_and_symbols(spawn, workspace: Path) -> None:
    client = spawn([workspace], LEXICAL, initialize=False)
    result = client.initialize([workspace], {**LEXICAL, "indexDir": str(workspace.parent / "ix")})
    caps = result["capabilities"]
    assert caps["experimental"]["semcode"]["protocolVersion"] == 1
    assert caps["workspaceSymbolProvider"] is True
    assert caps["textDocumentSync"]["change"] == 2 and caps["textDocumentSync"]["openClose"]
    assert caps["textDocumentSync"]["save"]
    assert set(caps["executeCommandProvider"]["commands"]) == {
        "semcode.search", "semcode.reindex", "semcode.status"}

    status = client.wait_ready()
    ws = status["workspaces"][0]
    assert ws["root"] == str(workspace) and ws["files"] >= 3 and ws["chunks"] >= 4

    res = client.search("refresh the expired oauth token")
    assert res["items"] and res["items"][0]["name"] == "refresh_expired_token"
    top = res["items"][0]
    assert top["path"] == "auth/tokens.py" and top["kind"] == 12 and top["language"] == "python"
    assert top["uri"] == (workspace / "auth/tokens.py").as_uri()
    assert top["workspaceFolder"] == workspace.as_uri()
    assert top["range"] == {"start": {"line": 3, "character": 0},
                            "end": {"line": 8, "character": 0}}
    assert top["selectionRange"] == {"start": {"line": 3, "character": 4},
                                     "end": {"line": 3, "character": 25}}
    assert top["preview"] == "def refresh_expired_token(session, expires_at):"
    assert "lexical" in top["stages"] and "fused" in top["stages"]
    assert res["searchId"] and res["reranked"] is False and res["rerankPending"] is False
    assert res["mode"] == "lexical" and res["notices"]
    assert any("semantic search is off" in line for line in client.status()["degraded"])

    assert names(client.search("token bucket rate limiter request"))[0] == \
        "AllowRequestWithTokenBucket"
    assert names(client.search("shopping cart total with tax", languages=["typescript"]))[0] == \
        "computeShoppingCartTotal"
    assert client.search("shopping cart total", paths=["auth/**"])["items"] == [] or all(
        i["path"].startswith("auth/") for i in client.search("cart", paths=["auth/**"])["items"])

    symbols = client.request("workspace/symbol", {"query": "deactivate the account"})
    assert symbols[0]["name"] == "deactivate_account"
    assert symbols[0]["containerName"] == "UserAccount" and symbols[0]["kind"] == 6
    assert symbols[0]["location"]["uri"] == (workspace / "auth/tokens.py").as_uri()
    assert client.request("workspace/symbol", {"query": ""}) == []

    # Indexing progress, the watcher registration, and pushed status.
    progress = client.received("$/progress")
    kinds = [p["value"]["kind"] for p in progress]
    assert kinds[0] == "begin" and "end" in kinds
    assert progress[0]["value"]["title"] == "semcode: indexing ws"
    assert progress[0]["value"]["cancellable"] is True
    registrations = [p for m, p in client.server_requests if m == "client/registerCapability"]
    assert registrations[0]["registrations"][0]["method"] == "workspace/didChangeWatchedFiles"
    client.wait_for("semcode/status", lambda p: p["state"] == "ready", timeout=10)
    assert any("semcode" in m["message"] for m in client.received("window/logMessage"))
    assert client.close() == 0
    log_file = workspace.parent / "cache" / "logs" / "server.log"
    assert "serving on stdio" in log_file.read_text()


def test_unsaved_edits_are_searchable_with_utf16_ranges(spawn, workspace: Path) -> None:
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    path = workspace / "web/cart.ts"
    text = path.read_text()
    uri = client.open(path, text, "typescript")
    n = len(text.splitlines())
    added = ("\n/* 🚀 */ export function launchRocketIgnitionSequence(countdown: number) {\n"
             "  return countdown === 0 ? 'ignite the boosters' : 'hold';\n}\n")
    client.change(uri, 2, [{"range": {"start": {"line": n, "character": 0},
                                      "end": {"line": n, "character": 0}}, "text": added}])
    item = eventually(lambda: find(client, "launch rocket ignition boosters",
                                   "launchRocketIgnitionSequence"))
    assert item["path"] == "web/cart.ts"
    assert item["range"]["start"] == {"line": n + 1, "character": 0}
    assert item["range"]["end"] == {"line": n + 4, "character": 0}
    # '/* 🚀 */ export function ' is 24 code points but 25 UTF-16 units.
    assert item["selectionRange"]["start"] == {"line": n + 1, "character": 25}
    assert item["selectionRange"]["end"] == {"line": n + 1, "character": 25 + 28}
    assert not (workspace / "web/cart.ts").read_text().count("Rocket")  # never saved

    # Edit it away (unsaved): gone from the results.
    client.change(uri, 3, [{"range": {"start": {"line": n, "character": 0},
                                      "end": {"line": n + 4, "character": 0}}, "text": ""}])
    eventually(lambda: find(client, "launch rocket ignition boosters",
                            "launchRocketIgnitionSequence") is None)
    assert find(client, "shopping cart total", "computeShoppingCartTotal")

    # An unsaved edit, then close without saving: the index goes back to the disk.
    client.change(uri, 4, [{"range": {"start": {"line": 0, "character": 0},
                                      "end": {"line": 0, "character": 0}},
                            "text": "export function temporaryScaffoldingHelper() {}\n"}])
    eventually(lambda: find(client, "temporary scaffolding helper", "temporaryScaffoldingHelper"))
    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    eventually(lambda: find(client, "temporary scaffolding helper",
                            "temporaryScaffoldingHelper") is None)
    assert find(client, "shopping cart total", "computeShoppingCartTotal")
    assert client.close() == 0


def test_watched_file_changes(spawn, workspace: Path) -> None:
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    new = workspace / "billing/invoice.py"
    new.parent.mkdir()
    new.write_text("def generate_quarterly_invoice_pdf(customer):\n    return render(customer)\n")
    client.notify("workspace/didChangeWatchedFiles",
                  {"changes": [{"uri": new.as_uri(), "type": 1}]})
    item = eventually(lambda: find(client, "quarterly invoice pdf",
                                   "generate_quarterly_invoice_pdf"))
    assert item["path"] == "billing/invoice.py"

    new.write_text("def archive_old_invoices(days):\n    return days\n")
    client.notify("workspace/didChangeWatchedFiles",
                  {"changes": [{"uri": new.as_uri(), "type": 2}]})
    eventually(lambda: find(client, "archive old invoices", "archive_old_invoices"))
    assert find(client, "quarterly invoice pdf", "generate_quarterly_invoice_pdf") is None

    new.unlink()
    client.notify("workspace/didChangeWatchedFiles",
                  {"changes": [{"uri": new.as_uri(), "type": 3}]})
    eventually(lambda: find(client, "archive old invoices", "archive_old_invoices") is None)
    # Events for files outside every folder are ignored.
    client.notify("workspace/didChangeWatchedFiles",
                  {"changes": [{"uri": Path("/elsewhere/x.py").as_uri(), "type": 1}]})
    assert client.status()["workspaces"][0]["files"] == 4
    assert client.close() == 0


def test_errors_never_crash_the_server(spawn, workspace: Path) -> None:
    client = spawn([workspace], LEXICAL)
    client.wait_ready()

    def error(method: str, params: Any) -> LspError:
        with pytest.raises(LspError) as info:
            client.request(method, params)
        return info.value

    e = error("semcode/search", {"query": "x", "limit": "many"})
    assert e.code == -32602 and "limit" in e.message
    e = error("semcode/search", {"limit": 3})
    assert e.code == -32602 and "query" in e.message
    e = error("semcode/search", {"query": "x", "mode": "psychic"})
    assert e.code == -32602 and "mode" in e.message
    e = error("semcode/search", {"query": "x", "kinds": ["function"]})
    assert e.code == -32602 and "kinds" in e.message
    e = error("semcode/search", {"query": "x", "colour": "blue"})
    assert e.code == -32602 and "colour" in e.message
    e = error("semcode/search", [1, 2])
    assert e.code == -32602
    e = error("semcode/search", {"query": "token " * 20_000})  # a 100 KB query
    assert e.code == -32602 and "query" in e.message and "10000" in e.message
    e = error("workspace/symbol", {"quer": "x"})
    assert e.code == -32602 and "query" in e.message
    e = error("semcode/related", {"position": {"line": 0, "character": 0}})
    assert e.code == -32602 and "textDocument" in e.message
    e = error("semcode/noSuchThing", {})
    assert e.code == -32601
    e = error("workspace/executeCommand", {"command": "semcode.search", "arguments": []})
    assert e.code == -32602
    e = error("workspace/executeCommand", {"command": "semcode.nope", "arguments": []})
    assert e.code == -32602
    client.notify("semcode/cancelSearch", {"searchId": 17})  # bad, but a notification
    client.notify("semcode/unknownNotification", {"x": 1})
    client.notify("$/cancelRequest", {"id": 123456})

    # A huge edit (5 MB, over maxFileBytes) and an edit with a nonsense range.
    path = workspace / "auth/tokens.py"
    uri = client.open(path, path.read_text())
    huge = "x = 1\n" * 900_000
    client.change(uri, 2, [{"range": {"start": {"line": 0, "character": 0},
                                      "end": {"line": 0, "character": 0}}, "text": huge}])
    client.change(uri, 3, [{"range": {"start": {"line": 10**6, "character": 5},
                                      "end": {"line": 10**6 + 3, "character": 0}},
                            "text": "def after_the_storm(): pass\n"}])
    client.notify("textDocument/didChange", {"textDocument": {"uri": "file:///nowhere.py",
                                                              "version": 1},
                                             "contentChanges": [{"text": "x"}]})
    time.sleep(1.0)
    assert client.proc.poll() is None
    assert find(client, "token bucket rate limiter", "AllowRequestWithTokenBucket")
    assert client.status()["state"] in ("ready", "embedding")
    blank = client.search("   ")
    assert blank["items"] == [] and blank["rerankPending"] is False
    assert client.close() == 0


@pytest.mark.parametrize(("options", "named"), [
    ({"rerankDepth": "lots"}, "rerank_depth"),
    ({"bogusSetting": 1}, "bogusSetting"),
    ({"backend": "abacus"}, "backend"),
])
def test_invalid_settings_fail_initialize(spawn, workspace: Path, options: dict[str, Any],
                                          named: str) -> None:
    client = spawn([workspace], initialize=False)
    with pytest.raises(LspError) as info:
        client.initialize([workspace], {**LEXICAL, **options})
    assert info.value.code == -32602 and named in info.value.message


def test_multi_root_results_are_merged(spawn, workspace: Path, tmp_path: Path) -> None:
    other = write_workspace(tmp_path / "other", {
        "pay/refunds.py": "def issue_partial_refund(order, amount):\n"
                          "    return order.refund(amount)\n",
    })
    client = spawn([workspace, other], LEXICAL)
    status = client.wait_ready()
    assert [w["root"] for w in status["workspaces"]] == [str(workspace), str(other)]
    res = client.search("issue partial refund for the order")
    assert res["items"][0]["name"] == "issue_partial_refund"
    assert res["items"][0]["workspaceFolder"] == other.as_uri()
    assert res["items"][0]["path"] == "pay/refunds.py"
    res = client.search("refresh expired token")
    assert res["items"][0]["workspaceFolder"] == workspace.as_uri()

    # Remove a folder: its results vanish; add it back: they return.
    client.notify("workspace/didChangeWorkspaceFolders", {"event": {
        "added": [], "removed": [{"uri": other.as_uri(), "name": "other"}]}})
    eventually(lambda: find(client, "issue partial refund", "issue_partial_refund") is None)
    client.notify("workspace/didChangeWorkspaceFolders", {"event": {
        "added": [{"uri": other.as_uri(), "name": "other"}], "removed": []}})
    eventually(lambda: find(client, "issue partial refund", "issue_partial_refund"))
    assert client.close() == 0


def test_configuration_change_and_reindex(spawn, workspace: Path) -> None:
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    assert find(client, "token bucket rate limiter", "AllowRequestWithTokenBucket")
    client.notify("workspace/didChangeConfiguration",
                  {"settings": {"semcode": {"exclude": ["server/**"]}}})
    eventually(lambda: find(client, "token bucket rate limiter",
                            "AllowRequestWithTokenBucket") is None)
    assert find(client, "refresh expired token", "refresh_expired_token")

    # A search-side setting keeps the index: no re-index starts, searches keep answering.
    def indexing_runs() -> int:
        return sum(1 for p in client.received("$/progress")
                   if p["value"].get("kind") == "begin"
                   and "indexing" in p["value"].get("title", ""))

    before = indexing_runs()
    client.notify("workspace/didChangeConfiguration",
                  {"settings": {"semcode": {"exclude": ["server/**"], "rrfK": 10}}})
    time.sleep(1.0)  # the notification has been handled by now
    assert indexing_runs() == before
    assert find(client, "refresh expired token", "refresh_expired_token")

    client.notify("workspace/didChangeConfiguration", {"settings": {"rrfK": "not a number"}})
    message = client.wait_for("window/showMessage", lambda p: "rrf" in p["message"], timeout=10)
    assert message["type"] == 1

    assert client.command("semcode.reindex", {"full": True}) == {"started": True}
    time.sleep(0.3)
    client.wait_ready()
    assert find(client, "refresh expired token", "refresh_expired_token")
    assert find(client, "token bucket rate limiter", "AllowRequestWithTokenBucket") is None
    assert client.close() == 0
