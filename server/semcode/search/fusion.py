"""Reciprocal rank fusion (Cormack, Clarke & Büttcher, 2009).

RRF uses ranks, not scores, so BM25 scores (unbounded) and cosine similarities
([-1, 1]) combine without calibration: score(d) = sum_i w_i / (k + rank_i(d)).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from semcode.kinds import QueryIntent, Stage

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison


@dataclass
class Fused:
    """One document after reciprocal rank fusion: its fused score and its rank in each
    input list."""

    doc_id: int
    score: float
    # 1-based rank of this document in each input list that contained it, by list name.
    ranks: dict[str, int] = field(default_factory=dict)


def reciprocal_rank_fusion(
    ranked_lists: dict[str, Sequence[int]],
    k: int = 60,
    weights: dict[str, float] | None = None,
    tiebreak: Callable[[int], SupportsRichComparison] | None = None,
) -> list[Fused]:
    """Fuse ranked id lists (best first). Ties break by the best single rank, then by
    `tiebreak(id)` (default: the id), so the output is deterministic; the engine passes
    a key that does not depend on the index's history (path, line, name)."""
    if k <= 0:
        raise ValueError("k must be > 0")
    weights = weights or {}
    fused: dict[int, Fused] = {}
    for name, ids in ranked_lists.items():
        weight = weights.get(name, 1.0)
        if weight == 0:
            continue
        for rank, doc_id in enumerate(ids, start=1):
            entry = fused.get(doc_id)
            if entry is None:
                entry = fused[doc_id] = Fused(doc_id, 0.0)
            if name in entry.ranks:  # a list repeating an id counts once, at its best rank
                continue
            entry.ranks[name] = rank
            entry.score += weight / (k + rank)
    key = tiebreak or (lambda doc_id: doc_id)
    return sorted(fused.values(), key=lambda f: (-f.score, min(f.ranks.values()),
                                                  key(f.doc_id)))


def intent_weights(intent_kind: str, lexical: float, dense: float,
                   identifier_dense: float, natural_lexical: float) -> dict[str, float]:
    """Fusion weights that adapt to the query (search/intent.py): an identifier lookup
    leans lexical (the dense weight is scaled by `identifier_dense`), a sentence leans
    dense (the lexical weight is scaled by `natural_lexical`); a sentence naming an
    identifier keeps the configured weights."""
    if intent_kind == QueryIntent.IDENTIFIER:
        dense *= identifier_dense
    elif intent_kind == QueryIntent.NATURAL:
        lexical *= natural_lexical
    return {Stage.LEXICAL: lexical, Stage.DENSE: dense}
