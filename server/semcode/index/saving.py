"""Saving the `Indexer`'s derived indexes (a mixin): the lexical directory and the
usearch file, each with a manifest of the database state it holds (store id,
generation; the vectors' model, size and checksum), written atomically under the
write lock after catching up, so a saved stamp is always true.

It must not change chunks or vectors, only write what memory holds; loading is
`Indexer._reload` / `VectorUpkeep._load_vectors`.
"""

from __future__ import annotations

import threading
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING

from semcode.index.layout import (
    MANIFEST_FORMAT,
    VECTORS_FILE,
    VECTORS_MANIFEST,
    remove_stale_temp,
    write_json,
)
from semcode.index.lexical import LexicalIndex
from semcode.index.store import StoreError, WriteLock
from semcode.index.vectors import VectorIndex


class Saving:
    """`Indexer` methods that save its derived indexes (see the module docstring)."""

    if TYPE_CHECKING:
        dir: Path
        write_lock: WriteLock
        lock: threading.RLock
        lexical: LexicalIndex
        vectors: VectorIndex | None
        model_id: str | None
        _store_id: str
        _generation: int
        _lexical_dirty: bool
        _vectors_dirty: bool
        _own_writes: bool

        def _writing(self) -> AbstractContextManager[None]: ...
        def _catch_up(self, writing: bool) -> bool: ...
        def _save_lexical(self) -> None: ...

    def _needs_save(self) -> bool:
        return self._lexical_dirty or (self.vectors is not None and self._vectors_dirty)

    def flush(self) -> None:
        """Save the derived indexes, each with a manifest of the database state it holds
        (taken under the write lock, after catching up, so the stamp is true). Nothing
        to save: returns at once. When only caches this process rebuilt (a reader) are
        unsaved and another process holds the lock, it does not wait: that writer saves."""
        if not self._needs_save():
            return
        if self._own_writes:
            self._save()
            return
        with self.write_lock.try_hold() as got:
            if got:
                self._save()

    def _save(self) -> None:
        try:
            with self._writing(), self.lock:
                self._catch_up(writing=True)  # (entered through try_hold: not done yet)
                stamp = {"store_id": self._store_id, "generation": self._generation}
                self._remove_stale_temp()
                if self._lexical_dirty:  # the build as it is, with its pending chunks
                    self._save_lexical()
                if self.vectors is not None and self._vectors_dirty and self.model_id:
                    size, digest = self.vectors.save(self.dir / VECTORS_FILE)
                    write_json(self.dir / VECTORS_MANIFEST, {
                        "format": MANIFEST_FORMAT, **stamp, "model": self.model_id,
                        "dims": self.vectors.dims, "size": size, "digest": digest})
                    self._vectors_dirty = False
                self._own_writes = False
        except OSError as exc:
            raise StoreError(f"cannot save the index at {self.dir}: {exc.strerror or exc} "
                             "(the last saved index is kept)") from None

    def _remove_stale_temp(self) -> None:
        """What killed saves left behind (holding the write lock: nobody is saving)."""
        remove_stale_temp(self.dir)
