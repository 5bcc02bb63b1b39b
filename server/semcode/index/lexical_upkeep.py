"""The lexical side of the `Indexer` (a mixin): one BM25 build shared by every process
on an index.

BM25 scores depend on collection statistics (N, document frequencies, average length)
taken when the matrix was built; chunks changed since are scored with that build's
statistics (lexical.py). Two processes on one workspace (the editor's server and an
agent's MCP server) that each rebuilt at their own moments would score the same chunks
with different statistics and rank them differently. So the rule here is:

- **a build becomes visible only together with its save**: it is computed outside every
  lock, then swapped in and written to `lexical/` in one step under the index's write
  lock (`_rebuild_and_save`);
- **a process adopts a newer saved build** before it answers (`_adopt_saved_lexical`,
  from `refresh()`; one `stat` when nothing was saved): it loads it and reconciles it
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
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from semcode.index.layout import LEXICAL_DIR
from semcode.index.lexical import LexicalIndex, LexicalIndexError
from semcode.index.lexical_files import manifest_signature, saved_build
from semcode.index.records import Snapshot
from semcode.index.store import ChunkRef, WriteLock

log = logging.getLogger("semcode.index.indexer")

# Rebuild the BM25 matrix once this many chunks changed since the last build (until then
# changed chunks are scored by brute force and stale ones masked: see lexical.py).
LEXICAL_REBUILD_PENDING = 256


class LexicalUpkeep:
    """`Indexer` methods that load, rebuild, save and adopt the BM25 build (see the
    module docstring)."""

    if TYPE_CHECKING:
        dir: Path
        lock: threading.RLock
        write_lock: WriteLock
        refs: dict[int, ChunkRef]
        lexical: LexicalIndex
        _store_id: str
        _generation: int
        _lexical_dirty: bool
        _rebuilding: bool
        # The manifest of the saved build this process last looked at (None: none yet).
        _lexical_seen: tuple[int, int, int] | None

        def order_key(self, chunk_id: int) -> tuple[str, int, str, int]: ...
        def _writing(self) -> AbstractContextManager[None]: ...

    @property
    def _lexical_dir(self) -> Path:
        return self.dir / LEXICAL_DIR

    # ------------------------------------------------------------------ opening
    def _load_lexical(self, snap: Snapshot) -> bool:
        """Make `lexical` hold exactly `snap`'s chunks (holding `self.lock`): the saved
        build reconciled with the snapshot when there is one of this database, else a
        build from the snapshot's tokens. Returns whether it was built here (not saved
        yet: the caller saves it when it can)."""
        directory = self._lexical_dir
        loaded: LexicalIndex | None
        try:
            loaded = LexicalIndex.load(directory)
            if loaded.stamp.get("store_id") != snap.store_id:
                log.info("rebuilding the lexical index (it belongs to another index "
                         "database)")
                loaded = None
        except LexicalIndexError as exc:
            if (directory / "meta.json").exists() or directory.with_name(
                    directory.name + ".old").exists():  # damaged: say so, once
                log.warning("rebuilding the lexical index (%s)", exc)
            loaded = None
        if loaded is not None:
            tokens = dict(snap.tokens)  # as stored: split only for the chunks it lacks
            changed = loaded.reconcile(snap.refs.keys(), lambda i: tokens[i].split())
            self._install_lexical(loaded, manifest_signature(directory))
            self._lexical_dirty = changed > 0
            return False
        lexical = LexicalIndex()
        for chunk_id, tokens_ in snap.tokens:
            lexical.upsert(chunk_id, tokens_.split())
        lexical.rebuild()
        self._install_lexical(lexical, manifest_signature(directory))
        self._lexical_dirty = True
        return True

    def _install_lexical(self, lexical: LexicalIndex,
                         seen: tuple[int, int, int] | None) -> None:
        lexical.order_key = self.order_key
        self.lexical = lexical
        self._lexical_seen = seen

    # ------------------------------------------------------------------ adopting
    def _adopt_saved_lexical(self) -> bool:
        """Another process saved a build this one does not hold: load it and reconcile
        it with the chunks held (holding `self.lock`, after catching up with the
        database). Returns whether it was adopted."""
        directory = self._lexical_dir
        signature = manifest_signature(directory)
        if signature is None or signature == self._lexical_seen:
            return False
        saved = saved_build(directory)
        if saved is None:
            return False  # being replaced right now: look again next time
        if (saved.build_id == self.lexical.build_id or saved.store_id != self._store_id
                or not saved.build_id):
            self._lexical_seen = saved.signature
            return False
        if saved.generation > self._generation:
            return False  # saved after a write not caught up with yet: after it
        try:
            loaded = LexicalIndex.load(directory)
        except LexicalIndexError as exc:
            log.info("not adopting the saved lexical index (%s)", exc)
            self._lexical_seen = saved.signature
            return False
        if loaded.build_id != saved.build_id:
            return False  # replaced between the two reads: look again next time
        current = self.lexical
        loaded.reconcile(self.refs.keys(), current.tokens)
        self._install_lexical(loaded, saved.signature)
        log.info("adopted the lexical index another process built (%d chunks)",
                 len(loaded))
        return True

    # ------------------------------------------------------------------ rebuilding
    def rebuild_lexical_if_needed(self) -> None:
        """Rebuild (and save) the BM25 matrix in a worker thread when enough chunks
        changed since the last build (`rebuild_lexical` does it now, whatever changed)."""
        if self.lexical.pending < LEXICAL_REBUILD_PENDING:
            return
        if not self._claim_rebuild():
            return
        lexical = self.lexical

        def work() -> None:
            try:
                self._rebuild_and_save(lexical)
            except Exception as exc:  # e.g. a full disk: the next rebuild tries again
                log.warning("rebuilding the lexical index failed: %s", exc)
            finally:
                self._rebuilding = False

        threading.Thread(target=work, name="semcode-bm25-rebuild", daemon=True).start()

    def rebuild_lexical(self) -> None:
        """Rebuild the BM25 matrix from every chunk now and save it (then scores equal
        a fresh bm25s build over the current chunks). When a background rebuild is
        running it is left to finish instead: it holds the build slot and waits for the
        write lock, which this caller may hold."""
        if not self.lexical.pending or not self._claim_rebuild():
            return
        try:
            self._rebuild_and_save(self.lexical)
        finally:
            self._rebuilding = False

    def _claim_rebuild(self) -> bool:
        with self.lock:
            if self._rebuilding:
                return False
            self._rebuilding = True
            return True

    def _rebuild_and_save(self, lexical: LexicalIndex) -> None:
        """Build outside every lock; then, under the write lock (waiting for it), swap
        the build in and save it in one step, unless another process's build was
        adopted meanwhile (then this one is dropped). The save itself runs outside
        `self.lock`, so searches catching up meanwhile do not wait for the disk: holding
        the write lock, nothing can change the state it is stamped with."""
        with lexical.building() as install, self._writing():
            with self.lock:
                if self.lexical is not lexical:
                    return
                install()
            self._save_lexical()

    def _save_lexical(self) -> None:
        """Write `lexical` with the database state it holds (holding the write lock,
        caught up) and remember that manifest as seen."""
        stamp = {"store_id": self._store_id, "generation": self._generation}
        self.lexical.save(self._lexical_dir, stamp)
        self._lexical_dirty = False
        self._lexical_seen = manifest_signature(self._lexical_dir)
