"""The records the index store hands out (`ChunkRef`, `FileRecord`, `Snapshot`) and
their conversion from SQLite rows.

Plain data: it must not open a database or import anything of the index beyond this.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from semcode.chunks import Chunk, SymbolKind

# What `Chunk` is read from (in its field order).
CHUNK_COLUMNS = (
    "path, language, kind, name, container, start_line, end_line, name_line, "
    "name_start_col, name_end_col, part, text, content"
)

# What `ChunkRef` is read from (in its field order).
REF_COLUMNS = "path, language, kind, hash, start_line, name, content"


@dataclass(frozen=True, slots=True)
class ChunkRef:
    """What the engine keeps in memory per chunk: enough to filter and to order ties
    stably, not the text."""

    path: str
    language: str
    kind: int
    hash: str
    content: str = "code"  # content kind (chunking/content.py)
    start_line: int = 0
    name: str = ""

    @property
    def order_key(self) -> tuple[str, int, str, int]:
        """Ties between equal scores are ordered by this key, never by chunk id (ids
        depend on the history of the index; this does not)."""
        return (self.path, self.start_line, self.name, self.kind)


@dataclass(frozen=True, slots=True)
class FileRecord:
    """One indexed file as the store keeps it: its stat (size, mtime) and content digest decide
    whether a sync re-chunks it; `warning` is the chunker's fallback note, if any."""
    path: str
    size: int
    mtime_ns: int
    digest: str
    language: str
    warning: str | None


@dataclass(frozen=True)
class Snapshot:
    """What the in-memory structures are rebuilt from, read in one transaction."""

    store_id: str
    generation: int
    refs: dict[int, ChunkRef]
    # Each chunk's BM25 tokens as stored (space-separated), split only where the lexical
    # index is rebuilt: split up front, 100k chunks' ~9M token strings held ~700 MB at
    # every open, though a valid saved lexical index never needs them.
    tokens: list[tuple[int, str]]



def row_to_ref(row: Sequence[object]) -> ChunkRef:
    """A `ChunkRef` from a row of `REF_COLUMNS`."""
    path, language, kind, content_hash, start_line, name, content = row
    return ChunkRef(path=str(path), language=str(language), kind=int(kind),  # type: ignore[call-overload]
                    hash=str(content_hash), start_line=int(start_line), name=str(name),  # type: ignore[call-overload]
                    content=str(content))


def row_to_chunk(row: Sequence[object]) -> Chunk:
    """A `Chunk` from a row of `CHUNK_COLUMNS`."""
    (path, language, kind, name, container, start, end, name_line, name_start, name_end,
     part, text, content) = row
    return Chunk(
        path=str(path), language=str(language), kind=SymbolKind(int(kind)),  # type: ignore[call-overload]
        name=str(name), container=str(container), start_line=int(start),  # type: ignore[call-overload]
        end_line=int(end), text=str(text), name_line=int(name_line),  # type: ignore[call-overload]
        name_start_col=int(name_start), name_end_col=int(name_end), part=int(part),  # type: ignore[call-overload]
        content=str(content),
    )
