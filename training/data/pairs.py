"""(query, code) pairs of one package, the way the bench makes its questions: every file's
doc comments and docstrings stripped first (`semcode.evaluation.protocols`), the stripped
code chunked with semcode's own chunker, and each pair's code the gold definition's
`Chunk.embedding_text()`.

Sources (`PairSource`): a doc comment's first sentence -> its definition (`docstring`, C/C++
header docs too); a documentation section that names exactly one definition -> it
(`docs`); a changelog entry naming one -> it (`changelog`); the definition's name split
into words -> it (`identifier`: a name defined once, or a recurring method name with
its class). For training only, looser documentation rules (`docs.py`): an API-reference
section or a one-API paragraph -> its definition (`api-docs`), and a doc comment's text
after its first sentence -> its definition (`docstring-body`)."""

from __future__ import annotations

import hashlib
import random
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum

from bench.quality.corpora import is_doc_name

from semcode.chunking.chunker import chunk_file
from semcode.chunks import Chunk
from semcode.evaluation.protocols import docstring_corpus, symbol_key
from semcode.evaluation.styles import (
    DEFINITION_KINDS,
    HEADER_EXTS,
    definitions,
    header_doc_queries,
    is_gold_path,
    prose_queries,
)
from semcode.words import split_identifier
from training.data.docs import ApiNames, docstring_body_pairs, section_pairs

MAX_PAIRS_PER_SOURCE = 4000  # per package: no package dominates its language
MIN_IDENTIFIER_WORDS = 2
LANGUAGES = {"python": "python", "javascript": "javascript", "typescript": "typescript",
             "tsx": "typescript", "go": "go", "rust": "rust", "java": "java", "c": "c",
             "cpp": "cpp", "ruby": "ruby", "php": "php"}


class PairSource(StrEnum):
    """Where a pair's query comes from."""

    DOCSTRING = "docstring"
    DOCS = "docs"
    CHANGELOG = "changelog"
    IDENTIFIER = "identifier"
    API_DOCS = "api-docs"  # training only: an API-reference section / one-API paragraph
    DOCSTRING_BODY = "docstring-body"  # training only: a doc after its first sentence


@dataclass(frozen=True)
class Pair:
    """One query and the index (into the package's chunks) of its gold definition."""

    query: str
    gold: int
    source: PairSource


def body_hash(chunk: Chunk) -> str:
    """Whitespace-insensitive hash of a definition's code below its name line: a copied
    function under another name, or re-indented, is the same body."""
    lines = chunk.text.splitlines()
    if chunk.name_line:
        lines = lines[chunk.name_line - chunk.start_line + 1:]
    body = " ".join(" ".join(lines).split())
    return hashlib.blake2b(body.encode(), digest_size=12).hexdigest()


def stripped_chunks(files: dict[str, str]) -> tuple[dict[str, str], list[Chunk], object]:
    """(stripped code files, their chunks in the ten languages, the docstring corpus)."""
    code = {p: t for p, t in files.items() if not is_doc_name(p)}
    corpus = docstring_corpus(code)
    chunks = [c for p, t in corpus.files.items() for c in chunk_file(p, t).chunks
              if c.language in LANGUAGES]
    return corpus.files, chunks, corpus


def package_pairs(files: dict[str, str], seed: str) -> tuple[list[Chunk], list[Pair]]:
    """The chunks of a package's stripped code and its pairs (each source capped at
    `MAX_PAIRS_PER_SOURCE` by a sample seeded with `seed`)."""
    docs = {p: t for p, t in files.items() if is_doc_name(p)}
    stripped, chunks, corpus = stripped_chunks(files)
    by_key: dict[str, int] = {}
    for i, c in enumerate(chunks):
        if c.is_symbol and c.part == 0:
            by_key.setdefault(symbol_key(c), i)
    defs = definitions(chunks)
    found: dict[PairSource, list[Pair]] = {s: [] for s in PairSource}

    def add(source: PairSource, text: str, gold: frozenset[str]) -> None:
        key = next(iter(gold))
        index = by_key.get(key)
        if index is not None and len(gold) == 1 and is_gold_path(key.split("::", 1)[0]):
            found[source].append(Pair(" ".join(text.split()), index, source))

    for q in corpus.queries:  # type: ignore[attr-defined]
        add(PairSource.DOCSTRING, q.text, q.gold)
    for path in sorted(stripped):
        if path.endswith(HEADER_EXTS):
            for q in header_doc_queries(path, stripped[path], defs)[0]:
                add(PairSource.DOCSTRING, q.text, q.gold)
    strict = prose_queries(docs, defs)[0]
    for q in strict:
        source = PairSource.CHANGELOG if q.id.startswith("changelog:") else PairSource.DOCS
        add(source, q.text, q.gold)
    made = {" ".join(q.text.lower().split()) for q in strict}
    for found_doc in section_pairs(docs, ApiNames(chunks), made):
        add(PairSource.API_DOCS, found_doc.query, frozenset({symbol_key(found_doc.gold)}))
    code = {p: t for p, t in files.items() if not is_doc_name(p)}
    for found_doc in docstring_body_pairs(code, chunks):
        add(PairSource.DOCSTRING_BODY, found_doc.query, frozenset({symbol_key(found_doc.gold)}))
    named: Counter[str] = Counter(symbol_key(c) for c in chunks if c.is_symbol and c.part == 0)
    for key, index in sorted(by_key.items()):
        chunk = chunks[index]
        if named[key] != 1 or chunk.kind not in DEFINITION_KINDS:
            continue
        # A name defined once speaks for itself ("parse http date"); a method's name that
        # recurs (`Parser.parse`, `Lexer.parse`) is asked for with its class ("parser parse").
        unique = defs.unique.get(chunk.name) is chunk
        if unique:
            words = split_identifier(chunk.name)
        elif chunk.container:
            words = split_identifier(chunk.container.rsplit(".", 1)[-1]) + split_identifier(
                chunk.name)
        else:
            continue
        if len(words) >= MIN_IDENTIFIER_WORDS or (unique and len("".join(words)) >= 5):
            add(PairSource.IDENTIFIER, " ".join(words), frozenset({key}))
    pairs: list[Pair] = []
    for source, items in found.items():
        if len(items) > MAX_PAIRS_PER_SOURCE:
            items = random.Random(f"{seed}/{source}").sample(items, MAX_PAIRS_PER_SOURCE)
        pairs.extend(items)
    return chunks, pairs
