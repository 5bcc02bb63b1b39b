"""Which committed database state this process's memory reflects, and noticing when
another process moved it: the store's (id, generation, embedding generation) compared
with the `MemoryStamp` the `Indexer` last caught up with; reopening a database another
process moved aside (and moving aside one of another workspace copied over it);
refusing to trust saved structures newer than the database (a restored backup).

`CatchUp` owns the stamp (the other parts read it, to stamp what they save) and the
"this process wrote since its last save" flag. It only says what moved (`Drift`); the
`Indexer` decides how to catch up (reload, apply a delta) because that touches every
derived structure. It must not decide what to index nor save anything.
"""

from __future__ import annotations

import enum
import logging
import uuid
from dataclasses import dataclass
from pathlib import Path

from semcode.index.layout import saved_generations
from semcode.index.store import Store, WriteLock

log = logging.getLogger(__name__)


@dataclass
class MemoryStamp:
    """The database state the in-memory structures reflect (nothing yet: -1)."""

    store_id: str = ""
    generation: int = -1
    embed_generation: int = -1


class Drift(enum.Enum):
    """What another process changed since the stamp."""

    NONE = "none"
    DATABASE = "database"  # another database (moved aside, recovered, `--full`)
    CHUNKS = "chunks"  # same database, other chunks: a delta applies
    EMBEDDINGS = "embeddings"  # only cached vectors were added (stamp already updated)


class CatchUp:
    """The stamp of this process's memory and the checks against the shared database
    (see the module docstring)."""

    def __init__(self, directory: Path, store: Store, write_lock: WriteLock) -> None:
        """Watch `store` (in index `directory`), taking `write_lock` to repair it."""
        self._dir = directory
        self._store = store
        self._write_lock = write_lock
        self.stamp = MemoryStamp()
        self.own_writes = False  # this process wrote since its last save

    def check_rollback(self) -> None:
        """A database older than the files derived from it (restored from a backup, or
        swapped by hand): chunk ids after its last one may be handed out again, so the
        saved structures must not be trusted by id. Giving the database a new identity
        makes every one of them rebuild from it."""
        store_id, generation, _ = self._store.stamp()
        if max(saved_generations(self._dir, store_id), default=-1) <= generation:
            return
        with self._write_lock.hold():
            store_id, generation, _ = self._store.stamp()
            if max(saved_generations(self._dir, store_id), default=-1) <= generation:
                return
            self._store.set_meta("store_id", uuid.uuid4().hex)
        log.warning("the index database is older than the files derived from it "
                    "(restored from a backup?): rebuilding them")

    def reopen_if_moved(self) -> None:
        """Another process moved the database aside: reopen it (only under the write
        lock, so nobody of ours is mid-write; never under the indexer's memory lock, for
        lock order). A foreign database copied over it in place is moved aside now, or
        (the lock busy) raised until a later call can: it is never answered from."""
        if self._store.replaced():
            # A reader that cannot get the lock now goes on with the old file.
            with self._write_lock.try_hold() as got:
                if got and self._store.replaced():
                    log.info("the index database was replaced in another process: "
                             "reopening it")
                    self._store.reopen()
        if (foreign := self._store.foreign()) is not None:
            with self._write_lock.try_hold() as got:
                if not got:
                    raise foreign
                if (foreign := self._store.foreign()) is not None:
                    self._store.replace_damaged(foreign)

    def drift(self) -> Drift:
        """What moved since the stamp (call it holding the indexer's memory lock: this
        process's own writes commit and update the stamp under it, so only another
        process's writes can differ). A move of the embedding generation alone is
        recorded at once; the others are recorded by whoever catches up."""
        store_id, generation, embed_generation = self._store.stamp()
        if store_id != self.stamp.store_id:
            return Drift.DATABASE
        if generation != self.stamp.generation:
            return Drift.CHUNKS
        if embed_generation != self.stamp.embed_generation:
            self.stamp.embed_generation = embed_generation
            return Drift.EMBEDDINGS
        return Drift.NONE

    def caught_up(self, store_id: str, generation: int) -> None:
        """Memory now holds exactly (`store_id`, `generation`) of the database."""
        self.stamp.store_id, self.stamp.generation = store_id, generation
        self.stamp.embed_generation = self._store.stamp()[2]

    def note_write(self) -> None:
        """After a write of ours (holding the write lock): memory is the store's state."""
        (self.stamp.store_id, self.stamp.generation,
         self.stamp.embed_generation) = self._store.stamp()
        self.own_writes = True

    def note_vectors_written(self) -> None:
        """After caching vectors of ours: only the embedding generation moved."""
        self.stamp.embed_generation = self._store.stamp()[2]
        self.own_writes = True
