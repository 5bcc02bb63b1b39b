"""A sync commits in batches (`Indexer._batched_writes`, `Store.batch`): what a batch
writes becomes searchable only once committed, a failed commit loses only its own batch
(memory reloaded from the store, nothing wedged), and how often a sync commits changes
nothing of the result, chunk ids included."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from index_harness import settings, state
from semcode.index import indexer as indexer_module
from semcode.index.indexer import Indexer
from semcode.index.store import StoreError
from semcode.index.tokenizer import query_tokens

FILES = 12


def make_tree(tmp_path: Path) -> Path:
    """A workspace of FILES small Python files, each one handler."""
    root = tmp_path / "ws"
    root.mkdir()
    for i in range(FILES):
        (root / f"m{i:02}.py").write_text(
            f"def handler_{i}(request):\n    '''Handle request number {i}.'''\n"
            f"    return request.reply({i})\n", encoding="utf-8")
    return root


class _FailingNthCommit:
    """The writer connection, whose `n`-th COMMIT fails as on a full disk."""

    def __init__(self, db: sqlite3.Connection, n: int) -> None:
        self.db, self.left = db, n

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT":
            self.left -= 1
            if self.left == 0:
                raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


@contextlib.contextmanager
def failing_commit(ix: Indexer, n: int) -> Iterator[None]:
    """The index's `n`-th COMMIT from now fails (as on a full disk) inside the block."""
    real = ix.store._db
    assert real is not None
    ix.store._db = _FailingNthCommit(real, n)  # type: ignore[assignment]
    try:
        yield
    finally:
        ix.store._db = real


def names(ix: Indexer, query: str) -> set[str]:
    ids = [i for i, _ in ix.lexical.search(query_tokens(query), 50)]
    return {c.name for c in ix.chunks(ids).values()}


def test_how_often_a_sync_commits_changes_nothing(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path)
    one = Indexer(root, settings(tmp_path / "one"))
    one.sync()
    monkeypatch.setattr(indexer_module, "BATCH_COMMIT_S", 0.0)  # a commit per file
    each = Indexer(root, settings(tmp_path / "each"))
    each.sync()
    assert sorted(one.refs) == sorted(each.refs)
    assert state(one) == state(each)


def test_a_failed_commit_loses_only_its_batch(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path)
    monkeypatch.setattr(indexer_module, "BATCH_COMMIT_S", 0.0)
    ix = Indexer(root, settings(tmp_path / "index"))
    with failing_commit(ix, 5), pytest.raises(StoreError, match="disk is full"):
        ix.sync()
    # Memory is exactly the store: the four files committed, the fifth rolled back.
    stored = ix.store.chunk_refs()
    assert sorted(ix.refs) == sorted(stored)
    assert {r.path for r in stored.values()} == {f"m{i:02}.py" for i in range(4)}
    assert names(ix, "handler 2 request") >= {"handler_2"}
    assert "handler_4" not in names(ix, "handler 4 request")
    # Not wedged: the next sync completes and equals a fresh index.
    ix.sync()
    fresh = Indexer(root, settings(tmp_path / "fresh"))
    fresh.sync()
    assert state(ix) == state(fresh)
    assert names(ix, "handler 4 request") >= {"handler_4"}


def test_a_failed_commit_undoes_a_removal_in_memory_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root = make_tree(tmp_path)
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()
    monkeypatch.setattr(indexer_module, "BATCH_COMMIT_S", 0.0)
    (root / "m03.py").write_text("def renamed_three():\n    pass\n", encoding="utf-8")
    (root / "m04.py").write_bytes(b"\x00binary now")  # skipped: its chunks are removed
    (root / "m05.py").write_text("def renamed_five():\n    pass\n", encoding="utf-8")
    # Commit 1: m03. Commit 2: m04's removal with m05: it fails.
    with failing_commit(ix, 2), pytest.raises(StoreError, match="disk is full"):
        ix.sync()
    assert sorted(ix.refs) == sorted(ix.store.chunk_refs())
    assert "handler_4" in names(ix, "handler 4 request")  # the removal was rolled back
    assert "renamed_three" in names(ix, "renamed three")
    assert "renamed_five" not in names(ix, "renamed five")
    ix.sync()
    assert "handler_4" not in names(ix, "handler 4 request")
    assert "renamed_five" in names(ix, "renamed five")
