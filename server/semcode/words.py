"""The words of code text: one identifier splitter for every consumer.

BM25's tokens (index/tokenizer.py) and the static embedder's input (models/static.py)
read identifiers the same way, from here, so that `parseHttpHeaders`, `parse_http_headers`
and `parse-http-headers` all mean "parse http headers" to both. Imports nothing of
semcode (the index and the models may not import each other).

- A *word* (`WORD`) is a run of letters, digits and `_`; words joined by `-` where the
  next piece starts with a letter (`kebab-case`, `well-known`) count as one word.
- `split_identifier` splits a word at `_`/`-`, camelCase/PascalCase humps, acronyms and
  digit runs (ASCII), or at letter/digit boundaries only (non-ASCII), then lowercases.
"""

from __future__ import annotations

import re

WORD = re.compile(r"\w+(?:-(?=[^\W\d_])\w+)*")
SEPARATORS = re.compile(r"[_\-]+")
# ASCII camel/Pascal case with acronyms and digits: getHTTPResponse2Code -> get HTTP Response 2 Code
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|\d+")
# Non-ASCII pieces: split into letter runs and digit runs only (no case splitting).
_UNICODE_PARTS = re.compile(r"[^\W\d_]+|\d+")


def split_identifier(word: str) -> list[str]:
    """Split an identifier into its lowercased parts (split first, then lowercase):
    "getHTTPResponse2Code" -> ["get", "http", "response", "2", "code"].
    snake_case, kebab-case, camelCase, PascalCase, acronyms and digit runs are handled;
    non-ASCII pieces are split only at letter/digit boundaries."""
    parts: list[str] = []
    for piece in SEPARATORS.split(word):
        if not piece:
            continue
        if piece.isascii():
            parts.extend(p.lower() for p in _CAMEL.findall(piece))
        else:
            parts.extend(p.lower() for p in _UNICODE_PARTS.findall(piece))
    return parts


_parts_cache: dict[str, tuple[str, ...]] = {}
_PARTS_CACHE_MAX = 500_000


def code_words(text: str) -> list[str]:
    """Every word of `text` in text order, each identifier split into its lowercased
    parts; punctuation and operators are dropped:
    "def parseHttpHeaders(raw_bytes):" -> ["def", "parse", "http", "headers", "raw", "bytes"].
    Code repeats its identifiers, so each word's parts are remembered (a dict look-up
    instead of the regexes; safe across threads: a dict is only added to or replaced)."""
    global _parts_cache
    out: list[str] = []
    cache = _parts_cache
    for word in WORD.findall(text):
        parts = cache.get(word)
        if parts is None:
            parts = tuple(split_identifier(word))
            if len(cache) >= _PARTS_CACHE_MAX:
                _parts_cache = cache = {}  # a new dict: another thread may be reading the old
            cache[word] = parts
        out.extend(parts)
    return out


__all__ = ["WORD", "SEPARATORS", "split_identifier", "code_words"]
