"""Line windows: how text without definitions becomes chunks. Files without a grammar
are cut into overlapping `window_lines` windows (kind `File`), Markdown at its headings
first (each section named after its heading); `spans` is the overlap arithmetic the
split parts of long definitions use too.

Separate from `symbols.py` because it needs no parse: it is the chunker's answer for
text files and its fallback when a parser fails, so it must work on any text.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semcode.chunking.source import Source
from semcode.chunks import Chunk, SymbolKind

if TYPE_CHECKING:
    from semcode.chunking.config import ChunkerConfig

# Where a window's name stands in the file: (1-based line, start column, end column);
# (0, 0, 0) when the name is the file's, written nowhere in it.
NameAt = tuple[int, int, int]


def spans(count: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) slices of `size` items, consecutive ones sharing `overlap` items."""
    size = max(size, 1)
    step = max(size - max(overlap, 0), 1)
    found = []
    start = 0
    while True:
        end = min(start + size, count)
        found.append((start, end))
        if end >= count:
            return found
        start += step


def window_chunk(
    source: Source,
    rows: list[int],
    kind: SymbolKind,
    name: str,
    name_at: NameAt = (0, 0, 0),
) -> Chunk | None:
    """A chunk of the given rows, blank rows trimmed at both ends; None if no word."""
    lines = source.lines
    first, last = 0, len(rows) - 1
    while first <= last and not lines[rows[first]].strip():
        first += 1
    while last >= first and not lines[rows[last]].strip():
        last -= 1
    if first > last:
        return None
    text = "\n".join(source.capped[row] for row in rows[first : last + 1])
    if not any(ch.isalnum() for ch in text):
        return None
    name_line, name_start, name_end = name_at
    return Chunk(
        path=source.path,
        language=source.language,
        kind=kind,
        name=name,
        container="",
        start_line=rows[first] + 1,
        end_line=rows[last] + 1,
        text=text,
        name_line=name_line,
        name_start_col=name_start,
        name_end_col=name_end,
    )


def text_windows(source: Source, config: ChunkerConfig) -> list[Chunk]:
    """The whole file as overlapping `File` windows named after the file."""
    return _section_windows(source, config, 0, len(source.lines), source.file_name)


def _section_windows(
    source: Source,
    config: ChunkerConfig,
    first_row: int,
    end_row: int,
    name: str,
    name_at: NameAt = (0, 0, 0),
) -> list[Chunk]:
    chunks = []
    for start, end in spans(end_row - first_row, config.window_lines, config.chunk_overlap_lines):
        rows = list(range(first_row + start, first_row + end))
        chunk = window_chunk(source, rows, SymbolKind.File, name, name_at)
        if chunk is not None:
            chunks.append(chunk)
    return chunks


def markdown_chunks(source: Source, config: ChunkerConfig) -> list[Chunk]:
    """Sections split at ATX headings (outside code fences), named after the heading."""
    headings: list[tuple[int, str, NameAt]] = []
    fence = ""
    for row, line in enumerate(source.lines):
        stripped = line.lstrip()
        if stripped.startswith(("```", "~~~")):
            marker = stripped[:3]
            fence = "" if fence == marker else (fence or marker)
            continue
        if fence or not stripped.startswith("#"):
            continue
        hashes = len(stripped) - len(stripped.lstrip("#"))
        title = stripped[hashes:].strip().rstrip("#").strip()
        if hashes <= 6 and title and stripped[hashes : hashes + 1] in (" ", "\t"):
            start_col = line.index(title, len(line) - len(stripped) + hashes)
            headings.append((row, title, (row + 1, start_col, start_col + len(title))))
    chunks: list[Chunk] = []
    bounds = [0] + [row for row, _, _ in headings] + [len(source.lines)]
    names: list[tuple[str, NameAt]] = [(source.file_name, (0, 0, 0))]
    names += [(title, at) for _, title, at in headings]
    for (name, at), first, end in zip(names, bounds, bounds[1:], strict=False):
        if end > first:
            chunks.extend(_section_windows(source, config, first, end, name, at))
    return chunks
