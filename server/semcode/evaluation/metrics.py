"""Retrieval metrics and their confidence intervals.

A query's outcome is `ranks`: the sorted 1-based ranks at which its relevant items appear
in a ranking (each item once), and `n_relevant`, how many relevant items exist.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np

RECALL_KS = (1, 5, 10, 50, 100)

# appear in a ranking (each item once), and `n_relevant`, how many relevant items exist.

def reciprocal_rank(ranks: Sequence[int], k: int = 10) -> float:
    """1/rank of the first relevant item if it is within the top k, else 0."""
    return 1.0 / ranks[0] if ranks and ranks[0] <= k else 0.0


def recall_at(ranks: Sequence[int], n_relevant: int, k: int) -> float:
    """The fraction of the relevant items found in the top k."""
    if n_relevant <= 0:
        return 0.0
    return sum(1 for r in ranks if r <= k) / n_relevant


def ndcg_at(ranks: Sequence[int], n_relevant: int, k: int = 10) -> float:
    """Binary-relevance nDCG@k: DCG of the found items over the DCG of a perfect list."""
    if n_relevant <= 0:
        return 0.0
    dcg = sum(1.0 / math.log2(r + 1) for r in ranks if r <= k)
    ideal = sum(1.0 / math.log2(i + 1) for i in range(1, min(n_relevant, k) + 1))
    return dcg / ideal


def metric_values(ranks: Sequence[int], n_relevant: int) -> dict[str, float]:
    """Every reported metric of one query."""
    out = {"MRR@10": reciprocal_rank(ranks, 10), "nDCG@10": ndcg_at(ranks, n_relevant, 10)}
    for k in RECALL_KS:
        out[f"R@{k}"] = recall_at(ranks, n_relevant, k)
    return out


def bootstrap_ci(values: Sequence[float], n_resamples: int = 1000, seed: int = 0,
                 level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high): the mean and its percentile bootstrap interval over queries.
    Deterministic for a given seed."""
    data = np.asarray(values, dtype=np.float64)
    if data.size == 0:
        return (float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, data.size, size=(n_resamples, data.size))
    means = data[idx].mean(axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(means, [tail, 100 - tail])
    return (float(data.mean()), float(low), float(high))


def paired_bootstrap(after: Sequence[float], before: Sequence[float], n_resamples: int = 1000,
                     seed: int = 0) -> tuple[float, float, float]:
    """The mean per-query difference `after - before` with its bootstrap interval."""
    if len(after) != len(before):
        raise ValueError("paired samples must have the same length")
    return bootstrap_ci([a - b for a, b in zip(after, before, strict=True)], n_resamples, seed)


def relevant_ranks(keys: Iterable[str], gold: frozenset[str]) -> list[int]:
    """Ranks (1-based) of the gold keys in a ranked key list; repeated keys (several
    chunks of one file, parts of one function) count once, at their first position."""
    seen: set[str] = set()
    ranks: list[int] = []
    for key in keys:
        if key in seen:
            continue
        seen.add(key)
        if key in gold:
            ranks.append(len(seen))
    return ranks



def stratified_bootstrap(groups: Sequence[Sequence[float]], n_resamples: int = 1000,
                         seed: int = 0, level: float = 0.95) -> tuple[float, float, float]:
    """(mean, low, high) of a macro average: the mean of the group means, with a
    bootstrap interval that resamples queries within each group (each language keeps its
    weight however many queries it has). Empty groups are ignored."""
    arrays = [np.asarray(g, dtype=np.float64) for g in groups if len(g)]
    if not arrays:
        return (float("nan"), float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    resampled = np.zeros(n_resamples)
    for data in arrays:
        idx = rng.integers(0, data.size, size=(n_resamples, data.size))
        resampled += data[idx].mean(axis=1)
    resampled /= len(arrays)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(resampled, [tail, 100 - tail])
    return (float(np.mean([a.mean() for a in arrays])), float(low), float(high))


def ci_dict(t: tuple[float, float, float]) -> dict[str, float]:
    """A (mean, low, high) triple as a JSON-friendly dict rounded to 4 places."""
    return {"mean": round(t[0], 4), "lo": round(t[1], 4), "hi": round(t[2], 4)}


def format_ci(v: dict[str, float], signed: bool = False) -> str:
    """`0.512 [0.480, 0.545]` (with explicit signs for differences)."""
    sign = "+" if signed else ""
    return f"{v['mean']:{sign}.3f} [{v['lo']:{sign}.3f}, {v['hi']:{sign}.3f}]"
