"""The second stage's arithmetic (search/reranking.py): what each recipe reads of a chunk,
which queries are reranked, and the weighted RRF that combines the reranker's order with
the first stage's."""

from __future__ import annotations

import pytest

from semcode.chunks import Chunk, SymbolKind
from semcode.kinds import BlendMethod, RerankRecipe, Stage
from semcode.models.base import RerankBlend
from semcode.search.intent import classify_query
from semcode.search.reranking import apply_rerank_scores, blended_scores, rerank_text, reranks
from semcode.search.results import Hit, StageScore

CHUNK = Chunk(path="src/tokens.py", start_line=3, end_line=5, name="refresh",
              kind=SymbolKind.Function, container="", language="python",
              text="def refresh(token):\n    return fetch(token)")


def hits(n: int) -> list[Hit]:
    return [Hit(i, CHUNK, 1.0 / i, {Stage.FUSED: StageScore(i, 1.0 / i)})
            for i in range(1, n + 1)]


def test_each_recipe_reads_its_own_text() -> None:
    assert rerank_text(CHUNK, RerankRecipe.CLASSIFIER) == CHUNK.embedding_text()
    yes_no = rerank_text(CHUNK, RerankRecipe.YES_NO)
    assert yes_no.startswith("src/tokens.py:3 ") and yes_no.endswith(CHUNK.text)
    assert yes_no != CHUNK.embedding_text()


@pytest.mark.parametrize(("query", "reranked"), [
    ("where do we refresh expired tokens", True),
    ("why does parse_args drop --", True),  # a sentence naming an identifier
    ("parseArgs", False),
    ("http.client.HTTPConnection", False),
])
def test_identifier_lookups_are_not_reranked(query: str, reranked: bool) -> None:
    assert reranks(classify_query(query)) is reranked


def test_weight_zero_is_the_first_stage_and_one_the_reranker() -> None:
    scores = [0.1, 0.9, 0.5, 0.7]  # the reranker prefers 2, 4, 3, 1
    first = blended_scores(scores, RerankBlend(weight=0.0, k=10))
    assert sorted(range(4), key=lambda n: -first[n]) == [0, 1, 2, 3]
    own = blended_scores(scores, RerankBlend(weight=1.0, k=10))
    assert sorted(range(4), key=lambda n: -own[n]) == [1, 3, 2, 0]
    # Between: a small k lets a strong reranker disagreement move a hit further.
    even = blended_scores(scores, RerankBlend(weight=0.5, k=1))
    assert sorted(range(4), key=lambda n: -even[n])[0] == 1


def test_reranker_ties_keep_the_first_stage_order() -> None:
    combined = blended_scores([0.3, 0.3, 0.3], RerankBlend(weight=0.9, k=2))
    assert combined == sorted(combined, reverse=True) and len(set(combined)) == 3


def test_apply_keeps_the_tail_below_and_records_both_scores() -> None:
    head, tail = hits(3), hits(5)[3:]
    out = apply_rerank_scores(head, tail, [-2.0, 3.5, 0.25], RerankBlend(weight=1.0, k=10))
    assert [h.chunk_id for h in out] == [2, 3, 1, 4, 5]
    assert [h.score for h in out] == sorted((h.score for h in out), reverse=True)
    top = out[0].stages[Stage.RERANK]
    assert (top.rank, top.score, top.factors) == (1, 3.5, {"combined": out[0].score})
    assert Stage.RERANK not in out[3].stages and out[3].stages == tail[0].stages


def test_interpolation_mixes_normalised_scores() -> None:
    first = [4.0, 3.0, 2.0, 1.0]  # first-stage scores, best first
    scores = [0.0, 10.0, 1.0, 2.0]
    zero = blended_scores(scores, RerankBlend(0.0, method=BlendMethod.INTERPOLATE), first)
    assert sorted(range(4), key=lambda n: -zero[n]) == [0, 1, 2, 3]
    one = blended_scores(scores, RerankBlend(1.0, method=BlendMethod.INTERPOLATE), first)
    assert sorted(range(4), key=lambda n: -one[n]) == [1, 3, 2, 0]
    # Margins count: hit 2 is the reranker's clear best, so half and half puts it first
    # (min-max: first-stage 1, 2/3, 1/3, 0; reranker 0, 1, 0.1, 0.2).
    half = blended_scores(scores, RerankBlend(0.5, method=BlendMethod.INTERPOLATE), first)
    assert half == pytest.approx([0.5, 5 / 6, 13 / 60, 0.1])
    head = hits(4)
    out = apply_rerank_scores(head, [], scores, RerankBlend(0.5, method=BlendMethod.INTERPOLATE))
    assert [h.chunk_id for h in out] == [2, 1, 3, 4]
