"""Issue 13, item 1: every search sees every keystroke, cheaply. Over real stdio: a
search (and `semcode.search`, workspace/symbol, semcode/related) right after an edit sees
it, with the ranges of the chunks the edit moved; in a second folder too. Without a
server: a read waits for its folder's edits only, and no longer than its deadline; the
heap is settled after indexing."""

from __future__ import annotations

import gc
import threading
from concurrent.futures import Future
from pathlib import Path
from typing import Any

from client import LspClient
from lsp_helpers import LEXICAL, names, write_workspace

from semcode.heap import settle_heap
from semcode.lsp.folders import EditBarrier
from semcode.search.engine import SearchResponse


def item(client: LspClient, query: str, name: str) -> dict[str, Any] | None:
    return next((i for i in client.search(query, mode="lexical")["items"]
                 if i["name"] == name), None)


def lines(found: dict[str, Any] | None) -> tuple[int, int]:
    assert found is not None
    return found["range"]["start"]["line"], found["range"]["end"]["line"]


def test_edits_in_place_and_above_are_searchable_with_their_ranges(spawn, workspace: Path
                                                                   ) -> None:
    client = spawn([workspace], LEXICAL)
    client.wait_ready()
    path = workspace / "auth/tokens.py"
    text = path.read_text()
    uri = client.open(path, text)
    before = lines(item(client, "deactivate account", "deactivate_account"))

    # A change inside one function, no lines added: the other chunks stay as they were.
    edited = text.replace("return session.token", "return session.renewed_bearer_token")
    client.change(uri, 2, [{"text": edited}])
    assert item(client, "renewed bearer token", "refresh_expired_token") is not None
    assert lines(item(client, "deactivate account", "deactivate_account")) == before

    # Two lines added above everything: every chunk below moves, and is found where it is.
    edited = "# header one\n# header two\n" + edited
    client.change(uri, 3, [{"text": edited}])
    assert lines(item(client, "deactivate account", "deactivate_account")) == (
        before[0] + 2, before[1] + 2)
    cmd = client.command("semcode.search", "renewed bearer token", {"limit": 5})
    assert "refresh_expired_token" in names(cmd)
    symbols = client.request("workspace/symbol", {"query": "renewed bearer token"})
    assert any(s["name"] == "refresh_expired_token" for s in symbols)

    # An edit and a related query at once: the position is read in the edited text.
    edited = edited.replace("def deactivate_account", "def suspend_account")
    client.change(uri, 4, [{"text": edited}])
    line = edited.splitlines().index("    def suspend_account(self, reason):")
    related = client.request("semcode/related", {
        "textDocument": {"uri": uri}, "position": {"line": line, "character": 8}})
    assert isinstance(related["items"], list)
    assert item(client, "suspend account", "suspend_account") is not None
    assert item(client, "deactivate account", "deactivate_account") is None

    client.notify("textDocument/didClose", {"textDocument": {"uri": uri}})
    assert lines(item(client, "deactivate account", "deactivate_account")) == before
    assert client.close() == 0


def test_a_search_sees_an_edit_in_a_second_folder(spawn, tmp_path: Path) -> None:
    first = write_workspace(tmp_path / "one")
    second = write_workspace(tmp_path / "two", {"lib/clock.py": "def tick():\n    pass\n"})
    client = spawn([first, second], LEXICAL)
    client.wait_ready()
    path = second / "lib/clock.py"
    uri = client.open(path, path.read_text())
    for version in range(2, 5):
        text = path.read_text() + f"\ndef second_folder_probe_{version}():\n    pass\n"
        client.change(uri, version, [{"text": text}])
        found = item(client, f"second folder probe {version}",
                      f"second_folder_probe_{version}")
        assert found is not None and found["workspaceFolder"] == second.as_uri()
    assert item(client, "refresh expired token", "refresh_expired_token") is not None
    assert client.close() == 0


class _Folder:
    """Stands in for `Folder` in `EditBarrier.read` (`read`, `name`, `writer_waiting`)."""

    def __init__(self) -> None:
        self.name = "proj"
        self.writer_waiting = threading.Event()

    def read(self, fn: Any, *args: Any) -> Any:
        return fn("engine", *args)


def test_a_read_waits_for_its_own_folders_edits_only() -> None:
    mine, other = _Folder(), _Folder()
    edit: Future[None] = Future()
    stuck: Future[None] = Future()  # never done
    barrier = EditBarrier({mine: [edit], other: [stuck]}, wait_s=600.0)  # type: ignore[dict-item]
    out: list[Any] = []
    reader = threading.Thread(target=lambda: out.append(
        barrier.read(mine, lambda engine, x: (engine, x), 1)))  # type: ignore[arg-type]
    reader.start()
    reader.join(0.05)
    assert out == []  # still waiting for the edit
    edit.set_result(None)
    reader.join(30)
    assert out == [("engine", 1)]
    # A folder without edits, and a barrier with none, read at once.
    assert barrier.read(_Folder(), lambda engine: engine) == "engine"  # type: ignore[arg-type]
    assert EditBarrier().read(mine, lambda engine: engine) == "engine"  # type: ignore[arg-type]


def test_a_read_answers_from_what_is_there_after_its_deadline_and_says_so() -> None:
    folder = _Folder()
    stuck: Future[None] = Future()  # a writer busy for longer than a search waits
    barrier = EditBarrier({folder: [stuck]}, wait_s=0.05)  # type: ignore[dict-item]
    answer = barrier.read(folder, lambda engine: SearchResponse([], False, "lexical"))  # type: ignore[arg-type]
    assert answer is not None and not stuck.done()
    assert answer.notices == ["1 buffer edit in proj sent before this search is not in its "
                              "results: they were not applied within 0.05 s; search again "
                              "once they are applied"]
    folder.writer_waiting.set()  # the writer waits for another process's write lock
    answer = barrier.read(folder, lambda engine: SearchResponse([], False, "lexical"))  # type: ignore[arg-type]
    assert answer is not None and "another semcode process is writing" in answer.notices[0]
    # Edits queued behind a folder's scan are not waited for, and that is said too.
    behind = EditBarrier({}, wait_s=5.0, behind_scan={folder: 2})  # type: ignore[dict-item]
    answer = behind.read(folder, lambda engine: SearchResponse([], False, "lexical"))  # type: ignore[arg-type]
    assert answer is not None and answer.notices == [
        "2 buffer edits in proj are not in these results yet: they are applied when its "
        "indexing is done"]


def test_settle_heap_exempts_the_survivors_from_later_collections() -> None:
    try:
        settle_heap()
        assert gc.get_freeze_count() > 0
        settle_heap()  # again (a re-index): unfreezes, collects, freezes
        assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
