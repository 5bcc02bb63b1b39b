"""A bounded, seeded sample of the pairs, stratified by language and pair source.

A cross-encoder step costs a transformer pass per candidate, so a CPU run sees a few
thousand questions, not the 600k pairs: which ones matters. Every language gets the same
share (the benchmark's score is a macro over languages); inside a language, `identifier`
pairs (a definition's own name words -> it: 78% of the data, and the lookups the first
stage already answers) get `identifier_weight` of it and the natural-language sources
(`docstring`, `docs`, `changelog`) the rest, in proportion to what exists. A cell with
fewer pairs than its share gives all it has and the rest is spread over the others.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path

import numpy as np

from training.embedder.pairs import read_pairs

IDENTIFIER = "identifier"
Cell = tuple[str, str]  # (language, source)


def cell_weights(available: Mapping[Cell, int], identifier_weight: float) -> dict[Cell, float]:
    """Each (language, source) cell's share: languages equal; inside one, identifier pairs
    `identifier_weight`, the other sources the rest by their sizes."""
    languages = sorted({lang for lang, _ in available})
    weights: dict[Cell, float] = {}
    for lang in languages:
        cells = {c: n for c, n in available.items() if c[0] == lang and n > 0}
        natural = sum(n for (_, src), n in cells.items() if src != IDENTIFIER)
        has_identifier = any(src == IDENTIFIER for _, src in cells)
        id_share = identifier_weight if natural and has_identifier else float(has_identifier)
        for (l_, src), n in cells.items():
            share = id_share if src == IDENTIFIER else (1 - id_share) * n / natural
            weights[(l_, src)] = share / len(languages)
    return weights


def allocate(available: Mapping[Hashable, int], weights: Mapping[Hashable, float],
             n: int) -> dict[Hashable, int]:
    """How many items to take from each cell: `n` split by `weights`, no cell above what
    it has (water-filling: a full cell's surplus goes to the others); sums to
    min(n, total available)."""
    taken = {k: 0 for k in available}
    active = {k for k, have in available.items() if have > 0 and weights.get(k, 0) > 0}
    left = min(n, sum(available[k] for k in active))
    while active and left > 0:
        total = sum(weights[k] for k in active)
        share = {k: left * weights[k] / total for k in active}
        full = {k for k in active if share[k] >= available[k] - taken[k]}
        if not full:
            floors = {k: int(share[k]) for k in active}
            rest = left - sum(floors.values())
            by_fraction = sorted(active, key=lambda k: (floors[k] - share[k], str(k)))
            for i, k in enumerate(by_fraction):
                taken[k] += floors[k] + (1 if i < rest else 0)
            break
        for k in sorted(full, key=str):
            left -= available[k] - taken[k]
            taken[k] = available[k]
            active.discard(k)
    return taken


def sample_rows(cells: Sequence[Cell], n: int, identifier_weight: float,
                rng: np.random.Generator) -> np.ndarray:
    """Sorted row numbers of a stratified sample of about `n` of the rows whose cells are
    `cells`."""
    available = Counter(cells)
    quota = allocate(available, cell_weights(available, identifier_weight), n)
    by_cell: dict[Cell, list[int]] = {}
    for i, c in enumerate(cells):
        by_cell.setdefault(c, []).append(i)
    chosen = [rng.choice(np.array(rows), size=quota[c], replace=False)
              for c, rows in sorted(by_cell.items()) if quota.get(c, 0) > 0]
    return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, dtype=np.int64)


def sample_pairs(path: Path, n: int, identifier_weight: float,
                 seed: int) -> list[dict[str, object]]:
    """A stratified, seeded sample of about `n` pairs of one pairs file (two passes: the
    cells, then the chosen pairs; the whole file is never held in memory)."""
    cells: list[Cell] = [(str(p.get("language", "")), str(p.get("source", "")))
                         for p in read_pairs(path)]
    keep = set(sample_rows(cells, n, identifier_weight, np.random.default_rng(seed)).tolist())
    return [p for i, p in enumerate(read_pairs(path)) if i in keep]
