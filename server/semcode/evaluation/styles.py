"""The benchmark's query styles beyond docstring → function, generated from a corpus by
rule (never written by hand, never tuned to a method):

* **prose**: a documentation section (Markdown/reStructuredText heading section, or an
  rst API directive such as `.. c:function::`) that names exactly one indexed definition
  → that definition. The query is the section's first sentence(s) of prose with the
  identifier, code blocks and markup removed; the section itself is cut out of the
  indexed documentation so the answer cannot be the prose.
* **identifier**: an unambiguous symbol name alone, or a sentence naming it ("where is
  parse_args defined") → its definition. Forms are picked by a seeded RNG.

Gold answers are `path::qualified_name` keys of definitions outside tests, examples,
benchmarks and docs.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from semcode.chunks import Chunk, SymbolKind
from semcode.evaluation.protocols import (
    Query,
    clean_doc_markup,
    first_sentence,
    is_hard,
    is_test_path,
    symbol_key,
)

MIN_PROSE_WORDS = 6
MAX_PROSE_WORDS = 60
MIN_IDENTIFIER_CHARS = 4
_NOT_GOLD_PARTS = re.compile(
    r"(^|/)(examples?|samples?|demos?|bench|benches|benchmarks?|docs?|fuzzing|scripts|tools)(/|$)")
DEFINITION_KINDS = frozenset({
    SymbolKind.Function, SymbolKind.Method, SymbolKind.Constructor, SymbolKind.Class,
    SymbolKind.Struct, SymbolKind.Interface, SymbolKind.Enum, SymbolKind.Module,
    SymbolKind.Namespace, SymbolKind.TypeParameter})


def is_gold_path(path: str) -> bool:
    """Whether a definition in this file may be a gold answer: not a test, example,
    benchmark, demo or documentation file."""
    return not is_test_path(path) and not _NOT_GOLD_PARTS.search(path)


@dataclass(frozen=True)
class Definitions:
    """The definitions of a corpus by name: `unique` maps a name that is defined exactly
    once (all files, tests included) in a gold-eligible file to its chunk; `names` holds
    every defined name (to tell "names no definition" from "names an ambiguous one")."""

    unique: dict[str, Chunk]
    names: frozenset[str]

    def the_one(self, named: set[str]) -> tuple[str, Chunk] | None:
        """(name, chunk) when the names a text mentions hold exactly one defined name and
        it is defined once; None when they name none, several, or an ambiguous one."""
        named = named & self.names
        if len(named) != 1:
            return None
        name = next(iter(named))
        chunk = self.unique.get(name)
        return None if chunk is None else (name, chunk)


def definitions(chunks: Iterable[Chunk]) -> Definitions:
    """Index the first part of every symbol chunk by its name."""
    count: Counter[str] = Counter()
    first: dict[str, Chunk] = {}
    for c in chunks:
        if not c.is_symbol or c.part or not c.name:
            continue
        count[c.name] += 1
        first.setdefault(c.name, c)
    unique = {n: c for n, c in first.items()
              if count[n] == 1 and c.kind in DEFINITION_KINDS and is_gold_path(c.path)}
    return Definitions(unique, frozenset(count))


# ===================================================================== identifier
_TEMPLATES = (
    "{name}",
    "where is {name} defined",
    "definition of {name}",
    "where do we implement {name}?",
    "show me the {kind} {name}",
    "{name} {kind}",
    "how does {name} work",
    "find {name}",
)
_KIND_WORDS = {SymbolKind.Function: "function", SymbolKind.Method: "method",
               SymbolKind.Constructor: "constructor", SymbolKind.Class: "class",
               SymbolKind.Struct: "struct", SymbolKind.Interface: "interface",
               SymbolKind.Enum: "enum", SymbolKind.Module: "module",
               SymbolKind.Namespace: "namespace", SymbolKind.TypeParameter: "type"}


def identifier_queries(defs: Definitions, seed: str) -> list[Query]:
    """One query per unambiguous definition name (≥ 4 characters): the name alone or a
    sentence naming it, the form drawn by an RNG seeded with `seed` and the name."""
    out: list[Query] = []
    for name in sorted(defs.unique):
        chunk = defs.unique[name]
        if len(name) < MIN_IDENTIFIER_CHARS or not re.fullmatch(r"[A-Za-z_$][\w$]*", name):
            continue
        rng = random.Random(f"{seed}/{name}")
        template = _TEMPLATES[0] if rng.random() < 0.4 else rng.choice(_TEMPLATES[1:])
        text = template.format(name=name, kind=_KIND_WORDS.get(chunk.kind, "symbol"))
        out.append(Query(text, frozenset({symbol_key(chunk)}), id=f"identifier:{name}",
                         language=chunk.language))
    return out


# ===================================================================== prose
@dataclass(frozen=True)
class Section:
    """A part of a documentation file: lines [start, end) (0-based), its title line (a
    heading or API directive, or ""), and its body lines."""

    path: str
    start: int
    end: int
    title: str
    body: tuple[str, ...]
    directive: str = ""  # the API an rst directive documents, e.g. `json_object`


_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
_RST_UNDERLINE = re.compile(r"^([=\-~^\"'`#*+.:_])\1{2,}\s*$")
_RST_DIRECTIVE = re.compile(
    r"^\.\.\s+(?:[a-z]+:)?(function|method|class|type|member|macro|struct|enum|var|"
    r"attribute|data|exception|decorator|classmethod|staticmethod)::\s*(.+)$")
_FENCE = re.compile(r"^\s*(```|~~~)")


def sections(path: str, text: str) -> list[Section]:
    """Cut a Markdown or reStructuredText file into sections at headings and at API
    directives (`.. function:: sig` and friends, with their indented block)."""
    lines = text.splitlines()
    starts: list[tuple[int, str, str]] = []  # (line, title, directive name)
    in_fence = False
    is_rst = path.lower().endswith(".rst")
    i = 0
    while i < len(lines):
        line = lines[i]
        if _FENCE.match(line):
            in_fence = not in_fence
        elif not in_fence:
            m = _MD_HEADING.match(line) if not is_rst else None
            d = _RST_DIRECTIVE.match(line) if is_rst else None
            if m:
                starts.append((i, m.group(2), ""))
            elif d:
                starts.append((i, line, _api_name(d.group(2))))
            elif (is_rst and line.strip() and i + 1 < len(lines)
                  and _RST_UNDERLINE.match(lines[i + 1])
                  and len(lines[i + 1].strip()) >= len(line.strip())):
                start = i - 1 if i > 0 and _RST_UNDERLINE.match(lines[i - 1]) else i
                starts.append((start, line.strip(), ""))
                i += 1
        i += 1
    out: list[Section] = []
    for n, (start, title, directive) in enumerate(starts):
        end = starts[n + 1][0] if n + 1 < len(starts) else len(lines)
        if directive:  # the directive's own block: indented lines (and blanks) after it
            stop = start + 1
            while stop < end and (not lines[stop].strip() or lines[stop][:1] in " \t"):
                stop += 1
            end = stop
        first_body = start + 1
        while first_body < end and (_RST_UNDERLINE.match(lines[first_body])
                                    or lines[first_body].strip() == title.strip()):
            first_body += 1
        out.append(Section(path, start, end, title, tuple(lines[first_body:end]), directive))
    return out


def _api_name(signature: str) -> str:
    """The defined name in a directive signature: `json_t *json_object(void)` → json_object,
    `Foo.bar(x)` → bar, `class Foo` → Foo."""
    head = signature.split("(", 1)[0].strip()
    words = re.findall(r"[A-Za-z_][\w]*", head)
    return words[-1] if words else ""


_SPAN = re.compile(r":[a-z:]+:`~?([^`]+)`|``([^`]+)``|`([^`]+)`")
_IDENT = re.compile(r"[A-Za-z_][\w]*")


def _mentioned(text: str) -> set[str]:
    """Identifiers named in code spans and roles: the last component of each
    (`a.b.c()` → c, `Foo::bar` → bar, `Foo#bar` → bar)."""
    names: set[str] = set()
    for m in _SPAN.finditer(text):
        span = next(g for g in m.groups() if g is not None)
        span = span.split("(", 1)[0].split("<", 1)[0].strip()
        parts = _IDENT.findall(re.split(r"\s", span)[-1]) if span else []
        if parts:
            names.add(parts[-1])
    return names


def _heading_names(title: str) -> set[str]:
    """Identifier-shaped words of a heading: code spans, snake_case, camelCase, `x()`."""
    names = _mentioned(title)
    for word in re.findall(r"[A-Za-z_][\w]*(?:\(\))?", title):
        bare = word.removesuffix("()")
        if word.endswith("()") or "_" in bare.strip("_") or re.search(r"[a-z][A-Z]", bare):
            names.add(bare)
    return names


def _prose(body: Iterable[str], name: str) -> tuple[str, str]:
    """The section's first sentence(s) of prose, as plain text without the identifier,
    and the raw paragraph it came from ("" twice when there is none)."""
    paras: list[str] = []
    current: list[str] = []
    in_fence = skip_indented = False
    for line in body:
        stripped = line.strip()
        if _FENCE.match(line):
            in_fence = not in_fence
            continue
        if in_fence:
            continue
        if skip_indented:
            if not stripped or line[:1] in " \t":
                continue
            skip_indented = False
        if stripped.startswith((".. ", ":param", ":return", ":raise", ":type", ">>>", "|",
                                "<", "* ", "- ", "+ ", ">", "!", "[")) or re.match(
                                    r"^\d+\.\s", stripped):
            if current:
                paras.append(" ".join(current))
                current = []
            skip_indented = True  # a directive's block, a list item's continuation
            continue
        if not stripped:
            if current:
                paras.append(" ".join(current))
                current = []
            continue
        if stripped.endswith("::"):
            stripped = stripped[:-2] + ("." if not stripped[:-2].endswith(":") else "")
            skip_indented = True
        current.append(stripped)
    if current:
        paras.append(" ".join(current))
    for para in paras:
        text = _plain(para, name)
        words = text.split()
        if len(words) < MIN_PROSE_WORDS or sum(w.isalpha() for w in words) < MIN_PROSE_WORDS:
            continue
        sentences = re.split(r"(?<=[.!?])\s+", text)
        out = sentences[0]
        for s in sentences[1:]:
            if len(out.split()) >= 12:
                break
            out += " " + s
        return " ".join(out.split()[:MAX_PROSE_WORDS]), para
    return "", ""


def _plain(text: str, name: str) -> str:
    """Markup removed: the identifier's spans dropped, other spans kept as their text,
    links as their label, emphasis as plain words."""
    def span(m: re.Match[str]) -> str:
        """A markup span's replacement: nothing when it names the identifier (that would give the
        answer away), else its text."""
        inner = next(g for g in m.groups() if g is not None)
        return "" if name in _IDENT.findall(inner) else inner

    text = re.sub(r"`([^`<]*?)\s*<[^>]+>`_+", r"\1", text)  # rst link
    text = _SPAN.sub(span, text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # Markdown link
    text = re.sub(r"<?https?://\S+|(?<!\w)#\d+\b|\b[0-9a-f]{7,40}\b", "", text)
    text = re.sub(r"(\*\*|__|\*|_)(\S[^*_]*?)\1", r"\2", text)
    text = re.sub(rf"\b{re.escape(name)}\b(\(\))?", "", text)
    text = re.sub(r"\[[^\]\s]*\]|(?<!\w)@[\w-]+|\s[<>]+(?=\s|$)|\bThanks\s+(to\s+)?\S+!?", "", text)
    for _ in range(2):
        text = re.sub(r"\(\s*[,;]?\s*\)|\[\s*\]|\s+([,.;:])", r"\1", text)
    return " ".join(text.split()).strip(" ,;:(-")


def prose_queries(docs: dict[str, str], defs: Definitions,
                  ) -> tuple[list[Query], dict[str, set[int]]]:
    """Queries from documentation sections that name exactly one definition (and it is
    unambiguous), and {doc path: line numbers (0-based)} to cut from the indexed copy."""
    queries: list[Query] = []
    cut: dict[str, set[int]] = {}
    seen: set[str] = set()
    for path in sorted(docs):
        if is_changelog(path):
            found, lines = changelog_queries(path, docs[path], defs, seen)
            queries += found
            if lines:
                cut.setdefault(path, set()).update(lines)
            continue
        for sec in sections(path, docs[path]):
            named = _heading_names(sec.title) | _mentioned("\n".join(sec.body))
            if sec.directive:
                named.add(sec.directive)
            one = defs.the_one(named)
            if one is None:
                continue
            name, chunk = one
            text, para = _prose(sec.body, name)
            key = " ".join(text.lower().split())
            if not text or key in seen:
                continue
            if not (sec.directive == name or name in _heading_names(sec.title)
                    or name in _mentioned(para)):
                continue  # the API is named somewhere in the section, not where it is explained
            seen.add(key)
            queries.append(Query(text, frozenset({symbol_key(chunk)}),
                                 id=f"prose:{path}:{sec.start + 1}", language=chunk.language))
            cut.setdefault(path, set()).update(range(sec.start, sec.end))
    return queries, cut


_CHANGELOG = re.compile(r"^(CHANGE|HISTORY|NEWS|RELEASE)", re.I)
_BULLET = re.compile(r"^(\s*)([-*+]|\d+\.)\s+(.*)$")
_REFS = re.compile(r":(pr|issue|user|ghsa|cve):`[^`]*`|\(?(#|gh-|GH-)\d+\)?|"
                   r"\(?https?://\S+\)?|\[#?\d+\]\([^)]*\)|\((by )?@[\w-]+\)", re.I)


def is_changelog(path: str) -> bool:
    """CHANGES/CHANGELOG/HISTORY/NEWS/RELEASE-NOTES files, and `changelog.d/` entries."""
    return bool(_CHANGELOG.match(path.rsplit("/", 1)[-1])) or "/changelog.d/" in f"/{path}"


def changelog_queries(path: str, text: str, defs: Definitions,
                      seen: set[str]) -> tuple[list[Query], set[int]]:
    """Changelog entries (list items) that name exactly one definition, defined once →
    that definition; the entry's text without the identifier, issue/PR references and
    links is the query. Returns the queries and the (0-based) lines to cut."""
    lines = text.splitlines()
    items: list[tuple[int, int, str]] = []  # (start, end, text)
    i = 0
    while i < len(lines):
        m = _BULLET.match(lines[i])
        if not m:
            i += 1
            continue
        indent, parts, j = len(m.group(1)), [m.group(3)], i + 1
        while j < len(lines) and lines[j].strip() and not _BULLET.match(lines[j]) and (
                len(lines[j]) - len(lines[j].lstrip()) > indent):
            parts.append(lines[j].strip())
            j += 1
        items.append((i, j, " ".join(parts)))
        i = j
    queries: list[Query] = []
    cut: set[int] = set()
    for start, end, item in items:
        named = _mentioned(item) | {w[:-2] for w in re.findall(r"[A-Za-z_]\w*\(\)", item)}
        one = defs.the_one(named)
        if one is None:
            continue
        name, chunk = one
        query = _plain(_REFS.sub("", item), name)
        query = re.sub(r"\s+([,.;:])", r"\1", query).strip(" ,;:-")
        words = query.split()
        key = " ".join(query.lower().split())
        if (len(words) < MIN_PROSE_WORDS or sum(w.isalpha() for w in words) < MIN_PROSE_WORDS
                or key in seen):
            continue
        seen.add(key)
        queries.append(Query(" ".join(words[:MAX_PROSE_WORDS]), frozenset({symbol_key(chunk)}),
                             id=f"changelog:{path}:{start + 1}", language=chunk.language))
        cut.update(range(start, end))
    return queries, cut


# ===================================================================== header docs
HEADER_EXTS = (".h", ".hh", ".hpp", ".hxx", ".h++")
_DOC_OPEN = ("/**", "/*!", "///", "//!")


def _declared_name(decl: str) -> str:
    """The name a C/C++ declaration declares: the last identifier followed by `(` at
    parenthesis depth 0 (`YAML_DECLARE(int) yaml_parser_initialize(...)` → the latter)."""
    name, depth = "", 0
    for m in re.finditer(r"[A-Za-z_]\w*\s*\(|[()]", decl):
        token = m.group(0)
        if token == "(":
            depth += 1
        elif token == ")":
            depth -= 1
        else:
            if depth == 0:
                name = token.rstrip("( \t")
            depth += 1
    return name


def header_doc_queries(path: str, text: str, defs: Definitions,
                       ) -> tuple[list[Query], set[int]]:
    """C/C++ headers: a doc comment (`/** */`, `/*! */`, `///`, `//!`) on a function
    *declaration* whose definition elsewhere is unambiguous → that definition, queried by
    the doc's first sentence (the docstring style). Returns the queries and the
    (0-based) comment lines to strip from the header."""
    lines = text.splitlines()
    queries: list[Query] = []
    strip: set[int] = set()
    i = 0
    while i < len(lines):
        raw = lines[i].strip()
        if not raw.startswith(_DOC_OPEN):
            i += 1
            continue
        start, body = i, []
        if raw.startswith("/*"):
            while True:
                body.append(lines[i].strip())
                if "*/" in lines[i] or i + 1 >= len(lines):
                    break
                i += 1
        else:
            while i < len(lines) and lines[i].strip().startswith(("///", "//!")):
                body.append(lines[i].strip())
                i += 1
            i -= 1
        end = i + 1  # first line after the comment
        decl_lines: list[str] = []
        j = end + 1 if end < len(lines) and not lines[end].strip() else end  # one blank line
        while j < len(lines) and len(decl_lines) < 4 and lines[j].strip():
            decl_lines.append(lines[j].strip())
            if lines[j].rstrip().endswith((";", "{", "}")):
                break
            j += 1
        i = end
        decl = " ".join(decl_lines)
        if not decl.endswith(";") or "(" not in decl or decl.startswith(("#", "typedef")):
            continue
        strip.update(range(start, end))
        name = _declared_name(decl)
        chunk = defs.unique.get(name)
        if chunk is None or chunk.path == path:
            continue
        doc = "\n".join(re.sub(r"^(///?!?|/\*\*?!?|\*/|\*)\s?", "", b).replace("*/", "")
                        for b in body)
        doc = re.sub(rf"^\s*{re.escape(name)}(\(\))?\s*(-+|:)\s*", "", doc.strip())  # kernel-doc
        summary = first_sentence(clean_doc_markup(doc))
        if summary:
            queries.append(Query(summary, frozenset({symbol_key(chunk)}),
                                 id=f"{path}:{start + 1}", hard=is_hard(summary, chunk),
                                 language=chunk.language))
    return queries, strip


def cut_lines(text: str, lines: set[int]) -> str:
    """`text` without the given (0-based) lines."""
    return "".join(line for n, line in enumerate(text.splitlines(keepends=True))
                   if n not in lines)
