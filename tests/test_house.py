"""Checks that replace ones that could not fail: each asserts behaviour a change could break."""

from __future__ import annotations

import dataclasses
from dataclasses import MISSING
from pathlib import Path

import pytest

from index_harness import settings
from sample_workspace import FILES, write_files
from semcode.chunking import CHUNKER_VERSION, ChunkerConfig
from semcode.config import Settings
from semcode.index.indexer import Indexer
from semcode.kinds import Role
from semcode.lsp import params
from semcode.models import registry
from semcode.models.base import ModelError, ModelMissing
from semcode.search.engine import MAX_QUERY_CHARS, SearchError, SearchRequest
from semcode.search.ranking import RankingParams
from semcode.states import ModelState


def test_an_index_from_another_chunker_version_is_rechunked(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    root.mkdir()
    write_files(root, FILES)
    ix = Indexer(root, settings(tmp_path / "index"))
    ix.sync()
    chunks = ix.store.count("chunks")
    assert chunks > 0 and ix.store.get_meta("chunker_version") == CHUNKER_VERSION
    with ix.write_lock.hold():
        ix.store.set_meta("chunker_version", CHUNKER_VERSION + "-older")
    ix.close()

    again = Indexer(root, settings(tmp_path / "index"))
    try:  # opened under the current version: the old chunks are gone, then re-made
        assert again.store.get_meta("chunker_version") == CHUNKER_VERSION
        assert again.store.count("chunks") == 0
        again.sync()
        assert again.store.count("chunks") == chunks
    finally:
        again.close()


def test_the_lsp_and_the_engine_share_the_query_cap() -> None:
    at_cap = "x" * MAX_QUERY_CHARS
    assert params.query_text("semcode/search", at_cap) == at_cap
    SearchRequest(query=at_cap).validate()
    with pytest.raises(params.ParamError, match=f"at most {MAX_QUERY_CHARS}"):
        params.query_text("semcode/search", at_cap + "x")
    with pytest.raises(SearchError, match=f"longer than {MAX_QUERY_CHARS}"):
        SearchRequest(query=at_cap + "x").validate()


@pytest.mark.parametrize(("error", "state"), [
    (ModelMissing("model file not on this machine"), ModelState.MISSING),
    # A model that fails to load with "not found" in its message is broken, not missing:
    # the state follows the error's type, never its text.
    (ModelError("cannot load: tensor 'output.weight' not found"), ModelState.ERROR),
])
def test_a_missing_model_is_told_by_its_error_type(monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path, error: ModelError,
                                                    state: ModelState) -> None:
    model = tmp_path / "model.gguf"
    model.write_bytes(b"GGUF")

    def build(backend: str, request: object) -> object:
        raise error

    monkeypatch.setattr(registry, "build_model", build)
    models = registry.ModelSet(Settings(embedding_model=str(model), reranker_model="off"))
    assert models.embedder() is None
    status = models.status()[Role.EMBEDDER]
    assert status.state == state and str(error) in status.message


def test_defaults_have_one_home_in_settings() -> None:
    # RankingParams declares no defaults of its own; built from the shipped settings it
    # carries theirs (it once said file_keep 1 and definition 0.0 beside Settings' 3 and 2.0).
    assert all(f.default is MISSING and f.default_factory is MISSING
               for f in dataclasses.fields(RankingParams))
    shipped = Settings()
    params = RankingParams.from_settings(shipped)
    assert (params.file_keep, params.definition) == (shipped.rank_file_keep,
                                                      shipped.rank_definition)
    sizes = ChunkerConfig()
    assert (sizes.max_chunk_lines, sizes.chunk_overlap_lines, sizes.window_lines) == (
        shipped.max_chunk_lines, shipped.chunk_overlap_lines, shipped.window_lines)
