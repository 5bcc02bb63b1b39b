"""The closed sets of names that cross layers, as `StrEnum`s: search modes, search stages,
content kinds, query intents, model roles, reranker recipes, and the kinds of answer MCP
gives.

Why one leaf module for all of them: each name is produced in one layer and read in others
(chunking/ labels a chunk's content kind, search/ filters and ranks by it, the CLI, LSP and
MCP validate it from the wire), so its home must be importable from every layer without an
upward import. This module imports nothing of semcode. A member *is* its string
(`SearchMode.HYBRID == "hybrid"`, `json.dumps` writes `"hybrid"`), so the wire carries the
same plain strings as before; `tests/test_kinds.py` checks that no other module of the
package writes these names out as string literals again.
"""

from __future__ import annotations

from enum import StrEnum


class SearchMode(StrEnum):
    """How a search retrieves candidates (`--mode`, the LSP `mode` param, the MCP `mode`)."""

    HYBRID = "hybrid"  # words and meaning, fused
    LEXICAL = "lexical"  # BM25 only
    DENSE = "dense"  # embeddings only


class Stage(StrEnum):
    """A stage that scores a hit (the keys of `Hit.stages` and of the per-stage timings)."""

    LEXICAL = SearchMode.LEXICAL.value
    DENSE = SearchMode.DENSE.value
    FUSED = "fused"
    RANKING = "ranking"
    RERANK = "rerank"
    SYMBOL = "symbol"  # a definition found by name (MCP `symbol`), not searched


class AnswerKind(StrEnum):
    """What an MCP answer's `mode` field says: the search mode actually used, or SYMBOL for a
    definition lookup by name (which is not a search mode)."""

    HYBRID = SearchMode.HYBRID.value
    LEXICAL = SearchMode.LEXICAL.value
    DENSE = SearchMode.DENSE.value
    SYMBOL = Stage.SYMBOL.value


class ContentKind(StrEnum):
    """What a chunk holds, beyond its language (chunking/content.py decides it)."""

    CODE = "code"
    TEST = "test"
    EXAMPLE = "example"
    DOCS = "docs"
    CONFIG = "config"
    GENERATED = "generated"
    DECLARATION = "declaration"  # type stubs, headers, .d.ts
    REEXPORT = "reexport"  # a module that only re-exports others


class QueryIntent(StrEnum):
    """What kind of query it is (search/intent.py decides it)."""

    IDENTIFIER = "identifier"
    NATURAL = "natural"
    MIXED = "mixed"


class Role(StrEnum):
    """The job a model does (the keys of the model status, `semcode models` rows)."""

    EMBEDDER = "embedder"
    RERANKER = "reranker"


class RerankRecipe(StrEnum):
    """How a cross-encoder reads a (query, document) pair and gives its score (models/
    profiles.py detects it from the GGUF; search/reranking.py picks the document text by
    it; a built-in model's `semcode.json` names it)."""

    # A BERT-style sequence classifier: `[CLS] query [SEP] document [SEP]`, token type 0,
    # rank pooling, the head's raw logit as the score. Reads `Chunk.embedding_text()`.
    CLASSIFIER = "classifier"
    # A chat model asked "yes" or "no" (Qwen3-Reranker's template): P(yes) as the score.
    # Reads `search.reranking.rerank_document` (path, kind and name, then the code).
    YES_NO = "yes-no"


class BlendMethod(StrEnum):
    """How a reranker's scores are combined with the first stage's (search/reranking.py;
    a built-in model's `semcode.json` names the one fitted for it)."""

    RRF = "rrf"  # a weighted reciprocal rank fusion of the two orders
    INTERPOLATE = "interpolate"  # a weighted sum of both scores, min-max normalised per query


__all__ = ["SearchMode", "Stage", "AnswerKind", "ContentKind", "QueryIntent", "Role",
           "RerankRecipe", "BlendMethod"]
