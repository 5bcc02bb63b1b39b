"""The second stage's arithmetic: what the cross-encoder reads of a chunk, which queries
it reads at all, how many candidates fit the latency budget at the reranker's measured
speed, and how its scores are combined with the first stage's. Pure functions over
hits; the engine (engine.py) owns the model and calls these around it.

**Reranking that can only help.** The reranker's score does not replace the first
stage's: the final order is a weighted reciprocal rank fusion of the two orders of the
reranked head (`RerankBlend`: `w / (k + reranker rank) + (1 - w) / (k + first-stage
rank)`). Why ranks and not an interpolation of scores: the two recipes score on unrelated
scales (a classifier's raw logit, a yes/no model's P(yes)), the first stage's score scale
changes with the mode and the ranking factors, and a rank fusion needs no per-query
normalisation, so one fitted pair (w, k) holds for any depth and any first stage. Its
`w = 0` is exactly the first stage's order, so a weight fitted on the tune split can
only be as good as the first stage there, and a reranker whose fitted weight is 0 is not
run. Identifier lookups, which the first stage gets right almost always, skip it. The
other method (`interpolate`: both scores min-max normalised over the head, then mixed)
uses the score margins too; a built-in model's `semcode.json` may name it when the fit
(bench/quality/rerank_fit.py) finds it better on tune.
"""

from __future__ import annotations

from collections.abc import Sequence

from semcode.chunks import Chunk
from semcode.kinds import BlendMethod, QueryIntent, RerankRecipe, Stage
from semcode.models.base import RerankBlend
from semcode.search.intent import Intent
from semcode.search.results import Hit, StageScore

RERANK_PROBE = 2  # documents scored first to measure a cold reranker's speed
RERANK_MIN = 3  # reranking was asked for: at least this many, whatever the budget
COMBINED = "combined"  # the rerank stage's factor: the blended score the list is ordered by


def rerank_document(chunk: Chunk) -> str:
    """What a yes/no cross-encoder reads: where the code lives and what it is, then the
    code."""
    header = f"{chunk.path}:{chunk.start_line}"
    if chunk.is_symbol:
        header += f" {chunk.kind.name.lower()} {chunk.qualified_name}"
    return f"{header}\n{chunk.text}"


def rerank_text(chunk: Chunk, recipe: RerankRecipe) -> str:
    """What the cross-encoder of `recipe` reads of a chunk: a classifier the chunk's
    embedding text (exactly the `code` of the pairs it was trained on), a yes/no model
    `rerank_document`."""
    if recipe == RerankRecipe.CLASSIFIER:
        return chunk.embedding_text()
    return rerank_document(chunk)


def reranks(intent: Intent) -> bool:
    """Whether a query of this intent is reranked: identifier lookups are not (the first
    stage finds a named definition nearly always, and a cross-encoder reads a bare name
    as a very short question)."""
    return intent.kind != QueryIntent.IDENTIFIER


def fit_depth(tokens_per_s: float | None, candidates: Sequence[Hit], budget_ms: float, *,
              depth: int, doc_tokens: int, budgeted: bool, overhead: int = 40) -> int:
    """How many of `candidates`, in order, fit in `budget_ms` at `tokens_per_s` (all, up
    to `depth`, when the throughput is unknown or there is no budget). Each costs about
    its text at ~3 characters a token plus `overhead` (the prompt around a yes/no
    document, the query in a classifier's pair), at most `doc_tokens`."""
    limit = min(depth, len(candidates))
    if not tokens_per_s or not budgeted:
        return limit
    budget_tokens = tokens_per_s * max(budget_ms, 0.0) / 1000
    used, fit = 0.0, 0
    for h in candidates[:limit]:
        used += min(doc_tokens, len(h.chunk.text) // 3 + overhead)
        if used > budget_tokens:
            break
        fit += 1
    return fit


def blended_scores(scores: Sequence[float], blend: RerankBlend,
                   first: Sequence[float] = ()) -> list[float]:
    """The combined score of each head hit (given in first-stage order, one reranker score
    each; `first`: their first-stage scores, which `interpolate` needs): the weighted RRF
    of its first-stage rank and its reranker rank (ties in the reranker's scores rank in
    first-stage order), or the weighted sum of both scores min-max normalised over the
    head."""
    w = blend.weight
    if blend.method == BlendMethod.INTERPOLATE:
        own, before = _min_max(scores), _min_max(first or [0.0] * len(scores))
        return [w * r + (1 - w) * f for r, f in zip(own, before, strict=True)]
    order = sorted(range(len(scores)), key=lambda n: (-scores[n], n))
    reranker_rank = {n: rank for rank, n in enumerate(order, start=1)}
    k = blend.k
    return [w / (k + reranker_rank[n]) + (1 - w) / (k + n + 1) for n in range(len(scores))]


def _min_max(values: Sequence[float]) -> list[float]:
    """`values` scaled to [0, 1] (all 0 when they are equal)."""
    lo, hi = min(values, default=0.0), max(values, default=0.0)
    return [(v - lo) / (hi - lo) if hi > lo else 0.0 for v in values]


def apply_rerank_scores(head: Sequence[Hit], tail: Sequence[Hit], scores: Sequence[float],
                        blend: RerankBlend) -> list[Hit]:
    """The reranked head in its combined order, best first (ties keep the first stage's
    order), each with its `rerank` stage (rank in the combined order, the reranker's own
    score, the combined score as the `combined` factor; the hit's `score` is the
    combined one); then the rest in first-stage order, their scores scaled under the
    lowest combined score so the whole list stays sorted by `score`."""
    combined = blended_scores(scores, blend, [h.score for h in head])
    order = sorted(range(len(head)), key=lambda n: (-combined[n], n))
    reranked: list[Hit] = []
    for rank, n in enumerate(order, start=1):
        h = head[n]
        stages = dict(h.stages)
        stages[Stage.RERANK] = StageScore(rank, scores[n], {COMBINED: combined[n]})
        reranked.append(Hit(h.chunk_id, h.chunk, combined[n], stages))
    floor = min(combined) if combined else 0.0
    for n, h in enumerate(tail):
        reranked.append(Hit(h.chunk_id, h.chunk, floor * (1 - (n + 1) / (len(tail) + 1)),
                            h.stages))
    return reranked
