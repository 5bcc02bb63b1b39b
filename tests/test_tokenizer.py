"""Code-aware BM25 tokens."""

from __future__ import annotations

import sysconfig
import time
from pathlib import Path

import pytest

from semcode.chunks import Chunk, SymbolKind
from semcode.index.tokenizer import (
    FIELD_WEIGHTS,
    STOPWORDS,
    chunk_tokens,
    path_tokens,
    query_tokens,
    split_identifier,
    tokenize,
)


@pytest.mark.parametrize("word, parts", [
    ("getHTTPResponse2Code", ["get", "http", "response", "2", "code"]),
    ("snake_case_name", ["snake", "case", "name"]),
    ("kebab-case-name", ["kebab", "case", "name"]),
    ("PascalCase", ["pascal", "case"]),
    ("XMLHttpRequest", ["xml", "http", "request"]),
    ("__init__", ["init"]),
    ("sha256sum", ["sha", "256", "sum"]),
    ("IOError", ["io", "error"]),
    ("ALL_CAPS_CONST", ["all", "caps", "const"]),
    ("x", ["x"]),
    ("größeWert", ["größewert"]),  # non-ASCII: no case splitting, never lost
])
def test_split_identifier(word: str, parts: list[str]) -> None:
    assert split_identifier(word) == parts


def test_whole_identifier_and_parts_lowercased_then_stemmed() -> None:
    assert tokenize("getUserAccounts") == ["getuseraccount", "get", "user", "account"]
    # the separators vanish from the whole form, so conventions meet
    assert tokenize("get_user")[0] == tokenize("getUser")[0] == tokenize("get-user")[0]
    assert tokenize("parsing parsed parses") == ["pars", "pars", "pars"]


def test_stopwords_and_short_tokens() -> None:
    assert tokenize("the self is a x i 1 of return None") == []
    assert {"self", "the", "return", "def"} <= STOPWORDS
    assert "class" not in STOPWORDS and "get" not in STOPWORDS
    # a stopword part is dropped, the whole identifier kept
    assert tokenize("is_valid") == ["isvalid", "valid"]
    # multi-digit numbers stay
    assert tokenize("port 8080") == ["port", "8080"]


def test_kebab_only_between_words() -> None:
    assert tokenize("a-1 x - y") == []
    assert tokenize("well-known") == ["wellknown", "well", "known"]
    assert tokenize("count-1") == ["count"]


def test_queries_match_documents() -> None:
    assert query_tokens("refresh expired tokens") == tokenize("refresh expired tokens")
    assert set(query_tokens("user account")) <= set(tokenize("def getUserAccount(): ..."))


def test_chunk_tokens() -> None:
    chunk = Chunk(path="server/semcode/index/lexical.py", language="python",
                  kind=SymbolKind.Method, name="rebuildIndex", container="LexicalIndex",
                  start_line=1, end_line=3, text="def rebuildIndex(self):\n    swap()\n")
    toks = chunk_tokens(chunk, fields=True)
    name = tokenize("rebuildIndex")
    assert toks[: len(name) + 1] == ["§name", *name]
    flat = chunk_tokens(chunk)  # the default layout: the name repeated, no markers
    assert flat[: 2 * len(name)] == name * 2 and not any(t.startswith("§") for t in flat)
    assert path_tokens(chunk.path) == ["server", "semcod", "index", "lexic"]
    for t in tokenize("LexicalIndex") + path_tokens(chunk.path) + ["swap"]:
        assert t in toks
    assert "py" not in toks


def test_chunk_tokens_are_fields() -> None:
    """Each field after its marker: name, container, path, signature, doc, body."""
    text = ('@decorator\ndef refresh(token):\n    """Renew an expired session token."""\n'
            '    # talk to the server\n    return server.renew(token)\n')
    chunk = Chunk(path="auth/session.py", language="python", kind=SymbolKind.Function,
                  name="refresh", container="Session", start_line=10, end_line=14,
                  text=text, name_line=11)
    toks = chunk_tokens(chunk, fields=True)
    markers = [t for t in toks if t in FIELD_WEIGHTS]
    assert markers == ["§name", "§container", "§path", "§signature", "§doc", "§body"]

    def field(name: str) -> list[str]:
        start = toks.index(name) + 1
        end = next((i for i in range(start, len(toks)) if toks[i] in FIELD_WEIGHTS), len(toks))
        return toks[start:end]

    assert field("§signature") == tokenize("def refresh(token):")
    assert set(tokenize("Renew an expired session token talk server")) == set(field("§doc"))
    assert "decor" in field("§body") and "renew" in field("§body")
    # No text can produce a marker, so no query can match one.
    assert not set(tokenize("§name § name §doc")) & set(FIELD_WEIGHTS)


def test_c_preprocessor_lines_are_not_comments() -> None:
    chunk = Chunk(path="a.c", language="c", kind=SymbolKind.Module, name="a.c", container="",
                  start_line=1, end_line=2, text="#include <stdio.h>\n// a comment\n")
    toks = chunk_tokens(chunk, fields=True)
    assert toks.index("stdio") > toks.index("§body") > toks.index("comment") > toks.index("§doc")


@pytest.mark.bench
def test_tokenizer_throughput_report(capsys: pytest.CaptureFixture[str]) -> None:
    """Prints tokens/s and MB/s on real code (a measurement, not an assertion)."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    texts = [p.read_text(encoding="utf-8", errors="replace")
             for p in sorted(stdlib.glob("*.py"))[:150]]
    size = sum(len(t) for t in texts)
    t0 = time.perf_counter()
    n = sum(len(tokenize(t)) for t in texts)  # includes cold caches
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    n = sum(len(tokenize(t)) for t in texts)
    warm = time.perf_counter() - t0
    with capsys.disabled():
        print(f"\n[measure] tokenize {size / 1e6:.1f} MB of stdlib code -> {n:,} tokens: "
              f"cold {n / cold:,.0f} tok/s ({size / cold / 1e6:.1f} MB/s), "
              f"warm {n / warm:,.0f} tok/s ({size / warm / 1e6:.1f} MB/s)")
