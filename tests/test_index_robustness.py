"""Issue 12, index side: one test per finding (each failed before the fix)."""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest

from index_harness import FAKE_DIMS, FAKE_MODEL, embed_all, rebuild_state, settings, state
from semcode.cli import main
from semcode.index import indexer as indexer_mod
from semcode.index.indexer import Indexer, index_dir_for
from semcode.index.store import Store, StoreError
from semcode.index.tokenizer import query_tokens

HELPERS = "def parse_config_value(text):\n    return text.strip()\n\n\n" \
          "def format_report_line(row):\n    return ', '.join(row)\n"


def make_ws(tmp_path: Path, files: dict[str, str] | None = None) -> Path:
    root = tmp_path / "ws"
    root.mkdir()
    for rel, text in (files or {"helpers.py": HELPERS,
                                "app.py": "def run_application():\n    return 1\n"}).items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def found(ix: Indexer, query: str) -> set[str]:
    ix.refresh()
    hits = ix.lexical.search(query_tokens(query), 10)
    return {ix.refs[i].name for i, _ in hits}


# ---------------------------------------------------------------- finding 1
def test_two_processes_never_overwrite_each_other(tmp_path: Path) -> None:
    """A CLI index, a server on the same index, a disk edit indexed by the CLI, a
    buffer edit in the server, the server saves and exits: nothing is lost."""
    root = make_ws(tmp_path)
    s = settings(tmp_path / "index")
    cli = Indexer(root, s)
    cli.sync()
    cli.flush()
    cli.close()
    server = Indexer(root, s)  # `semcode serve`
    (root / "helpers.py").write_text(HELPERS + "\n\ndef load_yaml_settings(path):\n    pass\n")
    cli = Indexer(root, s)  # `semcode search` in a terminal
    cli.sync()
    cli.flush()
    cli.close()
    server.update_text("app.py", "def run_application():\n    return 2\n")  # a didChange
    server.flush()
    server.close()
    again = Indexer(root, s)
    again.sync()
    assert {"parse_config_value", "load_yaml_settings"} <= found(again, "parse config "
                                                                 "value load yaml settings")
    # The server is gone, so the disk's app.py counts again.
    assert state(again) == rebuild_state(root, tmp_path / "rebuild", vectors=False)
    again.close()


def test_full_reindex_elsewhere_is_seen_by_a_running_server(tmp_path: Path) -> None:
    root = make_ws(tmp_path)
    s = settings(tmp_path / "index")
    server = Indexer(root, s)
    server.sync()
    other = Indexer(root, s)  # `semcode index --full` while the server runs
    other.reset()
    other.sync()
    other.flush()
    other.close()
    assert "parse_config_value" in found(server, "parse config value")
    assert len(server.refs) == len(Indexer(root, s).refs)


def test_a_second_writer_waits_with_one_line(tmp_path: Path) -> None:
    root = make_ws(tmp_path)
    s = settings(tmp_path / "index")
    first = Indexer(root, s)
    lines: list[str] = []
    second = Indexer(root, s, notice=lines.append)
    release, held = threading.Event(), threading.Event()

    def hold() -> None:
        with first.write_lock.hold():
            held.set()
            release.wait(10)

    t = threading.Thread(target=hold)
    t.start()
    held.wait(10)
    timer = threading.Timer(1.0, release.set)
    timer.start()
    second.sync()  # waits for `first`, then writes
    t.join()
    assert lines == ["waiting for another semcode process writing this index…"]
    assert "parse_config_value" in found(first, "parse config value")


# ---------------------------------------------------------------- finding 2
def test_a_file_that_becomes_a_directory(tmp_path: Path) -> None:
    root = make_ws(tmp_path, {"tools": "def old_tool():\n    pass\n"})
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()
    (root / "tools").unlink()
    (root / "tools").mkdir()
    (root / "tools" / "frob.py").write_text("def frobnicate_widgets():\n    pass\n")
    ix.sync()
    assert found(ix, "frobnicate widgets") == {"frobnicate_widgets"}
    # The watcher path: a late "tools deleted" event must not drop tools/frob.py.
    ix.remove_file("tools")
    assert found(ix, "frobnicate widgets") == {"frobnicate_widgets"}
    assert "old_tool" not in found(ix, "old tool")
    # A directory handed over as a buffer (didOpen of a folder URI) is not a file.
    assert ix.update_text("tools", "def not_a_file():\n    pass\n")
    ix.remove_file("tools")
    assert found(ix, "frobnicate widgets") == {"frobnicate_widgets"}
    assert "not_a_file" not in found(ix, "not a file")


# ---------------------------------------------------------------- finding 5
def test_garbled_vectors_file_is_rebuilt_never_loaded(tmp_path: Path) -> None:
    root = make_ws(tmp_path)
    s = settings(tmp_path / "index")
    ix = Indexer(root, s)
    ix.sync()
    embed_all(ix)
    ix.flush()
    ix.close()
    path = index_dir_for(root.resolve(), s) / "vectors.usearch"
    data = bytearray(path.read_bytes())
    start = len(data) // 2  # the graph: usearch's own header still looks fine
    data[start:start + 256] = b"\xff" * 256
    path.write_bytes(bytes(data))
    # In a subprocess: before the fix this segfaulted.
    code = ("import sys; sys.path[:0] = sys.argv[1:3]\n"
            "from pathlib import Path\n"
            "from index_harness import settings, FAKE_MODEL, FAKE_DIMS\n"
            "from semcode.index.indexer import Indexer\n"
            f"ix = Indexer(Path({str(root)!r}), settings(Path({str(tmp_path / 'index')!r})))\n"
            "print('pending', ix.attach_model(FAKE_MODEL, FAKE_DIMS), len(ix.vectors))\n")
    here = Path(__file__).parent
    proc = subprocess.run([sys.executable, "-c", code, str(here.parent / "server"), str(here)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split()[:2] == ["pending", "0"]  # all from the embedding cache
    assert proc.stderr.count("rebuilding the vector index") == 1, proc.stderr


# ---------------------------------------------------------------- finding 6
def test_file_names_that_are_not_utf8(tmp_path: Path, capsys: pytest.CaptureFixture[str]
                                      ) -> None:
    root = make_ws(tmp_path)
    bad = os.fsencode(root) + b"/bad\xff\xfe.py"
    with open(bad, "wb") as f:
        f.write(b"def badly_named_module():\n    pass\n")
    (root / "zzz_after.py").write_text("def comes_after_the_bad_name():\n    pass\n")
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()
    assert "comes_after_the_bad_name" in found(ix, "comes after the bad name")
    assert "file name is not valid UTF-8" in ix.skipped.values()
    assert ix.update_text(os.fsdecode(b"bad\xff\xfe.py"), "def x():\n    pass\n")
    ix.close()
    assert main(["search", "comes after", "-w", str(root), "--mode", "lexical",
                 "--index-dir", str(tmp_path / "index2")]) == 0
    assert "comes_after_the_bad_name" in capsys.readouterr().out


# ---------------------------------------------------------------- finding 7
def _cli_search(root: Path, index: Path, query: str = "parse config value", *extra: str
                ) -> tuple[int, str, str]:
    proc = subprocess.run(
        [sys.executable, "-m", "semcode", "search", query, *extra, "-w", str(root), "--mode",
         "lexical", "--json", "--index-dir", str(index), "--embedding-model", "off",
         "--no-rerank"],
        capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "server")})
    return proc.returncode, proc.stdout, proc.stderr


def test_damaged_database_page_is_moved_aside_and_rebuilt(tmp_path: Path) -> None:
    root = make_ws(tmp_path, {f"m{i}.py": f"def function_{i}(x):\n    return {i}\n" * 3
                              for i in range(40)} | {"helpers.py": HELPERS})
    index = tmp_path / "index"
    ix = Indexer(root, settings(index))
    ix.sync()
    embed_all(ix)
    ix.flush()
    ix.close()
    db = index_dir_for(root.resolve(), settings(index)) / "index.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        root_page = c.execute("SELECT rootpage FROM sqlite_master WHERE name='chunks'"
                              ).fetchone()[0]
        page_size = c.execute("PRAGMA page_size").fetchone()[0]
    with open(db, "r+b") as f:  # smash the chunks table's root page
        f.seek((root_page - 1) * page_size)
        f.write(b"\xa5" * page_size)
    code, out, err = _cli_search(root, index)
    assert code == 0, err
    assert "Traceback" not in err and err.count("\n") == 1, err
    assert "damaged" in err and "moved it to index.sqlite.damaged-" in err
    assert '"parse_config_value"' in out
    assert list(db.parent.glob("index.sqlite.damaged-*"))
    # Cached embeddings came over from the damaged copy.
    assert Store(db).count("embeddings") > 0


def test_zero_byte_database_says_so_and_full_recovers(tmp_path: Path) -> None:
    root = make_ws(tmp_path)
    index = tmp_path / "index"
    assert _cli_search(root, index)[0] == 0
    db = index_dir_for(root.resolve(), settings(index)) / "index.sqlite"
    for side in ("-wal", "-shm"):
        Path(f"{db}{side}").unlink(missing_ok=True)
    db.write_bytes(b"")
    code, out, err = _cli_search(root, index, "parse config value", "--no-update")
    assert code == 0 and "empty (0 bytes)" in err and err.count("\n") == 1, err
    assert '"parse_config_value"' in out
    db.write_bytes(b"garbage" * 1000)  # `index --full` recovers whatever the damage
    proc = subprocess.run(
        [sys.executable, "-m", "semcode", "index", str(root), "--full", "--no-embed",
         "--index-dir", str(index)], capture_output=True, text=True, timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).parent.parent / "server")})
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr


def test_older_schema_keeps_cached_embeddings(tmp_path: Path) -> None:
    root = make_ws(tmp_path)
    s = settings(tmp_path / "index")
    ix = Indexer(root, s)
    ix.sync()
    n = embed_all(ix)
    ix.close()
    db = index_dir_for(root.resolve(), s) / "index.sqlite"
    with sqlite3.connect(db) as c:
        c.execute("UPDATE meta SET value='0' WHERE key='schema_version'")
    ix = Indexer(root, s)
    assert any("older semcode" in line for line in ix.notices)
    ix.sync()
    assert ix.attach_model(FAKE_MODEL, FAKE_DIMS) == 0 and len(ix.vectors or []) == n
    ix.close()


def _as_schema_1(db: Path) -> None:
    """Make `db` what semcode 0.2 wrote (schema 1): every chunk's BM25 tokens stored in a
    `tokens` column, as large as they were (about the size of the text)."""
    with sqlite3.connect(db) as c:
        c.execute("ALTER TABLE chunks ADD COLUMN tokens TEXT NOT NULL DEFAULT ''")
        c.execute("UPDATE chunks SET tokens = text || text || text")
        c.execute("UPDATE meta SET value='1' WHERE key='schema_version'")
    with sqlite3.connect(db) as c:
        c.execute("VACUUM")
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _on_disk(db: Path) -> int:
    return sum(p.stat().st_size for p in (db, Path(f"{db}-wal")) if p.exists())


@pytest.mark.parametrize("reader_open", [False, True], ids=["alone", "beside-a-reader"])
def test_a_schema_1_database_is_upgraded_in_place(tmp_path: Path, reader_open: bool,
                                                  caplog: pytest.LogCaptureFixture) -> None:
    """Dropping the stored tokens (schema 2) loses nothing: no re-chunk, every cached
    embedding kept, the same scores; one line says so; the file shrinks unless another
    connection is reading it (then its free pages are reused)."""
    big = "\n\n".join(f"def helper_{n}(value):\n    return value * {n} + len('{'x' * 300}')"
                      for n in range(300))
    root = make_ws(tmp_path, {"helpers.py": HELPERS, "big.py": big})
    s = settings(tmp_path / "index")
    ix = Indexer(root, s)
    ix.sync()
    n = embed_all(ix)
    before = state(ix)
    ix.close()
    db = index_dir_for(root.resolve(), s) / "index.sqlite"
    _as_schema_1(db)
    size_1 = _on_disk(db)
    reader = sqlite3.connect(db)
    if reader_open:  # another process in the middle of a read
        reader.execute("BEGIN")
        reader.execute("SELECT count(*) FROM chunks").fetchone()
    try:
        with caplog.at_level(logging.INFO, logger="semcode.index.schema"):
            ix = Indexer(root, s)
    finally:
        reader.close()
    try:
        lines = [r for r in caplog.records if r.name == "semcode.index.schema"]
        assert [r.levelno for r in lines][:1] == [logging.WARNING], lines
        assert "upgrading the index database" in lines[0].getMessage()
        assert ix.sync().files_indexed == 0  # nothing re-chunked
        assert ix.attach_model(FAKE_MODEL, FAKE_DIMS) == 0 and len(ix.vectors or []) == n
        assert state(ix) == before
    finally:
        ix.close()
    with sqlite3.connect(db) as c:
        assert c.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone() \
            == ("2",)
        assert "tokens" not in {r[1] for r in c.execute("PRAGMA table_info(chunks)")}
    if not reader_open:
        assert _on_disk(db) < size_1 * 0.6, (_on_disk(db), size_1)
    ix = Indexer(root, s)  # once: a second open says nothing
    try:
        assert not any("upgrad" in n for n in ix.notices)
    finally:
        ix.close()


# ---------------------------------------------------------------- finding 8
def test_index_dir_that_is_a_file_is_one_line(tmp_path: Path,
                                              capsys: pytest.CaptureFixture[str]) -> None:
    root = make_ws(tmp_path)
    (tmp_path / "notadir").write_text("x")
    assert main(["index", str(root), "--no-embed", "--index-dir",
                 str(tmp_path / "notadir")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("semcode: ") and err.count("\n") == 1, err


# ---------------------------------------------------------------- finding 11
class _FailingCommit:
    """A connection whose next COMMIT fails (as on a full disk)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self.db, self.fail = db, True

    def execute(self, sql: str, *args: object) -> object:
        if sql == "COMMIT" and self.fail:
            self.fail = False
            raise sqlite3.OperationalError("database or disk is full")
        return self.db.execute(sql, *args)

    def __getattr__(self, name: str) -> object:
        return getattr(self.db, name)


def test_a_failed_commit_does_not_wedge_the_store(tmp_path: Path) -> None:
    root = make_ws(tmp_path)
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()
    real = ix.store._db
    ix.store._db = _FailingCommit(real)  # type: ignore[assignment]
    with pytest.raises(StoreError, match="disk is full"):
        ix.update_text("app.py", "def first_try_lost():\n    pass\n")
    ix.store._db = real
    ix.update_text("app.py", "def second_attempt():\n    pass\n")  # not wedged
    assert found(ix, "second attempt") == {"second_attempt"}
    assert found(ix, "first try lost") == set()


def test_status_does_not_walk_the_disk_under_the_lock(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    ix = Indexer(make_ws(tmp_path), settings(tmp_path / "index"))
    held: list[bool] = []
    real = indexer_mod._dir_size

    def spy(path: Path) -> int:
        held.append(ix.lock._is_owned())  # type: ignore[attr-defined]
        return real(path)

    monkeypatch.setattr(indexer_mod, "_dir_size", spy)
    ix.status()
    assert held == [False]


def test_pending_embeddings_survive_concurrent_writes(tmp_path: Path) -> None:
    root = make_ws(tmp_path, {f"m{i}.py": f"def f{i}():\n    pass\n" for i in range(30)})
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()
    ix.attach_model(FAKE_MODEL, FAKE_DIMS)
    stop = threading.Event()
    errors: list[BaseException] = []

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            ix.update_text(f"m{n % 30}.py", f"def g{n}():\n    pass\n")

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(200):
            try:
                ix.pending_embeddings(priority=["m1.py", "m2.py"])
            except BaseException as exc:  # KeyError: a ref removed while sorting
                errors.append(exc)
    finally:
        stop.set()
        t.join()
    assert not errors


# ---------------------------------------------------------------- smaller ones
def test_repaired_lexical_index_is_saved(tmp_path: Path,
                                         caplog: pytest.LogCaptureFixture) -> None:
    root = make_ws(tmp_path)
    s = settings(tmp_path / "index")
    ix = Indexer(root, s)
    ix.sync()
    ix.flush()
    ix.close()
    docs = index_dir_for(root.resolve(), s) / "lexical" / "arrays.bin"
    docs.write_bytes(docs.read_bytes()[:-10])
    with caplog.at_level(logging.WARNING):
        Indexer(root, s).flush()
        first = [r.message for r in caplog.records if "rebuilding" in r.message]
        caplog.clear()
        Indexer(root, s).close()
        second = [r.message for r in caplog.records if "rebuilding" in r.message]
    assert len(first) == 1 and second == []


def test_an_older_lexical_format_is_rebuilt_once_with_one_notice(
        tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """An index saved by semcode 0.2 (lexical format 1: .npz files, a JSON vocabulary)
    opens: one warning that says why, the same answers as before, and a format-2 build
    saved in its place (the next open says nothing)."""
    root = make_ws(tmp_path)
    s = settings(tmp_path / "index")
    ix = Indexer(root, s)
    ix.sync()
    ix.flush()
    want = state(ix)
    ix.close()
    lexical_dir = index_dir_for(root.resolve(), s) / "lexical"
    meta = json.loads((lexical_dir / "meta.json").read_text(encoding="utf-8"))
    meta["format"] = 1
    (lexical_dir / "meta.json").write_text(json.dumps(meta), encoding="utf-8")
    for name in ("docs.npz", "built.npz", "vocab.json"):
        (lexical_dir / name).write_bytes(b"saved by 0.2")
    with caplog.at_level(logging.WARNING):
        ix = Indexer(root, s)
        assert state(ix) == want
        ix.flush()
        ix.close()
        first = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
        caplog.clear()
        Indexer(root, s).close()
        second = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(first) == 1 and "older semcode" in first[0] and second == [], first
    assert json.loads((lexical_dir / "meta.json").read_text())["format"] == 2
    assert sorted(p.name for p in lexical_dir.iterdir()) == ["arrays.bin", "meta.json"]


def test_killed_saves_leave_no_temp_dirs_behind(tmp_path: Path) -> None:
    root = make_ws(tmp_path)
    s = settings(tmp_path / "index")
    d = index_dir_for(root.resolve(), s)
    d.mkdir(parents=True)
    (d / ".lexical.tmp-abc123").mkdir()
    (d / ".lexical.tmp-abc123" / "arrays.bin").write_bytes(b"x" * 1000)
    (d / ".vectors.usearch.xyz.tmp").write_bytes(b"x")
    ix = Indexer(root, s)
    ix.sync()
    ix.flush()
    assert sorted(p.name for p in d.iterdir() if p.name.startswith(".")) == []


def test_backslash_in_a_file_name_is_indexed(tmp_path: Path) -> None:
    root = make_ws(tmp_path, {"back\\slash.py": "def escaped_separator_name():\n    pass\n"})
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()
    assert found(ix, "escaped separator name") == {"escaped_separator_name"}


def test_ties_are_ordered_the_same_in_an_incremental_index_and_a_rebuild(tmp_path: Path
                                                                          ) -> None:
    body = "def same_body_everywhere(x):\n    return x\n"
    root = make_ws(tmp_path, {"b.py": body})
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()  # b.py gets the lower chunk id
    for name in ("a.py", "c.py"):
        (root / name).write_text(body)
    ix.sync()
    embed_all(ix)
    hits = ix.lexical.search(query_tokens("same body everywhere"), 3)
    assert [ix.refs[i].path for i, _ in hits] == ["a.py", "b.py", "c.py"]
    assert state(ix) == rebuild_state(root, tmp_path / "rebuild")
    vec = np.asarray(ix.vectors.get(hits[0][0]))  # type: ignore[union-attr]
    dense = ix.vectors.search(vec, 3)  # type: ignore[union-attr]
    assert [ix.refs[i].path for i, _ in dense] == ["a.py", "b.py", "c.py"]


def test_a_reader_never_waits_for_a_writer_and_buffers_survive(tmp_path: Path) -> None:
    """`semcode search --no-update` while `semcode index` holds the lock: it answers
    and closes without waiting. A server's unsaved buffer overwritten by another
    process's sync is indexed again as soon as the server catches up."""
    root = make_ws(tmp_path)
    s = settings(tmp_path / "index")
    server = Indexer(root, s)
    server.sync()
    server.update_text("app.py", "def unsaved_buffer_function():\n    pass\n")
    other = Indexer(root, s)
    other.sync()  # sees app.py's record came from a buffer: re-reads the disk
    assert "unsaved_buffer_function" not in found(other, "unsaved buffer function")
    reader = Indexer(root, s, notice=lambda line: pytest.fail(f"reader waited: {line}"))
    with other.write_lock.hold():  # a long `semcode index` elsewhere
        assert "parse_config_value" in found(reader, "parse config value")
        reader.lexical_upkeep.dirty = True  # something to save: it must not wait for it
        reader.flush()
        reader.close()
    assert "unsaved_buffer_function" in found(server, "unsaved buffer function")
    assert "unsaved_buffer_function" in found(other, "unsaved buffer function")


def test_own_writes_never_look_like_another_process(tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """Searches during this process's own sync must not reload everything."""
    root = make_ws(tmp_path, {f"m{i}.py": f"def f{i}():\n    pass\n" for i in range(40)})
    ix = Indexer(root, settings(tmp_path / "index"))
    reloads: list[int] = []
    real = ix._reload
    monkeypatch.setattr(ix, "_reload", lambda snap: (reloads.append(1), real(snap)))
    stop = threading.Event()

    def searcher() -> None:
        while not stop.is_set():
            ix.refresh()

    t = threading.Thread(target=searcher)
    t.start()
    try:
        ix.sync()
        for i in range(20):
            ix.update_text(f"m{i}.py", f"def g{i}():\n    pass\n")
    finally:
        stop.set()
        t.join()
    assert reloads == []


def test_fusion_breaks_ties_by_the_stable_key() -> None:
    from semcode.search.fusion import reciprocal_rank_fusion

    # 7 and 3 tie (each first in one list); the key, not the id, decides.
    fused = reciprocal_rank_fusion({"lexical": [7], "dense": [3]},
                                   tiebreak={7: ("a.py", 1), 3: ("b.py", 1)}.__getitem__)
    assert [f.doc_id for f in fused] == [7, 3]


def test_a_search_never_sees_a_file_half_replaced(tmp_path: Path) -> None:
    """The editor re-indexes a file on every keystroke while searches run in other
    threads: each search finds the file's function, from its old chunks or its new ones,
    never neither (the swap is atomic for readers)."""
    root = tmp_path / "ws"
    root.mkdir()
    (root / "a.py").write_text("def other():\n    pass\n")
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()
    query = query_tokens("frobnicate widget")
    stop = threading.Event()
    misses: list[int] = []
    searches = 0

    def search() -> None:
        nonlocal searches
        while not stop.is_set():
            if not ix.lexical.search(query, 5):
                misses.append(searches)
            searches += 1

    ix.update_text("b.py", "def frobnicate_widget():\n    return 0\n")
    threads = [threading.Thread(target=search) for _ in range(2)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads often: inside the swap, if it is not atomic
    for t in threads:
        t.start()
    try:
        for n in range(800):  # each edit gives the function a new chunk (a new id)
            ix.update_text("b.py", f"def frobnicate_widget():\n    return {n}\n" + "\n" * (n % 3))
    finally:
        stop.set()
        for t in threads:
            t.join()
        sys.setswitchinterval(interval)
        ix.close()
    assert searches > 100
    assert not misses, f"{len(misses)} of {searches} searches found nothing"
