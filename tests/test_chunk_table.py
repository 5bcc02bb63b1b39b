"""Issue 19, the chunk table: `Indexer.refs` as columns (index/chunk_table.py) saved
beside the lexical build and mapped at open (index/chunk_files.py). It must behave as
the dict of `ChunkRef`s it replaced (same refs, same filters, same tie order, same
hits and scores), open a current index without reading one chunk row, catch up by id
when another process wrote since it was saved, and fall back to the rows, with one
line, when its file is damaged."""

from __future__ import annotations

import contextlib
import logging
import os
import random
import sqlite3
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from index_harness import rebuild_state, settings, state
from sample_workspace import FILES as SAMPLE_FILES
from sample_workspace import write_files
from semcode.index import chunk_table
from semcode.index.chunk_files import (
    CHUNKS_FILE,
    ChunkTableError,
    load_saved,
    read_table,
    save_table,
)
from semcode.index.chunk_table import ChunkColumns, ChunkTable, ColumnsBuilder
from semcode.index.indexer import Indexer, index_dir_for
from semcode.index.records import ChunkRef
from semcode.index.store import Store
from semcode.models.registry import ModelSet
from semcode.search.engine import Engine, SearchRequest
from semcode.search.paths import compile_globs

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": f"{HERE.parent / 'server'}{os.pathsep}{HERE}",
       "HF_HUB_OFFLINE": "1"}

# (Never a lone surrogate in a path: `valid_name` refuses them, and so do the globs.)
PATHS = ["a.py", "src/b.py", "src/ünï.py", "z/中.py", "deep/er/c.ts"]
LANGUAGES = ["python", "typescript", "text"]
CONTENTS = ["code", "test", "docs"]
NAMES = ["", "run", "Ünïcödé", "\udcff", "x" * 70]


def random_ref(rng: random.Random) -> ChunkRef:
    return ChunkRef(rng.choice(PATHS), rng.choice(LANGUAGES), rng.choice([5, 6, 12, 13]),
                    f"{rng.getrandbits(128):032x}", rng.choice(CONTENTS),
                    rng.randrange(1, 2000), rng.choice(NAMES))


def reference_select(refs: dict[int, ChunkRef], languages: set[str], kinds: set[int],
                     contents: set[str], globs: tuple[str, ...]) -> list[int]:
    """Engine._filter as it was over the dict (0.2)."""
    flt = compile_globs(globs)
    paths = flt.allowed(r.path for r in refs.values()) if flt is not None else None
    return sorted(i for i, r in refs.items()
                  if (not languages or r.language in languages)
                  and (not kinds or r.kind in kinds)
                  and (not contents or r.content in contents)
                  and (paths is None or r.path in paths))


def same_as_dict(table: ChunkTable, want: dict[int, ChunkRef], rng: random.Random) -> None:
    assert len(table) == len(want)
    assert list(table) == sorted(want) == table.ids().tolist()
    assert dict(table.items()) == want and sorted(table.values(), key=repr) == sorted(
        want.values(), key=repr)
    probes = [*rng.sample(sorted(want), min(20, len(want))), -1, 10**9]
    for i in probes:
        assert table.get(i) == want.get(i) and (i in table) == (i in want)
        assert table.order_key(i) == (want[i].order_key if i in want
                                      else ("\U0010ffff", i, "", 0))
    assert table.hashes(probes) == {i: want[i].hash for i in probes if i in want}
    for languages, kinds, contents, globs in (
            ({"python"}, set(), set(), ()), (set(), {5, 13}, {"test"}, ()),
            (set(), set(), set(), ("src/",)), ({"text"}, {6}, set(), ("*.py", "!a.py"))):
        got = table.select(languages, kinds, contents,
                           flt.allowed if (flt := compile_globs(globs)) else None)
        assert got.ids.tolist() == reference_select(want, languages, kinds, contents, globs)
    priority = ["src/ünï.py", "nope.py", "a.py"]
    rank = {p: n for n, p in reversed(list(enumerate(priority)))}
    some = sorted(rng.sample(sorted(want), min(50, len(want))))
    assert table.pending_order(np.asarray(some, np.int64), priority) == sorted(
        some, key=lambda i: (rank.get(want[i].path, len(priority)), i))
    assert table.path_counts() == Counter(r.path for r in want.values())


def test_the_table_behaves_as_the_dict_it_replaces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Random writes through the dict API (folds forced often), columns installed and
    joined: every read and every column question answers as the dict does."""
    monkeypatch.setattr(chunk_table, "FOLD_AT", 24)
    rng = random.Random(19)
    table, want = ChunkTable(), {}
    next_id = 1
    for step in range(60):
        for _ in range(rng.randrange(1, 30)):
            op = rng.random()
            if op < 0.6 or not want:
                ref = random_ref(rng)
                table[next_id] = want[next_id] = ref
                next_id += rng.randrange(1, 4)
            elif op < 0.8:
                victim = rng.choice(sorted(want))
                assert table.pop(victim, None) == want.pop(victim)
            elif op < 0.9:
                victim = rng.choice(sorted(want))
                del table[victim], want[victim]
            else:
                assert table.pop(-5, "absent") == "absent"
                with pytest.raises(KeyError):
                    del table[-5]
        if step % 9 == 4:  # a delta of new chunks, as columns
            builder = ColumnsBuilder()
            for _ in range(rng.randrange(3, 40)):
                ref = random_ref(rng)
                builder.add(next_id, ref)
                want[next_id] = ref
                next_id += 1
            table.update(builder.build())
        if step % 13 == 7:  # a whole state installed (a reload)
            table.install(dict(want), ("store", step))
            assert table.dirty
        if step == 30:
            table.clear()
            want.clear()
        same_as_dict(table, want, rng)
    assert table.columns().ids.tolist() == sorted(want)


def sample_columns(rng: random.Random, n: int = 300) -> ChunkColumns:
    builder = ColumnsBuilder()
    for i in rng.sample(range(1, 10 * n), n):
        builder.add(i, random_ref(rng))
    return builder.build()


def test_a_saved_table_maps_back_exactly_and_refuses_damage(tmp_path: Path) -> None:
    rng = random.Random(7)
    columns = sample_columns(rng)
    path = tmp_path / CHUNKS_FILE
    save_table(path, columns, "store-1", 42)
    for verify in (False, True):
        loaded = read_table(path, verify)
        assert loaded.stamp == ("store-1", 42)
        assert dict(loaded.items()) == dict(columns.items())
        assert not loaded.ids.flags.writeable  # mapped read-only, not copied
    save_table(tmp_path / "empty.bin", ColumnsBuilder().build(), "s", 0)
    assert len(read_table(tmp_path / "empty.bin")) == 0
    good = path.read_bytes()
    st = os.stat(path)

    def damaged(data: bytes, keep_time: bool = False) -> Path:
        path.write_bytes(data)
        if keep_time:  # as `cp -p` would
            os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
        return path

    flipped = bytearray(good)
    flipped[len(good) // 3] ^= 0x40
    for how in ("truncated", "zero bytes", "garbled head", "rewritten"):
        if how == "truncated":
            damaged(good[: len(good) // 2], keep_time=True)
        elif how == "zero bytes":
            damaged(b"")
        elif how == "garbled head":
            damaged(bytes(64) + good[64:], keep_time=True)
        else:  # the same bytes, written again: not the file that was saved
            damaged(good)
        with pytest.raises(ChunkTableError):
            read_table(path)
    damaged(bytes(flipped), keep_time=True)  # inside an array, times kept: a checksum
    with pytest.raises(ChunkTableError, match="checksum"):
        read_table(path, verify=True)
    with pytest.raises(ChunkTableError):
        read_table(tmp_path / "missing.bin")


def test_load_saved_says_why_in_one_line(tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / CHUNKS_FILE
    with caplog.at_level(logging.INFO):
        assert load_saved(path, "s") is None  # none: nothing to say
        assert not [r for r in caplog.records if r.levelno >= logging.INFO]
        save_table(path, sample_columns(random.Random(3)), "s", 1)
        assert load_saved(path, "s") is not None
        assert load_saved(path, "other") is None
        path.write_bytes(path.read_bytes()[:100])
        caplog.clear()
        assert load_saved(path, "s") is None
    assert [r.levelno for r in caplog.records] == [logging.WARNING]


# ---------------------------------------------------------------- on a real index
@contextlib.contextmanager
def sql_seen(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Every statement the store's connections run while inside."""
    seen: list[str] = []
    connect = Store._connect

    def traced(self: Store) -> sqlite3.Connection:
        db = connect(self)
        db.set_trace_callback(seen.append)
        return db

    with monkeypatch.context() as m:
        m.setattr(Store, "_connect", traced)
        yield seen


# The one-row probe every open makes of each table (schema.py: a damaged root page shows
# at once), not a read of the chunks.
PROBE = "SELECT 1 FROM chunks LIMIT 1"


def chunk_reads(seen: list[str]) -> list[str]:
    return [s for s in seen if "FROM chunks" in s and s != PROBE]


def rows_of(ix: Indexer) -> dict[int, ChunkRef]:
    """The dict 0.2 held, read from the rows."""
    return ix.store.chunk_refs()


def built_sample(tmp_path: Path) -> tuple[Path, Path]:
    root, index = tmp_path / "ws", tmp_path / "index"
    write_files(root, SAMPLE_FILES)
    ix = Indexer(root, settings(index))
    ix.sync()
    ix.flush()
    ix.close()
    return root, index


def table_file(root: Path, index: Path) -> Path:
    return index_dir_for(root.resolve(), settings(index)) / CHUNKS_FILE


def test_an_open_with_a_current_table_reads_no_chunk_row(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    root, index = built_sample(tmp_path)
    assert table_file(root, index).is_file()
    with sql_seen(monkeypatch) as seen:
        ix = Indexer(root, settings(index))
        ix.refresh()
        opened = list(seen)
    try:
        assert chunk_reads(opened) == [], chunk_reads(opened)
        assert len(ix.refs) == ix.store.count("chunks") > 0
        assert dict(ix.refs.items()) == rows_of(ix)
        assert not ix.saving.needed()  # nothing to write back
    finally:
        ix.close()
    table_file(root, index).unlink()  # the check can fail: without it, rows are read
    with sql_seen(monkeypatch) as seen:
        ix = Indexer(root, settings(index))
    try:
        assert chunk_reads(seen)
        assert dict(ix.refs.items()) == rows_of(ix) and ix.saving.needed()
        ix.flush()  # the table is written back at the next save
    finally:
        ix.close()
    with sql_seen(monkeypatch) as seen:
        Indexer(root, settings(index)).close()
    assert chunk_reads(seen) == []


REQUESTS = [
    SearchRequest("token cache user", mode="lexical", limit=50),
    SearchRequest("refresh expired token", mode="lexical", limit=50, languages=("python",)),
    SearchRequest("token", mode="lexical", limit=50, kinds=(5, 12)),
    SearchRequest("retry request", mode="lexical", limit=50, paths=("src/**", "!*.ts")),
    SearchRequest("config value", mode="lexical", limit=50, contents=("code",)),
]


def answers(engine: Engine) -> list[list[tuple[int, float, str, int]]]:
    out = []
    for req in REQUESTS:
        hits = engine.search(req).hits
        out.append([(h.chunk_id, h.score, h.chunk.path, h.chunk.start_line) for h in hits])
    return out


def filters_as_the_dict(engine: Engine) -> None:
    refs = rows_of(engine.indexer)
    for req in REQUESTS:
        allow = engine._filter(req)
        if allow is None:
            continue
        want = reference_select(refs, set(req.languages), set(req.kinds),
                                set(req.contents), req.paths)
        assert [i for i in sorted(refs) if allow(i)] == want, req


def test_the_mapped_table_answers_as_the_rows_do(tmp_path: Path) -> None:
    """Same hits, same scores, same tie order from the mapped table as from an index
    opened from its rows (the table removed), through the same edits on both."""
    root, index = built_sample(tmp_path)
    other = tmp_path / "other-index"
    ix = Indexer(root, settings(other))
    ix.sync()
    ix.close()
    table_file(root, other).unlink()
    mapped = Engine.open(root, settings(index))
    from_rows = Engine.open(root, settings(other))
    try:
        assert mapped.indexer.refs.columns().stamp is not None  # really mapped
        assert from_rows.indexer.refs.columns().stamp is None
        for engine in (mapped, from_rows):
            filters_as_the_dict(engine)
        # (chunk ids of the two indexes are the same: both were indexed alike)
        assert answers(mapped) == answers(from_rows)
        edit = SAMPLE_FILES["src/http_client.py"].replace("get_with_retry", "fetch_again")
        for engine in (mapped, from_rows):
            engine.update_file("src/http_client.py", edit)
            engine.update_file("src/new_module.py", "def retry_token_cache():\n    pass\n")
            engine.remove_file("src/tokens.ts")
            filters_as_the_dict(engine)
        assert answers(mapped) == answers(from_rows)
        assert dict(mapped.indexer.refs.items()) == rows_of(mapped.indexer)
    finally:
        mapped.close()
        from_rows.close()


def test_a_stale_table_catches_up_by_id(tmp_path: Path,
                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """Another process wrote after the table was saved (and did not save it): the next
    open maps it and reads only the id column and the new chunks' rows."""
    root, index = built_sample(tmp_path)
    writer = Indexer(root, settings(index))
    buffers = {"src/http_client.py": "def fetch_with_backoff(url):\n    return url\n",
               "src/added.py": "def lookup_session_token(key):\n    return key\n"}
    for path, text in buffers.items():
        writer.update_text(path, text)
    writer.close()  # no flush: the saved table is a state behind
    with sql_seen(monkeypatch) as seen:
        ix = Indexer(root, settings(index))
    try:
        reads = chunk_reads(seen)
        assert any(s.startswith("SELECT id FROM chunks") for s in reads), reads
        assert all(s.startswith("SELECT id FROM chunks") or "WHERE id IN" in s
                   for s in reads), reads
        assert dict(ix.refs.items()) == rows_of(ix)
        got = state(ix, vectors=False)
    finally:
        ix.close()
    for path, text in buffers.items():
        (root / path).write_text(text)
    assert got == rebuild_state(root, tmp_path / "rebuild", vectors=False)


@pytest.mark.parametrize("how", ["truncated", "garbage", "zero bytes", "older"])
def test_a_damaged_table_falls_back_with_one_line(
        tmp_path: Path, how: str, caplog: pytest.LogCaptureFixture,
        monkeypatch: pytest.MonkeyPatch) -> None:
    root, index = built_sample(tmp_path)
    path = table_file(root, index)
    older = path.read_bytes()
    ix = Indexer(root, settings(index))
    ix.update_text("src/added.py", "def lookup_session_token(key):\n    return key\n")
    ix.flush()
    want = answers(Engine(ix, ModelSet(settings(index))))
    ix.close()
    data = path.read_bytes()
    path.write_bytes({"truncated": data[: len(data) // 2], "zero bytes": b"",
                      "garbage": bytes(random.Random(1).randrange(256) for _ in range(4096)),
                      "older": older}[how])
    caplog.clear()
    with caplog.at_level(logging.WARNING):
        engine = Engine.open(root, settings(index))
        try:
            assert answers(engine) == want
            assert dict(engine.indexer.refs.items()) == rows_of(engine.indexer)
        finally:
            engine.close()  # writes the table again
    assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) == 1
    with sql_seen(monkeypatch) as seen:
        Indexer(root, settings(index)).close()
    assert chunk_reads(seen) == []


CHILD = """
import sys, time
from pathlib import Path
sys.path.insert(0, sys.argv[3])
from index_harness import settings
from semcode.index.indexer import Indexer
root, index = Path(sys.argv[1]), Path(sys.argv[2])
ix = Indexer(root, settings(index))
for n in range(12):
    (root / f"child_{n % 4}.py").write_text(
        f"def child_handler_{n}(request):\\n    return lookup_token(request, {n})\\n")
    ix.revert_file(f"child_{n % 4}.py")
    ix.flush()
    time.sleep(0.02)
ix.close()
"""


def test_two_spawned_processes_keep_working(tmp_path: Path) -> None:
    """A process holds the index open (mapped table) and searches while a spawned one
    edits and saves it twelve times: it follows every write, and both, and a third
    opened afterwards from the saved table, hold what a fresh index of the files holds."""
    root, index = built_sample(tmp_path)
    held = Engine.open(root, settings(index))
    try:
        child = subprocess.Popen([sys.executable, "-c", CHILD, str(root), str(index),
                                  str(HERE)], env=ENV)
        searches = 0
        while child.poll() is None:
            held.search(SearchRequest("child handler lookup token", mode="lexical"))
            searches += 1
            time.sleep(0.01)
        assert child.returncode == 0 and searches
        names = {h.chunk.name for h in held.search(
            SearchRequest("child handler", mode="lexical", limit=10)).hits}
        assert {f"child_handler_{n}" for n in range(8, 12)} <= names
        got = state(held.indexer, vectors=False)
        assert dict(held.indexer.refs.items()) == rows_of(held.indexer)
    finally:
        held.close()
    third = Indexer(root, settings(index))
    try:
        assert third.refs.columns().stamp is not None  # opened from the saved table
        assert state(third, vectors=False) == got
    finally:
        third.close()
    assert got == rebuild_state(root, tmp_path / "rebuild", vectors=False)
