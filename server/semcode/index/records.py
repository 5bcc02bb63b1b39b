"""The records the index store hands out (`ChunkRef`, `FileRecord`, `Snapshot`) and
their conversion from SQLite rows.

Plain data: it must not open a database or import anything of the index beyond this.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from sys import intern

from semcode.chunks import Chunk, SymbolKind
from semcode.kinds import ContentKind

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
    content: str = ContentKind.CODE  # content kind (chunking/content.py)
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
    """What the in-memory structures are rebuilt from, read in one transaction (or the
    saved chunk table: `Store.advance`)."""

    store_id: str
    generation: int
    refs: Mapping[int, ChunkRef]  # `chunk_table.ChunkColumns` as the store reads them


# Called with each chunk (id, the chunk whole) a snapshot or delta reads, inside its read
# transaction (`Store.snapshot(visit=...)`).
ChunkVisitor = Callable[[int, Chunk], None]



def stored_text(value: object) -> str:
    """A stored TEXT value; anything else (a blob or number where text belongs: the
    record's type byte was flipped) is damage, a TypeError the store reports as such."""
    if not isinstance(value, str):
        raise TypeError(f"expected text, found {type(value).__name__}")
    return value


def _int(value: object) -> int:
    """A stored INTEGER value; text or a blob there is damage (TypeError)."""
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, found {type(value).__name__}")
    return value


def _opt_text(value: object) -> str | None:
    return None if value is None else stored_text(value)


def parse_int(value: object) -> int:
    """A number kept as text (the meta table's generations): ValueError when it does
    not parse."""
    return int(stored_text(value)) if not isinstance(value, int) else value


def row_to_ref(row: Sequence[object]) -> ChunkRef:
    """A `ChunkRef` from a row of `REF_COLUMNS`; a value of the wrong type is a
    TypeError (damage)."""
    path, language, kind, content_hash, start_line, name, content = row
    # One check for the whole row (read for every chunk at every open).
    if (type(path) is str and type(language) is str and type(kind) is int
            and type(content_hash) is str and type(start_line) is int
            and type(name) is str and type(content) is str):
        # A file's chunks share one path string, every chunk one language and content
        # kind string (SQLite hands out a new string per row: ~150 bytes a chunk).
        return ChunkRef(intern(path), intern(language), kind, content_hash, intern(content),
                        start_line, name)
    raise TypeError("a chunk row holds a value of the wrong type: "
                    f"{[type(v).__name__ for v in row]}")


def row_to_file(row: Sequence[object]) -> FileRecord:
    """A `FileRecord` from a row of (path, size, mtime_ns, digest, language, warning)."""
    path, size, mtime_ns, digest, language, warning = row
    return FileRecord(stored_text(path), _int(size), _int(mtime_ns), stored_text(digest),
                      stored_text(language), _opt_text(warning))


def row_to_chunk(row: Sequence[object]) -> Chunk:
    """A `Chunk` from a row of `CHUNK_COLUMNS`; a value of the wrong type, or a kind
    that is no `SymbolKind`, is a TypeError/ValueError (damage)."""
    (path, language, kind, name, container, start, end, name_line, name_start, name_end,
     part, text, content) = row
    return Chunk(
        path=stored_text(path), language=stored_text(language), kind=SymbolKind(_int(kind)),
        name=stored_text(name), container=stored_text(container), start_line=_int(start),
        end_line=_int(end), text=stored_text(text), name_line=_int(name_line),
        name_start_col=_int(name_start), name_end_col=_int(name_end), part=_int(part),
        content=stored_text(content),
    )
