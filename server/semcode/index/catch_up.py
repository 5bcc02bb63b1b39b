"""The cross-process side of the `Indexer` (a mixin): noticing that another process
committed writes (the store's id and generations moved) and catching up exactly, by
delta or by reload; reopening a database another process moved aside (and moving
aside one of another workspace copied over it); holding the
write lock for a write (`_writing`); refusing to trust saved structures newer than
the database (a restored backup).

It must not decide what to index (the `Indexer` does) nor save anything.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import uuid
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from semcode.index.layout import saved_generations
from semcode.index.lexical import LexicalIndex
from semcode.index.store import ChunkRef, Snapshot, Store, WriteLock
from semcode.index.vectors import VectorIndex

log = logging.getLogger("semcode.index.indexer")


class CatchUp:
    """`Indexer` methods that keep this process's memory equal to the committed state of
    the shared database (see the module docstring)."""

    if TYPE_CHECKING:
        dir: Path
        store: Store
        write_lock: WriteLock
        lock: threading.RLock
        refs: dict[int, ChunkRef]
        lexical: LexicalIndex
        vectors: VectorIndex | None
        _buffer_text: dict[str, str]
        _reapply_owed: bool
        _store_id: str
        _generation: int
        _embed_generation: int
        _lexical_dirty: bool
        _own_writes: bool

        def _reload(self, snap: Snapshot) -> None: ...
        def _reapply_buffers(self) -> None: ...
        def _forget(self, chunk_ids: Sequence[int]) -> None: ...
        def _add_cached_vectors(self, chunk_ids: Iterable[int]) -> None: ...
        def rebuild_lexical_if_needed(self) -> None: ...
        def _adopt_saved_lexical(self) -> bool: ...

    def _check_rollback(self) -> None:
        """A database older than the files derived from it (restored from a backup, or
        swapped by hand): chunk ids after its last one may be handed out again, so the
        saved structures must not be trusted by id. Giving the database a new identity
        makes every one of them rebuild from it."""
        store_id, generation, _ = self.store.stamp()
        if max(saved_generations(self.dir, store_id), default=-1) <= generation:
            return
        with self.write_lock.hold():
            store_id, generation, _ = self.store.stamp()
            if max(saved_generations(self.dir, store_id), default=-1) <= generation:
                return
            self.store.set_meta("store_id", uuid.uuid4().hex)
        log.warning("the index database is older than the files derived from it "
                    "(restored from a backup?): rebuilding them")

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
        # The stamp is read under `self.lock`: this process's own writes commit and
        # update memory under it too, so only another process's writes can differ.
        if self.store.replaced():  # another process moved the database aside
            # Reopened only under the write lock (nobody of ours is mid-write) and not
            # under `self.lock` (lock order); a reader that cannot get it now goes on
            # with the old file until a later call.
            with self.write_lock.try_hold() as got:
                if got and self.store.replaced():
                    log.info("the index database was replaced in another process: "
                             "reopening it")
                    self.store.reopen()
        if (foreign := self.store.foreign()) is not None:  # copied over it, in place
            # Never answered from: moved aside now, or (the lock busy) an error until a
            # later call can.
            with self.write_lock.try_hold() as got:
                if not got:
                    raise foreign
                if (foreign := self.store.foreign()) is not None:
                    self.store.replace_damaged(foreign)
        with self.lock:
            moved = False
            store_id, generation, embed_generation = self.store.stamp()
            if (store_id, generation) != (self._store_id, self._generation):
                if store_id != self._store_id:  # a new database (moved aside, --full...)
                    log.info("the index database was replaced in another process: "
                             "reloading it")
                    self._reload(self.store.snapshot())
                else:
                    self._apply_delta()
                if writing:
                    self._reapply_buffers()
                moved = True
            elif embed_generation != self._embed_generation:
                self._embed_generation = embed_generation
                if self.vectors is not None:
                    self._add_cached_vectors([i for i in self.refs if i not in self.vectors])
                moved = True
            # Score with the build every process has (lexical_upkeep.py): one stat when
            # nobody saved a new one.
            return self._adopt_saved_lexical() or moved

    def _apply_delta(self) -> None:
        """Another process changed chunks: forget the removed ones, add the new ones
        (holding `self.lock`). Exact, because chunk ids are never reused; costs one read
        of the id column plus the changed rows, not a rebuild."""
        store_id, generation, ids, added = self.store.delta(set(self.refs))
        if store_id != self._store_id:
            self._reload(self.store.snapshot())
            return
        removed = [i for i in self.refs if i not in ids]
        with self.lexical.atomically():  # a search sees a file's old or new chunks
            self._forget(removed)
            for chunk_id, tokens in added.tokens:
                self.lexical.upsert(chunk_id, tokens.split())
        self.refs.update(added.refs)
        self._generation = generation
        self._embed_generation = self.store.stamp()[2]
        self._lexical_dirty = True
        self._add_cached_vectors(added.refs)
        log.info("caught up with another process: %d chunks removed, %d added",
                 len(removed), len(added.refs))
        self.rebuild_lexical_if_needed()


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
        self._store_id, self._generation, self._embed_generation = self.store.stamp()
        self._lexical_dirty = True
        self._own_writes = True
