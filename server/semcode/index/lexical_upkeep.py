"""The lexical side of the `Indexer`: one BM25 build shared by every process on an
index. `LexicalUpkeep` owns the live `LexicalIndex`, whether it changed since its last
save, the one-rebuild-at-a-time slot and the manifest of the saved build last seen.

BM25 scores depend on collection statistics (N, document frequencies, average length)
taken when the matrix was built; chunks changed since are scored with that build's
statistics (lexical.py). Two processes on one workspace (the editor's server and an
agent's MCP server) that each rebuilt at their own moments would score the same chunks
with different statistics and rank them differently. So the rule here is:

- **a build becomes visible only together with its save**: it is computed outside every
  lock, then swapped in and written to `lexical/` in one step under the index's write
  lock (`_rebuild_and_save`);
- **a process adopts a newer saved build** before it answers (`adopt_saved`,
  from `Indexer.refresh()`; one `stat` when nothing was saved): it loads it and reconciles it
  with the chunks it holds by id (ids are never reused), the differences becoming
  pending chunks scored with that build's statistics;
- **opening** an index loads the saved build the same way, whatever generation it was
  saved at, and rebuilds from the database only when there is none that fits (another
  database, damaged files), saving that build at once when it can.

Then any two processes that have caught up with the same database state hold the same
build and the same pending chunks, and return the same ranking. It must not chunk or
write chunks (the `Indexer` does).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path

from semcode.index.catch_up import MemoryStamp
from semcode.index.chunk_table import chunk_ids
from semcode.index.layout import LEXICAL_DIR
from semcode.index.lexical import LexicalIndex, LexicalIndexError
from semcode.index.lexical_files import manifest_signature, saved_build
from semcode.index.records import Snapshot

log = logging.getLogger(__name__)

# Rebuild the BM25 matrix once this many chunks changed since the last build (until then
# changed chunks are scored by brute force and stale ones masked: see lexical.py), or
# this share of the index, whichever is more: a rebuild costs in proportion to the index
# (the Linux kernel's 1M chunks: ~40 s of CPU and GBs of memory), the brute force in
# proportion to the changed chunks (as search engines merge a small segment into a large
# one only once it has grown).
LEXICAL_REBUILD_PENDING = 256
LEXICAL_REBUILD_SHARE = 0.02
# Up to this many chunks a build is cheap (well under a second): a sync ends with an exact
# build (scores as a fresh build's) and a save writes the changed chunks with it. Above,
# a sync rebuilds only when a rebuild is due, and the saved build is rewritten only by a
# rebuild: the few chunks changed since are re-tokenised from the database by the next
# process that opens it, instead of rewriting a build of GBs for them.
EXACT_BUILD_MAX_CHUNKS = 50_000
# ...unless this many chunks changed since it was saved: then re-tokenising them at every
# open would cost more than rewriting the build once (a branch switch).
SAVE_PENDING_CHUNKS = 2048

OrderKey = Callable[[int], tuple[str, int, str, int]]
# The BM25 tokens of these chunks, tokenised from their rows (ids no longer stored are
# left out).
TokensOf = Callable[[list[int]], dict[int, list[str]]]
# A snapshot brought up to the committed state now.
Reread = Callable[[Snapshot], Snapshot]
# The committed state now, every chunk's tokens handed to the callback on the way.
ReadAll = Callable[[Callable[[int, list[str]], None]], Snapshot]


class LexicalUpkeep:
    """Loads, rebuilds, saves and adopts the BM25 build (see the module docstring)."""

    def __init__(self, directory: Path, lock: threading.RLock, stamp: MemoryStamp,
                 order_key: OrderKey,
                 writing: Callable[[], AbstractContextManager[None]],
                 verify: bool = False, after_save: Callable[[], None] | None = None) -> None:
        """Keep the build saved under `directory`/lexical. `lock` is the indexer's memory
        lock, `stamp` the database state memory holds (read to stamp a save),
        `order_key` the result tie order, `writing` the indexer's hold of the write lock
        (catching up on entry); `verify` checks a saved build in full (checksums, every
        value) when it is opened (`semcode index --full`); `after_save` runs after each
        save, still holding the write lock (the indexer writes its chunk table beside
        the build)."""
        self._dir = directory / LEXICAL_DIR
        self._verify = verify
        self._lock = lock
        self._stamp = stamp
        self._order_key = order_key
        self._writing = writing
        self._after_save = after_save
        self.index = LexicalIndex()
        self.index.order_key = order_key
        self.dirty = False  # rebuilt or changed since the last save
        self._built_unsaved = False  # a build made here (not loaded) not saved yet
        self.rebuilding = False  # a build is running (one at a time)
        # The manifest of the saved build this process last looked at (None: none yet).
        self._seen: tuple[int, int, int] | None = None

    # ------------------------------------------------------------------ opening
    def load(self, snap: Snapshot, tokens_of: TokensOf, reread: Reread,
             read_all: ReadAll) -> tuple[bool, Snapshot]:
        """Make `index` hold exactly the chunks of `snap` (holding the memory lock): the
        saved build reconciled with the snapshot when there is one of this database
        (the chunks it lacks tokenised from their rows, `tokens_of`; when some of them
        were removed since the snapshot was read, the state is read again, `reread`),
        else a build from every chunk of the database (`read_all`). Returns whether it
        was built here (not saved yet: the caller saves it when it can) and the
        snapshot it holds."""
        loaded = self._load_saved(snap.store_id)
        if loaded is not None:
            for _ in range(3):  # read again while the chunks it lacks vanish under it
                ids = chunk_ids(snap.refs)  # (the chunk table's column: no int per chunk)
                missing = loaded.missing(ids) if len(ids) else []
                tokens = tokens_of(missing) if missing else {}
                if len(tokens) < len(missing):  # removed since the snapshot was read
                    snap = reread(snap)
                    continue
                changed = loaded.reconcile(ids, tokens.__getitem__)
                self.install(loaded, manifest_signature(self._dir))
                self.dirty = changed > 0
                return False, snap
        lexical = LexicalIndex()
        snap = read_all(lexical.upsert)
        if len(snap.refs):
            log.info("built the lexical index from the index database (%d chunks)",
                     len(snap.refs))
        lexical.rebuild()
        self.install(lexical, manifest_signature(self._dir))
        self.dirty = self._built_unsaved = True
        return True, snap

    def _load_saved(self, store_id: str) -> LexicalIndex | None:
        directory = self._dir
        try:
            loaded = LexicalIndex.load(directory, verify=self._verify)
        except LexicalIndexError as exc:
            if (directory / "meta.json").exists() or directory.with_name(
                    directory.name + ".old").exists():  # damaged: say so, once
                log.warning("rebuilding the lexical index (%s)", exc)
            return None
        if loaded.stamp.get("store_id") != store_id:
            log.info("rebuilding the lexical index (it belongs to another index database)")
            return None
        return loaded

    def install(self, lexical: LexicalIndex, seen: tuple[int, int, int] | None) -> None:
        """Make `lexical` the live build; `seen` is the saved manifest it corresponds to."""
        lexical.order_key = self._order_key
        self.index = lexical
        self._seen = seen

    # ------------------------------------------------------------------ adopting
    def adopt_saved(self, held: Callable[[], Iterable[int]]) -> bool:
        """Another process saved a build this one does not hold: load it and reconcile
        it with `held()`, the chunk ids held (holding the memory lock, after catching
        up with the database; asked only then). Returns whether it was adopted."""
        directory = self._dir
        signature = manifest_signature(directory)
        if signature is None or signature == self._seen:
            return False
        saved = saved_build(directory)
        if saved is None:
            return False  # being replaced right now: look again next time
        if (saved.build_id == self.index.build_id or saved.store_id != self._stamp.store_id
                or not saved.build_id):
            self._seen = saved.signature
            return False
        if saved.generation > self._stamp.generation:
            return False  # saved after a write not caught up with yet: after it
        try:
            loaded = LexicalIndex.load(directory)
        except LexicalIndexError as exc:
            log.info("not adopting the saved lexical index (%s)", exc)
            self._seen = saved.signature
            return False
        if loaded.build_id != saved.build_id:
            return False  # replaced between the two reads: look again next time
        loaded.reconcile(held(), self.index.tokens)
        self.install(loaded, saved.signature)
        log.info("adopted the lexical index another process built (%d chunks)",
                 len(loaded))
        return True

    # ------------------------------------------------------------------ rebuilding
    @property
    def small(self) -> bool:
        """Whether the index is small enough to rebuild and save whenever it changed."""
        return len(self.index) <= EXACT_BUILD_MAX_CHUNKS

    def rebuild_due(self) -> bool:
        """Whether enough chunks changed since the last build to rebuild it now."""
        return self.index.pending >= max(LEXICAL_REBUILD_PENDING,
                                         int(LEXICAL_REBUILD_SHARE * len(self.index)))

    @property
    def save_due(self) -> bool:
        """Whether a save should write the build: it changed since its last save, and the
        index is small, or the build was made here, or many chunks changed (a large
        build is not rewritten for a few changed chunks)."""
        return self.dirty and (self.small or self._built_unsaved
                               or self.index.pending >= SAVE_PENDING_CHUNKS)

    def settle(self) -> None:
        """The end of a sync: an exact build now where that is cheap or due (see
        `EXACT_BUILD_MAX_CHUNKS`), else the changed chunks stay pending."""
        if self.small or self.rebuild_due():
            self.rebuild()

    def rebuild_if_needed(self) -> None:
        """Rebuild (and save) the BM25 matrix in a worker thread when enough chunks
        changed since the last build (`rebuild` does it now, whatever changed)."""
        if not self.rebuild_due():
            return
        if not self._claim_rebuild():
            return
        lexical = self.index

        def work() -> None:
            try:
                self._rebuild_and_save(lexical)
            except Exception as exc:  # e.g. a full disk: the next rebuild tries again
                log.warning("rebuilding the lexical index failed: %s", exc)
            finally:
                self.rebuilding = False

        threading.Thread(target=work, name="semcode-bm25-rebuild", daemon=True).start()

    def rebuild(self) -> None:
        """Rebuild the BM25 matrix from every chunk now and save it (then scores equal
        a fresh bm25s build over the current chunks). When a background rebuild is
        running it is left to finish instead: it holds the build slot and waits for the
        write lock, which this caller may hold."""
        if not self.index.pending or not self._claim_rebuild():
            return
        try:
            self._rebuild_and_save(self.index)
        finally:
            self.rebuilding = False

    def _claim_rebuild(self) -> bool:
        with self._lock:
            if self.rebuilding:
                return False
            self.rebuilding = True
            return True

    def _rebuild_and_save(self, lexical: LexicalIndex) -> None:
        """Build outside every lock; then, under the write lock (waiting for it), swap
        the build in and save it in one step, unless another process's build was
        adopted meanwhile (then this one is dropped). The save itself runs outside
        the memory lock, so searches catching up meanwhile do not wait for the disk:
        holding the write lock, nothing can change the state it is stamped with."""
        with lexical.building() as install, self._writing():
            with self._lock:
                if self.index is not lexical:
                    return
                install()
            self.save()

    def save(self) -> None:
        """Write `index` with the database state it holds (holding the write lock,
        caught up) and remember that manifest as seen."""
        stamp = {"store_id": self._stamp.store_id, "generation": self._stamp.generation}
        self.index.save(self._dir, stamp)
        self.dirty = self._built_unsaved = False
        self._seen = manifest_signature(self._dir)
        if self._after_save is not None:
            self._after_save()
