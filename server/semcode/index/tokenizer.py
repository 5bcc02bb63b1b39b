"""Code-aware tokens for BM25: the same function turns documents and queries into terms.

bm25s' own tokenizer lowercases before splitting and so loses camelCase (DESIGN §3). Here
every word is split into identifier parts first, then lowercased, stop-filtered and
stemmed:

    getHTTPResponse2Code -> gethttpresponse2code  get  http  respons  code

Rules (documents and queries alike, so they always agree):
- A *word* is a run of letters, digits and `_`; words joined by `-` where the next piece
  starts with a letter (`kebab-case`, `well-known`) count as one word. `a-1`, `x - y` do not.
- Each word yields its *whole form* (lowercased, `_`/`-` removed, so `get_user`,
  `getUser` and `get-user` all give `getuser`) and, when it has more than one part, each
  part (`split_identifier`). The whole form rewards an exact identifier match (a rare,
  high-IDF term); the parts let a query in words find it.
- Tokens of one character are dropped (loop variables, single digits); longer numbers
  stay (`256` in `sha256`).
- `STOPWORDS` (checked before stemming, on the lowercased form) are dropped: English
  function words plus the few code keywords that occur in nearly every chunk and say
  nothing about it (`self`, `def`, `return`, `import`, `none`, `true`...). Words like
  `class`, `function`, `get`, `set` are kept: they carry meaning in queries, and BM25's IDF
  already discounts them.
- Stemming: Snowball English (PyStemmer). Results are cached per word in a dict, so
  tokenising real code is a regex scan plus dict look-ups.

Tokens are plain `str`; token order is irrelevant to BM25 but kept (text order).

With the `bm25_fields` setting, a chunk's tokens (`chunk_tokens`) are BM25F fields: name,
container, path, signature, doc comments, body, each opened by a marker token (`FIELD_*`)
that no text can produce; index/lexical.py weights every occurrence by its field
(`FIELD_WEIGHTS`) instead of repeating the name. Off by default: on the benchmark the
flat layout (the name repeated) scored as well or slightly better. A chunk's other names
(`chunking.names.other_names`: the tag of a typedef'd C struct) count as its name.
"""

from __future__ import annotations

import re
import threading

import Stemmer

from ..chunking.names import other_names
from ..chunks import Chunk
from ..words import SEPARATORS as _SEPARATORS
from ..words import WORD as _WORD
from ..words import split_identifier


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


STOPWORDS: frozenset[str] = _words(
    # English function words
    "a an and are as at be been but by can do does for from had has have he her his i if "
    "in into is it its me my no nor not of on or our she so such than that the their them "
    "then there these they this those to too us was we were what when where which while "
    "who whom why will with would you your "
    # code keywords that appear in almost every chunk of their language
    "self cls def return import elif else pass none null nil true false var let const "
    "end fn func"
)

# BM25F fields (see chunk_tokens). A chunk's token list is a run of fields, each opened by
# its marker; a marker can never be a token of text (`_WORD` has no "§"), so queries never
# match one. index/lexical.py weights each term occurrence by its field's weight.
FIELD_NAME = "§name"  # the symbol's own name
FIELD_CONTAINER = "§container"  # enclosing symbols
FIELD_PATH = "§path"  # directories and file stem
FIELD_SIGNATURE = "§signature"  # the line(s) that name the symbol
FIELD_DOC = "§doc"  # doc comments and docstrings: the best natural language code has
FIELD_BODY = "§body"  # everything else
FIELD_WEIGHTS: dict[str, float] = {
    FIELD_NAME: 3.0, FIELD_CONTAINER: 1.0, FIELD_PATH: 1.0, FIELD_SIGNATURE: 1.5,
    FIELD_DOC: 1.5, FIELD_BODY: 1.0,
}

_PATH_EXT = re.compile(r"\.[^./]*$")

_stemmer = Stemmer.Stemmer("english")
_stem_lock = threading.Lock()  # a PyStemmer object is not documented as thread-safe
_word_cache: dict[str, tuple[str, ...]] = {}
_WORD_CACHE_MAX = 500_000


def _stem(token: str) -> str:
    with _stem_lock:
        return str(_stemmer.stemWord(token))


def _word_tokens(word: str) -> tuple[str, ...]:
    cached = _word_cache.get(word)
    if cached is not None:
        return cached
    out: list[str] = []
    whole = _SEPARATORS.sub("", word).lower()
    if len(whole) > 1 and whole not in STOPWORDS:
        out.append(_stem(whole))
    parts = split_identifier(word)
    if len(parts) > 1:
        for part in parts:
            if len(part) > 1 and part not in STOPWORDS:
                out.append(_stem(part))
    result = tuple(out)
    if len(_word_cache) >= _WORD_CACHE_MAX:
        _word_cache.clear()
    _word_cache[word] = result
    return result


def tokenize(text: str) -> list[str]:
    """Terms of `text` (a document or a query); see the module docstring for the rules."""
    out: list[str] = []
    extend = out.extend
    cache = _word_cache
    for word in _WORD.findall(text):
        cached = cache.get(word)
        extend(cached if cached is not None else _word_tokens(word))
    return out


def path_tokens(path: str) -> list[str]:
    """"server/semcode/index/lexical.py" -> tokens of "server semcode index lexical"
    (the last extension is dropped: `.py` says nothing the language filter doesn't)."""
    return tokenize(_PATH_EXT.sub("", path).replace("/", " "))


_COMMENT_LINE = re.compile(r"^\s*(?:#(?![!\[])|//|/\*|\*|--|;;|\"\"\"|\'\'\'|@doc\b|@moduledoc\b)")
_C_COMMENT_LINE = re.compile(r"^\s*(?://|/\*|\*)")  # `#` starts a preprocessor line there
_HASH_IS_CODE = frozenset({"c", "cpp", "csharp", "objc", "cuda"})
_TRIPLE = re.compile(r"\"\"\"|\'\'\'")


def split_fields(chunk: Chunk) -> tuple[list[str], list[str], list[str]]:
    """(signature lines, doc lines, body lines) of a chunk's text. Doc lines are comment
    lines and the lines of triple-quoted strings (docstrings); the signature is the line
    naming the symbol. Non-symbol chunks (windows, module code) are all body, apart from
    their comments."""
    sig: list[str] = []
    doc: list[str] = []
    body: list[str] = []
    in_string = False
    comment = _C_COMMENT_LINE if chunk.language in _HASH_IS_CODE else _COMMENT_LINE
    name_row = chunk.name_line - chunk.start_line if chunk.is_symbol and chunk.name_line else -1
    if chunk.language in ("markdown", "text", "rst"):
        return sig, doc, chunk.text.splitlines()
    for row, line in enumerate(chunk.text.splitlines()):
        if row == name_row:
            sig.append(line)
            continue
        quotes = len(_TRIPLE.findall(line))
        if in_string or quotes or comment.match(line):
            doc.append(line)
            if quotes % 2:
                in_string = not in_string
            continue
        body.append(line)
    return sig, doc, body


def chunk_tokens(chunk: Chunk, fields: bool = False) -> list[str]:
    """A chunk's BM25 terms. Flat (the default): the name three times (twice plus its
    occurrence in the text), container, path components, text. With `fields` (the
    `bm25_fields` setting): BM25F fields, weights in `FIELD_WEIGHTS`: its name, its
    container, its path components, its signature line, its doc comments, the rest of
    its text, each after its marker token."""
    names = tokenize(" ".join((chunk.name, *other_names(chunk))))
    if not fields:
        return (names * 2 + tokenize(chunk.container) + path_tokens(chunk.path)
                + tokenize(chunk.text))
    sig, doc, body = split_fields(chunk)
    return ([FIELD_NAME, *names]
            + [FIELD_CONTAINER, *tokenize(chunk.container)]
            + [FIELD_PATH, *path_tokens(chunk.path)]
            + [FIELD_SIGNATURE, *tokenize("\n".join(sig))]
            + [FIELD_DOC, *tokenize("\n".join(doc))]
            + [FIELD_BODY, *tokenize("\n".join(body))])


def query_tokens(query: str) -> list[str]:
    """Terms of a search query: exactly `tokenize`, so queries and documents agree."""
    return tokenize(query)


__all__ = ["STOPWORDS", "FIELD_WEIGHTS", "split_identifier", "tokenize", "path_tokens",
           "split_fields", "chunk_tokens", "query_tokens"]
