"""The MCP server on a workspace whose full check is slow (issue 19: the Linux kernel takes
seconds to walk): tool calls update just the files the OS reported changed (a real
`watchfiles` watcher on a real directory), answer from the saved index while the first
check runs, and fall back to checking everything when the watcher cannot say."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from semcode.config import Settings
from semcode.mcp import watching
from semcode.mcp.service import STALE_NOTICE, McpService
from semcode.mcp.watching import ChangeWatcher
from semcode.states import ServeState

TIMEOUT_S = 30


def settings(tmp_path: Path) -> Settings:
    return Settings.from_mapping({"index_dir": str(tmp_path / "index"),
                                  "embedding_model": "off", "reranker_model": "off"})


def wait_for(predicate: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + TIMEOUT_S
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def names(answer: dict) -> list[str]:
    return [hit["symbol"].rsplit(".", 1)[-1] for hit in answer["hits"]]


def search(service: McpService, query: str) -> dict:
    return service.search(query, limit=5, mode="lexical", languages=[], paths=[],
                          contents=[], max_tokens=2000)


class CountingSyncs:
    """Counts the service's full checks (`Engine.sync`)."""

    def __init__(self, service: McpService) -> None:
        self.calls = 0
        real = service.engine.sync

        def counted(*args, **kwargs):
            self.calls += 1
            return real(*args, **kwargs)

        service.engine.sync = counted  # type: ignore[method-assign]


def started(workspace: Path, tmp_path: Path, budget_s: float) -> McpService:
    service = McpService(workspace, settings(tmp_path), full_check_budget_s=budget_s)
    service.start()
    wait_for(lambda: service.state == ServeState.READY, "the first index")
    return service


def test_a_slow_workspace_is_kept_fresh_by_the_watcher(workspace: Path,
                                                       tmp_path: Path) -> None:
    # A budget below any real check's cost: this workspace counts as slow to walk.
    service = started(workspace, tmp_path, budget_s=-1.0)
    try:
        search(service, "retry")  # a full check that finds nothing: its cost is known
        syncs = CountingSyncs(service)
        new = workspace / "src" / "quota.py"
        new.write_text("def enforce_quota_for_tenant(tenant):\n    return tenant.limit\n")
        wait_for(lambda: "enforce_quota_for_tenant" in names(
            search(service, "enforce quota tenant")), "the new file to be found")
        new.unlink()
        wait_for(lambda: "enforce_quota_for_tenant" not in names(
            search(service, "enforce quota tenant")), "the deleted file to be gone")
        assert syncs.calls == 0  # not one walk of the workspace: the watcher said what
        assert service.watcher.watching
    finally:
        service.close()


def test_a_fast_workspace_is_checked_before_every_call(workspace: Path,
                                                       tmp_path: Path) -> None:
    """Below the budget, a file written just before a call is in its answer (no waiting
    for the OS to report it)."""
    service = started(workspace, tmp_path, budget_s=60.0)
    try:
        search(service, "retry")
        (workspace / "src" / "quota.py").write_text(
            "def enforce_quota_for_tenant(tenant):\n    return tenant.limit\n")
        assert "enforce_quota_for_tenant" in names(search(service, "enforce quota tenant"))
    finally:
        service.close()


def test_without_a_watcher_every_call_checks_everything(workspace: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    monkeypatch.setattr(ChangeWatcher, "take", lambda self: None)  # cannot say
    service = started(workspace, tmp_path, budget_s=-1.0)
    try:
        search(service, "retry")
        syncs = CountingSyncs(service)
        (workspace / "src" / "quota.py").write_text(
            "def enforce_quota_for_tenant(tenant):\n    return tenant.limit\n")
        assert "enforce_quota_for_tenant" in names(search(service, "enforce quota tenant"))
        assert syncs.calls == 1
    finally:
        service.close()


def test_calls_during_the_first_check_answer_from_the_saved_index(workspace: Path,
                                                                  tmp_path: Path) -> None:
    first = McpService(workspace, settings(tmp_path))
    first.start()
    wait_for(lambda: first.state == ServeState.READY, "the first index")
    first.close()
    service = McpService(workspace, settings(tmp_path))
    release = threading.Event()
    real = service.engine.sync

    def slow_sync(*args, **kwargs):
        release.wait(TIMEOUT_S)  # the kernel's walk, in a test's time
        return real(*args, **kwargs)

    service.engine.sync = slow_sync  # type: ignore[method-assign]
    try:
        service.start()
        answer = search(service, "retry backoff")
        assert answer["hits"] and STALE_NOTICE in answer["notices"]
        release.set()
        wait_for(lambda: service.state == ServeState.READY, "the first check")
        assert STALE_NOTICE not in search(service, "retry backoff")["notices"]
    finally:
        release.set()
        service.close()


def test_too_many_changes_at_once_mean_check_everything(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(watching, "MAX_PENDING", 3)
    watcher = ChangeWatcher(tmp_path)
    assert watcher.start()
    try:
        (tmp_path / "one.py").write_text("x = 1\n")
        wait_for(lambda: watcher._changed or watcher._overflow, "the first change")
        assert watcher.take() == ["one.py"]
        for n in range(5):
            (tmp_path / f"many{n}.py").write_text("x = 1\n")
        wait_for(lambda: watcher._overflow, "an overflow")
        assert watcher.take() is None  # then: nothing known to be pending
        assert watcher.take() == []
    finally:
        watcher.close()
