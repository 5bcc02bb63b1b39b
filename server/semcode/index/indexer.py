"""The only writer: files in, indexes out.

One `Indexer` owns one workspace's index: the SQLite `Store` (durable), and the two
in-memory retrieval structures derived from it, the BM25 `LexicalIndex` and the usearch
`VectorIndex`. Every change goes through here so that the three never disagree for
longer than a method call:

    text ─► chunk_file ─► tokens ─► Store (one transaction) ─► LexicalIndex, VectorIndex

Across processes (a `semcode serve` and a terminal `semcode index` on one workspace):
every write holds the index directory's `WriteLock`, and on taking it the indexer
compares the store's (id, generation) with the one its memory reflects; if another
process moved it, refs, lexical and vectors catch up first (by id: `Store.delta`). Readers call
`refresh()` (cheap: one SELECT) before answering. So no process ever writes on top of a
state it has not seen, and `flush()` stamps a generation only on structures that hold
exactly that generation.

Saved structures carry a manifest (database id, generation, checksums of their own
files) checked before anything is loaded (the mapped lexical build and chunk table:
their files' sizes, times and shapes, their checksums with `check`); a mismatch
rebuilds from the store. The chunk table (`refs`, chunk_table.py) is mapped from
`chunks.bin` at open: when it is the store's state, no chunk row is read.

It knows nothing of models (vectors are handed to it with the model's identity) nor of
editors (buffer text is handed to it like disk text).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from semcode.chunking import CHUNKER_VERSION
from semcode.chunks import Chunk
from semcode.config import Settings, cache_dir
from semcode.index.catch_up import CatchUp, Drift
from semcode.index.chunk_files import CHUNKS_FILE, load_saved
from semcode.index.chunk_table import ChunkTable
from semcode.index.layout import LEXICAL_DIR
from semcode.index.layout import dir_size as _dir_size
from semcode.index.lexical import LexicalIndex
from semcode.index.lexical_files import saved_build
from semcode.index.lexical_upkeep import LexicalUpkeep
from semcode.index.preparing import (
    Job,
    PrepareConfig,
    Prepared,
    Preparer,
    Skipped,
    auto_workers,
    chunk_text,
    text_digest,
)
from semcode.index.saving import Saving
from semcode.index.shared_cache import MIB, SHARED_DIR, SharedEmbeddings
from semcode.index.store import (
    REBUILD_OWED,
    ChunkRef,
    FileRecord,
    Snapshot,
    Store,
    StoreCorrupt,
    StoreError,
    WriteLock,
)
from semcode.index.tokenizer import chunk_tokens
from semcode.index.vector_upkeep import VectorUpkeep
from semcode.index.vectors import VectorIndex
from semcode.workspace import (
    FileEntry,
    FileSkipped,
    IgnoreCause,
    SkipReason,
    Workspace,
    valid_name,
)

log = logging.getLogger(__name__)

BUFFER_MTIME = -1  # files.mtime_ns of text that came from an editor: always re-checked on sync
RECHECK_MTIME = -2  # a file modified just before it was read: its content is re-checked
# A file whose mtime is this close to the moment it was read may be written again within
# the same timestamp tick, with the same size: its stat cannot be trusted next time (git's
# "racy clean" problem), so its content is compared again on the next sync.
RACY_NS = 2_000_000_000
# A large sync commits about this often (`_batched_writes`): other processes see its
# progress, and an interrupted one keeps what was committed.
BATCH_COMMIT_S = 1.0
ALMOST_NOTHING = 10  # an ignore rule that excluded 10x what was indexed is reported
FULL_REINDEX_OWED = "a full reindex has not finished"
MODEL_KEY_PREFIX = "model_identity:"  # meta: embedder configuration -> its identity


@dataclass(frozen=True)
class Progress:
    """A progress report of a long index run, for a progress bar or `$/progress`."""

    stage: str  # "scan" | "chunk" | "embed"
    done: int
    total: int
    message: str


ProgressFn = Callable[[Progress], None]


@dataclass
class SyncReport:
    """What one `sync()` did (counts for the CLI's closing line and `--json`)."""

    files_seen: int = 0
    files_indexed: int = 0  # re-chunked because new or changed
    files_unchanged: int = 0
    files_removed: int = 0
    files_skipped: int = 0
    chunks: int = 0  # total after the sync
    warnings: list[str] = field(default_factory=list)
    # Set when (almost) nothing was indexed and a rule file's line excluded the most:
    # the user's answer to "why is my index empty?".
    ignore_cause: IgnoreCause | None = None
    cancelled: bool = False
    seconds: float = 0.0


@dataclass(frozen=True)
class IndexStatus:
    """What one workspace's index holds (`Indexer.status`). A record, not a wire shape:
    the CLI, LSP and MCP adapters each convert it to their published JSON."""

    root: Path
    index_dir: Path
    files: int
    chunks: int
    embedded: int  # chunks with a vector of the attached (or configured) model
    pending_embeddings: int  # chunks still without one (0 when no model is in use)
    skipped_files: int
    index_bytes: int  # the index directory's size on disk


def index_base(settings: Settings) -> Path:
    """The directory that holds every workspace's index directory (and the shared
    embedding cache beside them)."""
    return Path(settings.index_dir).expanduser() if settings.index_dir else cache_dir() / "indexes"


def index_dir_for(root: Path, settings: Settings) -> Path:
    """One directory per workspace, named after the folder and a hash of its path."""
    key = hashlib.sha256(str(root).encode("utf-8", "surrogateescape")).hexdigest()[:12]
    safe = re.sub(r"[^A-Za-z0-9._-]", "_", root.name or "root")
    return index_base(settings) / f"{safe}-{key}"


def shared_cache_for(settings: Settings) -> SharedEmbeddings | None:
    """The embedding cache every checkout under the same index base shares, or None when
    the `shared_embedding_cache` setting turns it off."""
    if not settings.shared_embedding_cache:
        return None
    return SharedEmbeddings(index_base(settings) / SHARED_DIR,
                            settings.shared_embedding_cache_mb * MIB)


@dataclass(frozen=True, slots=True)
class _Held:
    """A file's chunks stored but not yet made searchable: the ids its write removed,
    its chunks' ids (kept and new, in chunk order) and what was stored."""

    removed: list[int]
    ids: list[int]
    prepared: Prepared


class Indexer:
    """One workspace's index (see the module docstring). It owns the store, the chunk
    table (`refs`) and the editor buffers, and wires four parts that each own their
    state: `catch_up` (the database state memory reflects), `lexical_upkeep` (the BM25
    build), `vector_upkeep` (the live vectors), `saving` (what is written where)."""

    def __init__(self, root: Path, settings: Settings, *, check: bool = False,
                 recover: bool | str = False, fresh: bool = False,
                 notice: Callable[[str], None] | None = None) -> None:
        """Open the index of `root`. `check` verifies the database first (`index
        --full`); `recover` moves it aside unconditionally (it was seen damaged; a
        string says how);
        `fresh` drops every file and chunk before anything is read (`index --full`
        works however damaged the stored chunks are); `notice` receives one-line
        messages (e.g. waiting for another writer)."""
        self.root = root.resolve()
        self.settings = settings
        self.workspace = Workspace(self.root, settings)
        self.dir = index_dir_for(self.root, settings)
        try:
            self.dir.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot use {self.dir} as the index directory: "
                             f"{exc.strerror or exc}") from None
        self.write_lock = WriteLock(self.dir, notice)
        self.store = Store(self.dir / "index.sqlite", self.write_lock, check=check,
                           recover=recover, workspace=str(self.root),
                           shared=shared_cache_for(settings))
        if fresh:  # before any read of what is stored: only the embedding cache stays
            with self.write_lock.hold():
                self.store.clear_chunks()
                self.store.set_meta(REBUILD_OWED, FULL_REINDEX_OWED)
                shutil.rmtree(self.dir / LEXICAL_DIR, ignore_errors=True)
        self.notices: list[str] = list(self.store.notices)
        self.lock = threading.RLock()  # guards the store + both derived indexes together
        # Reading, chunking and tokenising files: the CPU-heavy half of indexing, on
        # every core during a large sync (`preparing.py`).
        self.preparer = Preparer(PrepareConfig.of(self.root, settings),
                                 auto_workers(settings.index_workers))
        # The chunk table (chunk_table.py): filled in place (the parts hold this very
        # object), dict-like to write, columns to scan, mapped from `chunks.bin` at open.
        self.refs = ChunkTable()
        self._verify = check
        self.catch_up = CatchUp(self.dir, self.store, self.write_lock)
        self.lexical_upkeep = LexicalUpkeep(self.dir, self.lock, self.catch_up.stamp,
                                            self.order_key, self._writing,
                                            verify=check, after_save=self._save_table)
        self.vector_upkeep = VectorUpkeep(self.dir, self.store.embeddings, self.lock,
                                          self.refs, self.catch_up.stamp, self.order_key)
        self.saving = Saving(self.dir, self.catch_up, self.lexical_upkeep,
                             self.vector_upkeep, self.refs)
        self.buffers: set[str] = set()  # paths whose text the editor owns right now
        self._reapply_owed = False  # buffers to re-apply once the write lock is free
        self._buffer_text: dict[str, str] = {}  # re-applied if another process overwrote it
        # A buffer's chunks -> their tokens, from its last update: a keystroke tokenises
        # only the chunks it changed.
        self._buffer_tokens: dict[str, dict[Chunk, list[str]]] = {}
        self.skipped: dict[str, str] = {}  # path -> reason, from the last sync
        self._held: list[_Held] | None = None  # inside `_batched_writes`
        self._load()

    @property
    def lexical(self) -> LexicalIndex:
        """The live BM25 build (`lexical_upkeep` owns it)."""
        return self.lexical_upkeep.index

    @property
    def vectors(self) -> VectorIndex | None:
        """The live vector index, None when no model is attached (`vector_upkeep`)."""
        return self.vector_upkeep.index

    @property
    def model_id(self) -> str | None:
        """The identity of the embedder whose vectors `vectors` holds."""
        return self.vector_upkeep.model_id

    # ================================================================ loading
    def _load(self) -> None:
        # The token layout (BM25F fields or not) is part of what was indexed.
        version = CHUNKER_VERSION + ("-fields" if self.settings.bm25_fields else "")
        # (The workspace it belongs to is the store's check: `schema.py`.)
        if self.store.get_meta("chunker_version") != version:
            with self.write_lock.hold():
                if self.store.get_meta("chunker_version") != version:
                    # Chunks from another chunker version would not match what this one
                    # makes: re-chunk everything (the embedding cache keeps that cheap).
                    if self.store.get_meta("chunker_version") is not None:
                        log.info("chunker changed: re-chunking %s (cached embeddings of unchanged "
                                 "chunks are kept)", self.root)
                    self.store.clear_chunks()
                    self.store.set_meta("chunker_version", version)
        self.catch_up.check_rollback()
        with self.lock:
            self._reload(self._opening_snapshot())
        with self.write_lock.try_hold() as got, contextlib.suppress(OSError):
            if got:
                self.saving.remove_stale_temp()

    def _opening_snapshot(self) -> Snapshot:
        """The state an open starts from: the saved chunk table when it is this
        database's (not one chunk row read when it is current; else brought up to date
        by id), else every chunk's row."""
        saved = load_saved(self.dir / CHUNKS_FILE, self.store.store_id, self._verify)
        if saved is None or saved.stamp is None:
            return self.store.snapshot()
        return self.store.advance(Snapshot(*saved.stamp, saved))

    def _save_table(self) -> None:
        """Beside every save of the lexical build (holding the write lock, caught up)."""
        self.saving.write_table()

    def _reload(self, snap: Snapshot) -> None:
        """Make refs, lexical and vectors reflect `snap` (holding `self.lock`): the saved
        lexical build reconciled with it (see lexical_upkeep.py), else one built from
        every chunk's row and saved when the write lock is free."""
        for _ in range(3):  # a build saved after `snap` was read holds chunks it lacks:
            saved = saved_build(self.dir / LEXICAL_DIR)  # read the state it was saved at
            if saved is None or saved.store_id != snap.store_id or \
                    saved.generation <= snap.generation:
                break
            snap = self.store.advance(snap)
        # Chunks are tokenised only where the saved build lacks them.
        built_here, snap = self.lexical_upkeep.load(snap, self._tokens_of, self.store.advance,
                                                    self._read_all)
        self.refs.install(snap.refs, (snap.store_id, snap.generation))
        store_changed = snap.store_id != self.catch_up.stamp.store_id
        self.catch_up.caught_up(snap.store_id, snap.generation)
        if store_changed:  # chunk ids of another database mean nothing here
            self.vector_upkeep.restart()
        self.vector_upkeep.reconcile()
        if built_here:  # share it at once, so other processes score with it too
            with self.write_lock.try_hold() as got, contextlib.suppress(OSError):
                if got:
                    self.lexical_upkeep.save()

    def _tokenize(self, chunk: Chunk) -> list[str]:
        """A chunk's BM25 tokens as a sync gives them (`preparing.chunk_text`)."""
        return chunk_tokens(chunk, self.settings.bm25_fields)

    def _tokens_of(self, ids: list[int]) -> dict[int, list[str]]:
        """The tokens of these stored chunks, from their rows (removed ones left out)."""
        return {i: self._tokenize(c) for i, c in self.store.chunks(ids).items()}

    def _read_all(self, add: Callable[[int, list[str]], None]) -> Snapshot:
        """The committed state, every chunk's tokens handed to `add` on the way."""
        return self.store.snapshot(visit=lambda i, chunk: add(i, self._tokenize(chunk)))

    def order_key(self, chunk_id: int) -> tuple[str, int, str, int]:
        """The tie order of search results: (path, start line, name, kind), the same in
        an incremental index and a rebuild (chunk ids are not)."""
        return self.refs.order_key(chunk_id)

    def _reapply_buffers(self) -> None:
        """Another process re-indexed a file this one holds an editor buffer of (a
        terminal `semcode index` while `semcode serve` runs): the buffer wins again."""
        for path, text in list(self._buffer_text.items()):
            record = self.store.file(path)
            if record is None or record.digest != text_digest(text):
                self._index_text(len(text.encode("utf-8", "replace")), BUFFER_MTIME,
                                 self._chunk_text(path, text))

    # ================================================================ catching up
    def refresh(self) -> bool:
        """Catch up with writes another process committed (one cheap SELECT when there
        were none). Call it before answering a search. Returns whether anything moved.
        Editor buffers another process overwrote are re-applied when the write lock is
        free (else by this process's next write)."""
        moved = self._catch_up(writing=False)
        if (moved or self._reapply_owed) and self._buffer_text:
            with self.write_lock.try_hold() as got:
                if got:
                    self._catch_up(writing=True)
                    self._reapply_buffers()
                # Busy (another process writes): try again on the next refresh; the next
                # one finds nothing new to catch up with, so remember it (rellsp).
                self._reapply_owed = not got
        return moved

    def _catch_up(self, writing: bool) -> bool:
        """Make memory equal the committed state of the shared database (`catch_up`
        says what moved), then adopt a BM25 build another process saved."""
        self.catch_up.reopen_if_moved()
        with self.lock:
            drift = self.catch_up.drift()
            if drift is Drift.DATABASE:
                log.info("the index database was replaced in another process: "
                         "reloading it")
                self._reload(self.store.snapshot())
            elif drift is Drift.CHUNKS:
                self._apply_delta()
            elif drift is Drift.EMBEDDINGS:
                self.vector_upkeep.add_missing_cached()
            if writing and drift in (Drift.DATABASE, Drift.CHUNKS):
                self._reapply_buffers()
            # Score with the build every process has (lexical_upkeep.py): one stat when
            # nobody saved a new one.
            return self.lexical_upkeep.adopt_saved(self.refs.ids) or \
                drift is not Drift.NONE

    def _apply_delta(self) -> None:
        """Another process changed chunks: forget the removed ones, add the new ones
        (holding `self.lock`). Exact, because chunk ids are never reused; costs one read
        of the id column plus the changed rows, not a rebuild."""
        tokens: list[tuple[int, list[str]]] = []
        store_id, generation, ids, added = self.store.delta(
            self.refs.ids(), visit=lambda i, chunk: tokens.append((i, self._tokenize(chunk))))
        if store_id != self.catch_up.stamp.store_id:
            self._reload(self.store.snapshot())
            return
        removed = self.refs.missing_from(ids)[1].tolist()
        with self.lexical.atomically():  # a search sees a file's old or new chunks
            self._forget(removed)
            for chunk_id, chunk_tokens_ in tokens:
                self.lexical.upsert(chunk_id, chunk_tokens_)
        self.refs.update(added.refs)
        self.catch_up.caught_up(store_id, generation)
        self.lexical_upkeep.dirty = True
        self.vector_upkeep.add_cached(added.refs)
        log.info("caught up with another process: %d chunks removed, %d added",
                 len(removed), len(added.refs))
        self.lexical_upkeep.rebuild_if_needed()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """Hold the index's write lock (across processes); on first entry, catch up with
        what another process wrote meanwhile."""
        with self.write_lock.hold():
            if self.write_lock.depth == 1:
                self._catch_up(writing=True)
            yield

    def _note_write(self) -> None:
        """After a write of ours (holding the lock): our memory is the store's state."""
        self.catch_up.note_write()
        self.lexical_upkeep.dirty = True

    # ================================================================ writing
    def sync(self, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None) -> SyncReport:
        """Reconcile the index with the disk: only files whose stat or content changed
        are re-chunked; files gone from disk (or now ignored) are removed. Holds the
        write lock throughout (another process's writes wait)."""
        with self._writing():
            return self._sync(progress, cancel)

    def _sync(self, progress: ProgressFn | None, cancel: threading.Event | None) -> SyncReport:
        started = time.perf_counter()
        report = SyncReport()
        if progress:
            progress(Progress("scan", 0, 0, "scanning files"))
        entries = list(self.workspace.scan())
        self.skipped = {path: str(reason) for path, reason in self.workspace.skipped}
        known = self.store.files()
        seen = {entry.rel_path for entry in entries}
        report.files_seen = total = len(entries)
        # Files whose stat changed (or that are new) are read; the rest are not touched.
        to_read: list[tuple[FileEntry, FileRecord | None]] = []
        for entry in entries:
            if entry.rel_path in self.buffers:  # the editor's text wins while open
                continue
            record = known.get(entry.rel_path)
            if (record is not None and record.mtime_ns >= 0
                    and record.size == entry.size and record.mtime_ns == entry.mtime_ns):
                report.files_unchanged += 1
                continue
            to_read.append((entry, record))
        self._read_changed(to_read, total, report, progress, cancel)
        if progress and not report.cancelled:
            progress(Progress("chunk", total, total, f"{total}/{total} files"))
        if not report.cancelled:
            # Exactly these paths: a file that became a directory keeps what was just
            # indexed under it.
            for path in known.keys() - seen - self.buffers:
                self._remove_exact(path)
                report.files_removed += 1
        report.files_skipped += len(self.workspace.skipped)
        if not report.cancelled:
            report.ignore_cause = self._ignore_cause(report.files_seen)
        if not report.cancelled and self.store.get_meta(REBUILD_OWED) is not None:
            self.store.clear_meta(REBUILD_OWED)  # complete now: searchable as it is
        # Exact (as a fresh build of these chunks) where that is cheap; a large index
        # rebuilds only when enough changed (lexical_upkeep.py).
        self.lexical_upkeep.settle()
        report.chunks = len(self.refs)
        report.seconds = time.perf_counter() - started
        return report

    def _read_changed(self, to_read: Sequence[tuple[FileEntry, FileRecord | None]],
                      total: int, report: SyncReport, progress: ProgressFn | None,
                      cancel: threading.Event | None) -> None:
        """Read, chunk and store the files whose stat changed (`preparing.py` does the
        reading and chunking, on every core when there are many), in scan order, in
        batched transactions (`_batched_writes`)."""
        done = total - len(to_read)
        last_report = 0.0
        results = self.preparer.run([Job(e.rel_path, e.size, r.digest if r else None)
                                     for e, r in to_read])
        try:
            with self._batched_writes() as flush:
                for (entry, record), result in zip(to_read, results, strict=True):
                    if cancel is not None and cancel.is_set():
                        report.cancelled = True
                        break
                    if progress and time.monotonic() - last_report > 0.1:
                        last_report = time.monotonic()
                        progress(Progress("chunk", done, total, f"{done}/{total} files"))
                    self._sync_entry(entry, record, result, report)
                    flush(False)
                    done += 1
        finally:
            results.close()  # a cancelled sync stops the workers

    @contextlib.contextmanager
    def _batched_writes(self) -> Iterator[Callable[[bool], None]]:
        """Files indexed inside are committed together (`Store.batch`), about once a
        second (`flush(False)`) and at the end; what they change in memory (the chunk
        table, BM25, vectors) is applied right after each commit, so that this
        process's searches, like every other process's, see only committed chunks. A
        failure rolls back what was not committed and reloads memory from the store."""
        held: list[_Held] = []
        last = time.monotonic()
        with self._writing():
            try:
                with self.store.batch() as commit:
                    def flush(now: bool) -> None:
                        nonlocal last
                        if held and (now or time.monotonic() - last >= BATCH_COMMIT_S):
                            commit()
                            self._apply(held)
                            held.clear()
                            last = time.monotonic()

                    self._held = held
                    yield flush
                    flush(True)
            except Exception:
                self._held = None
                with self.lock:  # removals were applied before their commit
                    self._reload(self.store.snapshot())
                raise
            finally:
                self._held = None

    def _sync_entry(self, entry: FileEntry, record: FileRecord | None,
                    result: Prepared | Skipped, report: SyncReport) -> None:
        """Store one file whose stat changed, as `result` found it (its content
        unchanged: only the stat is recorded), counting what happened."""
        if isinstance(result, Skipped):
            self.skipped[entry.rel_path] = str(result.reason)
            report.files_skipped += 1
            if record is not None:
                self._remove_exact(entry.rel_path)
            return
        mtime_ns = _trusted_mtime(entry.mtime_ns)
        if result.unchanged or (record is not None and record.digest == result.digest):
            if record is not None and (record.size, record.mtime_ns) != (entry.size, mtime_ns):
                self.store.touch_file(entry.rel_path, entry.size, mtime_ns)
            report.files_unchanged += 1
            return
        warning = self._index_text(entry.size, mtime_ns, result)
        if warning:
            report.warnings.append(f"{entry.rel_path}: {warning}")
        report.files_indexed += 1

    def _ignore_cause(self, files_seen: int) -> IgnoreCause | None:
        """The rule that excluded the most, when it excluded at least ten times as many
        entries as were indexed (each pruned directory counts once): nothing, or almost
        nothing, is indexed because of it."""
        if files_seen > len(self.workspace.skipped) // ALMOST_NOTHING:
            return None
        cause = self.workspace.ignore_cause()
        if cause is None or files_seen * ALMOST_NOTHING > cause.excluded:
            return None
        return cause

    def update_text(self, rel_path: str, text: str) -> list[str]:
        """Index text the editor holds (saved or not). Returns warnings."""
        if not valid_name(rel_path):
            return [f"{rel_path!a}: not indexed ({SkipReason.BAD_NAME})"]
        if (self.root / rel_path).is_dir():  # an editor opened a folder as a document
            return [f"{rel_path}: not indexed (a directory)"]
        reason = self.workspace.check_text(rel_path, text)
        if reason is not None:
            self.remove_file(rel_path)
            return [f"{rel_path}: not indexed ({reason})"]
        # Outside the lock: the CPU-heavy part.
        prepared = chunk_text(rel_path, text, self.preparer.config,
                              known=self._buffer_tokens.get(rel_path))
        assert prepared.chunked is not None
        self._buffer_tokens[rel_path] = dict(zip(prepared.chunked.chunks, prepared.tokens,
                                                 strict=True))
        with self._writing():
            with self.lock:
                self.buffers.add(rel_path)
                self._buffer_text[rel_path] = text
            warning = self._index_text(len(text.encode("utf-8", "replace")), BUFFER_MTIME,
                                       prepared)
        self.rebuild_lexical_if_needed()
        return [f"{rel_path}: {warning}"] if warning else []

    def revert_file(self, rel_path: str) -> None:
        """Forget any buffer text for `rel_path` and index what the disk holds."""
        with self._writing():
            self._revert(rel_path)
        self.rebuild_lexical_if_needed()

    def _revert(self, rel_path: str) -> None:
        with self.lock:
            self.buffers.discard(rel_path)
            self._buffer_text.pop(rel_path, None)
            self._buffer_tokens.pop(rel_path, None)
        if (self.root / rel_path).is_dir() and self.workspace.is_included(rel_path):
            # A directory appeared (a checkout, an unpacked archive): index what it
            # holds, and drop a file of that name if one was indexed.
            self._remove_exact(rel_path)
            for entry in self.workspace.scan_under(rel_path):
                self._revert(entry.rel_path)
            return
        if (not valid_name(rel_path) or not self.workspace.is_included(rel_path)
                or not (self.root / rel_path).is_file()):
            self.remove_file(rel_path)
            return
        try:
            text = self.workspace.read_text(rel_path)
        except FileSkipped as skip:
            self.skipped[rel_path] = str(skip.reason)
            self.remove_file(rel_path)
            return
        st = (self.root / rel_path).stat()
        digest, mtime_ns = text_digest(text), _trusted_mtime(st.st_mtime_ns)
        record = self.store.file(rel_path)
        if record is not None and record.digest == digest:  # indexed already (by sync,
            # or another process that saw the change first): keep its chunks and ids
            if (record.size, record.mtime_ns) != (st.st_size, mtime_ns):
                self.store.touch_file(rel_path, st.st_size, mtime_ns)
            return
        self._index_text(st.st_size, mtime_ns, self._chunk_text(rel_path, text, digest))

    def remove_file(self, rel_path: str) -> None:
        """Remove a file, or everything under a directory (one watcher event for a
        deleted folder). When `rel_path` is a directory on disk now (a file replaced by
        a folder), files under it that exist stay: they were indexed after the change."""
        root = self.root

        def still_there(path: str) -> bool:
            return (root / path).is_file()

        with self._writing(), self.lock:
            keep = still_there if (root / rel_path).is_dir() else None
            files, removed = self.store.remove_path(rel_path, tree=True, keep=keep)
            self._forget_paths([rel_path, *files])
            self._forget(removed)
            if files or removed:
                self._note_write()

    def _remove_exact(self, rel_path: str) -> None:
        with self._writing(), self.lock:
            files, removed = self.store.remove_path(rel_path, tree=False)
            self._forget_paths([rel_path, *files])
            self._forget(removed)
            if files or removed:
                self._note_write()

    def _forget_paths(self, paths: Iterable[str]) -> None:
        for path in paths:
            self.buffers.discard(path)
            self._buffer_text.pop(path, None)
            self._buffer_tokens.pop(path, None)

    def forget_buffer(self, rel_path: str) -> None:
        """Stop treating `rel_path` as an editor buffer (its chunks stay until a sync)."""
        with self.lock:
            self.buffers.discard(rel_path)
            self._buffer_text.pop(rel_path, None)

    def _chunk_text(self, rel_path: str, text: str, digest: str | None = None) -> Prepared:
        return chunk_text(rel_path, text, self.preparer.config, digest)

    def _index_text(self, size: int, mtime_ns: int, prepared: Prepared) -> str | None:
        """Store a file's chunks (`prepared`: read and chunked) and make them searchable."""
        rel_path, result = prepared.rel_path, prepared.chunked
        assert result is not None, "an unchanged file has nothing to index"
        if not valid_name(rel_path):
            return f"not indexed ({SkipReason.BAD_NAME})"
        record = FileRecord(rel_path, size, mtime_ns, prepared.digest, result.language,
                            result.warning)
        with self._writing(), self.lock:
            removed, new_ids = self.store.replace_file(record, result.chunks, prepared.hashes)
            if self._held is not None:  # inside `_batched_writes`: after the commit
                self._held.append(_Held(removed, new_ids, prepared))
            else:
                self._apply([_Held(removed, new_ids, prepared)])
        return str(result.warning) if result.warning else None

    def _apply(self, stored: Sequence[_Held]) -> None:
        """Make files just committed to the store searchable (holding the write lock).
        Searches in other threads see a file's old chunks or its new ones, never neither
        (they take these locks, not `self.lock`); the commit is done first so that they
        never wait for the disk."""
        with self.lock, self.lexical.atomically(), (
                self.vectors.atomically() if self.vectors is not None else nullcontext()):
            added = []
            for held in stored:
                self._forget(held.removed)
                prepared = held.prepared
                assert prepared.chunked is not None
                for chunk_id, chunk, toks, content_hash in zip(
                        held.ids, prepared.chunked.chunks, prepared.tokens, prepared.hashes,
                        strict=True):
                    if chunk_id in self.refs:
                        continue  # stored exactly as before: kept with its id
                    self.lexical.upsert(chunk_id, toks)
                    self.refs[chunk_id] = ChunkRef(
                        chunk.path, chunk.language, int(chunk.kind), content_hash,
                        content=chunk.content, start_line=chunk.start_line, name=chunk.name)
                    added.append(chunk_id)
            self.vector_upkeep.add_cached(added)
        self._note_write()

    def _forget(self, chunk_ids: Sequence[int]) -> None:
        for chunk_id in chunk_ids:
            self.lexical.remove(chunk_id)
            self.refs.pop(chunk_id, None)
        self.vector_upkeep.forget(chunk_ids)

    def reset(self) -> None:
        """Drop chunks and derived indexes (a full reindex); the embedding cache stays."""
        with self._writing(), self.lock:
            self.store.clear_chunks()
            self.store.set_meta(REBUILD_OWED, FULL_REINDEX_OWED)
            self._forget(list(self.refs))
            self.refs.clear()
            shutil.rmtree(self.dir / LEXICAL_DIR, ignore_errors=True)
            self.lexical_upkeep.install(LexicalIndex(), None)
            self._note_write()

    def rebuild_owed(self) -> str | None:
        """Why the database does not hold a complete index of the workspace (new,
        recovered from damage or another workspace's, a full reindex not finished), or
        None. Every process sees it until a sync completes: answering from such an index
        without a rebuild must say so."""
        return self.store.get_meta(REBUILD_OWED)

    def remember_model(self, config_key: str, model_id: str) -> None:
        """Record that the embedder configured as `config_key` has the identity
        `model_id`, so a process that does not load it (`semcode status`) can count its
        vectors. Skipped when another process holds the write lock or the index is
        read-only: it is only a hint for status."""
        key = f"{MODEL_KEY_PREFIX}{config_key}"
        if self.store.get_meta(key) == model_id:
            return
        with self.write_lock.try_hold() as got:
            if not got:
                return
            try:
                self.store.set_meta(key, model_id)
            except StoreCorrupt:
                raise
            except StoreError:
                log.debug("could not record the embedder identity", exc_info=True)

    def embedded_count(self, config_key: str) -> int:
        """How many chunks have a cached vector of the embedder configured as
        `config_key` (0 when it never embedded here), counted in the store."""
        model_id = self.store.get_meta(f"{MODEL_KEY_PREFIX}{config_key}")
        return self.store.embeddings.embedded_count(model_id) if model_id is not None else 0

    def chunks(self, ids: Iterable[int]) -> dict[int, Chunk]:
        """The stored chunks of these ids (ids no longer present are left out)."""
        return self.store.chunks(ids)

    # ================================================================ vectors
    def attach_model(self, model_id: str, dims: int) -> int:
        """Make `vectors` hold `model_id`'s vectors (`VectorUpkeep.attach`). Returns how
        many chunks still lack a vector."""
        return self.vector_upkeep.attach(model_id, dims)

    def _share_cached(self, model_id: str) -> None:
        """Once per model: copy this index's own cached vectors into the shared cache (an
        index from before it existed), so that other checkouts find them. On the embed
        path only (`pending_embeddings`), never a search's. Recorded in the store when
        the write lock is free now (else the next process copies again: puts of rows
        already there only touch them)."""
        cache = self.store.embeddings
        if not cache.share_owed(model_id):
            return
        copied = cache.share_own(model_id)
        with self.write_lock.try_hold() as got:
            if got:
                try:
                    cache.mark_shared(model_id)
                except StoreCorrupt:
                    raise
                except StoreError:  # a read-only index: only a hint not to copy again
                    log.debug("could not record the shared copy", exc_info=True)
        if copied:
            log.info("copied %d cached vectors of %s into the shared embedding cache",
                     copied, model_id)

    def detach_model(self) -> None:
        """Drop the live vector index (no embedder configured); the cache stays."""
        self.vector_upkeep.detach()

    def pending_embeddings(self, priority: Sequence[str] = ()) -> list[int]:
        """Chunks of the attached model still without a vector, priority paths first (the
        embed path's first step: an index from before the shared cache shares its
        vectors here, once)."""
        if self.vector_upkeep.model_id is not None:
            self._share_cached(self.vector_upkeep.model_id)
        return self.vector_upkeep.pending(priority)

    def pending_count(self) -> int:
        """How many chunks lack a vector of the attached model (all when none is)."""
        return self.vector_upkeep.pending_count()

    def add_vectors(self, model_id: str, chunk_ids: Sequence[int], hashes: Sequence[str],
                    vectors: np.ndarray) -> None:
        """Store freshly computed vectors (cache first, then the live index for the
        chunks that still exist with the same content)."""
        with self._writing():
            self.store.embeddings.put_vectors(model_id, zip(hashes, vectors, strict=True))
            with self.lock:
                self.catch_up.note_vectors_written()
                self.vector_upkeep.take(model_id, chunk_ids, hashes, vectors)

    # ================================================================ lexical, saving
    def rebuild_lexical_if_needed(self) -> None:
        """Rebuild (and save) the BM25 matrix in a worker thread when enough chunks
        changed since the last build."""
        self.lexical_upkeep.rebuild_if_needed()

    def rebuild_lexical(self) -> None:
        """Rebuild the BM25 matrix from every chunk now and save it."""
        self.lexical_upkeep.rebuild()

    def flush(self) -> None:
        """Save the derived indexes, each with a manifest of the database state it holds
        (taken under the write lock, after catching up, so the stamp is true). Nothing
        to save: returns at once. When only caches this process rebuilt (a reader) are
        unsaved and another process holds the lock, it does not wait: that writer saves."""
        if not self.saving.needed():
            return
        if self.catch_up.own_writes:
            self._save()
            return
        with self.write_lock.try_hold() as got:
            if got:
                self._save()

    def _save(self) -> None:
        try:
            with self._writing(), self.lock:
                self._catch_up(writing=True)  # (entered through try_hold: not done yet)
                self.saving.write()
        except OSError as exc:
            raise StoreError(f"cannot save the index at {self.dir}: {exc.strerror or exc} "
                             "(the last saved index is kept)") from None

    def status(self) -> IndexStatus:
        """Counts for `semcode status`, the LSP status and MCP `status`."""
        with self.lock:
            embedded = len(self.vectors) if self.vectors is not None else 0
            chunks = len(self.refs)
            attached = self.vectors is not None
        files = self.store.count("files")
        return IndexStatus(
            root=self.root, index_dir=self.dir, files=files, chunks=chunks,
            embedded=embedded, pending_embeddings=chunks - embedded if attached else 0,
            skipped_files=len(self.skipped),
            index_bytes=_dir_size(self.dir))  # walks the disk: never under the lock

    def close(self) -> None:
        """Close the database connections (save first with `flush()`)."""
        self.store.close()


def _trusted_mtime(mtime_ns: int) -> int:
    """`mtime_ns`, or RECHECK_MTIME when it is too recent to prove a later write."""
    return RECHECK_MTIME if time.time_ns() - mtime_ns < RACY_NS else mtime_ns
