"""Issue 12, index side: two processes on one index, kill -9 at random points,
every index file damaged in every way, a full disk and a read-only index directory.
Each ends with the index equal to one built from scratch."""

from __future__ import annotations

import contextlib
import json
import logging
import os
import random
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from index_harness import QUERIES, embed_all, rebuild_state, settings, state
from semcode.cli import main
from semcode.index import lexical_upkeep
from semcode.index.indexer import Indexer, index_dir_for
from semcode.index.store import StoreCorrupt
from semcode.index.tokenizer import query_tokens

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": f"{HERE.parent / 'server'}{os.pathsep}{HERE}",
       "HF_HUB_OFFLINE": "1"}
SEED = int(os.environ.get("SEMCODE_PROPERTY_SEED", "4242"))
OFF = ["--embedding-model", "off", "--reranker-model", "off"]


def write_ws(root: Path, n: int = 40, salt: str = "") -> None:
    root.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        (root / f"mod_{i:03}.py").write_text(
            f"def handler_{i}_{salt}(request):\n    return parse_value_{i % 7}(request)\n\n\n"
            f"class Service{i}:\n    def lookup_token(self, key):\n        return key * {i}\n")


# ---------------------------------------------------------------- two processes
READER = """
import sys
from semcode.cli import main
root, index, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
off = ["--embedding-model", "off", "--reranker-model", "off"]
for i in range(n):
    if i % 2:
        rc = main(["index", root, "--no-embed", "--index-dir", index, *off])
    else:
        rc = main(["search", "lookup token", "-w", root, "--mode", "lexical", "--json",
                   "--index-dir", index, *off] + (["--no-update"] if i % 4 == 2 else []))
    if rc != 0:
        sys.exit(rc)
"""


def test_cli_process_and_an_engine_writing_the_same_index(tmp_path: Path) -> None:
    root, index = tmp_path / "ws", tmp_path / "index"
    write_ws(root)
    ix = Indexer(root, settings(index))
    ix.sync()
    ix.flush()
    proc = subprocess.Popen([sys.executable, "-c", READER, str(root), str(index), "12"],
                            env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            text=True)
    rng = random.Random(SEED)
    writes = 0
    try:
        while proc.poll() is None and writes < 400:
            i = rng.randrange(40)
            path = root / f"mod_{i:03}.py"
            if rng.random() < 0.5:
                path.write_text(f"def edited_{writes}(x):\n    return lookup_token(x)\n")
                ix.sync() if rng.random() < 0.5 else ix.revert_file(path.name)
            else:
                ix.update_text(path.name, f"def buffer_{writes}(y):\n    return y\n")
                ix.revert_file(path.name)
            if writes % 10 == 0:
                ix.flush()
            writes += 1
        _, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "locked" not in err, err
    ix.sync()
    assert state(ix, vectors=False) == rebuild_state(root, tmp_path / "rebuild",
                                                     vectors=False)
    ix.close()
    after = Indexer(root, settings(index))  # what both left on disk reloads as a rebuild
    assert state(after, vectors=False) == rebuild_state(root, tmp_path / "rebuild2",
                                                        vectors=False)
    after.close()
    print(f"[two processes] {writes} writes here beside 12 CLI commands there")


# ---------------------------------------------------------------- kill -9
# The worker indexes, saves, embeds in small batches and saves after each; it SIGKILLs
# itself at a chosen point: before the n-th COMMIT ("txn"), inside the n-th array write
# of a lexical save ("savez"), at the n-th atomic rename ("replace": the lexical
# directory, vectors.usearch, its manifest), or after the n-th embedding batch.
WORKER = """
import os, signal, sys
from pathlib import Path
import numpy as np
from index_harness import FAKE_DIMS, FAKE_MODEL, fake_vector, settings
from semcode.index import indexer as indexer_mod, lexical, store
from semcode.index.indexer import Indexer
root, index, where, n = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
count = {"txn": 0, "savez": 0, "replace": 0, "batch": 0}
def tick(kind):
    count[kind] += 1
    if kind == where and count[kind] == n:
        os.kill(os.getpid(), signal.SIGKILL)
exit_ = store._Transaction.__exit__
def txn_exit(self, exc_type, *rest):
    if exc_type is None:
        tick("txn")
    return exit_(self, exc_type, *rest)
store._Transaction.__exit__ = txn_exit
savez = np.savez
def savez_(*a, **k):
    savez(*a, **k)
    tick("savez")
lexical.np.savez = savez_
replace = os.replace
def replace_(*a, **k):
    tick("replace")
    return replace(*a, **k)
os.replace = replace_
ix = Indexer(root, settings(index))
ix.sync()
ix.flush()
ix.attach_model(FAKE_MODEL, FAKE_DIMS)
pending = ix.pending_embeddings()
for start in range(0, len(pending), 8):
    ids = pending[start:start + 8]
    chunks = ix.chunks(ids)
    hashes = [chunks[i].content_hash() for i in ids]
    ix.add_vectors(FAKE_MODEL, ids, hashes, np.stack([fake_vector(h) for h in hashes]))
    tick("batch")
    ix.flush()
print("DONE", count, flush=True)
"""


def test_kill_9_while_indexing_and_embedding(tmp_path: Path) -> None:
    root, index = tmp_path / "ws", tmp_path / "index"
    rng = random.Random(SEED)
    kills, survived = 0, 0
    # Each round rewrites every file with new content: ~50 file transactions, two
    # lexical arrays, ~7 embedding batches (each with a save: 2 renames) to kill in.
    points = [("txn", rng.randint(1, 25)), ("txn", rng.randint(26, 50)),
              ("savez", 1), ("savez", 2), ("replace", 1), ("replace", rng.randint(2, 8)),
              ("batch", rng.randint(1, 3)), ("replace", rng.randint(9, 14))]
    for round_, (where, n) in enumerate(points):
        # Each round changes a part of the tree, so every round has work to do.
        write_ws(root, n=50, salt=f"r{round_}")
        for stale in range(round_ % 4):
            (root / f"mod_{stale:03}.py").unlink(missing_ok=True)
        proc = subprocess.run([sys.executable, "-c", WORKER, str(root), str(index), where,
                               str(n)], env=ENV, capture_output=True, text=True, timeout=120)
        assert "Traceback" not in proc.stderr, proc.stderr
        if proc.returncode == -signal.SIGKILL:
            kills += 1
        else:
            assert proc.returncode == 0 and "DONE" in proc.stdout, proc.stderr
            survived += 1
        # The next command after each kill gives the right answers.
        ix = Indexer(root, settings(index))
        ix.sync()
        embed_all(ix)
        assert state(ix) == rebuild_state(root, tmp_path / "rebuild"), (where, n)
        ix.flush()
        ix.close()
        shutil.rmtree(tmp_path / "rebuild")
    left = [p.name for p in index_dir_for(root.resolve(), settings(index)).iterdir()
            if ".tmp" in p.name]
    assert left == []
    assert kills >= len(points) - 2  # the points lie inside the work
    print(f"[kill -9] {kills} kills at {len(points)} points ({survived} ran to the end)")


# ------------------------------------------------- one ranking for every process
WORDS = ("alpha", "beta", "gamma", "delta", "fetch", "user", "parse", "config", "value",
         "retry", "request", "token", "cache", "lookup", "compute", "total")


def _ranking(ix: Indexer) -> dict[str, list[tuple[object, float]]]:
    ix.refresh()
    return {q: [(ix.order_key(i), s) for i, s in ix.lexical.search(query_tokens(q), 10)]
            for q in QUERIES}


def _settle(*indexers: Indexer) -> None:
    """Until nothing moves: wait for background BM25 rebuilds (each saves its build as
    it swaps it in), then catch up (the editor first: after an agent's sync it writes
    its open buffers back over the disk text, see Indexer.refresh)."""
    for _ in range(50):
        for ix in indexers:
            for _ in range(500):
                if not ix.lexical_upkeep.rebuilding:
                    break
                time.sleep(0.01)
            assert not ix.lexical_upkeep.rebuilding
        if not any([ix.refresh() for ix in indexers]) and not any(
                ix.lexical_upkeep.rebuilding for ix in indexers):
            return
    raise AssertionError("the indexes never settled")


def test_two_processes_that_saw_the_same_writes_rank_identically(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The editor's server (edits, watched files) and an agent's MCP server (disk syncs)
    on one index, each rebuilding BM25 when enough changed: after catching up, both
    return the same chunks with the same scores (issue 14: no divergence between what
    each returns). Before builds were shared, each scored pending chunks with the
    statistics of its own last rebuild."""
    monkeypatch.setattr(lexical_upkeep, "LEXICAL_REBUILD_PENDING", 6)
    root, index = tmp_path / "ws", tmp_path / "index"
    write_ws(root, n=12)
    editor, agent = Indexer(root, settings(index)), Indexer(root, settings(index))
    rng = random.Random(SEED)
    rebuilt = 0
    try:
        editor.sync()
        for n in range(60):
            words = " ".join(rng.sample(WORDS, 3))
            text = "".join(f"def f{n}_{k}(x):\n    return '{words} {k}'\n\n\n"
                           for k in range(rng.randrange(1, 4)))
            path = f"mod_{rng.randrange(12):03}.py"
            if n % 3 == 2:  # a file changed on disk: the agent's watcher syncs
                (root / path).write_text(text)
                agent.sync()
            else:  # an unsaved edit in the editor
                editor.update_text(path, text)
            before = editor.lexical.build_id, agent.lexical.build_id
            _settle(editor, agent)
            got, want = _ranking(agent), _ranking(editor)
            rebuilt += (editor.lexical.build_id, agent.lexical.build_id) != before
            assert got == want, f"after {n + 1} writes the two processes rank differently"
            assert editor.lexical.build_id == agent.lexical.build_id, n
        assert rebuilt >= 5  # the builds did move under both
    finally:
        editor.close()
        agent.close()


def test_opening_with_a_snapshot_older_than_the_saved_build(tmp_path: Path) -> None:
    """A process reads the database, another writes and saves its BM25 build, then the
    first loads that build: it must not cut it back to its older snapshot (the chunks
    it lacked would come back as pending, scored with other statistics than the
    writer's built ones)."""
    root, index = tmp_path / "ws", tmp_path / "index"
    write_ws(root, n=12)
    writer = Indexer(root, settings(index))
    writer.sync()
    reader = Indexer(root, settings(index))
    try:
        old = reader.store.snapshot()
        for i in range(6):
            (root / f"mod_{i:03}.py").write_text(
                f"def fetch_user_{i}(token):\n    return cache_lookup(token, {i})\n")
        writer.sync()  # ends with a build, saved
        with reader.lock:
            reader._reload(old)
        _settle(writer, reader)
        assert reader.lexical.build_id == writer.lexical.build_id
        assert _ranking(reader) == _ranking(writer)
    finally:
        writer.close()
        reader.close()


# ---------------------------------------------------------------- corruption matrix
FILES = ("index.sqlite", "lexical/arrays.bin",
         "lexical/meta.json", "vectors.usearch", "vectors.json", "chunks.bin")
DAMAGE = ("missing", "truncated", "garbled head", "garbled middle", "zero bytes", "older")


# Damage inside valid SQLite pages (issue 22): integrity_check still says ok, but a
# stored text no longer decodes, a number does not parse, a value has the wrong type.
VALUE_DAMAGE = {
    "utf-8 in text": "UPDATE chunks SET text = CAST(X'64656680' AS TEXT) "
                     "WHERE id = (SELECT max(id) FROM chunks)",
    "utf-8 in a path": "UPDATE files SET path = CAST(X'6dc3' AS TEXT) "
                       "WHERE path = (SELECT min(path) FROM files)",
    "utf-8 in meta": "UPDATE meta SET value = CAST(X'c328' AS TEXT) "
                     "WHERE key = 'chunker_version'",
    "utf-8 in an embedding": "UPDATE embeddings SET model = CAST(X'41ff' AS TEXT) "
                             "WHERE hash = (SELECT min(hash) FROM embeddings)",
    "text in a number": "UPDATE chunks SET start_line = 'seven' "
                        "WHERE id = (SELECT min(id) FROM chunks)",
    "blob in a number": "UPDATE files SET size = X'00ff'",
    "blob in a text": "UPDATE chunks SET name = X'ff00' WHERE id = (SELECT max(id) FROM chunks)",
    "kind out of range": "UPDATE chunks SET kind = 4242",
    "unparsable generation": "UPDATE meta SET value = 'x' WHERE key = 'generation'",
}
FOREIGN = "another workspace's"


def _damage_values(db: Path, sql: str) -> None:
    c = sqlite3.connect(db)
    try:
        c.execute(sql)
        c.commit()
        assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",), sql
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        c.close()


def _damage_database(d: Path, how: str, older: Path, foreign: Path,
                     rng: random.Random) -> None:
    """Damage `d`'s index.sqlite `how`: a kind of DAMAGE, of VALUE_DAMAGE, or FOREIGN
    (replaced by another workspace's database)."""
    db = d / "index.sqlite"
    for side in ("-wal", "-shm"):
        Path(f"{db}{side}").unlink(missing_ok=True)
    if how == FOREIGN:
        shutil.copy(foreign, db)
    elif how in VALUE_DAMAGE:
        _damage_values(db, VALUE_DAMAGE[how])
    else:
        _damage(db, how, older.read_bytes(), rng)


def _damage(path: Path, how: str, older: bytes, rng: random.Random) -> None:
    data = path.read_bytes()
    if how == "missing":
        path.unlink()
    elif how == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif how == "garbled head":
        path.write_bytes(bytes(rng.randrange(256) for _ in range(64)) + data[64:])
    elif how == "garbled middle":
        mid = len(data) // 2
        path.write_bytes(data[:mid] + bytes(rng.randrange(256) for _ in range(64))
                         + data[mid + 64:])
    elif how == "zero bytes":
        path.write_bytes(b"")
    else:  # the file as an earlier state of the index saved it
        path.write_bytes(older)


def _build(root: Path, index: Path) -> None:
    ix = Indexer(root, settings(index))
    ix.sync()
    embed_all(ix)
    ix.flush()
    ix.close()
    with contextlib.closing(sqlite3.connect(index_dir_for(root.resolve(), settings(index))
                                            / "index.sqlite")) as c:
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _healed_state(root: Path, index: Path) -> dict[str, object]:
    """The state after the embedding and the searches that follow an `index`. Damage
    that `index` never read (the text of a chunk no file change touched) is met by the
    first read of it, which says so and rebuilds, as the CLI's retry does; never a
    wrong answer."""
    try:
        ix = Indexer(root, settings(index))
        try:
            embed_all(ix)
            return state(ix)
        finally:
            ix.close()
    except StoreCorrupt as exc:
        ix = Indexer(root, settings(index), recover=str(exc))
        try:
            ix.sync()
            embed_all(ix)
            return state(ix)
        finally:
            ix.close()


def test_corruption_matrix(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                           caplog: pytest.LogCaptureFixture) -> None:
    root = tmp_path / "ws"
    write_ws(root, n=25)
    rng = random.Random(SEED)
    pristine, older = tmp_path / "pristine", tmp_path / "older"
    _build(root, pristine)
    shutil.copytree(pristine, older)  # an earlier state of the same index (a backup)
    # Two later states, so that ids beyond the older database's last one were handed out
    # in another order than a replay from it hands them out.
    (root / "mod_999.py").write_text("def added_after_the_older_copy():\n    pass\n")
    _build(root, pristine)
    (root / "mod_003.py").write_text("def changed_after_the_older_copy():\n    pass\n")
    _build(root, pristine)
    want = rebuild_state(root, tmp_path / "rebuild")
    d_old = index_dir_for(root.resolve(), settings(older))
    foreign = _foreign_database(tmp_path)
    cases = 0
    kinds = [(name, how) for name in FILES for how in DAMAGE]
    kinds += [("index.sqlite", how) for how in [*VALUE_DAMAGE, FOREIGN]]
    for name, how in kinds:
        index = tmp_path / "case"
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(pristine, index)
        d = index_dir_for(root.resolve(), settings(index))
        for side in ("-wal", "-shm"):
            Path(f"{d / 'index.sqlite'}{side}").unlink(missing_ok=True)
        if name == "index.sqlite":
            _damage_database(d, how, d_old / name, foreign, rng)
        else:
            _damage(d / name, how, (d_old / name).read_bytes(), rng)
        caplog.clear()
        capsys.readouterr()
        with caplog.at_level(logging.WARNING):
            rc = main(["index", str(root), "--no-embed", "--index-dir", str(index), *OFF])
            got = _healed_state(root, index)
        err = capsys.readouterr().err
        lines = [line for line in err.splitlines() if not line.startswith("indexed ")
                 and not line.endswith("model is set to off")]
        where = f"{name} × {how}: rc {rc}, stderr {err!r}"
        assert rc == 0, where
        assert "Traceback" not in err and len(lines) <= 1, where
        assert len([r for r in caplog.records if r.levelno >= logging.WARNING]) <= 1, (
            where, [r.message for r in caplog.records])
        assert got == want, where
        cases += 1
    print(f"[corruption] {cases} cases ({len(FILES)} files × {len(DAMAGE)} kinds, and the "
          f"database × {len(VALUE_DAMAGE)} value damages and a foreign one)")


def _foreign_database(tmp_path: Path) -> Path:
    """The index database of another workspace (with its own chunks and embeddings)."""
    other = tmp_path / "other-ws"
    other.mkdir()
    (other / "elsewhere.py").write_text("def lookup_token_elsewhere(key):\n    return key\n")
    _build(other, tmp_path / "other-index")
    return index_dir_for(other.resolve(), settings(tmp_path / "other-index")) / "index.sqlite"


def _run(capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture,
         *argv: str) -> tuple[int, str, list[str]]:
    """`main(argv)` in process: (exit status, stdout, its one-line messages: stderr lines
    and warnings logged, less the closing `indexed` line and the models-are-off ones)."""
    caplog.clear()
    capsys.readouterr()
    with caplog.at_level(logging.WARNING):
        rc = main([*argv, *OFF])
    out, err = capsys.readouterr()
    lines = [ln for ln in err.splitlines() if not ln.startswith("indexed ")
             and not ln.endswith("model is set to off")]
    lines += [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    return rc, out, lines


def test_corruption_matrix_when_a_reader_comes_first(
        tmp_path: Path, capsys: pytest.CaptureFixture[str],
        caplog: pytest.LogCaptureFixture) -> None:
    """Every damage to the database, met first by `status` and then by `search
    --no-update` (no sync before them): never a traceback, at most one line each, and
    never a wrong answer without a word: the search answers as a fresh index does (it
    rebuilds what was found damaged), or says in one line why it cannot."""
    root = tmp_path / "ws"
    write_ws(root, n=25)
    rng = random.Random(SEED)
    pristine, older = tmp_path / "pristine", tmp_path / "older"
    _build(root, pristine)
    shutil.copytree(pristine, older)
    foreign = _foreign_database(tmp_path)
    queries = ("lookup token", "handler request", "parse value service")

    def answers(index: Path) -> list[object]:
        got = []
        for q in queries:
            rc, out, lines = _run(capsys, caplog, "search", q, "-w", str(root), "--mode",
                                  "lexical", "--json", "--no-update", "--index-dir",
                                  str(index))
            assert rc == 0, lines
            got.append([(r["path"], r["start_line"], r["name"]) for r in json.loads(out)])
        return got

    want = answers(pristine)
    cases = 0
    for how in [*(h for h in DAMAGE if h != "older"), *VALUE_DAMAGE, FOREIGN]:
        # ("older", a restored backup of this workspace's own database, is an index as
        # it was: --no-update answers from it by definition.)
        index = tmp_path / "case"
        shutil.rmtree(index, ignore_errors=True)
        shutil.copytree(pristine, index)
        d = index_dir_for(root.resolve(), settings(index))
        _damage_database(d, how, index_dir_for(root.resolve(), settings(older))
                         / "index.sqlite", foreign, rng)
        rc, out, lines = _run(capsys, caplog, "status", "-w", str(root), "--index-dir",
                              str(index), "--json")
        where = f"status on {how}: rc {rc}, {lines}"
        assert rc in (0, 1) and len(lines) <= 1, where
        status = json.loads(out)
        if how == "missing":
            assert rc == 1 and status == {"root": str(root), "indexed": False}, where
            assert _run(capsys, caplog, "search", "lookup token", "-w", str(root),
                        "--no-update", "--index-dir", str(index))[0] == 1
            continue
        # Damage that status met is said, and leaves the index owed a rebuild.
        assert (rc == 1) == bool(lines) == (status["indexed"] is False), where
        rc, out, lines = _run(capsys, caplog, "search", "lookup token", "-w", str(root),
                              "--mode", "lexical", "--json", "--no-update",
                              "--index-dir", str(index))
        where = f"search on {how}: rc {rc}, {lines}"
        assert rc == 0 and len(lines) <= 1, where
        assert answers(index) == want, where
        rc, out, _ = _run(capsys, caplog, "status", "-w", str(root), "--index-dir",
                          str(index), "--json")
        assert rc == 0 and json.loads(out)["indexed"] is True, how
        cases += 1
    print(f"[corruption, readers first] {cases} database damages")


# ---------------------------------------------------------------- full disk, read-only
@contextlib.contextmanager
def tmpfs(path: Path, size: str) -> Iterator[Path]:
    path.mkdir()
    proc = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({proc.stderr.strip() or 'not root'}): the "
                    "full-disk and read-only checks need one")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True)


def _cli(*args: str) -> tuple[int, str, str]:
    proc = subprocess.run([sys.executable, "-m", "semcode", *args, *OFF], env=ENV,
                          capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def test_full_disk_and_read_only_index_dir(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    write_ws(root, n=20)
    with tmpfs(tmp_path / "mnt", "4m") as mnt:
        index = mnt / "index"
        rc, _, err = _cli("index", str(root), "--no-embed", "--index-dir", str(index))
        assert rc == 0, err
        good = rebuild_state(root, tmp_path / "rebuild", vectors=False)
        # Full disk: a big change cannot be written.
        filler = mnt / "filler"
        with contextlib.suppress(OSError), open(filler, "wb") as f:
            while True:
                f.write(b"\0" * (1 << 16))
        shutil.rmtree(root)
        write_ws(root, n=60, salt="big" * 200)
        rc, _, err = _cli("index", str(root), "--no-embed", "--index-dir", str(index))
        assert rc == 1 and err.startswith("semcode: ") and err.count("\n") == 1, err
        assert "Traceback" not in err and ("full" in err or "space" in err), err
        # Searching on the full disk: results, or one line (SQLite may need to write
        # its shared-memory file), never a traceback.
        rc, out, err = _cli("search", "lookup token", "-w", str(root), "--mode", "lexical",
                            "--no-update", "--index-dir", str(index))
        assert "Traceback" not in err and (rc == 0 or err.count("\n") == 1), err
        filler.unlink()  # space is back: the next command recovers
        shutil.rmtree(root)
        write_ws(root, n=20)
        rc, _, err = _cli("index", str(root), "--no-embed", "--index-dir", str(index))
        assert rc == 0, err
        ix = Indexer(root, settings(index))
        assert state(ix, vectors=False) == good
        ix.close()
        # Read-only index directory.
        subprocess.run(["mount", "-o", "remount,ro", str(mnt)], check=True)
        (root / "mod_000.py").write_text("def read_only_edit():\n    pass\n")
        rc, _, err = _cli("index", str(root), "--no-embed", "--index-dir", str(index))
        assert rc == 1 and err.startswith("semcode: ") and err.count("\n") == 1, err
        assert "read-only" in err or "Read-only" in err, err
        subprocess.run(["mount", "-o", "remount,rw", str(mnt)], check=True)
        rc, _, err = _cli("index", str(root), "--no-embed", "--index-dir", str(index))
        assert rc == 0, err
        ix = Indexer(root, settings(index))
        assert state(ix, vectors=False) == rebuild_state(root, tmp_path / "rebuild2",
                                                         vectors=False)
        ix.close()
