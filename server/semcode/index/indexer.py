"""The only writer: files in, indexes out.

One `Indexer` owns one workspace's index: the SQLite `Store` (durable), and the two
in-memory retrieval structures derived from it, the BM25 `LexicalIndex` and the usearch
`VectorIndex`. Every change goes through here so that the three never disagree for
longer than a method call:

    text ─► chunk_file ─► tokens ─► Store (one transaction) ─► LexicalIndex, VectorIndex

It knows nothing of models (vectors are handed to it with the model's identity) nor of
editors (buffer text is handed to it like disk text).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semcode.chunking import CHUNKER_VERSION, ChunkerConfig, chunk_file
from semcode.chunks import Chunk
from semcode.config import Settings, cache_dir
from semcode.index.lexical import LexicalIndex
from semcode.index.store import ChunkRef, FileRecord, Store
from semcode.index.tokenizer import chunk_tokens
from semcode.index.vectors import VectorIndex
from semcode.workspace import FileSkipped, Workspace

log = logging.getLogger(__name__)

BUFFER_MTIME = -1  # files.mtime_ns of text that came from an editor: always re-checked on sync
# Rebuild the BM25 matrix once this many chunks changed since the last build (until then
# changed chunks are scored by brute force and stale ones masked: see lexical.py).
LEXICAL_REBUILD_PENDING = 256


@dataclass(frozen=True)
class Progress:
    stage: str  # "scan" | "chunk" | "embed"
    done: int
    total: int
    message: str


ProgressFn = Callable[[Progress], None]


@dataclass
class SyncReport:
    files_seen: int = 0
    files_indexed: int = 0  # re-chunked because new or changed
    files_unchanged: int = 0
    files_removed: int = 0
    files_skipped: int = 0
    chunks: int = 0  # total after the sync
    warnings: list[str] = field(default_factory=list)
    cancelled: bool = False
    seconds: float = 0.0


def index_dir_for(root: Path, settings: Settings) -> Path:
    """One directory per workspace, named after the folder and a hash of its path."""
    base = Path(settings.index_dir).expanduser() if settings.index_dir else cache_dir() / "indexes"
    key = hashlib.sha256(str(root).encode()).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", root.name or "root")
    return base / f"{safe}-{key}"


def text_digest(text: str) -> str:
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).hexdigest()


class Indexer:
    def __init__(self, root: Path, settings: Settings) -> None:
        self.root = root.resolve()
        self.settings = settings
        self.workspace = Workspace(self.root, settings)
        self.dir = index_dir_for(self.root, settings)
        self.store = Store(self.dir / "index.sqlite")
        self.lock = threading.RLock()  # guards the store + both derived indexes together
        self.chunker = ChunkerConfig(
            max_chunk_lines=settings.max_chunk_lines,
            chunk_overlap_lines=settings.chunk_overlap_lines,
            window_lines=settings.window_lines,
        )
        self.refs: dict[int, ChunkRef] = {}
        self.lexical = LexicalIndex()
        self.vectors: VectorIndex | None = None
        self.model_id: str | None = None  # identity of the embedder whose vectors `vectors` holds
        self.buffers: set[str] = set()  # paths whose text the editor owns right now
        self._vectors_dirty = False  # changed since the last save
        self.skipped: dict[str, str] = {}  # path -> reason, from the last sync
        self._rebuilding = False
        self._load()

    # ================================================================ loading
    def _load(self) -> None:
        # The token layout (BM25F fields or not) is part of what was indexed.
        version = CHUNKER_VERSION + ("-fields" if self.settings.bm25_fields else "")
        if self.store.get_meta("chunker_version") != version:
            # Chunks from another chunker version would not match what this one makes:
            # re-chunk everything (the embedding cache keeps that cheap).
            if self.store.get_meta("chunker_version") is not None:
                log.info("chunker changed: re-chunking %s", self.root)
            self.store.clear_chunks()
            self.store.set_meta("chunker_version", version)
        self.store.set_meta("root", str(self.root))
        self.refs = self.store.chunk_refs()
        lexical_dir = self.dir / "lexical"
        if self.store.get_meta("lexical_generation") == str(self.store.generation):
            try:
                self.lexical = LexicalIndex.load(lexical_dir)
                if len(self.lexical) != len(self.refs):
                    raise ValueError("chunk count differs")
                return
            except Exception as exc:  # a damaged cache file is rebuilt, never fatal
                log.warning("rebuilding the lexical index (%s)", exc)
        self._rebuild_lexical_from_store()

    def _rebuild_lexical_from_store(self) -> None:
        lexical = LexicalIndex()
        for chunk_id, tokens in self.store.chunk_tokens():
            lexical.upsert(chunk_id, tokens)
        lexical.rebuild()
        self.lexical = lexical

    def attach_model(self, model_id: str, dims: int) -> int:
        """Make `vectors` hold `model_id`'s vectors: load the saved index if it is that
        model's, reconcile it with the chunks, and fill gaps from the embedding cache.
        A different model than last time re-embeds (through the cache) instead of
        failing on a dimension mismatch. Returns how many chunks still lack a vector."""
        with self.lock:
            if self.model_id == model_id and self.vectors is not None:
                return self.pending_count()
            path = self.dir / "vectors.usearch"
            vectors: VectorIndex | None = None
            if (self.store.get_meta("vectors_model") == model_id
                    and self.store.get_meta("vectors_dims") == str(dims) and path.exists()):
                try:
                    vectors = VectorIndex.load(path, dims)
                except Exception as exc:
                    log.warning("rebuilding the vector index (%s)", exc)
            fresh = vectors is None
            if vectors is None:
                vectors = VectorIndex(dims)
            # Reconcile: drop vectors of chunks that are gone, add cached ones that are missing.
            stale = [i for i in vectors.ids() if i not in self.refs]
            vectors.remove(stale)
            missing = [i for i in self.refs if i not in vectors]
            self.vectors, self.model_id = vectors, model_id
            self._vectors_dirty = fresh or bool(stale)
            self._add_cached_vectors(missing)
            self.store.set_meta("vectors_model", model_id)
            self.store.set_meta("vectors_dims", str(dims))
            return self.pending_count()

    def detach_model(self) -> None:
        with self.lock:
            self.vectors, self.model_id = None, None

    # ================================================================ writing
    def sync(self, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None) -> SyncReport:
        """Reconcile the index with the disk: only files whose stat or content changed
        are re-chunked; files gone from disk (or now ignored) are removed."""
        started = time.perf_counter()
        report = SyncReport()
        if progress:
            progress(Progress("scan", 0, 0, "scanning files"))
        entries = list(self.workspace.scan())
        self.skipped = {path: str(reason) for path, reason in self.workspace.skipped}
        known = self.store.files()
        seen: set[str] = set()
        total = len(entries)
        last_report = 0.0
        for n, entry in enumerate(entries):
            if cancel is not None and cancel.is_set():
                report.cancelled = True
                break
            if progress and time.monotonic() - last_report > 0.1:
                last_report = time.monotonic()
                progress(Progress("chunk", n, total, f"{n}/{total} files"))
            seen.add(entry.rel_path)
            report.files_seen += 1
            if entry.rel_path in self.buffers:
                continue  # the editor's text wins while the file is open
            record = known.get(entry.rel_path)
            if (record is not None and record.mtime_ns != BUFFER_MTIME
                    and record.size == entry.size and record.mtime_ns == entry.mtime_ns):
                report.files_unchanged += 1
                continue
            try:
                text = self.workspace.read_text(entry.rel_path)
            except FileSkipped as skip:
                self.skipped[entry.rel_path] = str(skip.reason)
                report.files_skipped += 1
                if record is not None:
                    self.remove_file(entry.rel_path)
                continue
            digest = text_digest(text)
            if record is not None and record.digest == digest:
                self.store.touch_file(entry.rel_path, entry.size, entry.mtime_ns)
                report.files_unchanged += 1
                continue
            warning = self._index_text(entry.rel_path, text, entry.size, entry.mtime_ns, digest)
            if warning:
                report.warnings.append(f"{entry.rel_path}: {warning}")
            report.files_indexed += 1
        if progress and not report.cancelled:
            progress(Progress("chunk", total, total, f"{total}/{total} files"))
        if not report.cancelled:
            for path in known.keys() - seen - self.buffers:
                self.remove_file(path)
                report.files_removed += 1
        report.files_skipped += len(self.workspace.skipped)
        self.rebuild_lexical_if_needed(background=False)
        report.chunks = len(self.refs)
        report.seconds = time.perf_counter() - started
        return report

    def update_text(self, rel_path: str, text: str) -> list[str]:
        """Index text the editor holds (saved or not). Returns warnings."""
        reason = self.workspace.check_text(rel_path, text)
        if reason is not None:
            self.remove_file(rel_path)
            return [f"{rel_path}: not indexed ({reason})"]
        with self.lock:
            self.buffers.add(rel_path)
        warning = self._index_text(rel_path, text, len(text.encode("utf-8", "replace")),
                                   BUFFER_MTIME, text_digest(text))
        self.rebuild_lexical_if_needed(background=True)
        return [f"{rel_path}: {warning}"] if warning else []

    def revert_file(self, rel_path: str) -> None:
        """Forget any buffer text for `rel_path` and index what the disk holds."""
        with self.lock:
            self.buffers.discard(rel_path)
        if (self.root / rel_path).is_dir() and self.workspace.is_included(rel_path):
            # A directory appeared (a checkout, an unpacked archive): index what it holds.
            for entry in self.workspace.scan_under(rel_path):
                self.revert_file(entry.rel_path)
            return
        if not self.workspace.is_included(rel_path) or not (self.root / rel_path).is_file():
            self.remove_file(rel_path)
            return
        try:
            text = self.workspace.read_text(rel_path)
        except FileSkipped as skip:
            self.skipped[rel_path] = str(skip.reason)
            self.remove_file(rel_path)
            return
        st = (self.root / rel_path).stat()
        self._index_text(rel_path, text, st.st_size, st.st_mtime_ns, text_digest(text))
        self.rebuild_lexical_if_needed(background=True)

    def remove_file(self, rel_path: str) -> None:
        """Remove a file, or everything under a directory."""
        with self.lock:
            files, removed = self.store.remove_path(rel_path)
            self.buffers.difference_update([rel_path, *files])
            self._forget(removed)

    def forget_buffer(self, rel_path: str) -> None:
        with self.lock:
            self.buffers.discard(rel_path)

    def _index_text(self, rel_path: str, text: str, size: int, mtime_ns: int,
                    digest: str) -> str | None:
        # Chunk and tokenise outside the lock: it is the CPU-heavy part.
        result = chunk_file(rel_path, text, self.chunker)
        tokens = [chunk_tokens(c, self.settings.bm25_fields) for c in result.chunks]
        record = FileRecord(rel_path, size, mtime_ns, digest, result.language, result.warning)
        with self.lock:
            removed, new_ids = self.store.replace_file(record, result.chunks, tokens)
            self._forget(removed)
            for chunk_id, chunk, toks in zip(new_ids, result.chunks, tokens, strict=True):
                self.lexical.upsert(chunk_id, toks)
                self.refs[chunk_id] = ChunkRef(chunk.path, chunk.language, int(chunk.kind),
                                               chunk.content_hash(), chunk.content)
            self._add_cached_vectors(new_ids)
        return result.warning

    def _forget(self, chunk_ids: Sequence[int]) -> None:
        for chunk_id in chunk_ids:
            self.lexical.remove(chunk_id)
            self.refs.pop(chunk_id, None)
        if self.vectors is not None and chunk_ids:
            self.vectors.remove(chunk_ids)
            self._vectors_dirty = True

    # ================================================================ vectors
    def _add_cached_vectors(self, chunk_ids: Iterable[int]) -> None:
        if self.vectors is None or self.model_id is None:
            return
        refs = {i: self.refs[i] for i in chunk_ids if i in self.refs}
        if not refs:
            return
        cached = self.store.cached_vectors(self.model_id, (r.hash for r in refs.values()))
        ids = [i for i, r in refs.items() if r.hash in cached]
        if ids:
            matrix = np.stack([cached[refs[i].hash] for i in ids])
            self.vectors.add(np.asarray(ids, dtype=np.uint64), matrix)
            self._vectors_dirty = True

    def pending_embeddings(self, priority: Sequence[str] = ()) -> list[int]:
        """Chunks of the attached model still without a vector, priority paths first."""
        with self.lock:
            if self.vectors is None:
                return []
            pending = [i for i in self.refs if i not in self.vectors]
        first = set(priority)
        rank = {p: n for n, p in enumerate(priority)}
        return sorted(pending, key=lambda i: (rank.get(self.refs[i].path, len(rank))
                                              if self.refs[i].path in first else len(rank), i))

    def pending_count(self) -> int:
        with self.lock:
            if self.vectors is None:
                return len(self.refs)
            return len(self.refs) - len(self.vectors)

    def add_vectors(self, model_id: str, chunk_ids: Sequence[int], hashes: Sequence[str],
                    vectors: np.ndarray) -> None:
        """Store freshly computed vectors (cache first, then the live index for the
        chunks that still exist with the same content)."""
        self.store.put_vectors(model_id, zip(hashes, vectors, strict=True))
        with self.lock:
            if self.vectors is None or self.model_id != model_id:
                return
            keep = [n for n, (i, h) in enumerate(zip(chunk_ids, hashes, strict=True))
                    if (ref := self.refs.get(i)) is not None and ref.hash == h]
            if keep:
                self.vectors.add(np.asarray([chunk_ids[n] for n in keep], dtype=np.uint64),
                                 vectors[keep])
                self._vectors_dirty = True

    # ================================================================ lexical upkeep
    def rebuild_lexical_if_needed(self, background: bool) -> None:
        if self.lexical.pending == 0:
            return
        if background and self.lexical.pending < LEXICAL_REBUILD_PENDING:
            return
        if not background:
            self.lexical.rebuild()
            return
        with self.lock:
            if self._rebuilding:
                return
            self._rebuilding = True

        def work() -> None:
            try:
                self.lexical.rebuild()
            finally:
                self._rebuilding = False

        threading.Thread(target=work, name="semcode-bm25-rebuild", daemon=True).start()

    # ================================================================ persistence
    def flush(self) -> None:
        """Save the derived indexes, each stamped with the store generation it matches."""
        with self.lock:
            generation = str(self.store.generation)
            if self.lexical.pending:
                self.lexical.rebuild()
            if self.store.get_meta("lexical_generation") != generation:
                self.lexical.save(self.dir / "lexical")
                self.store.set_meta("lexical_generation", generation)
            if self.vectors is not None and self._vectors_dirty:
                self.vectors.save(self.dir / "vectors.usearch")
                self.store.set_meta("vectors_generation", generation)
                self._vectors_dirty = False

    def reset(self) -> None:
        """Drop chunks and derived indexes (a full reindex); the embedding cache stays."""
        with self.lock:
            self.store.clear_chunks()
            self._forget(list(self.refs))
            self.refs.clear()
            self.lexical = LexicalIndex()
            shutil.rmtree(self.dir / "lexical", ignore_errors=True)

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        return self.store.chunks(ids)

    def status(self) -> dict[str, object]:
        with self.lock:
            embedded = len(self.vectors) if self.vectors is not None else 0
            return {
                "root": str(self.root),
                "indexDir": str(self.dir),
                "files": self.store.count("files"),
                "chunks": len(self.refs),
                "embedded": embedded,
                "pendingEmbeddings": len(self.refs) - embedded if self.vectors is not None else 0,
                "skippedFiles": len(self.skipped),
                "indexBytes": _dir_size(self.dir),
            }

    def close(self) -> None:
        self.store.close()


def _dir_size(path: Path) -> int:
    total = 0
    for dirpath, _, files in os.walk(path):
        for name in files:
            with contextlib.suppress(OSError):  # a file removed while we count
                total += os.path.getsize(os.path.join(dirpath, name))
    return total
