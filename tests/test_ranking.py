"""Query intent, each ranking factor, adaptive fusion, and the explanation in `stages`."""

from __future__ import annotations

import contextlib
import sqlite3
from dataclasses import replace
from pathlib import Path

import pytest

from semcode.chunks import Chunk, SymbolKind
from semcode.config import ConfigError, Settings
from semcode.search.engine import Engine, SearchError, SearchRequest
from semcode.search.fusion import intent_weights
from semcode.search.intent import IDENTIFIER, MIXED, NATURAL, classify_query
from semcode.search.ranking import Candidate, RankingParams, rank

# ------------------------------------------------------------------------------ intent


@pytest.mark.parametrize("query, kind, names", [
    ("parseArgs", IDENTIFIER, {"parseArgs"}),
    ("parse_args", IDENTIFIER, {"parse_args"}),
    ("urlencode", IDENTIFIER, {"urlencode"}),
    ("http.client.HTTPConnection", IDENTIFIER, {"http.client.HTTPConnection", "HTTPConnection"}),
    ("std::vector", IDENTIFIER, {"std::vector", "vector"}),
    ("Foo#bar", IDENTIFIER, {"Foo#bar", "bar"}),
    ("parse_args format_help", IDENTIFIER, {"parse_args", "format_help"}),
    ("where do we refresh expired tokens", NATURAL, set()),
    ("why does parse_args drop the separator", MIXED, {"parse_args"}),
    ("how is `Session` closed", MIXED, {"Session"}),
    ("what does getUserAccount() return", MIXED, {"getUserAccount"}),
])
def test_intent(query: str, kind: str, names: set[str]) -> None:
    intent = classify_query(query)
    assert intent.kind == kind
    assert set(intent.identifiers) == names


def test_words_asking_for_a_kind() -> None:
    assert classify_query("tests for the retry logic").wants == {"test"}
    assert classify_query("documentation of the config loader").wants == {"docs", "config"}
    assert classify_query("an example of streaming uploads").wants == {"example"}
    assert classify_query("retry logic").wants == frozenset()
    assert classify_query("tests").wants == frozenset()  # one word: a symbol lookup


# ------------------------------------------------------------------------------ factors
def chunk(name: str, path: str = "src/x.py", *, content: str = "code",
          kind: SymbolKind = SymbolKind.Function, container: str = "", part: int = 0) -> Chunk:
    return Chunk(path=path, language="python", kind=kind, name=name, container=container,
                 start_line=1, end_line=2, text=f"def {name}():\n    pass\n", name_line=1,
                 part=part, content=content)


def cands(*chunks: Chunk) -> list[Candidate]:
    """Candidates in fused order with RRF-like decreasing scores."""
    return [Candidate(i + 1, 1.0 / (60 + i + 1), c) for i, c in enumerate(chunks)]


# Every factor off, from the shipped settings (their one home).
OFF = replace(RankingParams.from_settings(Settings()), base="rrf", priors={}, prior_module=1.0,
              prior_part=1.0,
              lift=1.0, definition=0.0, path=0.0, container=0.0, file_decay=1.0)


def names(ranked: list) -> list[str]:
    return [r.chunk.name for r in ranked]


def test_nothing_on_keeps_the_fused_order() -> None:
    cs = cands(chunk("a", "a.py"), chunk("b", "b.py"), chunk("c", "c.py"))
    assert names(rank(cs, classify_query("some words here"), OFF)) == ["a", "b", "c"]
    assert names(rank(cs, classify_query("x"), replace(OFF, enabled=False))) == ["a", "b", "c"]


def test_content_prior_demotes_tests_and_docs_for_sentences() -> None:
    cs = cands(chunk("test_retry", "tests/test_r.py", content="test"),
               chunk("Retry", "README.md", content="docs"), chunk("retry", "src/r.py"))
    p = replace(OFF, priors={"test": 0.5, "docs": 0.5})
    out = rank(cs, classify_query("how are failed requests retried"), p)
    assert names(out)[0] == "retry"
    assert out[1].factors == {"content:test": 0.5}


def test_asking_for_a_kind_lifts_it() -> None:
    cs = cands(chunk("retry", "src/r.py"), chunk("test_retry", "tests/test_r.py", content="test"))
    p = replace(OFF, priors={"test": 0.5}, lift=1.2)
    out = rank(cs, classify_query("tests for the retry logic"), p)
    assert names(out)[0] == "test_retry"
    assert out[0].factors == {"content:test": 1.2}


def test_module_chunks_get_their_prior() -> None:
    cs = cands(chunk("x.py", "src/x.py", kind=SymbolKind.Module), chunk("load", "src/y.py"))
    out = rank(cs, classify_query("load the settings file"), replace(OFF, prior_module=0.5))
    assert names(out) == ["load", "x.py"]
    assert out[1].factors == {"module": 0.5}


def test_definition_boost_tiers() -> None:
    cs = cands(chunk("caller", "a.py"), chunk("get_user", "b.py"), chunk("getUser", "c.py"))
    p = replace(OFF, definition=1.0, definition_normalised=0.8)
    out = rank(cs, classify_query("getUser"), p)
    assert names(out)[:2] == ["getUser", "get_user"]  # exact > normalised > none
    assert out[0].factors["definition"] == 1.0 and out[1].factors["definition"] == 0.8
    # A sentence naming the identifier: scaled by definition_mixed.
    out = rank(cs, classify_query("why does getUser fail"), replace(p, definition_mixed=0.5))
    assert out[0].chunk.name == "getUser" and out[0].factors["definition"] == 0.5


def test_definition_boost_takes_a_typedef_structs_tag_as_its_name() -> None:
    # `typedef struct yaml_parser_s {…} yaml_parser_t;` answers to both names (the tag
    # read back from its header line: chunking/names.py); a chunk that only uses the tag
    # gets nothing.
    typedef = Chunk(path="include/yaml.h", language="c", kind=SymbolKind.Struct,
                    name="yaml_parser_t", container="", start_line=1, end_line=3,
                    text="typedef struct yaml_parser_s {\n  int error;\n} yaml_parser_t;",
                    name_line=3)
    user = Chunk(path="src/api.c", language="c", kind=SymbolKind.Function, name="reset",
                 container="", start_line=1, end_line=1,
                 text="void reset(struct yaml_parser_s *p) {}", name_line=1)
    p = replace(OFF, definition=1.0)
    for query in ("yaml_parser_s", "yaml_parser_t"):
        out = rank(cands(user, typedef), classify_query(query), p)
        assert names(out) == ["yaml_parser_t", "reset"]
        assert out[0].factors["definition"] == 1.0 and "definition" not in out[1].factors


def test_a_sentence_naming_a_type_asks_about_its_members() -> None:
    # "create an IOCase from a name": the enum and its constructor are named, the answer is
    # a member (forName). Their boost is scaled by definition_type there; a lookup of the
    # name alone still puts the type first.
    io_case = chunk("IOCase", "IOCase.java", kind=SymbolKind.Enum)
    ctor = chunk("IOCase", "IOCase.java", kind=SymbolKind.Constructor, container="IOCase")
    member = chunk("forName", "IOCase.java", kind=SymbolKind.Method, container="IOCase")
    p = replace(OFF, definition=1.0, definition_mixed=0.5, definition_type=0.0)
    out = rank(cands(io_case, ctor, member), classify_query("create an IOCase from a name"), p)
    assert all("definition" not in r.factors for r in out)
    assert names(out) == ["IOCase", "IOCase", "forName"]  # the fused order decides
    out = rank(cands(member, io_case), classify_query("IOCase"), p)
    assert names(out)[0] == "IOCase" and out[0].factors["definition"] == 1.0
    half = rank(cands(io_case), classify_query("create an IOCase from a name"),
                replace(p, definition_type=0.5))
    assert half[0].factors["definition"] == 0.25  # 1 x mixed 0.5 x type 0.5


def test_parts_of_a_long_definition_get_their_prior() -> None:
    # A part of a function split for length matches many words by its size alone.
    cs = cands(chunk("handle", "a.py", part=2), chunk("lazyrouter", "b.py"))
    out = rank(cs, classify_query("adds the base router lazily"), replace(OFF, prior_part=0.5))
    assert names(out) == ["lazyrouter", "handle"]
    assert out[1].factors == {"part": 0.5}


def test_definition_stem_tier_for_sentences() -> None:
    cs = cands(chunk("handle", "a.py"), chunk("token", "t.py"), chunk("refresh_tokens", "b.py"))
    p = replace(OFF, definition=1.0, definition_stem=0.4, definition_natural=1.0)
    out = rank(cs, classify_query("where do we refresh an expired token"), p)
    assert names(out)[0] == "refresh_tokens"
    assert out[0].factors["definition"] == pytest.approx(0.4)


def test_path_match() -> None:
    cs = cands(chunk("run", "src/a.py"), chunk("run2", "src/retry/backoff.py"))
    out = rank(cs, classify_query("exponential backoff between retries"), replace(OFF, path=0.5))
    assert names(out)[0] == "run2" and out[0].factors["path"] > 0


def test_container_aggregation() -> None:
    cs = cands(chunk("get", "s.py", container="Session", kind=SymbolKind.Method),
               chunk("post", "s.py", container="Session", kind=SymbolKind.Method),
               chunk("Other", "o.py", kind=SymbolKind.Class),
               chunk("Session", "s.py", kind=SymbolKind.Class))
    out = rank(cs, classify_query("send http requests"), replace(OFF, container=1.0))
    assert names(out)[0] == "Session" and "container" in out[0].factors


def test_file_saturation() -> None:
    cs = cands(*[chunk(f"f{i}", "big.py") for i in range(5)], chunk("g", "other.py"))
    out = rank(cs, classify_query("some words"), replace(OFF, file_decay=0.5, file_keep=2))
    assert names(out)[:3] == ["f0", "f1", "g"]
    assert out[3].factors["file"] == 0.5


def test_score_base_keeps_the_retrievers_gaps() -> None:
    """RRF gives ranks 1 and 2 nearly the same base; the scores tell a clear winner from
    a close call, so a small boost cannot overturn a much better BM25 match."""
    a, b = chunk("bucket", "ratelimit.go"), chunk("refresh", "tokens.py")
    cs = [Candidate(1, 1 / 61, a, {"lexical": 12.0}), Candidate(2, 1 / 62, b, {"lexical": 3.0})]
    intent = classify_query("token bucket rate limiter")
    p = replace(OFF, path=0.3)
    assert names(rank(cs, intent, replace(p, base="rrf")))[0] == "refresh"  # RRF: overturned
    out = rank(cs, intent, replace(p, base="score"))
    assert names(out)[0] == "bucket" and out[0].score == pytest.approx(1.0)
    assert out[1].score == pytest.approx(0.25 + 0.3 / 4)  # 3.0/12.0, plus path 1 of 4 words
    # Weighted average over retrievers; a retriever that missed a candidate gives it 0.
    cs = [Candidate(1, 0.03, a, {"lexical": 10.0}), Candidate(2, 0.02, b, {"dense": 0.8})]
    out = rank(cs, classify_query("some words"), replace(OFF, base="score",
                                                         weights={"lexical": 1, "dense": 3}))
    assert [round(r.score, 3) for r in out] == [0.75, 0.25] and names(out) == ["refresh", "bucket"]


def test_long_definition_shown_once() -> None:
    cs = cands(chunk("big", "a.py", part=2), chunk("big", "a.py", part=1), chunk("x", "b.py"))
    assert names(rank(cs, classify_query("big things"), OFF)) == ["big", "x"]


def test_depth_limits_rescoring_and_keeps_the_tail_below() -> None:
    cs = cands(chunk("a", "a.py"), chunk("b", "b.py"), chunk("target", "c.py"))
    out = rank(cs, classify_query("target"), replace(OFF, definition=5.0, depth=2))
    assert names(out) == ["a", "b", "target"]
    assert out[-1].score < out[-2].score


# ------------------------------------------------------------------------------ fusion
def test_fusion_weights_follow_intent() -> None:
    assert intent_weights(IDENTIFIER, 1.0, 1.0, 0.5, 0.7) == {"lexical": 1.0, "dense": 0.5}
    assert intent_weights(NATURAL, 1.0, 1.0, 0.5, 0.7) == {"lexical": 0.7, "dense": 1.0}
    assert intent_weights(MIXED, 1.0, 2.0, 0.5, 0.7) == {"lexical": 1.0, "dense": 2.0}


def test_ranking_settings_are_validated() -> None:
    with pytest.raises(ConfigError, match="rank_prior_test"):
        Settings.from_mapping({"rank_prior_test": -1})
    with pytest.raises(ConfigError, match="rank_file_decay"):
        Settings.from_mapping({"rank_file_decay": 0})
    assert Settings.from_mapping({"rank_path": "0"}).rank_path == 0.0


# ------------------------------------------------------------------------------ end to end
@pytest.fixture()
def engine(tmp_path: Path) -> Engine:
    ws = tmp_path / "ws"
    (ws / "src").mkdir(parents=True)
    (ws / "tests").mkdir()
    (ws / "docs").mkdir()
    (ws / "src" / "tokens.py").write_text(
        "def refresh_token(session):\n"
        "    \"\"\"Refresh an expired access token for the session.\"\"\"\n"
        "    return session.renew()\n")
    (ws / "tests" / "test_tokens.py").write_text(
        "from src.tokens import refresh_token\n\n"
        "def test_refresh_token_renews_expired_token():\n"
        "    # refresh an expired token, refresh_token must renew the expired access token\n"
        "    assert refresh_token(FakeSession()) == 'renewed token refresh'\n")
    (ws / "docs" / "tokens.md").write_text(
        "# Refreshing tokens\n\nCall `refresh_token` to refresh an expired access token: "
        "refresh_token renews the expired token of a session.\n")
    settings = Settings.from_mapping({"embedding_model": "off", "reranker_model": "off",
                                      "index_dir": str(tmp_path / "index")})
    eng = Engine.open(ws, settings)
    eng.sync()
    yield eng
    with contextlib.suppress(sqlite3.ProgrammingError):  # a test may have closed it
        eng.close()


def test_definition_beats_its_test_and_its_docs(engine: Engine) -> None:
    for query in ("refresh_token", "how do we refresh an expired access token"):
        hits = engine.search(SearchRequest(query, limit=5, mode="lexical")).hits
        assert hits[0].chunk.path == "src/tokens.py", query
        assert {h.chunk.content for h in hits} >= {"code", "test", "docs"}
    # ... unless the query asks for tests.
    hits = engine.search(SearchRequest("tests for refreshing an expired token", limit=5,
                                       mode="lexical")).hits
    assert hits[0].chunk.content == "test"


def test_stages_explain_the_order(engine: Engine) -> None:
    hits = engine.search(SearchRequest("refresh_token", limit=5, mode="lexical")).hits
    top = hits[0].stages["ranking"]
    assert top.rank == 1 and top.factors is not None and top.factors["definition"] > 0
    test_hit = next(h for h in hits if h.chunk.content == "test")
    assert test_hit.stages["ranking"].factors["content:test"] < 1
    assert "fused" in test_hit.stages and "lexical" in test_hit.stages
    off = replace(engine.settings, ranking=False)
    engine.update_settings(off)
    hits = engine.search(SearchRequest("refresh_token", limit=5, mode="lexical")).hits
    assert all("ranking" not in h.stages for h in hits)


def test_contents_filter(engine: Engine) -> None:
    hits = engine.search(SearchRequest("refresh expired token", mode="lexical",
                                       contents=("test", "docs"))).hits
    assert hits and {h.chunk.content for h in hits} <= {"test", "docs"}
    with pytest.raises(SearchError, match="content kind"):
        engine.search(SearchRequest("x", contents=("prose",)))


# ------------------------------------------------------------------------------ adapters
def test_cli_json_has_content_and_ranking_factors(engine: Engine, tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch,
                                                  capsys: pytest.CaptureFixture[str]) -> None:
    import json

    from semcode import cli

    monkeypatch.setenv("SEMCODE_CACHE_DIR", str(tmp_path / "cache"))
    ws = str(engine.root)
    args = ["search", "-w", ws, "--json", "--mode", "lexical", "--embedding-model", "off",
            "--reranker-model", "off", "refresh_token"]
    assert cli.main(args) == 0
    results = json.loads(capsys.readouterr().out)
    assert results[0]["content"] == "code" and results[0]["path"] == "src/tokens.py"
    ranking_stage = results[0]["stages"]["ranking"]
    assert ranking_stage["rank"] == 1 and ranking_stage["factors"]["definition"] > 0
    assert "factors" not in results[0]["stages"]["fused"]
    assert cli.main([*args[:-1], "--content", "test,docs", "--content", "example",
                     "refresh_token"]) == 0
    results = json.loads(capsys.readouterr().out)
    assert results and {r["content"] for r in results} <= {"test", "docs", "example"}


def test_lsp_contents_param_and_item_content() -> None:
    from semcode.lsp.convert import _stage
    from semcode.lsp.params import ParamError, search_request
    from semcode.search.engine import StageScore

    req = search_request({"query": "x", "contents": ["test", "docs"]})
    assert req.contents == ("test", "docs")
    assert search_request({"query": "x"}).contents == ()
    with pytest.raises(ParamError, match="contents"):
        search_request({"query": "x", "contents": ["prose"]})
    with pytest.raises(ParamError, match="contents"):
        search_request({"query": "x", "contents": "test"})
    assert _stage(StageScore(1, 0.5, {"definition": 1.0})) == {
        "rank": 1, "score": 0.5, "factors": {"definition": 1.0}}
    assert _stage(StageScore(2, 0.25)) == {"rank": 2, "score": 0.25}


@pytest.mark.parametrize("query, name", [
    ("definition of Response", "Response"),
    ("find get_small", "get_small"),
    ("where is is_object defined", "is_object"),
    ("how does Coalesce work", "Coalesce"),
    ("show me the method map_any", "map_any"),
    ("exponent method", "exponent"),
    ("where do we implement AsPrimitive?", "AsPrimitive"),
])
def test_a_name_in_lookup_phrasing_is_an_identifier_lookup(query: str, name: str) -> None:
    intent = classify_query(query)
    assert intent.kind == IDENTIFIER and intent.identifiers == (name,)


def test_bm25_fields_setting_changes_the_token_layout(engine: Engine, tmp_path: Path) -> None:
    def markers(eng: Engine) -> bool:
        lexical = eng.indexer.lexical
        return any(t.startswith("§") for cid in eng.indexer.refs.ids().tolist()
                   for t in lexical.tokens(cid))

    assert not markers(engine)  # flat by default
    root, settings = engine.root, engine.settings
    engine.close()
    fields = Engine.open(root, replace(settings, bm25_fields=True))
    fields.sync()  # the index is re-chunked: the layout is part of the chunker version
    assert markers(fields)
    hits = fields.search(SearchRequest("refresh_token", limit=3, mode="lexical")).hits
    assert hits[0].chunk.path == "src/tokens.py"
    fields.close()
    again = Engine.open(root, settings)
    again.sync()
    assert not markers(again)
    again.close()
