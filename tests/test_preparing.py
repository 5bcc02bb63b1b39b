"""Preparing files on every core (index/preparing.py): worker processes give exactly what
this process gives, in the order asked, and a sync with workers stores exactly what a
sync without them stores, chunk ids included; a cancelled run stops its workers; a
worker that dies costs nothing but time."""

from __future__ import annotations

import multiprocessing
import os
import signal
from pathlib import Path

import pytest

from index_harness import QUERIES, settings
from semcode.config import ConfigError, Settings
from semcode.index import preparing
from semcode.index.indexer import Indexer
from semcode.index.preparing import (
    Job,
    PrepareConfig,
    Prepared,
    Preparer,
    Skipped,
    auto_workers,
    batches,
)
from semcode.index.tokenizer import query_tokens
from semcode.workspace import SkipReason

FILES = 60  # above the test's worker threshold, below the real one


def write_tree(root: Path, n: int = FILES) -> list[str]:
    """`n` small files in three languages, one binary and one minified among them."""
    paths = []
    for i in range(n):
        if i % 3 == 0:
            rel, text = f"py/m{i}.py", (f"def fetch_user_{i}(session, user_id):\n"
                                        f"    '''Fetch user {i} over the session.'''\n"
                                        f"    return session.get(user_id + {i})\n\n\n"
                                        f"class Cache{i}:\n    def lookup(self, key):\n"
                                        f"        return self.store[key]\n")
        elif i % 3 == 1:
            rel, text = f"go/f{i}.go", (f"package p\n\n// Retry request {i} with backoff.\n"
                                        f"func RetryRequest{i}(n int) int {{\n"
                                        f"\treturn n * {i}\n}}\n")
        else:
            rel, text = f"js/s{i}.js", (f"function parseConfigValue{i}(raw) {{\n"
                                        f"  return JSON.parse(raw).value + {i};\n}}\n"
                                        f"module.exports.total{i} = (a, b) => a + b;\n")
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text, encoding="utf-8")
        paths.append(rel)
    (root / "blob.py").write_bytes(b"x = 1\n\x00\x01\x02")
    (root / "min.js").write_text("var a=1;" * 4000, encoding="utf-8")
    return [*paths, "blob.py", "min.js"]


@pytest.fixture
def few_jobs_use_workers(monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers for any sync of this test's size (the real threshold is 200 files)."""
    monkeypatch.setattr(preparing, "WORKER_MIN_JOBS", 10)


def config(root: Path) -> PrepareConfig:
    return PrepareConfig.of(root.resolve(), Settings.from_mapping({"embedding_model": "off"}))


def test_workers_give_what_this_process_gives_in_order(tmp_path: Path,
                                                       few_jobs_use_workers: None) -> None:
    paths = write_tree(tmp_path)
    jobs = [Job(p, (tmp_path / p).stat().st_size) for p in paths]
    here = list(Preparer(config(tmp_path), workers=1).run(jobs))
    there = list(Preparer(config(tmp_path), workers=2).run(jobs))
    assert [r.rel_path for r in there] == paths
    assert there == here
    first = here[0]
    assert isinstance(first, Prepared) and first.chunked is not None
    assert [c.name for c in first.chunked.chunks if c.is_symbol][:2] == ["fetch_user_0",
                                                                          "Cache0"]
    assert list(first.hashes) == [c.content_hash() for c in first.chunked.chunks]
    skipped = {r.rel_path: r.reason for r in there if isinstance(r, Skipped)}
    assert skipped == {"blob.py": SkipReason.BINARY, "min.js": SkipReason.MINIFIED}


def test_a_known_digest_is_not_chunked_again(tmp_path: Path) -> None:
    write_tree(tmp_path, 3)
    fresh = next(iter(Preparer(config(tmp_path), 1).run([Job("py/m0.py")])))
    assert isinstance(fresh, Prepared) and not fresh.unchanged
    again = next(iter(Preparer(config(tmp_path), 1).run([Job("py/m0.py", 0, fresh.digest)])))
    assert isinstance(again, Prepared) and again.unchanged and again.digest == fresh.digest


def test_a_missing_file_is_skipped_not_raised(tmp_path: Path, few_jobs_use_workers: None) -> None:
    paths = write_tree(tmp_path, 12)
    (tmp_path / paths[5]).unlink()
    results = list(Preparer(config(tmp_path), 2).run([Job(p) for p in paths]))
    gone = results[5]
    assert isinstance(gone, Skipped) and gone.reason == SkipReason.UNREADABLE
    assert all(isinstance(r, Prepared) for r in results[:5])


def test_a_worker_that_dies_costs_only_time(tmp_path: Path, few_jobs_use_workers: None,
                                            caplog: pytest.LogCaptureFixture,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(preparing, "BATCH_FILES", 1)  # more batches than are in flight
    paths = write_tree(tmp_path)
    jobs = [Job(p) for p in paths]
    expected = list(Preparer(config(tmp_path), 1).run(jobs))
    run = Preparer(config(tmp_path), 2).run(jobs)
    got = [next(run)]
    for child in multiprocessing.active_children():  # the pool's workers
        os.kill(child.pid, signal.SIGKILL)  # type: ignore[arg-type]
    got += list(run)
    assert got == expected
    assert "worker process died" in caplog.text


def test_closing_a_run_early_stops_its_workers(tmp_path: Path, few_jobs_use_workers: None) -> None:
    paths = write_tree(tmp_path)
    run = Preparer(config(tmp_path), 2).run([Job(p) for p in paths])
    next(run)
    workers = multiprocessing.active_children()
    assert workers
    run.close()
    for child in workers:
        child.join(timeout=30)
        assert not child.is_alive()


def test_batches_keep_order_and_bounds() -> None:
    jobs = [Job(f"f{i}", size=300_000 if i % 7 == 0 else 10) for i in range(100)]
    cut = list(batches(jobs))
    assert [j for b in cut for j in b] == jobs
    assert all(len(b) <= preparing.BATCH_FILES for b in cut)
    assert all(sum(j.size for j in b) <= preparing.BATCH_BYTES or len(b) == 1 for b in cut)
    assert list(batches([Job("huge", size=10 * preparing.BATCH_BYTES)])) == \
        [[Job("huge", size=10 * preparing.BATCH_BYTES)]]


def test_the_workers_setting() -> None:
    assert auto_workers(3) == 3
    assert 1 <= auto_workers(0) <= preparing.MAX_AUTO_WORKERS
    assert Settings.from_mapping({"indexWorkers": 2}).index_workers == 2
    with pytest.raises(ConfigError, match="index_workers"):
        Settings.from_mapping({"index_workers": -1})


def stored(ix: Indexer) -> list[tuple[object, ...]]:
    """Every chunk row with its id, in id order: what a sync wrote."""
    chunks = ix.chunks(sorted(ix.refs))
    return [(i, c.path, c.start_line, c.end_line, c.name, int(c.kind), c.text)
            for i, c in sorted(chunks.items())]


def test_a_sync_with_workers_stores_what_one_without_stores(
        tmp_path: Path, few_jobs_use_workers: None) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    write_tree(root)
    results = []
    for workers in (1, 2):
        ix = Indexer(root, settings(tmp_path / f"idx{workers}", index_workers=workers))
        report = ix.sync()
        assert (report.files_indexed, report.files_skipped) == (FILES, 2)
        ix.rebuild_lexical()
        results.append((stored(ix), {q: ix.lexical.search(query_tokens(q), 8)
                                     for q in QUERIES}, sorted(ix.skipped.items())))
        # A second sync reads nothing; an edit is read and re-chunked.
        assert ix.sync().files_unchanged == FILES
        ix.close()
    assert results[0] == results[1]
    assert results[0][2] == [("blob.py", str(SkipReason.BINARY)),
                             ("min.js", str(SkipReason.MINIFIED))]
