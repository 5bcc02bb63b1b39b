"""The language server with the tiny test models (real llama.cpp, random weights): the
two-phase search, cancellation, the embedding cache across restarts, missing models."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import llama_cpp  # noqa: F401  (required: the server loads models with it; never skipped)
import pytest
from client import LspError
from lsp_helpers import LEXICAL, names, write_workspace


def model_options(tiny_models: Any, **extra: Any) -> dict[str, Any]:
    return {"embeddingModel": str(tiny_models.embedder),
            "rerankerModel": str(tiny_models.reranker), **extra}


def test_two_phase_search_related_and_restart(spawn, workspace: Path, tmp_path: Path,
                                              tiny_models: Any) -> None:
    index = tmp_path / "index-models"
    client = spawn([workspace], model_options(tiny_models), index_dir=index)
    status = client.wait_ready(embedded=True)
    ws = status["workspaces"][0]
    assert ws["embedded"] >= 4 and ws["pendingEmbeddings"] == 0
    assert ws["embeddedThisSession"] == ws["embedded"]
    assert status["models"]["embedder"]["state"] == "loaded"
    embed_progress = [p["value"].get("message", "") for p in client.received("$/progress")]
    assert any(m.startswith("embedding ") for m in embed_progress)

    first = client.search("refresh the expired oauth token", limit=5)
    assert first["rerankPending"] is True and first["reranked"] is False
    assert first["mode"] == "hybrid" and first["items"]
    assert {"lexical", "dense", "fused"} <= set(first["items"][0]["stages"]) | {"lexical"}
    assert any("dense" in item["stages"] for item in first["items"])
    refined = client.wait_for("semcode/searchRefined",
                              lambda p: p["searchId"] == first["searchId"], timeout=60)
    assert refined["reranked"] is True and "cancelled" not in refined
    assert refined["timingsMs"]["rerank"] > 0
    assert 0 < len(refined["items"]) <= 5
    scores = [item["score"] for item in refined["items"]]
    assert scores == sorted(scores, reverse=True)
    assert all("rerank" in item["stages"] for item in refined["items"])
    assert {i["name"] for i in refined["items"]} <= {i["name"] for i in first["items"]} | {
        i["name"] for i in client.search("refresh the expired oauth token", limit=50,
                                         rerank=False)["items"]}

    inline = client.command("semcode.search", "deactivate the account", {"limit": 3})
    assert inline["reranked"] is True and inline["rerankPending"] is False

    no_rerank = client.search("shopping cart total", rerank=False)
    assert no_rerank["rerankPending"] is False and no_rerank["items"]
    # An identifier lookup keeps the first stage's order: no refinement is promised.
    lookup = client.search("refresh_expired_token")
    assert lookup["rerankPending"] is False and lookup["items"]
    assert not any("rerank" in item["stages"] for item in lookup["items"])
    assert client.request("workspace/symbol", {"query": "shopping cart total"})

    related = client.request("semcode/related", {
        "textDocument": {"uri": (workspace / "auth/tokens.py").as_uri()},
        "position": {"line": 5, "character": 4}, "limit": 3})
    assert related["reranked"] is False and related["rerankPending"] is False
    assert 0 < len(related["items"]) <= 3
    assert "refresh_expired_token" not in names(related)

    # An unsaved edit: its new chunk is embedded in the background, then found by meaning
    # alone (dense mode).
    path = workspace / "auth/tokens.py"
    uri = client.open(path, path.read_text())
    client.change(uri, 2, [{"range": {"start": {"line": 0, "character": 0},
                                      "end": {"line": 0, "character": 0}},
                            "text": "def purge_stale_cache_entries(cache):\n    cache.clear()\n"}])
    deadline = time.monotonic() + 60
    while True:
        st = client.status()["workspaces"][0]
        if st["embeddedThisSession"] > ws["embeddedThisSession"] and st["pendingEmbeddings"] == 0:
            break
        assert time.monotonic() < deadline, st
        time.sleep(0.2)
    dense = client.search("purge_stale_cache_entries cache clear", mode="dense", limit=50,
                          rerank=False)
    assert dense["mode"] == "dense" and "purge_stale_cache_entries" in names(dense)
    assert client.close() == 0

    # Restart on the same index: nothing is embedded again.
    again = spawn([workspace], model_options(tiny_models), index_dir=index)
    status = again.wait_ready(embedded=True)
    time.sleep(1.5)  # leave room for a (wrong) background embedding to start
    status = again.status()
    ws2 = status["workspaces"][0]
    assert ws2["embedded"] >= ws["embedded"] and ws2["pendingEmbeddings"] == 0
    assert ws2["embeddedThisSession"] == 0  # the closed buffer's chunk is no longer indexed
    assert again.close() == 0


def test_superseded_and_cancelled_searches(spawn, tmp_path: Path, tiny_models: Any) -> None:
    # Many long functions that all match: reranking them with the tiny model takes seconds.
    body = "\n".join(f"    total = total + compute_value(item, {k})" for k in range(40))
    files = {f"pkg/mod{i}.py": f"def compute_value_variant_{i}(item):\n    total = 0\n{body}\n"
                               f"    return total\n" for i in range(30)}
    ws = write_workspace(tmp_path / "many", files)
    options = {"embeddingModel": "off", "rerankerModel": str(tiny_models.reranker),
               "rerankDepth": 30, "rerankBudgetMs": 0, "rerankDocTokens": 1024}
    client = spawn([ws], options)
    client.wait_ready()

    a = client.search("compute value of the item", limit=10)
    b = client.search("compute value variant total", limit=10)
    assert a["rerankPending"] and b["rerankPending"] and a["searchId"] != b["searchId"]
    ref_a = client.wait_for("semcode/searchRefined", lambda p: p["searchId"] == a["searchId"])
    assert ref_a["cancelled"] is True and ref_a["reranked"] is False
    assert [i["name"] for i in ref_a["items"]] == names(a)  # the first-stage items

    client.notify("semcode/cancelSearch", {"searchId": b["searchId"]})
    ref_b = client.wait_for("semcode/searchRefined", lambda p: p["searchId"] == b["searchId"])
    assert ref_b["cancelled"] is True

    # $/cancelRequest while the inline rerank of a command runs: RequestCancelled.
    msg_id, fut = client.request_future("workspace/executeCommand", {
        "command": "semcode.search", "arguments": ["compute value of the item"]})
    time.sleep(0.3)
    client.notify("$/cancelRequest", {"id": msg_id})
    with pytest.raises(LspError) as info:
        fut.result(30)
    assert info.value.code == -32800

    # The server is still fine: a search runs to its reranked end.
    c = client.search("compute value variant", limit=3)
    ref_c = client.wait_for("semcode/searchRefined", lambda p: p["searchId"] == c["searchId"],
                            timeout=120)
    assert ref_c["reranked"] is True
    assert client.close() == 0


def test_missing_models_warn_once_and_degrade(spawn, workspace: Path, tmp_path: Path) -> None:
    options = {"embeddingModel": str(tmp_path / "missing-embedder.gguf"),
               "rerankerModel": str(tmp_path / "missing-reranker.gguf")}
    client = spawn([workspace], options)
    client.wait_ready()
    results = [client.search("refresh the expired oauth token") for _ in range(3)]
    for res in results:
        assert res["items"][0]["name"] == "refresh_expired_token"
        assert res["mode"] == "lexical"
        assert any("semantic search is off" in n for n in res["notices"])
    for res in results:
        if res["rerankPending"]:
            refined = client.wait_for("semcode/searchRefined",
                                      lambda p, sid=res["searchId"]: p["searchId"] == sid)
            assert refined["reranked"] is False and refined["error"]
    assert client.search("shopping cart total")["rerankPending"] is False
    time.sleep(1.0)
    warnings = [m for m in client.received("window/showMessage") if m["type"] == 2]
    assert len([w for w in warnings if "semantic search" in w["message"]]) == 1, warnings
    assert len([w for w in warnings if "reranking" in w["message"]]) == 1, warnings
    status = client.status()
    assert status["models"]["embedder"]["state"] == "missing"
    assert len(status["degraded"]) == 2
    assert client.close() == 0


def test_lexical_settings_make_no_model_warnings(spawn, workspace: Path) -> None:
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    assert client.search("refresh expired token")["items"]
    time.sleep(0.5)
    assert client.received("window/showMessage") == []
    assert client.close() == 0
