"""What a query asks for: an identifier, a sentence, or a sentence naming identifiers;
and whether it asks for a kind of content (tests, docs, examples, config).

    "parseArgs"                         -> identifier, names {parseArgs}
    "http.client.HTTPConnection"        -> identifier, names {http.client.HTTPConnection,
                                                              HTTPConnection}
    "where do we refresh expired tokens" -> natural
    "why does parse_args drop -- ?"     -> mixed, names {parse_args}
    "tests for the retry logic"         -> natural, asks for {test}

The ranking step (search/ranking.py) reads this: which definitions to boost, whether
content-kind priors apply, which kinds are lifted instead of demoted; fusion reads it to
lean lexical (identifiers) or dense (sentences). Pure function of the query string.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from semcode.index.tokenizer import STOPWORDS, split_identifier, tokenize
from semcode.kinds import ContentKind, QueryIntent

# The query kinds under their old names (their home is `QueryIntent`).
IDENTIFIER = QueryIntent.IDENTIFIER
NATURAL = QueryIntent.NATURAL
MIXED = QueryIntent.MIXED

# A qualified identifier: a.b, a::b, a->b, Foo#bar, a\b (PHP), optional trailing ().
_QUALIFIED = re.compile(r"^[A-Za-z_$][\w$]*(?:(?:\.|::|->|#|\\)[A-Za-z_$][\w$]*)+(?:\(\))?$")
# A word that can only be an identifier: camelCase / PascalCase with an inner capital,
# snake_case, SCREAMING_CASE, a leading underscore, digits inside, or a call `f()`.
_CODEY = re.compile(r"""^(?:
      [a-z][a-z0-9]*[A-Z][\w$]*                  # camelCase
    | [A-Z][a-z0-9]+[A-Z][\w$]*                  # PascalCase with two humps
    | [A-Z]{2,}[a-z][\w$]*                       # HTTPServer
    | _*[A-Za-z][A-Za-z0-9]*_[\w$]*              # snake_case, SCREAMING_CASE
    | _+[A-Za-z][\w$]*                           # _private
    | [A-Za-z_$][\w$]*\(\)                       # call()
    | [A-Za-z]+\d+[A-Za-z\d]*                    # sha256, utf8decode
)$""", re.VERBOSE)
_QUOTED = re.compile(r"`([^`]+)`")
_WORD = re.compile(r"[A-Za-z_$][\w$]*(?:(?:\.|::|->|#|\\)[A-Za-z_$][\w$]*)*(?:\(\))?")

# Phrasing around a name in a lookup ("where is X defined", "show me the class X", "how
# does X work", "X method"): a short query that is only these words and one name is an
# identifier lookup of that name.
_LOOKUP = """
    a an the of for to in is are was do does did we i you me my our it its this that
    how what where which who why when show find locate get see open jump goto go
    definition definitions define defined defines declaration declared declare
    implementation implemented implement implements implementing work works working
    function functions func fn def method methods class classes struct structs type types
    interface interfaces trait traits enum enums module modules namespace package constant
    constructor macro variable field property symbol code source please look up lookup
"""
LOOKUP_WORDS = frozenset(_LOOKUP.split())

# Words that ask for a content kind (lowercased query words).
_WORDS_OF_KIND: dict[ContentKind, str] = {
    ContentKind.TEST: """test tests testing tested spec specs unittest unittests pytest
                         fixture fixtures mock mocks""",
    ContentKind.DOCS: "doc docs documentation documented readme changelog guide tutorial",
    ContentKind.EXAMPLE: "example examples sample samples demo demos benchmark benchmarks",
    ContentKind.CONFIG: "config configuration yaml toml json settings ini",
    ContentKind.DECLARATION: "stub stubs typings declaration declarations header headers",
    ContentKind.GENERATED: "vendored generated",
}
_KIND_WORDS: dict[str, ContentKind] = {word: kind for kind, words in _WORDS_OF_KIND.items()
                                       for word in words.split()}


@dataclass(frozen=True)
class Intent:
    """What a query asks for: its kind (identifier, natural language or mixed), the identifiers it
    names, the content kinds it asks for and its words and stems."""

    kind: str  # IDENTIFIER, NATURAL or MIXED
    # Identifiers the query names, as written (qualified ones also by their last part).
    identifiers: tuple[str, ...] = ()
    # Content kinds the query asks for by name ("tests for ...").
    wants: frozenset[str] = field(default_factory=frozenset)
    # Lowercased query words (no stopwords) and their BM25 stems, for path matching.
    words: tuple[str, ...] = ()
    stems: frozenset[str] = field(default_factory=frozenset)


def _last_part(name: str) -> str:
    return re.split(r"\.|::|->|#|\\", name.removesuffix("()"))[-1]


def classify_query(query: str) -> Intent:
    """Read a query's intent (pure function of the text)."""
    text = query.strip()
    raw_words = _WORD.findall(text)
    quoted = [q.strip() for q in _QUOTED.findall(text) if q.strip()]
    identifiers: list[str] = []

    def add(name: str) -> None:
        """Keep `name` (a trailing `()` dropped) and its last part (after `.`, `::`, `->`,
        `#`) as named identifiers, once each, in order."""
        name = name.removesuffix("()")
        for n in (name, _last_part(name)):
            if n and n not in identifiers:
                identifiers.append(n)

    for q in quoted:
        for w in _WORD.findall(q):
            add(w)
    for w in raw_words:
        if _QUALIFIED.match(w) or _CODEY.match(w):
            add(w)
    lowered = [w.lower() for w in raw_words]
    words = tuple(w for w in lowered if w not in STOPWORDS and len(w) > 1)
    wants = frozenset(_KIND_WORDS[w] for w in lowered if w in _KIND_WORDS)
    single = len(text.split()) == 1 and bool(raw_words)
    rest = [w for w in raw_words if w.lower() not in LOOKUP_WORDS]
    if single:
        # One word is a symbol lookup ("urlencode", "Session", "parse_args").
        add(raw_words[0])
        kind = IDENTIFIER
        wants = frozenset()
    elif len(rest) == 1 and len(raw_words) <= 8 and not wants:
        # A name in lookup phrasing: "definition of Response", "find get_small".
        add(rest[0])
        kind = IDENTIFIER
    elif identifiers and all(_QUALIFIED.match(w) or _CODEY.match(w) for w in raw_words):
        kind = IDENTIFIER  # "parse_args format_help": only identifiers
    elif identifiers:
        kind = MIXED
    else:
        kind = NATURAL
    return Intent(kind=kind, identifiers=tuple(identifiers), wants=wants, words=words,
                  stems=frozenset(tokenize(" ".join(words))))


def normalise(name: str) -> str:
    """Case and separators removed: getUser, get_user, GET_USER -> getuser."""
    return re.sub(r"[_\-$]", "", name).lower()


def name_parts(name: str) -> list[str]:
    """The word parts of an identifier (camelCase, snake_case), minus one-letter parts and
    stopwords."""
    return [p for p in split_identifier(name) if len(p) > 1 and p not in STOPWORDS]


__all__ = ["Intent", "classify_query", "normalise", "name_parts", "IDENTIFIER", "NATURAL",
           "MIXED"]
