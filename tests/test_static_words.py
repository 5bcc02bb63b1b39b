"""Code split into words before a static (model2vec) model reads it (`static-code-words`).

The tiny random model of tiny_static.py is loaded through the real loading code; nothing
is downloaded."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from semcode.chunks import Chunk, SymbolKind
from semcode.index import tokenizer
from semcode.models.backends import ModelRequest, build_model
from semcode.models.profiles import STATIC_CODE_WORDS, STATIC_MEAN, get_embedding_profile
from semcode.models.static import StaticEmbedder
from semcode.words import code_words, split_identifier
from tiny_static import write_static_model


@pytest.fixture(scope="module")
def static_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_static_model(tmp_path_factory.mktemp("static") / "tiny-m2v")


@pytest.fixture(scope="module")
def words_model(static_model: Path) -> StaticEmbedder:
    return StaticEmbedder(static_model, profile=STATIC_CODE_WORDS)


@pytest.mark.parametrize("text, words", [
    ("def parseHttpHeaders(raw_bytes):", ["def", "parse", "http", "headers", "raw", "bytes"]),
    ("XMLHttpRequest.open()", ["xml", "http", "request", "open"]),
    ("self.__cache_size += 1", ["self", "cache", "size", "1"]),
    ("sha256sum --check-all", ["sha", "256", "sum", "check", "all"]),
    ("foo::Bar<T> -> *mut u8", ["foo", "bar", "t", "mut", "u", "8"]),
    ("größeWert = 2", ["größewert", "2"]),
    ("   // ---- ==== {}", []),
])
def test_code_words_split_identifiers_and_drop_punctuation(text, words):
    assert code_words(text) == words


def test_bm25_and_the_static_model_split_with_one_function():
    # one implementation (semcode.words), so BM25 and the static model read
    # identifiers alike
    assert tokenizer.split_identifier is split_identifier
    assert split_identifier("getHTTPResponse2Code") == ["get", "http", "response", "2", "code"]


def test_query_and_document_go_through_the_same_splitting(words_model):
    spellings = ["parseConfig", "parse_config", "PARSE_CONFIG", "parse-config",
                 "ParseConfig()", "parse config"]
    queries = np.stack([words_model.embed_query(s) for s in spellings])
    assert np.allclose(queries, queries[0], atol=1e-6)
    # a one-line document is the same words: the same vector as the query
    docs = words_model.embed_documents(spellings)
    assert np.allclose(docs, queries[0], atol=1e-6)
    # what the model's tokenizer is given: words, not the identifier's pieces
    ids = words_model.token_ids([words_model.prepare_query("parseConfig(path)")])[0]
    assert ids == words_model.token_ids(["parse config path"])[0]


def test_a_symbols_header_counts_twice_in_documents_only(words_model):
    chunk = Chunk(path="cfg.py", start_line=1, end_line=2, name="load_settings",
                  kind=SymbolKind.Function, container="", language="python",
                  text="def load_settings(path):\n    return read(path)\n")
    text = chunk.embedding_text()
    assert words_model.prepare_document(text).split() == (
        ["function", "load", "settings"] * 2
        + ["def", "load", "settings", "path", "return", "read", "path"])
    # a query is never doubled (its first line is all there is)
    assert words_model.prepare_query("load settings\nfrom path").split() == [
        "load", "settings", "from", "path"]


def test_verbatim_profile_gives_the_model_the_text_as_it_is(static_model):
    plain = StaticEmbedder(static_model)
    assert plain.profile.name == STATIC_MEAN.name
    assert plain.prepare_query("parseConfig(path)") == "parseConfig(path)"
    assert plain.prepare_document("a\nb") == "a\nb"
    # camelCase glued together by the lowercasing tokenizer is not the same text
    assert not np.allclose(plain.embed_query("parseConfig"), plain.embed_query("parse config"))


def test_the_profile_is_part_of_the_cache_identity(static_model, words_model):
    plain = StaticEmbedder(static_model)
    assert plain.info.identity != words_model.info.identity
    assert plain.info.identity.split(":")[1] == words_model.info.identity.split(":")[1]


def test_the_profile_is_chosen_by_the_embedding_profile_setting(static_model, tmp_path):
    from semcode.config import Settings

    assert get_embedding_profile("static-code-words") is STATIC_CODE_WORDS
    settings = Settings.from_mapping({"embedding_model": str(static_model),
                                      "embedding_profile": "static-code-words",
                                      "reranker_model": "off", "index_dir": str(tmp_path)})
    model = build_model("model2vec", ModelRequest(
        role="embedder", spec=str(static_model), settings=settings, download=False))
    assert isinstance(model, StaticEmbedder)
    assert model.profile.name == "static-code-words"
