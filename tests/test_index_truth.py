"""Issue 22, part A: the index heals every damage and tells the truth. One test per
finding (1, 2, 3, 7, 9), each through the CLI as a user runs it (a subprocess) where the
finding was seen there; each failed before the fix."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from index_harness import embed_all, settings
from semcode.cli import main
from semcode.config import Settings
from semcode.index.indexer import Indexer, index_dir_for
from semcode.index.store import Store

HERE = Path(__file__).parent
ENV = {**os.environ, "PYTHONPATH": f"{HERE.parent / 'server'}{os.pathsep}{HERE}",
       "HF_HUB_OFFLINE": "1"}
OFF = ["--embedding-model", "off", "--reranker-model", "off"]
MODEL_OFF_LINES = ("semcode: reranking is off", "semcode: semantic search is off")


def write(root: Path, files: dict[str, str]) -> Path:
    for rel, text in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_text(text)
    return root


def make_ws(tmp_path: Path, name: str = "ws") -> Path:
    return write(tmp_path / name, {
        "helpers.py": "def parse_config_value(text):\n    return text.strip()\n",
        "app.py": "def run_application():\n    return 1\n"})


def cli(*args: str, model: list[str] | None = None) -> tuple[int, str, list[str]]:
    """(exit status, stdout, stderr lines other than the models-are-off ones)."""
    proc = subprocess.run([sys.executable, "-m", "semcode", *args, *(model or OFF)],
                          env=ENV, capture_output=True, text=True, timeout=120)
    lines = [ln for ln in proc.stderr.splitlines() if not ln.startswith(MODEL_OFF_LINES)]
    assert "Traceback" not in proc.stderr, proc.stderr
    return proc.returncode, proc.stdout, lines


def search(root: Path, index: Path, query: str, *extra: str) -> tuple[int, set[str], list[str]]:
    """`semcode search --json --mode lexical`: (exit status, result names, stderr lines)."""
    rc, out, err = cli("search", query, "-w", str(root), "--index-dir", str(index), "--mode",
                       "lexical", "--json", *extra)
    return rc, ({r["name"] for r in json.loads(out)} if rc == 0 else set()), err


def database(root: Path, index: Path) -> Path:
    db = index_dir_for(root.resolve(), settings(index)) / "index.sqlite"
    with sqlite3.connect(db) as c:  # everything in the main file, as after a clean exit
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return db


def damage(db: Path, sql: str) -> None:
    """Change stored values with SQL: the pages stay valid (integrity_check says ok)."""
    c = sqlite3.connect(db)
    try:
        c.execute(sql)
        c.commit()
        assert c.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        c.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        c.close()


# Every chunk's text (tokens are not stored: a lexical build from the database re-derives
# them from each row, so it meets the damage in every row).
FLIP_TEXTS = "UPDATE chunks SET text = CAST(X'706172ff7365' AS TEXT)"  # 'par\xffse'
# Read by every open without a current saved chunk table (a chunk's name is part of
# the chunk table; its tokens are read only where the saved lexical build lacks them),
# and by every read of the chunk (a hit).
FLIP_NAMES = "UPDATE chunks SET name = CAST(X'706172ff7365' AS TEXT)"


# ---------------------------------------------------------------- finding 1
@pytest.mark.parametrize("sql", [
    FLIP_TEXTS,
    "UPDATE chunks SET text = CAST(X'6465668066' AS TEXT) WHERE name='parse_config_value'",
    "UPDATE meta SET value = CAST(X'c328' AS TEXT) WHERE key='chunker_version'",
    "UPDATE chunks SET start_line = 'one'",              # text where a number belongs
    "UPDATE chunks SET kind = 99999",                    # a number that is no kind
    "UPDATE meta SET value = 'many' WHERE key='generation'",
    "UPDATE files SET mtime_ns = X'00ff'",               # a blob where a number belongs
], ids=["utf8-texts-rebuilt", "utf8-text", "utf8-meta", "text-number", "bad-kind",
        "bad-generation", "blob-number"])
def test_undecodable_stored_values_are_damage(tmp_path: Path, sql: str) -> None:
    """A bit flip inside a valid page: one line, moved aside, rebuilt, the right answer."""
    root, index = make_ws(tmp_path), tmp_path / "index"
    assert cli("index", str(root), "--index-dir", str(index))[0] == 0
    db = database(root, index)
    damage(db, sql)
    err = []
    if "files" in sql:  # read by a sync only (a search without one answers rightly)
        rc, _, err = cli("index", str(root), "--index-dir", str(index))
        assert rc == 0, err
        err = [ln for ln in err if not ln.startswith("indexed ")]
    if sql == FLIP_TEXTS:  # met by the build from every row, before any hit is read
        shutil.rmtree(db.parent / "lexical")
    rc, names, more = search(root, index, "parse config value", "--no-update")
    err += more
    assert rc == 0 and "parse_config_value" in names, err
    assert len(err) == 1 and "damaged" in err[0] and len(err[0]) < 400, err
    assert list(db.parent.glob("index.sqlite.damaged-*"))


def test_status_and_full_reindex_on_undecodable_text(tmp_path: Path) -> None:
    root, index = make_ws(tmp_path), tmp_path / "index"
    assert cli("index", str(root), "--index-dir", str(index))[0] == 0
    db = database(root, index)
    damage(db, FLIP_NAMES)
    backup = tmp_path / "damaged.sqlite"
    shutil.copy(db, backup)
    # With the saved chunk table current, an open reads no chunk row (issue 19): status
    # counts what the table holds, saved before the damage, and meets none of it.
    rc, out, err = cli("status", "-w", str(root), "--index-dir", str(index), "--json")
    assert rc == 0 and json.loads(out)["indexed"] is True and err == [], (out, err)
    (db.parent / "chunks.bin").unlink()  # without it, an open reads every chunk's row
    rc, out, err = cli("status", "-w", str(root), "--index-dir", str(index), "--json")
    assert rc == 1 and json.loads(out)["indexed"] is False, (out, err)
    assert len(err) == 1 and "damaged" in err[0] and "decode" in err[0].lower(), err
    # `index --full` resets before it reads: the damaged chunks are never decoded.
    shutil.copy(backup, db)
    rc, _, err = cli("index", str(root), "--full", "--index-dir", str(index))
    assert rc == 0, err
    assert search(root, index, "parse config value", "--no-update")[1] == {
        "parse_config_value"}


def test_damaged_text_keeps_every_readable_cached_embedding(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root, index = make_ws(tmp_path), tmp_path / "index"
    ix = Indexer(root, settings(index))
    ix.sync()
    n = embed_all(ix)
    ix.flush()
    ix.close()
    db = database(root, index)
    # One embedding row's text damaged too: the rows after it are still kept.
    damage(db, "UPDATE embeddings SET model = CAST(X'41ff' AS TEXT) WHERE hash = "
               "(SELECT min(hash) FROM embeddings)")
    damage(db, FLIP_NAMES)
    assert main(["search", "parse config value", "-w", str(root), "--index-dir", str(index),
                 "--mode", "lexical", "--no-update", *OFF]) == 0
    assert "parse_config_value" in capsys.readouterr().out
    assert n == 2 and Store(db).count("embeddings") == n - 1


# ---------------------------------------------------------------- finding 2
def test_another_workspaces_database_is_never_searched(tmp_path: Path) -> None:
    root, index = make_ws(tmp_path), tmp_path / "index"
    other = write(tmp_path / "other", {"lib.py": "def other_project_secret():\n    pass\n"})
    assert cli("index", str(root), "--index-dir", str(index))[0] == 0
    assert cli("index", str(other), "--index-dir", str(index))[0] == 0
    db, foreign = database(root, index), database(other, index)
    shutil.copy(foreign, db)  # restored into the wrong index directory
    rc, out, err = cli("status", "-w", str(root), "--index-dir", str(index), "--json")
    status = json.loads(out)
    assert rc == 1 and status["indexed"] is False and status["files"] == 0, out
    assert len(err) == 1 and "another workspace" in err[0], err
    shutil.copy(foreign, db)
    for mode in ("lexical", "hybrid"):
        rc, out, err = cli("search", "other project secret parse config", "-w", str(root),
                           "--index-dir", str(index), "--mode", mode, "--json",
                           "--no-update")
        paths = {r["path"] for r in json.loads(out)}
        assert rc == 0 and paths and "lib.py" not in paths, (out, err)
        shutil.copy(foreign, db)
    assert list(db.parent.glob("index.sqlite.foreign-*"))
    # The other workspace's own index is untouched.
    assert search(other, index, "other project secret", "--no-update")[1] == {
        "other_project_secret"}


# ---------------------------------------------------------------- finding 3
def test_damage_seen_by_status_is_rebuilt_by_the_next_search(tmp_path: Path) -> None:
    root, index = make_ws(tmp_path), tmp_path / "index"
    assert cli("index", str(root), "--index-dir", str(index))[0] == 0
    db = database(root, index)
    with open(db, "r+b") as f:
        f.truncate(db.stat().st_size // 2)
    rc, out, err = cli("status", "-w", str(root), "--index-dir", str(index))
    assert rc == 1 and "damaged" in err[0] and len(err) == 1, err
    assert "indexed: False" in out and "semcode index" in out, out
    rc, names, err = search(root, index, "parse config value", "--no-update")
    assert rc == 0 and names == {"parse_config_value"}, err
    assert len(err) == 1 and err[0].startswith("semcode: indexing first: "), err
    rc, out, _ = cli("status", "-w", str(root), "--index-dir", str(index), "--json")
    assert rc == 0 and json.loads(out)["indexed"] is True and json.loads(out)["files"] == 2


def test_damage_a_server_met_is_rebuilt_by_the_next_process(tmp_path: Path) -> None:
    """An editor's server reads a chunk whose text no longer decodes (a search's hit): it
    cannot repair the database mid-request, but every later process knows."""
    from semcode.index.store import StoreCorrupt

    root, index = make_ws(tmp_path), tmp_path / "index"
    server = Indexer(root, settings(index))
    server.sync()
    server.flush()
    damage(database(root, index), "UPDATE chunks SET text = CAST(X'64656680' AS TEXT)")
    with pytest.raises(StoreCorrupt, match="damaged"):
        server.chunks(list(server.refs))
    rc, out, err = cli("status", "-w", str(root), "--index-dir", str(index), "--json")
    status = json.loads(out)
    assert rc == 1 and status["indexed"] is False and "decode" in status["reason"], out
    assert len(err) == 1 and "damaged" in err[0], err
    rc, names, err = search(root, index, "parse config value", "--no-update")
    assert rc == 0 and names == {"parse_config_value"}
    assert len(err) == 1 and err[0].startswith("semcode: indexing first: "), err
    assert search(root, index, "parse config value", "--no-update")[2] == []
    server.close()


def test_a_folder_never_indexed_says_so(tmp_path: Path) -> None:
    root, index = make_ws(tmp_path), tmp_path / "index"
    rc, names, err = search(root, index, "parse config value", "--no-update")
    assert rc == 1 and err == [f"semcode: {root} is not indexed yet: run `semcode index "
                               f"{root}`"], err
    assert not index.exists() or not list(index.rglob("index.sqlite"))
    rc, out, _ = cli("status", "-w", str(root), "--index-dir", str(index), "--json")
    assert rc == 1 and json.loads(out) == {"root": str(root), "indexed": False}
    # An index opened (by an editor, say) but never filled is not indexed either.
    Indexer(root, settings(index)).close()
    rc, out, _ = cli("status", "-w", str(root), "--index-dir", str(index), "--json")
    status = json.loads(out)
    assert rc == 1 and status["indexed"] is False and status["reason"] == "not indexed yet"
    rc, names, err = search(root, index, "parse config value", "--no-update")
    assert rc == 0 and names == {"parse_config_value"}
    assert err == ["semcode: indexing first: not indexed yet"], err


def test_a_full_reindex_cut_short_is_owed(tmp_path: Path) -> None:
    root, index = make_ws(tmp_path), tmp_path / "index"
    assert cli("index", str(root), "--index-dir", str(index))[0] == 0
    ix = Indexer(root, settings(index), fresh=True)  # `index --full`, killed before syncing
    ix.close()
    rc, names, err = search(root, index, "parse config value", "--no-update")
    assert rc == 0 and names == {"parse_config_value"}
    assert err == ["semcode: indexing first: a full reindex has not finished"], err


# ---------------------------------------------------------------- finding 7
def test_status_counts_the_configured_models_vectors(tmp_path: Path) -> None:
    from tiny_static import write_static_model

    root, index = make_ws(tmp_path), tmp_path / "index"
    model = ["--embedding-model", str(write_static_model(tmp_path / "m2v")),
             "--reranker-model", "off"]
    rc, _, err = cli("index", str(root), "--index-dir", str(index), model=model)
    assert rc == 0, err
    rc, out, err = cli("status", "-w", str(root), "--index-dir", str(index), "--json",
                       model=model)
    status = json.loads(out)
    assert rc == 0 and status["chunks"] == 2, (out, err)
    assert status["embedded"] == 2 and status["pendingEmbeddings"] == 0, status
    # Another model configured: none of its vectors exist yet.
    other = ["--embedding-model", str(write_static_model(tmp_path / "m2v-b", seed=5)),
             "--reranker-model", "off"]
    status = json.loads(cli("status", "-w", str(root), "--index-dir", str(index), "--json",
                            model=other)[1])
    assert status["embedded"] == 0 and status["pendingEmbeddings"] == 2, status
    status = json.loads(cli("status", "-w", str(root), "--index-dir", str(index),
                            "--json")[1])
    assert status["embedded"] == 0 and status["pendingEmbeddings"] == 0, status


# ---------------------------------------------------------------- finding 9
def test_index_names_the_ignore_line_that_excluded_everything(tmp_path: Path) -> None:
    root = write(tmp_path / "linux", {
        ".gitignore": "# build output\n/*\n!/debian/\n",
        **{f"{d}/x.c": "int main(void) { return 0; }\n" for d in
           ("arch", "drivers", "fs", "kernel", "mm", "net", "sound", "tools", "lib",
            "init", "ipc", "crypto")},
        "debian/.keep": ""})
    rc, _, err = cli("index", str(root), "--index-dir", str(tmp_path / "index"))
    assert rc == 0
    assert [ln for ln in err if not ln.startswith("indexed ")] == [
        "semcode: 0 files indexed: .gitignore line 2 ('/*') excludes 12 of the 14 "
        "skipped entries (e.g. arch/)"], err
    (root / ".gitignore").write_text("build/\n")  # a usual rule: nothing to say
    rc, _, err = cli("index", str(root), "--index-dir", str(tmp_path / "index"))
    assert rc == 0 and [ln for ln in err if not ln.startswith("indexed ")] == [], err


def test_rule_for_names_the_deciding_line(tmp_path: Path) -> None:
    from semcode.workspace.ignore import IgnoreRule, IgnoreRules

    root = write(tmp_path / "ws", {
        ".gitignore": "\n*.log\n/gen/\n",
        "src/.semcodeignore": "# ours\nvendor/\n!keep.log\n",
        "src/vendor/a.py": "", "src/keep.log": "", "src/x.log": "", "gen/a.py": ""})
    rules = IgnoreRules(root, Settings.from_mapping({"exclude": ["docs/", "*.tmp"]}))
    assert rules.rule_for("gen", True) == IgnoreRule(".gitignore", 3, "/gen/")
    assert rules.rule_for("src/x.log", False) == IgnoreRule(".gitignore", 2, "*.log")
    assert rules.rule_for("src/vendor", True) == IgnoreRule("src/.semcodeignore", 2,
                                                            "vendor/")
    assert rules.rule_for("src/keep.log", False) is None  # re-included
    assert rules.rule_for("a.tmp", False) == IgnoreRule("the exclude setting", 2, "*.tmp")
    assert rules.rule_for("node_modules", True) is None  # a default, not a rule file


def test_a_server_searching_an_incomplete_index_says_so(tmp_path: Path) -> None:
    """The engine of an editor or agent server, on an index another process found
    damaged and started anew (or one not filled yet): its answers say so until a sync
    completes."""
    from semcode.search.engine import Engine, SearchRequest

    root, index = make_ws(tmp_path), tmp_path / "index"
    engine = Engine.open(root, settings(index))
    engine.sync()
    assert engine.search(SearchRequest("parse config value", mode="lexical")).notices == []
    other = Indexer(root, settings(index), recover="index database is damaged (test)")
    other.close()  # moved aside and started anew; this process has not synced it
    response = engine.search(SearchRequest("parse config value", mode="lexical"))
    [notice] = [n for n in response.notices if "incomplete" in n]
    assert notice.startswith("the index is incomplete (index database is damaged (test): "
                             "moved it to index.sqlite.damaged-"), notice
    assert notice.endswith("): results may be missing until it is rebuilt"), notice
    engine.sync()
    assert engine.search(SearchRequest("parse config value", mode="lexical")).notices == []
    assert {h.chunk.name for h in engine.search(
        SearchRequest("parse config value", mode="lexical")).hits} == {"parse_config_value"}
    engine.close()


def test_a_foreign_database_copied_in_under_a_running_server(tmp_path: Path) -> None:
    from semcode.search.engine import Engine, SearchRequest

    root, index = make_ws(tmp_path), tmp_path / "index"
    other = write(tmp_path / "other", {"lib.py": "def other_project_secret():\n    pass\n"})
    assert cli("index", str(other), "--index-dir", str(index))[0] == 0
    engine = Engine.open(root, settings(index))
    engine.sync()
    db, foreign = database(root, index), database(other, index)
    shutil.copy(foreign, db)  # while the server runs
    for side in ("-wal", "-shm"):
        Path(f"{db}{side}").unlink(missing_ok=True)
    response = engine.search(SearchRequest("other project secret", mode="lexical"))
    assert {h.chunk.path for h in response.hits} == set()
    assert any("another workspace" in n for n in response.notices), response.notices
    engine.sync()
    response = engine.search(SearchRequest("parse config value", mode="lexical"))
    assert {h.chunk.name for h in response.hits} == {"parse_config_value"}
    assert response.notices == []
    engine.close()
    assert search(other, index, "other project secret", "--no-update")[1] == {
        "other_project_secret"}
