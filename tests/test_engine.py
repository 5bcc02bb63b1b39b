"""The engine end to end on a small workspace: real chunking, SQLite, bm25s, usearch and
(where a test asks for them) the tiny llama.cpp models."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from sample_workspace import write_files
from semcode.config import Settings
from semcode.search.engine import Engine, SearchError, SearchRequest


def lexical_settings(tmp_path: Path, **extra: object) -> Settings:
    return Settings.from_mapping({"embedding_model": "off", "reranker_model": "off",
                                  "index_dir": str(tmp_path / "index"), **extra})


def model_settings(tmp_path: Path, tiny_models, **extra: object) -> Settings:
    return Settings.from_mapping({"embedding_model": str(tiny_models.embedder),
                                  "reranker_model": str(tiny_models.reranker),
                                  "index_dir": str(tmp_path / "index"), **extra})


def names(response) -> list[str]:
    return [h.chunk.qualified_name for h in response.hits]


def test_lexical_search_finds_symbols_with_line_ranges(workspace, tmp_path):
    engine = Engine.open(workspace, lexical_settings(tmp_path))
    report = engine.sync()
    assert report.files_seen == 4 and report.files_indexed == 4
    response = engine.search(SearchRequest("sleep with exponential backoff between attempts",
                                           limit=5))
    assert response.mode == "lexical"  # no embedder: degraded, and said so
    assert any("semantic search is off" in n for n in response.notices)
    top = response.hits[0].chunk
    assert top.qualified_name == "HttpClient.get_with_retry"
    assert (top.path, top.start_line, top.end_line) == ("src/http_client.py", 11, 17)
    assert response.hits[0].stages["lexical"].rank == 1

    response = engine.search(SearchRequest("refresh expired token", limit=3))
    assert names(response)[0] == "refreshExpiredToken"
    assert response.hits[0].chunk.language == "typescript"
    engine.close()


def test_filters_by_language_path_and_kind(workspace, tmp_path):
    engine = Engine.open(workspace, lexical_settings(tmp_path))
    engine.sync()
    only_go = engine.search(SearchRequest("read configuration file", languages=("go",)))
    assert {h.chunk.language for h in only_go.hits} == {"go"}
    only_src = engine.search(SearchRequest("token", paths=("src/**",)))
    assert only_src.hits and all(h.chunk.path.startswith("src/") for h in only_src.hits)
    classes = engine.search(SearchRequest("token cache user", kinds=(5,)))
    assert names(classes) == ["TokenCache"]
    engine.close()


def test_bad_requests_raise_clear_errors(workspace, tmp_path):
    engine = Engine.open(workspace, lexical_settings(tmp_path))
    engine.sync()
    for bad in (SearchRequest(""), SearchRequest("x" * 10_001), SearchRequest("a", mode="fuzzy"),
                SearchRequest("a", limit=0)):
        with pytest.raises(SearchError):
            engine.search(bad)
    engine.close()


def test_incremental_updates_edit_remove_rename(workspace, tmp_path):
    engine = Engine.open(workspace, lexical_settings(tmp_path))
    engine.sync()
    # An unsaved edit is searchable at once, with the right lines.
    engine.update_file("src/tokens.ts", "export function frobnicateWidgets(w: number) {\n"
                                        "  return w * 42;\n}\n")
    hit = engine.search(SearchRequest("frobnicate widgets")).hits[0].chunk
    assert (hit.name, hit.start_line, hit.end_line) == ("frobnicateWidgets", 1, 3)
    assert "refreshExpiredToken" not in names(engine.search(SearchRequest("refresh expired")))
    # Reverting (closing the unsaved buffer) brings back the disk's content.
    engine.revert_file("src/tokens.ts")
    assert names(engine.search(SearchRequest("refresh expired token")))[0] == "refreshExpiredToken"
    assert "frobnicateWidgets" not in names(engine.search(SearchRequest("frobnicate widgets")))
    # Rename: the symbol moves with its file.
    (workspace / "src/tokens.ts").rename(workspace / "src/auth_tokens.ts")
    engine.rename_file("src/tokens.ts", "src/auth_tokens.ts")
    hit = engine.search(SearchRequest("refresh expired token")).hits[0].chunk
    assert hit.path == "src/auth_tokens.ts"
    # Removal.
    engine.remove_file("pkg/parse.go")
    assert "ParseConfigFile" not in names(engine.search(SearchRequest("parse config file")))
    engine.close()


def test_sync_picks_up_disk_changes_and_deletions(workspace, tmp_path):
    settings = lexical_settings(tmp_path)
    engine = Engine.open(workspace, settings)
    engine.sync()
    (workspace / "pkg/parse.go").unlink()
    write_files(workspace, {"lib/mailer.py": "def send_welcome_email(user):\n    pass\n"})
    report = engine.sync()
    assert (report.files_indexed, report.files_removed) == (1, 1)
    assert names(engine.search(SearchRequest("send welcome email")))[0] == "send_welcome_email"
    assert "ParseConfigFile" not in names(engine.search(SearchRequest("parse config file")))
    # No change: nothing re-chunked.
    again = engine.sync()
    assert again.files_indexed == 0 and again.files_unchanged == again.files_seen
    engine.close()


def test_persisted_index_reopens_without_rechunking(workspace, tmp_path):
    settings = lexical_settings(tmp_path)
    engine = Engine.open(workspace, settings)
    engine.sync()
    engine.close()
    reopened = Engine.open(workspace, settings)
    assert names(reopened.search(SearchRequest("retry backoff")))[0] == \
        "HttpClient.get_with_retry"  # served from the saved index before any sync
    assert reopened.sync().files_indexed == 0
    reopened.close()


def test_damaged_derived_index_is_rebuilt_from_the_store(workspace, tmp_path):
    settings = lexical_settings(tmp_path)
    engine = Engine.open(workspace, settings)
    engine.sync()
    index_dir = engine.indexer.dir
    engine.close()
    for path in (index_dir / "lexical").rglob("*"):
        if path.is_file():
            path.write_bytes(b"garbage")
    reopened = Engine.open(workspace, settings)
    assert names(reopened.search(SearchRequest("retry backoff")))[0] == \
        "HttpClient.get_with_retry"
    reopened.close()


@pytest.mark.parametrize("fields", [False, True], ids=["flat", "bm25-fields"])
def test_a_lexical_build_from_the_database_scores_as_the_sync_did(workspace, tmp_path,
                                                                   fields):
    """Tokens are not stored (schema 2): a build from the database re-derives them from
    each chunk's row, and must give exactly the sync's tokens (same hits, same scores)."""
    settings = lexical_settings(tmp_path, bm25_fields=fields)
    queries = ("retry backoff", "parse the config file", "http client get", "token")

    def scores(engine):
        return [[(h.chunk.path, h.chunk.name, h.score) for h in
                 engine.search(SearchRequest(q, mode="lexical", limit=20)).hits]
                for q in queries]

    engine = Engine.open(workspace, settings)
    engine.sync()
    synced = scores(engine)
    index_dir = engine.indexer.dir
    engine.close()
    shutil.rmtree(index_dir / "lexical")
    (index_dir / "chunks.bin").unlink()
    reopened = Engine.open(workspace, settings)
    try:
        assert scores(reopened) == synced and any(synced)
    finally:
        reopened.close()


def test_crash_before_flush_keeps_the_last_good_index(workspace, tmp_path):
    settings = lexical_settings(tmp_path)
    engine = Engine.open(workspace, settings)
    engine.sync()
    engine.close()
    engine = Engine.open(workspace, settings)
    write_files(workspace, {"lib/new.py": "def brand_new_feature():\n    pass\n"})
    engine.sync()
    # No flush, no close: as if the process died here. SQLite committed the sync; the
    # saved lexical index is a generation behind and must be rebuilt, not trusted.
    del engine
    reopened = Engine.open(workspace, settings)
    assert names(reopened.search(SearchRequest("brand new feature")))[0] == "brand_new_feature"
    reopened.close()


def test_bad_input_files_are_skipped_with_reasons_and_nothing_crashes(tmp_path):
    root = tmp_path / "bad"
    root.mkdir()
    (root / "blob.bin").write_bytes(b"\x00\x01\x02" * 100)
    (root / "latin1.py").write_bytes(b"def caf\xe9_menu():\n    return 'cr\xe8me'\n")
    with open(root / "huge.py", "wb") as f:  # 50 MB, sparse: never read
        f.truncate(50 * 1024 * 1024)
    (root / "loop").symlink_to(root)
    (root / "outside.py").symlink_to("/etc/hostname")
    engine = Engine.open(root, lexical_settings(tmp_path))
    report = engine.sync()
    indexed = {h.chunk.path for h in engine.search(SearchRequest("menu", limit=50)).hits}
    assert indexed == {"latin1.py"}  # invalid UTF-8 decoded with replacement, not lost
    assert report.files_skipped >= 3
    assert "huge.py" in engine.indexer.skipped and "blob.bin" in engine.indexer.skipped
    engine.close()


def test_empty_workspace(tmp_path):
    root = tmp_path / "empty"
    root.mkdir()
    engine = Engine.open(root, lexical_settings(tmp_path))
    assert engine.sync().chunks == 0
    assert engine.search(SearchRequest("anything")).hits == []
    engine.close()


# ----------------------------------------------------------------- with the tiny models
def test_hybrid_search_and_rerank_with_tiny_models(workspace, tmp_path, tiny_models):
    engine = Engine.open(workspace, model_settings(tmp_path, tiny_models))
    engine.sync()
    report = engine.embed_pending()
    assert report.embedded == len(engine.indexer.refs) and report.pending == 0
    req = SearchRequest("retry http request with backoff", limit=5)
    first = engine.search(req)
    assert first.mode == "hybrid" and not first.reranked
    assert all("dense" in h.stages or "lexical" in h.stages for h in first.hits)
    assert any("dense" in h.stages for h in first.hits)
    second = engine.rerank(req, first)
    assert second.reranked
    scores = [h.score for h in second.hits]
    assert scores == sorted(scores, reverse=True)
    assert all("rerank" in h.stages for h in second.hits[:3])
    assert {h.chunk_id for h in second.hits} <= {h.chunk_id for h in first.candidates}
    engine.close()
    engine.models.close()


def test_second_index_of_the_same_tree_embeds_nothing(workspace, tmp_path, tiny_models):
    settings = model_settings(tmp_path, tiny_models)
    engine = Engine.open(workspace, settings)
    engine.sync()
    first = engine.embed_pending()
    assert first.embedded > 0
    engine.close()
    engine.models.close()
    again = Engine.open(workspace, settings)
    again.sync()
    assert again.embed_pending().embedded == 0
    # Editing one function re-embeds only that chunk.
    path = workspace / "pkg/parse.go"
    path.write_text(path.read_text().replace("return decode(data)", "return decodeStrict(data)"))
    again.sync()
    assert again.embed_pending().embedded == 1
    # Renaming a file re-embeds nothing (vectors are keyed by content, not path).
    (workspace / "pkg/parse.go").rename(workspace / "pkg/parser.go")
    again.sync()
    assert again.embed_pending().embedded == 0
    again.close()
    again.models.close()


def test_model_change_reembeds_instead_of_failing(workspace, tmp_path, tiny_models):
    settings = model_settings(tmp_path, tiny_models)
    engine = Engine.open(workspace, settings)
    engine.sync()
    engine.embed_pending()
    total = len(engine.indexer.refs)
    engine.close()
    engine.models.close()
    # Another model file (same weights plus padding: another identity as far as the
    # cache can tell) must re-embed everything through the new model.
    other = tmp_path / "other.gguf"
    other.write_bytes(tiny_models.embedder.read_bytes() + b"\0" * 64)
    changed = Settings.from_mapping({"embedding_model": str(other)}, settings)
    engine = Engine.open(workspace, changed)
    engine.sync()
    assert engine.embed_pending().embedded == total
    assert engine.search(SearchRequest("token cache")).mode == "hybrid"
    engine.close()
    engine.models.close()


def test_related_code_uses_stored_vectors(workspace, tmp_path, tiny_models):
    engine = Engine.open(workspace, model_settings(tmp_path, tiny_models))
    engine.sync()
    engine.embed_pending()
    related = engine.related("src/http_client.py", 12, limit=5)
    assert related.hits
    assert all(h.chunk.qualified_name != "HttpClient.get_with_retry" for h in related.hits)
    nothing = engine.related("src/http_client.py", 999, limit=5)
    assert nothing.hits == [] and nothing.notices
    engine.close()
    engine.models.close()


def test_pieces_of_a_long_definition_appear_once(tmp_path):
    root = tmp_path / "long"
    root.mkdir()
    body = "\n".join(f"    total += quantize_sample(value_{i})" for i in range(300))
    (root / "dsp.py").write_text(f"def process_samples(values):\n    total = 0\n{body}\n"
                                 "    return total\n")
    engine = Engine.open(root, lexical_settings(tmp_path))
    engine.sync()
    pieces = [c for c in engine.indexer.chunks(engine.indexer.refs).values() if c.part]
    assert len(pieces) >= 3 and {c.name for c in pieces} == {"process_samples"}
    hits = engine.search(SearchRequest("quantize sample total", limit=10)).hits
    assert [h.chunk.name for h in hits].count("process_samples") == 1
    engine.close()


def test_directories_deleted_and_created_as_one_event(workspace, tmp_path):
    import shutil

    engine = Engine.open(workspace, lexical_settings(tmp_path))
    engine.sync()
    shutil.rmtree(workspace / "src")
    engine.remove_file("src")  # a file watcher reports the folder, not each file
    assert {h.chunk.path for h in engine.search(SearchRequest("token", limit=50)).hits} \
        <= {"README.md"}
    write_files(workspace, {"lib/deep/mailer.py": "def send_welcome_email(user):\n    pass\n"})
    engine.revert_file("lib")  # "created: lib"
    assert names(engine.search(SearchRequest("send welcome email")))[0] == "send_welcome_email"
    assert engine.status().files == 3
    engine.close()


def test_identical_chunks_are_embedded_once(tmp_path, tiny_models):
    root = tmp_path / "copies"
    root.mkdir()
    body = "def checksum(data):\n    return sum(data) % 255\n"
    for n in range(40):  # more copies than one embedding batch holds
        (root / f"copy{n:02}.py").write_text(body)
    engine = Engine.open(root, model_settings(tmp_path, tiny_models))
    engine.sync()
    report = engine.embed_pending()
    assert report.embedded == 1 and report.pending == 0
    assert len(engine.indexer.vectors) == 40
    engine.close()
    engine.models.close()


def test_rerank_depth_fits_the_budget_even_when_the_reranker_is_cold(workspace, tmp_path,
                                                                       tiny_models):
    def reranked_count(**extra: object) -> int:
        engine = Engine.open(workspace, model_settings(tmp_path, tiny_models, **extra))
        engine.sync()
        engine.embed_pending()  # dense retrieval makes every chunk a candidate
        req = SearchRequest("refresh the token", limit=20)
        first = engine.search(req)
        assert len(first.candidates) > 5
        second = engine.rerank(req, first)
        engine.close()
        engine.models.close()  # the next engine starts with a cold reranker again
        assert second.reranked
        return sum("rerank" in h.stages for h in second.candidates)

    # A cold reranker has no measured speed: a short probe measures it, and a budget of
    # 1 ms leaves just the minimum a rerank promises.
    assert reranked_count(rerank_budget_ms=1, rerank_depth=30) == 3
    # No budget: the whole depth (all candidates here), cold or not.
    assert reranked_count(rerank_budget_ms=0, rerank_depth=6) == 6
    # A budget that is ample for the tiny model: the whole depth.
    assert reranked_count(rerank_budget_ms=60_000, rerank_depth=6) == 6


# ------------------------------------------------------------------ reranking that can only help


def classifier_settings(tmp_path: Path, gguf: Path, **extra: object) -> Settings:
    return Settings.from_mapping({"embedding_model": "off", "reranker_model": str(gguf),
                                  "rerank_budget_ms": 0,
                                  "index_dir": str(tmp_path / "index"), **extra})


@pytest.fixture
def classifier_gguf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from tiny_bert import write_tiny_bert

    return write_tiny_bert(tmp_path_factory.mktemp("tiny-bert-engine"))


def rerank_once(workspace: Path, settings: Settings, query: str):
    engine = Engine.open(workspace, settings)
    try:
        engine.sync()
        req = SearchRequest(query, limit=20)
        first = engine.search(req)
        return first, engine.rerank(req, first)
    finally:
        engine.close()
        engine.models.close()


def test_classifier_rerank_combines_with_the_first_stage(workspace, tmp_path, classifier_gguf):
    query = "refresh the expired token before the request"
    first, second = rerank_once(workspace, classifier_settings(tmp_path, classifier_gguf),
                                query)
    assert second.reranked and len(first.candidates) >= 4
    head = [h for h in second.candidates if "rerank" in h.stages]
    assert len(head) == len(first.candidates)  # no budget: the whole depth
    for rank, h in enumerate(head, start=1):
        stage = h.stages["rerank"]
        # rank in the combined order; the reranker's own raw logit; the combined score
        assert stage.rank == rank and stage.factors == {"combined": h.score}
    assert [h.score for h in head] == sorted((h.score for h in head), reverse=True)
    # The combined score is the weighted RRF (default w=0.5, k=10) of both orders.
    first_rank = {h.chunk_id: n for n, h in enumerate(first.candidates, start=1)}
    by_logit = sorted(head, key=lambda h: (-h.stages["rerank"].score, first_rank[h.chunk_id]))
    logit_rank = {h.chunk_id: n for n, h in enumerate(by_logit, start=1)}
    for h in head:
        want = 0.5 / (10 + logit_rank[h.chunk_id]) + 0.5 / (10 + first_rank[h.chunk_id])
        assert h.score == pytest.approx(want)


def test_rerank_weight_zero_and_one(workspace, tmp_path, classifier_gguf):
    query = "refresh the expired token before the request"
    first, zero = rerank_once(workspace, classifier_settings(tmp_path, classifier_gguf,
                                                             rerank_weight=0.0), query)
    # Weight 0: the reranker is not run, the first stage's order stays, and it says why.
    assert not zero.reranked and [h.chunk_id for h in zero.hits] == \
        [h.chunk_id for h in first.hits]
    assert any("weight is 0" in n for n in zero.notices)
    _, one = rerank_once(workspace, classifier_settings(tmp_path, classifier_gguf,
                                                        rerank_weight=1.0), query)
    logits = [h.stages["rerank"].score for h in one.candidates if "rerank" in h.stages]
    assert one.reranked and logits == sorted(logits, reverse=True)  # the reranker's order


def test_identifier_lookups_skip_reranking(workspace, tmp_path, classifier_gguf):
    settings = classifier_settings(tmp_path, classifier_gguf)
    first, second = rerank_once(workspace, settings, "refreshExpiredToken")
    assert second is first and not second.reranked
    assert not any("rerank" in h.stages for h in second.hits)
    engine = Engine.open(workspace, settings)
    try:
        assert not engine.will_rerank(SearchRequest("refreshExpiredToken"))
        assert engine.will_rerank(SearchRequest("where do we refresh expired tokens"))
        assert not engine.will_rerank(SearchRequest("where do we refresh", rerank=False))
    finally:
        engine.indexer.close()


def test_a_typedef_struct_is_found_by_its_tag_and_its_name(tmp_path):
    # Lexical search and the exact-name lookup (the MCP `symbol` tool) both answer to
    # `struct yaml_parser_s` and `yaml_parser_t` with the one chunk; a use of the tag in
    # a function's text is no definition of it.
    root = tmp_path / "ws"
    (root / "src").mkdir(parents=True)
    (root / "src" / "yaml.h").write_text(
        "typedef struct yaml_parser_s {\n  int error;\n  int offset;\n} yaml_parser_t;\n")
    for i in range(4):
        (root / "src" / f"use{i}.c").write_text(
            f"int use{i}(struct yaml_parser_s *p) {{\n  return p->error + {i};\n}}\n")
    engine = Engine.open(root, lexical_settings(tmp_path))
    engine.sync()
    for query in ("yaml_parser_s", "yaml_parser_t"):
        top = engine.search(SearchRequest(query, limit=3)).hits[0].chunk
        assert (top.path, top.name, top.start_line) == ("src/yaml.h", "yaml_parser_t", 1)
    store = engine.indexer.store
    for name in ("yaml_parser_s", "YAML_PARSER_S", "yaml_parser_t"):
        assert [c.name for c in store.chunks_named(name).values()] == ["yaml_parser_t"]
    assert store.chunks_named("yaml_parser") == {} and store.chunks_named("error") == {}
    assert store.chunks_named("%") == {} and store.chunks_named("") == {}
