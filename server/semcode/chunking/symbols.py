"""Chunks of a parsed file: one per definition (class-like ones as an outline of their
members, long ones split into overlapping parts) and `Module` windows of the code
between definitions.

Separate from `definitions.py` (which finds the definitions) because this is the
retrieval policy: what text a hit carries. The policies themselves are written in
`chunker.py`'s docstring.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from semcode.chunking.definitions import Definition, parse_definitions
from semcode.chunking.languages import BODY_TYPES, SCOPE_KINDS, LanguageSpec
from semcode.chunking.source import Source
from semcode.chunking.windows import spans, window_chunk
from semcode.chunks import Chunk, SymbolKind

if TYPE_CHECKING:
    from semcode.chunking.config import ChunkerConfig

ELISION = "..."  # stands for a member's body in a class outline
_CLOSERS = frozenset({"}", "};", "},", "end", "end;", "end)"})
_BRACE_CLOSERS = frozenset({"}", "};", "},"})

# One line of chunk text: (first file row it stands for, last file row, text). An elision
# line stands for the rows it replaces, so a split part still knows its exact range.
_Entry = tuple[int, int, str]


def symbol_chunks(
    spec: LanguageSpec, source: Source, config: ChunkerConfig
) -> tuple[list[Chunk], int]:
    """(every chunk of a file with a grammar, in file order; how many syntax errors it
    had). Raises whatever the parser raises."""
    definitions, errors = parse_definitions(spec, source)
    chunks: list[Chunk] = []
    for definition in definitions:
        chunks.extend(_definition_chunks(definitions, definition, source, config))
    chunks.extend(_module_chunks(definitions, source, config))
    chunks.sort(key=lambda c: (c.start_line, -c.end_line, c.part))
    return chunks, errors


def _definition_entries(
    definitions: list[Definition], definition: Definition, source: Source
) -> list[_Entry]:
    first, last = definition.start_row, definition.end_row
    if not definition.children or definition.kind not in SCOPE_KINDS:
        return [(row, row, source.capped[row]) for row in range(first, last + 1)]
    # Outline: members reduced to their signature: their doc comments left out (they are
    # in the member's own chunk), bodies replaced by one "..." line.
    cuts: dict[int, int] = {}  # first elided row -> last elided row
    dropped: set[int] = set()  # a member's doc comment rows
    joined: dict[int, tuple[int, str]] = {}  # a header's `{` row -> (its `}` row, closer)
    for child_index in definition.children:
        child = definitions[child_index]
        dropped.update(range(child.start_row, child.code_row))
        header_end = _header_end_row(child, source)
        cut_end = child.end_row
        closer = source.lines[cut_end].strip()
        if (cut_end > header_end and closer in _BRACE_CLOSERS
                and source.lines[header_end].rstrip().endswith("{")):
            joined[header_end] = (cut_end, closer)  # `void f() { ... }`: one line
            continue
        if cut_end > header_end + 1 and closer in _CLOSERS:
            cut_end -= 1  # keep a lone `}` / `end` so the outline stays balanced
        if header_end < cut_end:
            cuts[header_end + 1] = cut_end
    entries: list[_Entry] = []
    row = first
    while row <= last:
        if row in dropped:
            row += 1
            continue
        if row in joined:
            closed_at, closer = joined[row]
            entries.append((row, closed_at, f"{source.capped[row].rstrip()} {ELISION} {closer}"))
            row = closed_at + 1
            continue
        elided_to = cuts.get(row)
        if elided_to is None:
            entries.append((row, row, source.capped[row]))
            row += 1
            continue
        line = source.lines[row]
        indent = line[: len(line) - len(line.lstrip())]
        entries.append((row, elided_to, indent + ELISION))
        row = elided_to + 1
    return entries


def _header_end_row(definition: Definition, source: Source) -> int:
    """Last row of a definition's header: the rows up to where its body begins."""
    node = definition.node
    name_row = (
        definition.name_node.start_point.row
        if definition.name_node is not None
        else node.start_point.row
    )
    body = node.child_by_field_name("body")
    if body is None:
        body = next((c for c in reversed(node.named_children) if c.type in BODY_TYPES), None)
    if body is None:
        return max(name_row, node.start_point.row)
    body_row = body.start_point.row
    # `def f():\n    body` -> the body's row is not header; `void f() {` -> it is.
    header_end = body_row if not source.starts_line(body) else body_row - 1
    return max(header_end, name_row)


def _definition_chunks(
    definitions: list[Definition], definition: Definition, source: Source, config: ChunkerConfig
) -> list[Chunk]:
    name_line = name_start = name_end = 0
    if definition.name_node is not None:
        (start_row, start_col), (end_row, end_col) = (
            definition.name_node.start_point,
            definition.name_node.end_point,
        )
        name_line = start_row + 1
        name_start = source.column(start_row, start_col)
        if end_row == start_row:
            name_end = source.column(end_row, end_col)
        else:
            name_end = len(source.lines[start_row])
    else:  # a name without a token of its own (Kotlin's companion): its first line
        name_line = definition.node.start_point.row + 1

    def make(first_row: int, last_row: int, text: str, part: int) -> Chunk:
        return Chunk(
            path=source.path,
            language=source.language,
            kind=definition.kind,
            name=definition.name,
            container=definition.container,
            start_line=first_row + 1,
            end_line=last_row + 1,
            text=text,
            name_line=name_line,
            name_start_col=name_start,
            name_end_col=name_end,
            part=part,
        )

    first, last = definition.start_row, definition.end_row
    outline = definition.children and definition.kind in SCOPE_KINDS
    if not outline and last - first < config.max_chunk_lines:  # the common case, no copies
        return [make(first, last, source.text(first, last), 0)]
    entries = _definition_entries(definitions, definition, source)
    if len(entries) <= config.max_chunk_lines:
        return [make(entries[0][0], entries[-1][1], "\n".join(e[2] for e in entries), 0)]
    return [
        make(
            entries[start][0],
            entries[end - 1][1],
            "\n".join(e[2] for e in entries[start:end]),
            number,
        )
        for number, (start, end) in enumerate(
            spans(len(entries), config.max_chunk_lines, config.chunk_overlap_lines), start=1
        )
    ]


def _module_chunks(
    definitions: list[Definition], source: Source, config: ChunkerConfig
) -> list[Chunk]:
    """Code outside every definition, `window_lines` lines of it per chunk."""
    covered = bytearray(len(source.lines))
    for definition in definitions:
        if definition.parent < 0:
            span = definition.end_row - definition.start_row + 1
            covered[definition.start_row : definition.end_row + 1] = b"\x01" * span
    free_rows: list[int] = []
    previous_blank = True
    for row, flag in enumerate(covered):
        if flag:
            continue
        blank = not source.lines[row].strip()
        if not (blank and previous_blank):  # where definitions were cut out: one blank
            free_rows.append(row)
        previous_blank = blank
    chunks: list[Chunk] = []
    for start in range(0, len(free_rows), config.window_lines):
        rows = free_rows[start : start + config.window_lines]
        chunk = window_chunk(source, rows, SymbolKind.Module, source.file_name)
        if chunk is not None:
            chunks.append(chunk)
    return chunks
