"""The durable record of one workspace's index: SQLite.

It holds what cannot be recomputed cheaply (the embedding cache) and what the derived
structures are rebuilt from (chunks and their BM25 tokens). The usearch and bm25s files
beside it are caches of this database: each records the database generation it was
saved at, and a mismatch (a crash between the two writes, say) makes the indexer
rebuild it from here. SQLite transactions make every update all-or-nothing, so a crash
mid-index leaves the last committed state usable.

Only `indexer.Indexer` writes through this class.
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semcode.chunks import Chunk, SymbolKind

SCHEMA_VERSION = 1

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
    tokens TEXT NOT NULL,            -- BM25 tokens, space-joined (rebuilds need no re-tokenising)
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

_CHUNK_COLUMNS = (
    "path, language, kind, name, container, start_line, end_line, name_line, "
    "name_start_col, name_end_col, part, text, content"
)


class StoreError(RuntimeError):
    """The index database is unreadable or from an incompatible version."""


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """What the engine keeps in memory per chunk: enough to filter, not the text."""

    path: str
    language: str
    kind: int
    hash: str
    content: str = "code"  # content kind (chunking/content.py)


@dataclass(frozen=True, slots=True)
class FileRecord:
    path: str
    size: int
    mtime_ns: int
    digest: str
    language: str
    warning: str | None


class Store:
    """A thread-safe wrapper over one SQLite file (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._db = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
            columns = {r[1] for r in self._db.execute("PRAGMA table_info(chunks)")}
            if "content" not in columns:  # an index from before content kinds
                self._db.execute("ALTER TABLE chunks ADD COLUMN content TEXT NOT NULL "
                                 "DEFAULT 'code'")
        except sqlite3.DatabaseError as exc:
            raise StoreError(f"cannot open index database {path}: {exc}") from None
        self._lock = threading.RLock()
        version = self.get_meta("schema_version")
        if version is None:
            self.set_meta("schema_version", str(SCHEMA_VERSION))
        elif version != str(SCHEMA_VERSION):
            raise StoreError(
                f"index {path} has schema {version}, this semcode uses {SCHEMA_VERSION}"
            )

    # ------------------------------------------------------------------ meta
    def get_meta(self, key: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return row[0] if row else None

    def set_meta(self, key: str, value: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    @property
    def generation(self) -> int:
        """Bumped by every change to chunks; derived indexes record the value they saw."""
        return int(self.get_meta("generation") or 0)

    # ------------------------------------------------------------------ files and chunks
    def files(self) -> dict[str, FileRecord]:
        with self._lock:
            rows = self._db.execute(
                "SELECT path, size, mtime_ns, digest, language, warning FROM files"
            ).fetchall()
        return {r[0]: FileRecord(*r) for r in rows}

    def replace_file(
        self,
        record: FileRecord,
        chunks: Sequence[Chunk],
        tokens: Sequence[Sequence[str]],
    ) -> tuple[list[int], list[int]]:
        """Replace everything stored for `record.path` in one transaction.
        Returns (removed chunk ids, new chunk ids in the order of `chunks`)."""
        with self._lock, self._transaction():
            removed = self._chunk_ids(record.path)
            self._db.execute("DELETE FROM chunks WHERE path=?", (record.path,))
            self._db.execute(
                "INSERT OR REPLACE INTO files VALUES (?, ?, ?, ?, ?, ?)",
                (record.path, record.size, record.mtime_ns, record.digest, record.language,
                 record.warning),
            )
            new_ids = []
            for chunk, toks in zip(chunks, tokens, strict=True):
                cur = self._db.execute(
                    f"INSERT INTO chunks ({_CHUNK_COLUMNS}, hash, tokens) "
                    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (chunk.path, chunk.language, int(chunk.kind), chunk.name, chunk.container,
                     chunk.start_line, chunk.end_line, chunk.name_line, chunk.name_start_col,
                     chunk.name_end_col, chunk.part, chunk.text, chunk.content,
                     chunk.content_hash(),
                     " ".join(toks)),
                )
                assert cur.lastrowid is not None
                new_ids.append(cur.lastrowid)
            self._bump_generation()
        return removed, new_ids

    def touch_file(self, path: str, size: int, mtime_ns: int) -> None:
        """Content unchanged, stat changed (a `touch`, a checkout of the same blob)."""
        with self._lock:
            self._db.execute(
                "UPDATE files SET size=?, mtime_ns=? WHERE path=?", (size, mtime_ns, path)
            )

    def remove_path(self, path: str) -> tuple[list[str], list[int]]:
        """Remove a file, or every file under a directory (a deleted folder arrives from
        file watchers as one event). Returns (removed file paths, removed chunk ids)."""
        prefix = path.rstrip("/") + "/"
        where = "path = ? OR substr(path, 1, ?) = ?"
        args = (path, len(prefix), prefix)
        with self._lock, self._transaction():
            files = [r[0] for r in self._db.execute(f"SELECT path FROM files WHERE {where}", args)]
            removed = [r[0] for r in self._db.execute(f"SELECT id FROM chunks WHERE {where}",
                                                      args)]
            self._db.execute(f"DELETE FROM chunks WHERE {where}", args)
            self._db.execute(f"DELETE FROM files WHERE {where}", args)
            if removed or files:
                self._bump_generation()
        return files, removed

    def clear_chunks(self) -> None:
        """Forget all files and chunks (a chunker upgrade, a full reindex); the embedding
        cache stays, so re-chunking identical code embeds nothing."""
        with self._lock, self._transaction():
            self._db.execute("DELETE FROM chunks")
            self._db.execute("DELETE FROM files")
            self._bump_generation()

    def chunk_refs(self) -> dict[int, ChunkRef]:
        with self._lock:
            rows = self._db.execute(
                "SELECT id, path, language, kind, hash, content FROM chunks").fetchall()
        return {r[0]: ChunkRef(r[1], r[2], r[3], r[4], r[5]) for r in rows}

    def chunk_tokens(self) -> Iterator[tuple[int, list[str]]]:
        with self._lock:
            rows = self._db.execute("SELECT id, tokens FROM chunks").fetchall()
        for chunk_id, tokens in rows:
            yield chunk_id, tokens.split()

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        ids = list(ids)
        out: dict[int, Chunk] = {}
        with self._lock:
            for start in range(0, len(ids), 500):
                part = ids[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT id, {_CHUNK_COLUMNS} FROM chunks WHERE id IN ({marks})", part
                ).fetchall()
                for row in rows:
                    out[row[0]] = _row_to_chunk(row[1:])
        return out

    def chunks_of_file(self, path: str) -> dict[int, Chunk]:
        with self._lock:
            rows = self._db.execute(
                f"SELECT id, {_CHUNK_COLUMNS} FROM chunks WHERE path=? ORDER BY start_line",
                (path,),
            ).fetchall()
        return {row[0]: _row_to_chunk(row[1:]) for row in rows}

    def embedding_texts(self, ids: Sequence[int]) -> dict[int, str]:
        return {i: c.embedding_text() for i, c in self.chunks(ids).items()}

    # ------------------------------------------------------------------ embedding cache
    def cached_vectors(self, model: str, hashes: Iterable[str]) -> dict[str, np.ndarray]:
        hashes = list(set(hashes))
        out: dict[str, np.ndarray] = {}
        with self._lock:
            for start in range(0, len(hashes), 500):
                part = hashes[start : start + 500]
                marks = ",".join("?" * len(part))
                rows = self._db.execute(
                    f"SELECT hash, vector FROM embeddings WHERE model=? AND hash IN ({marks})",
                    [model, *part],
                ).fetchall()
                for h, blob in rows:
                    out[h] = np.frombuffer(blob, dtype=np.float32)
        return out

    def missing_embeddings(self, model: str) -> list[tuple[int, str]]:
        """(chunk id, hash) of chunks with no cached vector for `model`."""
        with self._lock:
            return self._db.execute(
                "SELECT c.id, c.hash FROM chunks c LEFT JOIN embeddings e "
                "ON e.model=? AND e.hash=c.hash WHERE e.hash IS NULL ORDER BY c.id",
                (model,),
            ).fetchall()

    def put_vectors(self, model: str, items: Iterable[tuple[str, np.ndarray]]) -> None:
        with self._lock, self._transaction():
            self._db.executemany(
                "INSERT OR REPLACE INTO embeddings VALUES (?, ?, ?)",
                [(model, h, np.asarray(v, dtype=np.float32).tobytes()) for h, v in items],
            )

    def count(self, what: str) -> int:
        if what not in ("files", "chunks", "embeddings"):
            raise ValueError(what)
        with self._lock:
            return int(self._db.execute(f"SELECT COUNT(*) FROM {what}").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()

    # ------------------------------------------------------------------ internals
    def _chunk_ids(self, path: str) -> list[int]:
        return [r[0] for r in self._db.execute("SELECT id FROM chunks WHERE path=?", (path,))]

    def _bump_generation(self) -> None:
        self._db.execute(
            "INSERT INTO meta VALUES ('generation', '1') ON CONFLICT(key) "
            "DO UPDATE SET value = CAST(value AS INTEGER) + 1"
        )

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, ROLLBACK on error (the connection is in autocommit mode,
    so each statement outside a transaction commits by itself)."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        self._db.execute("ROLLBACK" if exc_type else "COMMIT")


def _row_to_chunk(row: Sequence[object]) -> Chunk:
    (path, language, kind, name, container, start, end, name_line, name_start, name_end,
     part, text, content) = row
    return Chunk(
        path=str(path), language=str(language), kind=SymbolKind(int(kind)),  # type: ignore[call-overload]
        name=str(name), container=str(container), start_line=int(start),  # type: ignore[call-overload]
        end_line=int(end), text=str(text), name_line=int(name_line),  # type: ignore[call-overload]
        name_start_col=int(name_start), name_end_col=int(name_end), part=int(part),  # type: ignore[call-overload]
        content=str(content),
    )
