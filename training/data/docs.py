"""Documentation -> API pairs for training only, by rules looser than the bench's.

The bench makes a prose question only from a documentation section that names exactly one
definition anywhere in it (`semcode.evaluation.styles.prose_queries`): few sections do, so
that rule alone gave 371 pairs of 634k. Documentation explains an API in more places than
that, and three of them are common everywhere:

* **an API-reference section** (`API_DOCS`): a heading that names one definition
  (``### parse(text, options)``, ``## `Client.get()` ``, ``#### Router``) or an rst API
  directive, whatever else its body mentions (an API reference's body names parameters,
  return types and related calls, which the strict rule counts against it);
* **a paragraph naming one definition** (`API_DOCS`): inside a section that has no anchor,
  a prose paragraph whose code spans name exactly one definition;
* **a doc comment's body** (`DOCSTRING_BODY`): what a docstring or doc comment says after
  its first sentence (the first sentence is the `docstring` source), up to its tags,
  examples and parameter lists.

Every query is plain prose with the API's name removed, as the bench removes it
(`styles._prose`, `styles._plain`), so the name cannot answer it. A name defined more than
once is resolved only by its class (``Client.get``) or not at all; gold definitions are
never in tests, examples or docs (`styles.is_gold_path`).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from semcode.chunking.languages import detect_language
from semcode.chunks import Chunk
from semcode.evaluation.protocols import (
    _comment_docs,
    _python_docs,
    clean_doc_markup,
    is_test_path,
)
from semcode.evaluation.styles import (
    DEFINITION_KINDS,
    MAX_PROSE_WORDS,
    MIN_PROSE_WORDS,
    Section,
    _heading_names,
    _mentioned,
    _plain,
    _prose,
    is_changelog,
    is_gold_path,
    sections,
)

# `name(`, `obj.name(`, `Class::name(`, `Class#name(`: the last identifier before a call's
# parenthesis (an API reference heading is usually a signature).
_CALL = re.compile(r"(?:^|[\s`.#:>])((?:[A-Za-z_$][\w$]*(?:\.|::|#))*[A-Za-z_$][\w$]*)\(")
# A heading that declares one identifier (`### new Router()`, `## class Router`); a plain
# word alone (`## License`) is a topic, not an API, even when a class has that name.
_DECLARED = re.compile(r"^(?:new|class|func|fn|def|interface|struct|module)\s+`?"
                       r"([A-Za-z_$][\w$.:#]*)`?(?:\(\))?$")
# `parse()` in running text: the bench reads code spans only, documentation often not.
_CALLED = re.compile(r"(?<![\w$.`])((?:[A-Za-z_$][\w$]*\.)?[A-Za-z_$][\w$]*)\(\)")
_QUALIFIED_SPLIT = re.compile(r"\.|::|#")
_PARA_BREAK = re.compile(r"^\s*$")
# Where a doc comment's description ends: tags, parameter sections, examples, code.
_DOC_STOP = re.compile(
    r"^\s*(@\w+|:\w+|>>>|```|~~~|\.\. |[A-Z][a-z]+( [A-Z]?[a-z]+)?:\s*$|"
    r"(Args|Arguments|Parameters|Params|Returns?|Yields?|Raises?|Throws|Examples?|Usage|"
    r"Notes?|See [Aa]lso|Warning|Attributes|Keyword [Aa]rguments|Type|Example usage)\b\s*:?\s*$|"
    r"-{3,}\s*$|={3,}\s*$|#+\s)")
_SENTENCE = re.compile(r"(?<=[.!?])\s+(?=[A-Z(\"'`])")
# Doxygen/Javadoc inside a line: a tag ends the description, a word command is its word.
_INLINE_TAG = re.compile(r"[\\@](returns?|retval|param|tparam|sa|see|throws?|exception|note|"
                         r"since|deprecated|code|example)\b.*$")
_WORD_COMMAND = re.compile(r"[\\@](a|e|c|p|b|em|ref)\s+(\S+)")
SHORT_WORDS = 12  # sentences are added until the query has this many words (as styles._prose)


@dataclass(frozen=True)
class DocPair:
    """A mined query and the chunk (an entry of the package's chunk list) it asks for."""

    query: str
    gold: Chunk
    via: str  # "heading" | "directive" | "paragraph" | "docstring-body": how it was found


class ApiNames:
    """The package's definitions by the names documentation uses for them: a bare name
    defined once, or `Container.name` when the pair is defined once."""

    def __init__(self, chunks: Iterable[Chunk]) -> None:
        bare: Counter[str] = Counter()
        qualified: Counter[tuple[str, str]] = Counter()
        first: dict[str, Chunk] = {}
        first_q: dict[tuple[str, str], Chunk] = {}
        for c in chunks:
            if not c.is_symbol or c.part or not c.name:
                continue
            bare[c.name] += 1
            first.setdefault(c.name, c)
            if c.container:
                key = (_QUALIFIED_SPLIT.split(c.container)[-1], c.name)
                qualified[key] += 1
                first_q.setdefault(key, c)
        self.names = frozenset(bare)
        self._bare = {n: c for n, c in first.items() if bare[n] == 1 and _eligible(c)}
        self._qualified = {k: c for k, c in first_q.items() if qualified[k] == 1 and _eligible(c)}

    def resolve(self, name: str) -> Chunk | None:
        """The definition a (possibly qualified) name denotes unambiguously, or None."""
        parts = [p for p in _QUALIFIED_SPLIT.split(name) if p]
        if not parts:
            return None
        if len(parts) >= 2:
            hit = self._qualified.get((parts[-2], parts[-1]))
            if hit is not None:
                return hit
        return self._bare.get(parts[-1])

    def the_one(self, names: Iterable[str]) -> tuple[str, Chunk] | None:
        """(bare name, chunk) when `names` denote exactly one definition, else None."""
        hits: dict[str, Chunk] = {}
        for n in names:
            chunk = self.resolve(n)
            if chunk is not None:
                hits[f"{chunk.path}::{chunk.qualified_name}"] = chunk
            elif _QUALIFIED_SPLIT.split(n)[-1] in self.names:
                return None  # names an ambiguous definition: the text may be about either
        if len(hits) != 1:
            return None
        chunk = next(iter(hits.values()))
        return chunk.name, chunk


def _eligible(chunk: Chunk) -> bool:
    return chunk.kind in DEFINITION_KINDS and is_gold_path(chunk.path)


def heading_api_names(title: str) -> set[str]:
    """The API names a heading gives: the bench's identifier-shaped words and code spans,
    plus call signatures (`get(url, options)` -> get, `Client.get(url)` -> Client.get) and
    a declaration (`new Router()`, `class Router`)."""
    names = set(_heading_names(title))
    text = title.strip().strip("#").strip()
    for m in _CALL.finditer(text):
        names.add(m.group(1))
    declared = _DECLARED.match(text)
    if declared:
        names.add(declared.group(1))
    return {n.strip(".:#") for n in names if n.strip(".:#")}


def _paragraphs(body: Iterable[str]) -> list[list[str]]:
    """Blank-line separated paragraphs outside code fences."""
    paras: list[list[str]] = [[]]
    in_fence = False
    for line in body:
        if line.lstrip().startswith(("```", "~~~")):
            in_fence = not in_fence
            paras.append([])
            continue
        if in_fence:
            continue
        if _PARA_BREAK.match(line):
            paras.append([])
        else:
            paras[-1].append(line)
    return [p for p in paras if p]


def section_pairs(docs: dict[str, str], api: ApiNames, skip: set[str]) -> list[DocPair]:
    """API-reference sections and one-API paragraphs of every documentation file
    (changelogs left to the changelog source). `skip`: normalised queries already made
    (by the strict rule), never repeated."""
    out: list[DocPair] = []
    seen = set(skip)

    def emit(text: str, chunk: Chunk, via: str) -> None:
        key = " ".join(text.lower().split())
        if text and key not in seen:
            seen.add(key)
            out.append(DocPair(text, chunk, via))

    for path in sorted(docs):
        if is_changelog(path):
            continue
        for sec in sections(path, docs[path]):
            anchor = _anchor(sec, api)
            if anchor is not None:
                name, chunk, via = anchor
                emit(_prose(sec.body, name)[0], chunk, via)
                continue
            for para in _paragraphs(sec.body):
                text = "\n".join(para)
                one = api.the_one(_mentioned(text) | set(_CALLED.findall(text)))
                if one is not None:
                    emit(_prose(para, one[0])[0], one[1], "paragraph")
    return out


def _anchor(sec: Section, api: ApiNames) -> tuple[str, Chunk, str] | None:
    if sec.directive:
        chunk = api.resolve(sec.directive)
        return (chunk.name, chunk, "directive") if chunk is not None else None
    one = api.the_one(heading_api_names(sec.title))
    return (one[0], one[1], "heading") if one is not None else None


def doc_body(doc: str, name: str) -> str:
    """What a doc comment says after its first sentence, as plain prose without the
    name: its description up to the first tag, parameter section, example or code block,
    sentence by sentence until `SHORT_WORDS` words (the shape of a documentation
    section's opening, as `styles._prose` takes it); "" when fewer than
    `MIN_PROSE_WORDS` words remain."""
    lines: list[str] = []
    for line in clean_doc_markup(doc).strip().splitlines():
        if _DOC_STOP.match(line) or line.startswith(("    ", "\t")) and lines:
            break
        lines.append(line.strip())
    text = _WORD_COMMAND.sub(r"\2", _INLINE_TAG.sub("", " ".join(" ".join(lines).split())))
    sentences = _SENTENCE.split(text)
    if len(sentences) < 2:
        return ""
    out = ""
    for sentence in sentences[1:]:
        out = f"{out} {sentence}".strip()
        if len(out.split()) >= SHORT_WORDS:
            break
    words = _plain(out, name).split()
    if len(words) < MIN_PROSE_WORDS or sum(w.isalpha() for w in words) < MIN_PROSE_WORDS:
        return ""
    return " ".join(words[:MAX_PROSE_WORDS])


def docstring_body_pairs(code: dict[str, str], chunks: list[Chunk]) -> list[DocPair]:
    """One pair per documented definition whose doc says more than its first sentence:
    that rest -> the definition (found in the stripped chunks by file and name, when the
    name is defined once in its file); a text that documents two definitions is dropped."""
    by_file: dict[tuple[str, str], list[Chunk]] = {}
    for c in chunks:
        if c.is_symbol and c.part == 0 and c.name:
            by_file.setdefault((c.path, c.name), []).append(c)
    out: list[DocPair] = []
    for path in sorted(code):
        if is_test_path(path) or not is_gold_path(path):
            continue
        text = code[path]
        language = detect_language(path, text[:200].split("\n", 1)[0])
        if language is None or language in ("markdown", "text"):
            continue
        if language == "python":
            found = _python_docs(text)
            cases = found[2] if found is not None else []
        else:
            cases = _comment_docs(path, text, language)[1]
        for _, name, doc in cases:
            hits = by_file.get((path, name), [])
            if len(hits) != 1 or not _eligible(hits[0]):
                continue
            body = doc_body(doc, name)
            if body:
                out.append(DocPair(body, hits[0], "docstring-body"))
    # A text shared by several definitions (`Plural` and `PluralWord` documented alike)
    # does not tell them apart: it answers none of them.
    count = Counter(" ".join(d.query.lower().split()) for d in out)
    return [d for d in out if count[" ".join(d.query.lower().split())] == 1]
