"""Files in, chunks out: one chunk per definition, line windows for everything else.

Policies (each chosen for retrieval, where a chunk is what a search hit points at):

- **Line ranges** are 1-based and inclusive. A definition's range starts at its
  decorators / annotations / `export` / `template <>` (the grammar's wrapper node) and
  at the doc comments directly above it: comment lines (and Rust `#[...]`, Elixir
  `@doc`/`@spec`) that start their line and end on the line right before the definition,
  chained upwards with no blank line in between. The doc text is the best natural-language
  description of the code, so it belongs in the chunk.
- **Containers and summaries.** A class-like chunk (class, struct, interface, enum,
  namespace) whose members have chunks of their own does not repeat their bodies: each
  member is cut after its header (signature, decorators, doc comment) and its body is
  replaced by one indented `...` line. The chunk still spans the whole class, and its
  text is the class's outline: fields, constants, member signatures. Repeating the
  bodies would double-count every method in BM25 and spend the embedder's budget on text
  that already has its own vector. Functions keep nested functions verbatim (a closure
  is part of what its function does), and the nested ones get their own chunks too.
- **Long definitions** (more lines than `max_chunk_lines`) are split into overlapping
  parts, `part=1, 2, ...`, that all keep the symbol's name, kind, container and name
  position, so a hit in any part still names the symbol.
- **Code between definitions** (imports, module constants, top-level statements) is
  gathered into `Module` chunks named after the file, `window_lines` lines of such code
  each. A window skips the definitions in between, so its range (first to last line)
  may enclose definitions that have their own chunks. Windows without a letter or digit
  (a lone `}`) are dropped.
- **Files without a grammar** (or whose grammar has no definition rules: YAML, JSON...)
  are cut into `window_lines` windows overlapping by `chunk_overlap_lines`, kind `File`.
  Markdown is cut at headings first and each section is named after its heading.
- **Failures** never lose a file: if the parser raises, the file gets line windows and a
  `warning`. Syntax errors only add a warning; the definitions that parsed are kept.
- Lines longer than `MAX_LINE_CHARS` are cut in chunk text (minified code would blow the
  tokenizer's and embedder's budgets and carries no meaning a search could use).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field

from tree_sitter import Language, Node, Parser, Query, QueryCursor
from tree_sitter_language_pack import get_language

from semcode.chunking.content import classify_chunks
from semcode.chunking.languages import (
    BODY_TYPES,
    SCOPE_KINDS,
    SPECS,
    TYPE_KINDS,
    LanguageSpec,
    detect_language,
)
from semcode.chunks import Chunk, SymbolKind

# Bump whenever the chunks produced for the same input change (the index stores it and
# re-chunks everything when it differs).
CHUNKER_VERSION = "3"  # 2: chunks carry a content kind; 3: flat tokens by default

MAX_LINE_CHARS = 2000
ELISION = "..."
_CLOSERS = frozenset({"}", "};", "},", "end", "end;", "end)"})


@dataclass(frozen=True)
class ChunkerConfig:
    max_chunk_lines: int = 120  # longer definitions are split into parts
    chunk_overlap_lines: int = 12  # overlap between parts and between text windows
    window_lines: int = 60  # size of Module / File windows


@dataclass
class ChunkResult:
    chunks: list[Chunk]
    language: str
    warning: str | None = None


def chunk_file(path: str, text: str, config: ChunkerConfig = ChunkerConfig()) -> ChunkResult:
    """Chunk one file. `path` is workspace-relative with '/' separators. Every chunk
    carries its content kind (chunking/content.py)."""
    result = _chunk_file(path, text, config)
    result.chunks = classify_chunks(path, result.language, text, result.chunks)
    return result


def _chunk_file(path: str, text: str, config: ChunkerConfig) -> ChunkResult:
    first_line = text[: text.find("\n")] if "\n" in text else text
    language = detect_language(path, first_line) or "text"
    if not text.strip():
        return ChunkResult([], language)
    source = _Source(path, text, language)
    if language == "markdown":
        return ChunkResult(_markdown_chunks(source, config), language)
    spec = SPECS.get(language)
    if spec is None:
        return ChunkResult(_text_windows(source, config), language)
    try:
        chunks, has_errors = _symbol_chunks(spec, source, config)
    except Exception as exc:  # a grammar bug must never lose a file: fall back to windows
        failure = f"{language} parser failed ({type(exc).__name__}: {exc}); chunked as text"
        return ChunkResult(_text_windows(source, config), language, failure)
    warning = f"{language} syntax errors; some definitions may be missing" if has_errors else None
    return ChunkResult(chunks, language, warning)


# ---------------------------------------------------------------------------------------
# Source text: lines, and byte -> code point columns
# ---------------------------------------------------------------------------------------


class _Source:
    """The file's text split the way tree-sitter counts rows (on '\\n' only)."""

    def __init__(self, path: str, text: str, language: str) -> None:
        self.path = path
        self.file_name = path.rsplit("/", 1)[-1]
        self.language = language
        # CRLF: rows are the same, the '\r' is dropped from chunk text.
        self.lines = [line.rstrip("\r") for line in text.split("\n")]
        if len(self.lines) > 1 and self.lines[-1] == "":
            self.lines.pop()  # the final newline does not start a line
        # What chunk text is made of: the lines, with overlong ones cut (once per file).
        long_lines = any(len(line) > MAX_LINE_CHARS for line in self.lines)
        self.capped = [_cap(line) for line in self.lines] if long_lines else self.lines
        # Surrogates (text decoded with surrogateescape) must survive the round trip.
        self.data = text.encode("utf-8", "surrogatepass")

    def column(self, row: int, byte_col: int) -> int:
        """Tree-sitter's byte column -> code-point column of the same position."""
        line = self.lines[row] if row < len(self.lines) else ""
        if line.isascii():
            return min(byte_col, len(line))
        prefix = line.encode("utf-8", "surrogatepass")[:byte_col]
        return len(prefix.decode("utf-8", "surrogatepass"))

    def starts_line(self, node: Node) -> bool:
        """Whether only whitespace precedes `node` on its first line."""
        start = node.start_byte
        return not self.data[start - node.start_point.column : start].strip()

    def text(self, first_row: int, last_row: int) -> str:
        return "\n".join(self.capped[first_row : last_row + 1])


def _cap(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …"


def _last_row(node: Node) -> int:
    """A node that ends at column 0 (it swallowed a newline) ends on the row before."""
    end_row, end_col = node.end_point
    return end_row - 1 if end_col == 0 and end_row > node.start_point.row else end_row


def _end_row(node: Node, source: _Source) -> int:
    """Last non-blank row of a definition (indentation grammars swallow blank lines)."""
    row, first = _last_row(node), node.start_point.row
    while row > first and not source.lines[row].strip():
        row -= 1
    return row


# ---------------------------------------------------------------------------------------
# Grammars, queries and parsers (cached)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Grammar:
    spec: LanguageSpec
    language: Language
    # One query, one pass over the tree: @def captures every node whose type has a rule,
    # @doc the comments/attributes that may document the definition below them.
    query: Query


@functools.cache
def _grammar(name: str) -> _Grammar:
    """Compiled once per language; queries are immutable, so threads may share them."""
    spec = SPECS[name]
    language = get_language(name)  # type: ignore[arg-type]  # names are checked by tests
    alternatives = " ".join(f"({node_type})" for node_type in spec.rules)
    return _Grammar(
        spec=spec,
        language=language,
        query=Query(language, "\n".join((f"[{alternatives}] @def", *spec.leading))),
    )


_thread_state = threading.local()


def _parser(grammar: _Grammar) -> Parser:
    """Parsers hold mutable state: one per thread and language."""
    parsers: dict[str, Parser] | None = getattr(_thread_state, "parsers", None)
    if parsers is None:
        parsers = _thread_state.parsers = {}
    parser = parsers.get(grammar.spec.name)
    if parser is None:
        parser = parsers[grammar.spec.name] = Parser(grammar.language)
    return parser


# ---------------------------------------------------------------------------------------
# Definitions
# ---------------------------------------------------------------------------------------


@dataclass
class _Definition:
    name: str
    kind: SymbolKind
    container: str
    node: Node  # the matched node (the rule's node type)
    name_node: Node | None
    start_row: int  # 0-based, inclusive, after wrappers and doc comments
    end_row: int
    parent: int  # index of the nearest emitted enclosing definition, -1 at top level
    children: list[int] = field(default_factory=list)


@dataclass
class _Scope:
    """An enclosing definition while its contents are being visited."""

    end_byte: int
    qualified: str  # container string for what it contains
    holds_methods: bool
    index: int  # emitted definition index (or the nearest emitted ancestor's)
    name: str


def _find_definitions(grammar: _Grammar, source: _Source, root: Node) -> list[_Definition]:
    spec = grammar.spec
    captures = QueryCursor(grammar.query).captures(root)
    nodes = captures.get("def", [])
    # Outer before inner: by start, then longest first; a stack then gives containment.
    nodes.sort(key=lambda n: (n.start_byte, -n.end_byte))
    doc_above = _doc_blocks(captures.get("doc", []), source)

    found: list[_Definition] = []
    scopes: list[_Scope] = []
    for node in nodes:
        while scopes and node.start_byte >= scopes[-1].end_byte:
            scopes.pop()
        rule = spec.rules[node.type]
        result = rule.resolve(node)
        if result is None:
            continue
        outer = scopes[-1] if scopes else None
        name = result.name
        if name is None:
            assert result.name_node is not None  # a resolver gives a node or a name
            name = (result.name_node.text or b"").decode("utf-8", "replace")
        kind = result.kind or rule.kind
        container = ".".join(p for p in (outer.qualified if outer else "", result.scope) if p)
        if kind == SymbolKind.Function and outer is not None and outer.holds_methods:
            kind = SymbolKind.Method
        if kind == SymbolKind.Method and (
            name in spec.constructor_names
            or (spec.constructors_named_after_type and name == container.rsplit(".", 1)[-1])
        ):
            kind = SymbolKind.Constructor

        index = outer.index if outer else -1
        if result.emit:
            start_row = _start_row(spec, node, doc_above)
            previous = found[-1] if found else None
            if (
                spec.merge_clauses
                and previous is not None
                and previous.parent == index
                and (previous.name, previous.kind, previous.container) == (name, kind, container)
            ):
                # Another clause of the same function: one chunk for all of them.
                previous.end_row = max(previous.end_row, _end_row(node, source))
                index = len(found) - 1
            else:
                found.append(
                    _Definition(
                        name, kind, container, node, result.name_node, start_row,
                        _end_row(node, source), index,
                    )
                )  # fmt: skip
                if index >= 0:
                    found[index].children.append(len(found) - 1)
                index = len(found) - 1
        scopes.append(
            _Scope(
                end_byte=node.end_byte,
                qualified=f"{container}.{name}" if container else name,
                holds_methods=kind in TYPE_KINDS,
                index=index,
                name=name,
            )
        )
    _keep_apart(found)
    return found


def _doc_blocks(nodes: list[Node], source: _Source) -> dict[int, int]:
    """Last row of each doc comment/attribute that starts its line -> its first row."""
    blocks = {_last_row(n): n.start_point.row for n in nodes if source.starts_line(n)}
    if source.data.startswith(b"#!"):
        blocks.pop(0, None)  # a shebang documents the file, not the first function
    return blocks


def _start_row(spec: LanguageSpec, node: Node, doc_above: dict[int, int]) -> int:
    # Climb wrappers (decorators, export, template) that hold only this definition.
    outer = node
    while (parent := outer.parent) is not None and parent.type in spec.wrappers:
        others = [c for c in parent.named_children if c.id != outer.id]
        if any(c.type in spec.rules for c in others):
            break  # e.g. `const a = () => 1, b = () => 2`: the wrapper is shared
        outer = parent
    row = outer.start_point.row
    while row - 1 in doc_above:  # doc comments chained directly above
        row = doc_above[row - 1]
    return row


def _keep_apart(found: list[_Definition]) -> None:
    """A doc block never reaches into the previous sibling or above the parent."""
    last_end: dict[int, int] = {}
    for definition in found:
        floor = last_end.get(definition.parent, -1) + 1
        if definition.parent >= 0:
            floor = max(floor, found[definition.parent].node.start_point.row + 1)
        if definition.start_row < floor <= definition.node.start_point.row:
            definition.start_row = floor
        last_end[definition.parent] = definition.end_row


# ---------------------------------------------------------------------------------------
# Chunks of a parsed file
# ---------------------------------------------------------------------------------------

# One line of chunk text: (first file row it stands for, last file row, text). An elision
# line stands for the rows it replaces, so a split part still knows its exact range.
_Entry = tuple[int, int, str]


def _symbol_chunks(
    spec: LanguageSpec, source: _Source, config: ChunkerConfig
) -> tuple[list[Chunk], bool]:
    grammar = _grammar(spec.name)
    tree = _parser(grammar).parse(source.data)
    root = tree.root_node
    definitions = _find_definitions(grammar, source, root)

    chunks: list[Chunk] = []
    for definition in definitions:
        chunks.extend(_definition_chunks(definitions, definition, source, config))
    chunks.extend(_module_chunks(definitions, source, config))
    chunks.sort(key=lambda c: (c.start_line, -c.end_line, c.part))
    return chunks, root.has_error


def _definition_entries(
    definitions: list[_Definition], definition: _Definition, source: _Source
) -> list[_Entry]:
    first, last = definition.start_row, definition.end_row
    if not definition.children or definition.kind not in SCOPE_KINDS:
        return [(row, row, source.capped[row]) for row in range(first, last + 1)]
    # Outline: members cut after their header, bodies replaced by one "..." line.
    cuts: dict[int, int] = {}  # first elided row -> last elided row
    for child_index in definition.children:
        child = definitions[child_index]
        header_end = _header_end_row(child, source)
        cut_end = child.end_row
        if cut_end > header_end + 1 and source.lines[cut_end].strip() in _CLOSERS:
            cut_end -= 1  # keep a lone `}` / `end` so the outline stays balanced
        if header_end < cut_end:
            cuts[header_end + 1] = cut_end
    entries: list[_Entry] = []
    row = first
    while row <= last:
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


def _header_end_row(definition: _Definition, source: _Source) -> int:
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
    definitions: list[_Definition], definition: _Definition, source: _Source, config: ChunkerConfig
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
            _windows(len(entries), config.max_chunk_lines, config.chunk_overlap_lines), start=1
        )
    ]


def _module_chunks(
    definitions: list[_Definition], source: _Source, config: ChunkerConfig
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
        chunk = _window_chunk(source, rows, SymbolKind.Module, source.file_name)
        if chunk is not None:
            chunks.append(chunk)
    return chunks


# ---------------------------------------------------------------------------------------
# Line windows (text files, Markdown, fallback)
# ---------------------------------------------------------------------------------------


def _windows(count: int, size: int, overlap: int) -> list[tuple[int, int]]:
    """[start, end) slices of `size` items, consecutive ones sharing `overlap` items."""
    size = max(size, 1)
    step = max(size - max(overlap, 0), 1)
    spans = []
    start = 0
    while True:
        end = min(start + size, count)
        spans.append((start, end))
        if end >= count:
            return spans
        start += step


def _window_chunk(
    source: _Source,
    rows: list[int],
    kind: SymbolKind,
    name: str,
    name_at: tuple[int, int, int] = (0, 0, 0),
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


def _text_windows(source: _Source, config: ChunkerConfig) -> list[Chunk]:
    return _section_windows(source, config, 0, len(source.lines), source.file_name)


def _section_windows(
    source: _Source,
    config: ChunkerConfig,
    first_row: int,
    end_row: int,
    name: str,
    name_at: tuple[int, int, int] = (0, 0, 0),
) -> list[Chunk]:
    chunks = []
    spans = _windows(end_row - first_row, config.window_lines, config.chunk_overlap_lines)
    for start, end in spans:
        rows = list(range(first_row + start, first_row + end))
        chunk = _window_chunk(source, rows, SymbolKind.File, name, name_at)
        if chunk is not None:
            chunks.append(chunk)
    return chunks


def _markdown_chunks(source: _Source, config: ChunkerConfig) -> list[Chunk]:
    """Sections split at ATX headings (outside code fences), named after the heading."""
    headings: list[tuple[int, str, tuple[int, int, int]]] = []
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
    names: list[tuple[str, tuple[int, int, int]]] = [(source.file_name, (0, 0, 0))]
    names += [(title, at) for _, title, at in headings]
    for (name, at), first, end in zip(names, bounds, bounds[1:], strict=False):
        if end > first:
            chunks.extend(_section_windows(source, config, first, end, name, at))
    return chunks
