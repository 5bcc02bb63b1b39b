"""Saving the `Indexer`'s derived indexes: the lexical directory, the chunk table
(`chunks.bin`) and the usearch file, each with a manifest of the database state it holds
(store id, generation; the vectors' model, size and checksum). `Saving` owns what is
written where; the `Indexer` calls `write` under the write lock after catching up, so a
saved stamp is always true (the chunk table is also written after every save of the
lexical build, `write_table`, under the same conditions).

It must not change chunks or vectors, only write what memory holds; loading is
`LexicalUpkeep.load` / `VectorUpkeep.attach` / `Indexer._opening_snapshot`.
"""

from __future__ import annotations

from pathlib import Path

from semcode.index.catch_up import CatchUp
from semcode.index.chunk_files import CHUNKS_FILE, save_table
from semcode.index.chunk_table import ChunkTable
from semcode.index.layout import (
    MANIFEST_FORMAT,
    VECTORS_FILE,
    VECTORS_MANIFEST,
    remove_stale_temp,
    write_json,
)
from semcode.index.lexical_upkeep import LexicalUpkeep
from semcode.index.vector_upkeep import VectorUpkeep


class Saving:
    """Writes the derived indexes with their manifests (see the module docstring)."""

    def __init__(self, directory: Path, catch_up: CatchUp, lexical: LexicalUpkeep,
                 vectors: VectorUpkeep, table: ChunkTable) -> None:
        """Save `lexical`, `vectors` and the chunk `table` into `directory`, stamped with
        `catch_up`'s stamp."""
        self._dir = directory
        self._catch_up = catch_up
        self._lexical = lexical
        self._vectors = vectors
        self._table = table

    def needed(self) -> bool:
        """Whether memory holds anything not saved."""
        return (self._lexical.save_due or self._table.dirty
                or (self._vectors.index is not None and self._vectors.dirty))

    def write_table(self) -> None:
        """Write the chunk table when it changed since it was saved or mapped (holding
        the write lock, caught up: it is then exactly the stamp's state)."""
        if not self._table.dirty:
            return
        columns, version = self._table.for_save()
        stamp = self._catch_up.stamp
        save_table(self._dir / CHUNKS_FILE, columns, stamp.store_id, stamp.generation)
        self._table.saved(version)

    def write(self) -> None:
        """Write what changed (holding the write lock and the memory lock, caught up).
        An OS error propagates: the `Indexer` reports it, the last saved files kept."""
        stamp = self._catch_up.stamp
        self.remove_stale_temp()
        if self._lexical.save_due:  # the build as it is, with its pending chunks
            self._lexical.save()
        self.write_table()
        vectors = self._vectors
        if vectors.index is not None and vectors.dirty and vectors.model_id:
            size, digest = vectors.index.save(self._dir / VECTORS_FILE)
            write_json(self._dir / VECTORS_MANIFEST, {
                "format": MANIFEST_FORMAT, "store_id": stamp.store_id,
                "generation": stamp.generation, "model": vectors.model_id,
                "dims": vectors.index.dims, "size": size, "digest": digest})
            vectors.dirty = False
        self._catch_up.own_writes = False

    def remove_stale_temp(self) -> None:
        """What killed saves left behind (holding the write lock: nobody is saving)."""
        remove_stale_temp(self._dir)
