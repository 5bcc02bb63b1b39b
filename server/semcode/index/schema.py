"""The index database's schema: the tables, the version stamp, and what opening a
database checks and upgrades in place (WAL mode, an optional quick_check, a file that
is not ours, an older or newer schema, the store id, the workspace it belongs to,
columns added since).

Meta keys written here: `schema_version`, `store_id`, `root` (the workspace identity:
its resolved path; a database whose root is another workspace's is `StoreForeign`) and,
in a new database, `REBUILD_OWED` (why it must be filled before it is searched; the
indexer clears it when a sync completes).

It must not move or delete files (a damaged database is `Store`'s to move aside) and
holds no connection of its own.
"""

from __future__ import annotations

import logging
import sqlite3
import uuid
from collections.abc import Callable
from contextlib import AbstractContextManager
from pathlib import Path

from semcode.index.store_errors import StoreCorrupt, StoreError, StoreForeign

log = logging.getLogger(__name__)

SCHEMA_VERSION = 2
# Schema 1 stored each chunk's BM25 tokens beside its text (about 40% of a large
# database); they are a pure function of the chunk's row, so schema 2 re-derives them
# where a saved lexical build lacks them. A schema-1 database is upgraded in place.
_UPGRADABLE = {"1"}
# Meta key: set while the database does not hold a complete index of its workspace
# (new, recovered from damage, or a full reindex that has not finished); its value
# says why, for the commands that must not answer from it silently.
REBUILD_OWED = "rebuild_owed"
NEVER_INDEXED = "not indexed yet"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,      -- -1 for text that came from an editor buffer
    digest TEXT NOT NULL,
    language TEXT NOT NULL,
    warning TEXT
);
CREATE TABLE IF NOT EXISTS chunks (
    id INTEGER PRIMARY KEY AUTOINCREMENT,   -- never reused: usearch keys stay unambiguous
    path TEXT NOT NULL,
    language TEXT NOT NULL,
    kind INTEGER NOT NULL,
    name TEXT NOT NULL,
    container TEXT NOT NULL,
    start_line INTEGER NOT NULL,
    end_line INTEGER NOT NULL,
    name_line INTEGER NOT NULL,
    name_start_col INTEGER NOT NULL,
    name_end_col INTEGER NOT NULL,
    part INTEGER NOT NULL,
    text TEXT NOT NULL,
    hash TEXT NOT NULL,
    content TEXT NOT NULL DEFAULT 'code'  -- content kind (chunking/content.py)
);
CREATE INDEX IF NOT EXISTS chunks_by_path ON chunks(path);
CREATE INDEX IF NOT EXISTS chunks_by_hash ON chunks(hash);
CREATE TABLE IF NOT EXISTS embeddings (
    model TEXT NOT NULL,
    hash TEXT NOT NULL,
    vector BLOB NOT NULL,            -- float32, L2-normalised
    PRIMARY KEY (model, hash)
) WITHOUT ROWID;
"""


def use_wal(db: sqlite3.Connection,
            locked: Callable[[], AbstractContextManager[None]]) -> None:
    """Put the database in WAL mode (persistent: once per file). Switching needs the file
    to itself, and SQLite answers busy at once, without waiting, when another process is
    opening the same new file; so the switch is made under `locked()` (a lock every
    opener of the file takes), after checking that no other opener made it meanwhile."""
    if str(db.execute("PRAGMA journal_mode").fetchone()[0]).lower() == "wal":
        return
    with locked():
        db.execute("PRAGMA journal_mode=WAL")


def prepare(db: sqlite3.Connection, path: Path, check: bool,
            locked: Callable[[], AbstractContextManager[None]],
            workspace: str | None = None) -> None:
    """Make `db` (just opened on `path`) a usable semcode database: create or upgrade
    its tables under `locked()` (the write lock); raise `StoreCorrupt` when it is
    damaged, not ours or of an older schema, `StoreForeign` when it records another
    `workspace` than this one, `StoreError` when it is newer."""
    use_wal(db, locked)
    db.execute("PRAGMA synchronous=NORMAL")
    if check:
        row = db.execute("PRAGMA quick_check(1)").fetchone()
        if row is None or row[0] != "ok":
            raise StoreCorrupt(f"index database {path} is damaged "
                               f"({row[0] if row else 'quick_check failed'})")
    tables = {r[0] for r in db.execute(
        "SELECT name FROM sqlite_master WHERE type='table'")}
    if tables and "meta" not in tables:
        raise StoreCorrupt(f"{path} is not a semcode index database")
    version = (db.execute("SELECT value FROM meta WHERE key='schema_version'")
               .fetchone() if "meta" in tables else None)
    if version is not None and version[0] in _UPGRADABLE:
        _upgrade(db, path, locked)
        version = (str(SCHEMA_VERSION),)
    if version is not None and version[0] != str(SCHEMA_VERSION):
        if not isinstance(version[0], str):
            raise StoreCorrupt(f"index database {path} is damaged (its schema version "
                               "does not parse)")
        if version[0].isdigit() and int(version[0]) > SCHEMA_VERSION:
            raise StoreError(f"index {path} was made by a newer semcode (schema "
                             f"{version[0]}, this one uses {SCHEMA_VERSION}); "
                             "upgrade semcode or use another --index-dir")
        raise StoreCorrupt(f"index database {path} is from an older semcode "
                           f"(schema {version[0]})")
    if version is None or "chunks" not in tables or "embeddings" not in tables:
        with locked():
            db.executescript(_SCHEMA)
            db.execute("INSERT OR IGNORE INTO meta VALUES ('schema_version', ?)",
                       (str(SCHEMA_VERSION),))
            db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)",
                       (uuid.uuid4().hex,))
            db.execute("INSERT OR IGNORE INTO meta VALUES (?, ?)",
                       (REBUILD_OWED, NEVER_INDEXED))
            if workspace is not None:
                db.execute("INSERT OR IGNORE INTO meta VALUES ('root', ?)", (workspace,))
    # Touch every table once so a damaged root page shows now, not mid-command.
    for table in ("meta", "files", "chunks", "embeddings"):
        db.execute(f"SELECT 1 FROM {table} LIMIT 1").fetchall()
    if db.execute("SELECT value FROM meta WHERE key='store_id'").fetchone() is None:
        with locked():
            db.execute("INSERT OR IGNORE INTO meta VALUES ('store_id', ?)",
                       (uuid.uuid4().hex,))
    if workspace is not None:
        _check_workspace(db, path, workspace, locked)
    columns = {r[1] for r in db.execute("PRAGMA table_info(chunks)")}
    if "content" not in columns:  # an index from before content kinds
        with locked():
            db.execute("ALTER TABLE chunks ADD COLUMN content TEXT NOT NULL "
                       "DEFAULT 'code'")


def _upgrade(db: sqlite3.Connection, path: Path,
             locked: Callable[[], AbstractContextManager[None]]) -> None:
    """Schema 1 -> 2, in place, once (under `locked()`): the stored BM25 tokens are
    dropped, then the file is compacted when no other process is reading it (else its
    free pages are reused by later writes)."""
    with locked():
        row = db.execute("SELECT value FROM meta WHERE key='schema_version'").fetchone()
        if row is None or row[0] not in _UPGRADABLE:
            return  # another process upgraded it meanwhile
        columns = {r[1] for r in db.execute("PRAGMA table_info(chunks)")}
        size = path.stat().st_size if path.exists() else 0
        # A warning, so the CLI shows it: compacting a large database takes a while.
        log.warning("upgrading the index database %s once (BM25 tokens are no longer "
                    "stored: they are re-derived from each chunk's text)", path)
        db.execute("BEGIN IMMEDIATE")
        try:
            if "tokens" in columns:
                db.execute("ALTER TABLE chunks DROP COLUMN tokens")
            db.execute("UPDATE meta SET value=? WHERE key='schema_version'",
                       (str(SCHEMA_VERSION),))
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        timeout = db.execute("PRAGMA busy_timeout").fetchone()[0]
        db.execute("PRAGMA busy_timeout=0")  # a reader now: not worth waiting for
        try:
            db.execute("VACUUM")  # (in WAL mode: into the log, then copied back)
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        except sqlite3.OperationalError as exc:  # busy: another process reads it
            log.info("not compacting %s now (%s); its free space is reused by later "
                     "writes", path, exc)
        else:
            log.info("index database compacted: %.0f MB -> %.0f MB", size / 1e6,
                     path.stat().st_size / 1e6)
        finally:
            db.execute(f"PRAGMA busy_timeout={int(timeout)}")


def _check_workspace(db: sqlite3.Connection, path: Path, workspace: str,
                     locked: Callable[[], AbstractContextManager[None]]) -> None:
    """Raise `StoreForeign` when the database records another workspace than
    `workspace`; record it when it records none (a database from before the check)."""
    row = db.execute("SELECT value FROM meta WHERE key='root'").fetchone()
    if row is None:
        with locked():
            db.execute("INSERT OR IGNORE INTO meta VALUES ('root', ?)", (workspace,))
        return
    if row[0] != workspace:
        other = row[0] if isinstance(row[0], str) else "?"
        raise StoreForeign(f"index database {path} belongs to another workspace "
                           f"({other[:200]})")


def bump_counter(db: sqlite3.Connection, key: str) -> None:
    """Add one to the meta counter `key` (created at 1), inside the caller's
    transaction: how other processes notice a write (`Store.stamp`)."""
    db.execute(
        "INSERT INTO meta VALUES (?, '1') ON CONFLICT(key) "
        "DO UPDATE SET value = CAST(value AS INTEGER) + 1", (key,)
    )
