"""Parse a file with its language's grammar and find its definitions: name, kind,
container, the rows a chunk of it spans (decorators and doc comments included), and
which definitions enclose which.

Separate from turning definitions into chunks (`symbols.py`): this is the only module
that talks to tree-sitter's parser and queries, and it decides *what* a definition is
(from `languages.py`'s rules); `symbols.py` decides what text a chunk of it carries.
"""

from __future__ import annotations

import functools
import re
import threading
from dataclasses import dataclass, field

from tree_sitter import Language, Node, Parser, Query, QueryCursor
from tree_sitter_language_pack import get_language

from semcode.chunking.languages import SPECS, TYPE_KINDS, Found, LanguageSpec
from semcode.chunking.source import Source, end_row, last_row
from semcode.chunks import SymbolKind

# ---------------------------------------------------------------------------------------
# Grammars, queries and parsers (cached)
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grammar:
    """A language's tree-sitter grammar with its compiled definition query."""

    spec: LanguageSpec
    language: Language
    # One query, one pass over the tree: @def captures every node whose type has a rule,
    # @doc the comments/attributes that may document the definition below them.
    query: Query


@functools.cache
def compiled_grammar(name: str) -> Grammar:
    """Compiled once per language; queries are immutable, so threads may share them."""
    spec = SPECS[name]
    language = get_language(name)  # type: ignore[arg-type]  # names are checked by tests
    alternatives = " ".join(f"({node_type})" for node_type in spec.rules)
    return Grammar(
        spec=spec,
        language=language,
        query=Query(language, "\n".join((f"[{alternatives}] @def", *spec.leading))),
    )


_thread_state = threading.local()


def thread_parser(grammar: Grammar) -> Parser:
    """This thread's parser for a grammar: parsers hold mutable state, so there is one
    per thread and language."""
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
class Definition:
    """One definition of a parsed file, as a chunk will name it."""

    name: str
    kind: SymbolKind
    container: str
    node: Node  # the matched node (the rule's node type)
    name_node: Node | None
    start_row: int  # 0-based, inclusive, after wrappers and doc comments
    end_row: int
    parent: int  # index of the nearest emitted enclosing definition, -1 at top level
    children: list[int] = field(default_factory=list)
    code_row: int = -1  # first row below its doc comments (its wrapper's or its own)


@dataclass
class _Scope:
    """An enclosing definition while its contents are being visited."""

    end_byte: int
    qualified: str  # container string for what it contains
    holds_methods: bool
    index: int  # emitted definition index (or the nearest emitted ancestor's)
    name: str


def parse_definitions(spec: LanguageSpec, source: Source) -> tuple[list[Definition], int]:
    """(the file's definitions, outer before inner, how many syntax errors the parse had).
    Raises whatever the grammar raises; the chunker falls back to line windows then."""
    grammar = compiled_grammar(spec.name)
    parser = thread_parser(grammar)
    root = parser.parse(source.data).root_node
    errors = _error_count(grammar, root) if root.has_error else 0
    if errors and spec.blank_macros:
        blanked = blank_macro_names(source.data)
        if blanked != source.data:
            again = parser.parse(blanked).root_node
            fewer = _error_count(grammar, again) if again.has_error else 0
            if fewer < errors:
                root, errors = again, fewer
    return _find_definitions(grammar, source, root), errors


# An object-like macro: upper case with an underscore, not called (`FMT_CONSTEXPR auto
# f()`, `PUGI__FN xml_node::root()`, `FMT_BEGIN_NAMESPACE`). A function-like one stays.
_MACRO_NAME = re.compile(rb"\b[A-Z][A-Z0-9]*_[A-Z0-9_]*\b(?![ \t]*\()")


def blank_macro_names(data: bytes) -> bytes:
    """The file with object-like macro names outside preprocessor lines replaced by
    spaces of the same length: the grammar cannot expand macros, and an unknown name
    before a declaration breaks its parse. Same length, so every byte offset, row and
    column of the tree still points into the original text."""
    lines = data.split(b"\n")
    continued = False
    for i, line in enumerate(lines):
        directive = continued or line.lstrip().startswith(b"#")
        continued = directive and line.rstrip().endswith(b"\\")
        if not directive:
            lines[i] = _MACRO_NAME.sub(lambda m: b" " * len(m.group()), line)
    return b"\n".join(lines)


def _error_count(grammar: Grammar, root: Node) -> int:
    # At least 1 for a tree with errors (a lone MISSING node is no ERROR node).
    return max(1, len(QueryCursor(_error_query(grammar.spec.name)).captures(root).get("e", [])))


@functools.cache
def _error_query(name: str) -> Query:
    return Query(compiled_grammar(name).language, "(ERROR) @e")


def _find_definitions(grammar: Grammar, source: Source, root: Node) -> list[Definition]:
    spec = grammar.spec
    captures = QueryCursor(grammar.query).captures(root)
    nodes = captures.get("def", [])
    # Outer before inner: by start, then longest first; a stack then gives containment.
    nodes.sort(key=lambda n: (n.start_byte, -n.end_byte))
    doc_above = _doc_blocks(captures.get("doc", []), source)

    found: list[Definition] = []
    scopes: list[_Scope] = []
    for node in nodes:
        while scopes and node.start_byte >= scopes[-1].end_byte:
            scopes.pop()
        rule = spec.rules[node.type]
        result = rule.resolve(node)
        if result is None:
            continue
        outer = scopes[-1] if scopes else None
        name, kind, container = _identify(spec, rule.kind, result, outer, source)
        index = outer.index if outer else -1
        if result.emit:
            index = _record(found, spec, node, result, (name, kind, container), index,
                            _start_rows(spec, node, doc_above), source)
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


def _identify(spec: LanguageSpec, rule_kind: SymbolKind, result: Found, outer: _Scope | None,
              source: Source) -> tuple[str, SymbolKind, str]:
    """(name, kind, container) of a resolved definition inside `outer`."""
    name = result.name
    if name is None:
        assert result.name_node is not None  # a resolver gives a node or a name
        # From the file's bytes: the tree may come from a macro-blanked copy.
        name_node = result.name_node
        name = source.data[name_node.start_byte:name_node.end_byte].decode("utf-8", "replace")
    kind = result.kind or rule_kind
    container = ".".join(p for p in (outer.qualified if outer else "", result.scope) if p)
    if kind == SymbolKind.Function and outer is not None and outer.holds_methods:
        kind = SymbolKind.Method
    if kind == SymbolKind.Method and (
        name in spec.constructor_names
        or (spec.constructors_named_after_type and name == container.rsplit(".", 1)[-1])
    ):
        kind = SymbolKind.Constructor
    return name, kind, container


def _record(found: list[Definition], spec: LanguageSpec, node: Node, result: Found,
            identity: tuple[str, SymbolKind, str], parent: int, rows: tuple[int, int],
            source: Source) -> int:
    """Add a definition to `found` (or fold it into the previous one: an overload
    signature, another clause of the same function); returns its index."""
    name, kind, container = identity
    previous = found[-1] if found else None
    same = (
        previous is not None
        and previous.parent == parent
        and (previous.name, previous.kind, previous.container) == (name, kind, container)
    )
    if same and previous is not None and previous.node.type in spec.signature_types:
        # An overload signature folds into what follows it (its implementation or the
        # next signature), which then names the chunk's header and body.
        previous.node, previous.name_node = node, result.name_node
        previous.end_row = max(previous.end_row, end_row(node, source))
        return len(found) - 1
    if same and previous is not None and spec.merge_clauses:
        # Another clause of the same function: one chunk for all of them.
        previous.end_row = max(previous.end_row, end_row(node, source))
        return len(found) - 1
    start_row, code_row = rows
    found.append(Definition(name, kind, container, node, result.name_node, start_row,
                            end_row(node, source), parent, code_row=code_row))
    if parent >= 0:
        found[parent].children.append(len(found) - 1)
    return len(found) - 1


def _doc_blocks(nodes: list[Node], source: Source) -> dict[int, int]:
    """Last row of each doc comment/attribute that starts its line -> its first row."""
    blocks = {last_row(n): n.start_point.row for n in nodes if source.starts_line(n)}
    if source.data.startswith(b"#!"):
        blocks.pop(0, None)  # a shebang documents the file, not the first function
    return blocks


def _start_rows(spec: LanguageSpec, node: Node, doc_above: dict[int, int]) -> tuple[int, int]:
    """(first row of the definition's chunk, doc comments included; first row of its
    code: the wrappers that hold only it, decorators and `export` included)."""
    # Climb wrappers (decorators, export, template) that hold only this definition.
    outer = node
    while (parent := outer.parent) is not None and parent.type in spec.wrappers:
        others = [c for c in parent.named_children if c.id != outer.id]
        if any(c.type in spec.rules for c in others):
            break  # e.g. `const a = () => 1, b = () => 2`: the wrapper is shared
        outer = parent
    code_row = row = outer.start_point.row
    while row - 1 in doc_above:  # doc comments chained directly above
        row = doc_above[row - 1]
    return row, code_row


def _keep_apart(found: list[Definition]) -> None:
    """A doc block never reaches into the previous sibling or above the parent."""
    last_end: dict[int, int] = {}
    for definition in found:
        floor = last_end.get(definition.parent, -1) + 1
        if definition.parent >= 0:
            floor = max(floor, found[definition.parent].node.start_point.row + 1)
        if definition.start_row < floor <= definition.node.start_point.row:
            definition.start_row = floor
        definition.code_row = max(definition.code_row, definition.start_row)
        last_end[definition.parent] = definition.end_row
