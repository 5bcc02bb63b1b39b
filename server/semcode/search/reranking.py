"""The second stage's arithmetic: what the cross-encoder reads of a chunk, how many
candidates fit the latency budget at the reranker's measured speed, and how its scores
are merged back into the list. Pure functions over hits; the engine (engine.py) owns the
model and calls these around it.
"""

from __future__ import annotations

from collections.abc import Sequence

from semcode.chunks import Chunk
from semcode.kinds import Stage
from semcode.search.results import Hit, StageScore

RERANK_PROBE = 2  # documents scored first to measure a cold reranker's speed
RERANK_MIN = 3  # reranking was asked for: at least this many, whatever the budget


def rerank_document(chunk: Chunk) -> str:
    """What the cross-encoder reads: where the code lives and what it is, then the code."""
    header = f"{chunk.path}:{chunk.start_line}"
    if chunk.is_symbol:
        header += f" {chunk.kind.name.lower()} {chunk.qualified_name}"
    return f"{header}\n{chunk.text}"


def fit_depth(tokens_per_s: float | None, candidates: Sequence[Hit], budget_ms: float, *,
              depth: int, doc_tokens: int, budgeted: bool) -> int:
    """How many of `candidates`, in order, fit in `budget_ms` at `tokens_per_s` (all, up
    to `depth`, when the throughput is unknown or there is no budget)."""
    limit = min(depth, len(candidates))
    if not tokens_per_s or not budgeted:
        return limit
    budget_tokens = tokens_per_s * max(budget_ms, 0.0) / 1000
    used, fit = 0.0, 0
    for h in candidates[:limit]:
        # ~3 characters per token for code, plus the prompt around each document.
        used += min(doc_tokens, len(h.chunk.text) // 3 + 40)
        if used > budget_tokens:
            break
        fit += 1
    return fit


def apply_rerank_scores(head: Sequence[Hit], tail: Sequence[Hit],
                        scores: Sequence[float]) -> list[Hit]:
    """The reranked head, best first, each with its `rerank` stage; then the rest in
    fused order, their scores scaled under the lowest reranked score so the whole list
    stays sorted by `score`."""
    order = sorted(range(len(head)), key=lambda n: -scores[n])
    reranked: list[Hit] = []
    for rank, n in enumerate(order, start=1):
        h = head[n]
        stages = dict(h.stages)
        stages[Stage.RERANK] = StageScore(rank, scores[n])
        reranked.append(Hit(h.chunk_id, h.chunk, scores[n], stages))
    floor = min(scores) if scores else 0.0
    for n, h in enumerate(tail):
        reranked.append(Hit(h.chunk_id, h.chunk, floor * (1 - (n + 1) / (len(tail) + 1)),
                            h.stages))
    return reranked
