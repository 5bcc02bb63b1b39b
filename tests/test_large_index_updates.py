"""A large index (issue 19: the Linux kernel's 1M chunks) is not rebuilt nor rewritten for a
few changed files: the changed chunks stay pending (scored with the build's statistics)
and are re-tokenised from the database by the next process, which then ranks exactly as
the writer does; a rebuild comes once enough changed. "Large" is made small here
(`EXACT_BUILD_MAX_CHUNKS`); small indexes keep ending every sync exact (the other tests)."""

from __future__ import annotations

from pathlib import Path

import pytest

from index_harness import settings
from semcode.index import lexical_upkeep
from semcode.index.indexer import Indexer
from semcode.index.tokenizer import query_tokens

FILES = {f"pkg/mod{n}.py": f"def compute_total_{n}(items):\n    return sum(items) + {n}\n\n"
                           f"def parse_config_{n}(text):\n    return text.split('=')\n"
         for n in range(12)}


@pytest.fixture
def large(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lexical_upkeep, "EXACT_BUILD_MAX_CHUNKS", 5)
    monkeypatch.setattr(lexical_upkeep, "LEXICAL_REBUILD_PENDING", 4)
    monkeypatch.setattr(lexical_upkeep, "LEXICAL_REBUILD_SHARE", 0.0)
    monkeypatch.setattr(lexical_upkeep, "SAVE_PENDING_CHUNKS", 1000)


def tree(tmp_path: Path) -> Path:
    root = tmp_path / "ws"
    for rel, text in FILES.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def ranking(ix: Indexer, query: str) -> list[tuple[tuple[str, int, str, int], float]]:
    ix.refresh()
    return [(ix.order_key(i), round(s, 6)) for i, s in ix.lexical.search(query_tokens(query), 10)]


def test_a_few_changes_stay_pending_and_the_build_is_not_rewritten(tmp_path: Path,
                                                                   large: None) -> None:
    root, s = tree(tmp_path), settings(tmp_path / "index")
    ix = Indexer(root, s)
    ix.sync()
    ix.flush()
    arrays = ix.dir / "lexical" / "arrays.bin"
    saved = arrays.stat().st_mtime_ns, ix.lexical.build_id
    (root / "pkg" / "mod3.py").write_text("def reconcile_ledger_entries(ledger):\n"
                                          "    return ledger\n")
    report = ix.sync()
    assert report.files_indexed == 1
    assert ix.lexical.pending > 0 and ix.lexical.build_id == saved[1]  # not rebuilt
    found = ranking(ix, "reconcile ledger entries")
    assert found and found[0][0][2] == "reconcile_ledger_entries"
    ix.flush()
    assert arrays.stat().st_mtime_ns == saved[0]  # not rewritten for one file
    other = Indexer(root, s)  # the next process: the saved build plus the store's rows
    try:
        for query in ("reconcile ledger entries", "compute total", "parse config"):
            assert ranking(other, query) == ranking(ix, query)
    finally:
        other.close()
        ix.close()


def test_enough_changes_rebuild_at_the_end_of_a_sync(tmp_path: Path, large: None) -> None:
    root, s = tree(tmp_path), settings(tmp_path / "index")
    ix = Indexer(root, s)
    try:
        ix.sync()
        build = ix.lexical.build_id
        for n in range(6):
            (root / "pkg" / f"mod{n}.py").write_text(f"def settle_invoice_{n}(x):\n"
                                                     "    return x\n")
        ix.sync()
        assert ix.lexical.build_id != build and ix.lexical.pending == 0  # exact again
    finally:
        ix.close()
