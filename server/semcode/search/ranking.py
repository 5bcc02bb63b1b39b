"""The ranking step: fused candidates in, the order a user sees out (the first stage's
last step, before any reranker).

Retrieval finds the answer; this decides rank 1. Each factor is one `Settings` key
(config.py, `rank_*`), so the benchmark can switch it off (`--set key=value`) and keep
only what helps. In order:

1. **Base** (`rank_base`). `rrf`: the fused score divided by the best fused score (the
   top candidate is 1.0). `score`: each retriever's own score divided by its best among
   the candidates, averaged with the fusion weights; it keeps the gaps RRF flattens.
2. **Content-kind prior** (`rank_prior_<kind>`): tests, examples, docs, config,
   generated code, declarations and re-export barrels are multiplied by their prior
   (< 1), code by 1. A kind the query asks for ("tests for ...") is lifted instead
   (`rank_lift`). Identifier lookups get the prior too: a definition beats its test.
   Module chunks (code between definitions: imports, constants) get `rank_prior_module`,
   each part of a definition split for length `rank_prior_part` (a 120-line part
   matches many words by its size alone).
3. **Definition boost** (`rank_definition`): a symbol chunk whose name (or other name:
   `chunking.names`, the tag of a typedef'd C struct) is an identifier the query names
   gets `rank_definition × tier` added, tier 1 for the exact name,
   `rank_definition_normalised` when equal up to case and `_`, `rank_definition_stem`
   times the share of a multi-word name's parts that occur (stemmed) in the query, when
   at least two do. Sentences that name
   an identifier get it scaled by `rank_definition_mixed`; plain sentences get only the
   stem tier, scaled by `rank_definition_natural`. In a sentence naming an identifier,
   types (class, struct, interface, enum) and constructors get it scaled once more by
   `rank_definition_type` (0: none): "create an IOCase from a name" asks about what the
   type does, i.e. a member, not the type's outline or its constructor.
4. **Path match** (`rank_path`): the share of the query's words found in the file's stem
   or its directory (stemmed), times `rank_path` (not for identifier lookups, which the
   definition boost serves).
5. **Container aggregation** (`rank_container`): a class or module chunk with several
   members among the candidates gains `rank_container × Σ member base / (1 + Σ)`; its
   members stay in the list, further down (per-file saturation).
6. **Per-file saturation** (`rank_file_decay`, `rank_file_keep`): the n-th chunk picked
   from one file, n > `rank_file_keep`, is multiplied by `rank_file_decay^(n-keep)` when
   it is selected, so one file cannot fill the page.
7. **One long definition once**: the parts of a split definition show once, at the best.

Every hit carries the factors that moved it (`Ranked.factors`): multiplicative ones as
multipliers (`content:test`: 0.5, `module`: 0.8, `file`: 0.5), additive ones as the
amount added in units of the top base score (`definition`: 1.0, `path`: 0.3,
`container`: 0.2). The engine publishes them in `stages["ranking"]`.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from semcode.chunking.names import other_names
from semcode.chunks import Chunk, SymbolKind
from semcode.config import Settings
from semcode.index.tokenizer import tokenize
from semcode.kinds import ContentKind
from semcode.search.intent import IDENTIFIER, MIXED, NATURAL, Intent, normalise

CONTAINER_KINDS = frozenset({SymbolKind.Class, SymbolKind.Interface, SymbolKind.Struct,
                             SymbolKind.Enum, SymbolKind.Module, SymbolKind.Namespace})
TYPE_KINDS = frozenset({SymbolKind.Class, SymbolKind.Interface, SymbolKind.Struct,
                        SymbolKind.Enum})


@dataclass(frozen=True)
class RankingParams:
    """The ranking step's parameters, one per `rank_*` setting. No defaults here: the
    `Settings` fields are their one home, and `from_settings` the way to build them."""

    enabled: bool
    base: str  # "rrf": the fused score; "score": the retrievers' own scores
    weights: dict[str, float]  # per retriever, for "score"
    priors: dict[str, float]  # content kind -> multiplier
    prior_module: float
    prior_part: float
    lift: float
    definition: float
    definition_normalised: float
    definition_stem: float
    definition_mixed: float
    definition_natural: float
    definition_type: float
    path: float
    container: float
    file_decay: float
    file_keep: int
    depth: int

    @classmethod
    def from_settings(cls, s: Settings, weights: dict[str, float] | None = None
                      ) -> RankingParams:
        """The parameters from Settings, with the retrievers' weights for the `score` base."""
        return cls(weights=dict(weights or {}),
            enabled=s.ranking, base=s.rank_base,
            priors={ContentKind.TEST: s.rank_prior_test,
                    ContentKind.EXAMPLE: s.rank_prior_example,
                    ContentKind.DOCS: s.rank_prior_docs, ContentKind.CONFIG: s.rank_prior_config,
                    ContentKind.GENERATED: s.rank_prior_generated,
                    ContentKind.DECLARATION: s.rank_prior_declaration,
                    ContentKind.REEXPORT: s.rank_prior_reexport},
            prior_module=s.rank_prior_module, prior_part=s.rank_prior_part, lift=s.rank_lift,
            definition=s.rank_definition, definition_normalised=s.rank_definition_normalised,
            definition_stem=s.rank_definition_stem, definition_mixed=s.rank_definition_mixed,
            definition_natural=s.rank_definition_natural,
            definition_type=s.rank_definition_type,
            path=s.rank_path,
            container=s.rank_container, file_decay=s.rank_file_decay,
            file_keep=s.rank_file_keep, depth=s.ranking_depth)


@dataclass
class Candidate:
    """A fused candidate handed to the ranking step, with each retriever's own score."""

    chunk_id: int
    score: float  # the fused score
    chunk: Chunk | None  # None: removed while we searched (dropped)
    scores: dict[str, float] = field(default_factory=dict)  # each retriever's own score


@dataclass
class Ranked:
    """A candidate after the ranking step: its new score and the factors that moved it."""

    chunk_id: int
    chunk: Chunk
    score: float
    fused_rank: int  # 1-based position in the fused list
    factors: dict[str, float] = field(default_factory=dict)


def rank(candidates: Sequence[Candidate], intent: Intent, p: RankingParams) -> list[Ranked]:
    """Order `candidates` (best fused first) as described in the module docstring. Only
    the first `p.depth` are re-scored; the rest follow in fused order below them."""
    live = [(n, c) for n, c in enumerate(candidates, start=1) if c.chunk is not None]
    if not live:
        return []
    if not p.enabled:
        return _dedupe_parts([Ranked(c.chunk_id, c.chunk, c.score, n, {})  # type: ignore[arg-type]
                              for n, c in live])
    head, tail = live[:p.depth], live[p.depth:]
    top = max(c.score for _, c in head) or 1.0
    bases = _score_bases([c for _, c in head], p) if p.base == "score" else None
    items: list[Ranked] = []
    for i, (n, c) in enumerate(head):
        chunk = c.chunk
        assert chunk is not None
        base = bases[i] if bases is not None else c.score / top
        factors: dict[str, float] = {}
        mult = _prior(chunk, intent, p, factors)
        add = _definition(chunk, intent, p, factors) + _path(chunk, intent, p, factors)
        items.append(Ranked(c.chunk_id, chunk, base * mult + add, n, factors))
    if p.container:
        _aggregate_containers(items, top, head, p)
    items.sort(key=lambda r: (-r.score, r.fused_rank))
    items = _saturate(_dedupe_parts(items), p.file_decay, p.file_keep)
    floor = min((r.score for r in items), default=0.0)
    rest = [Ranked(c.chunk_id, c.chunk, floor * c.score / top * 0.999, n, {})  # type: ignore[arg-type]
            for n, c in tail]
    return items + _dedupe_parts(rest, {_piece(r.chunk) for r in items if r.chunk.part})


def _score_bases(head: Sequence[Candidate], p: RankingParams) -> list[float] | None:
    """Each candidate's retriever scores, each divided by that retriever's best among
    the candidates, averaged with the fusion weights (a retriever that missed a
    candidate gives it 0). Keeps the score gaps RRF flattens (a BM25 score twice the
    next one counts twice)."""
    names = {name for c in head for name in c.scores}
    best = {name: max((c.scores.get(name, 0.0) for c in head), default=0.0) for name in names}
    weights = {name: p.weights.get(name, 1.0) for name in names if best[name] > 0}
    total = sum(weights.values())
    if not total:
        return None  # no retriever scores: the fused score it is
    return [sum(w * max(c.scores.get(name, 0.0), 0.0) / best[name]
                for name, w in weights.items()) / total for c in head]


# ------------------------------------------------------------------------------ factors
def _prior(chunk: Chunk, intent: Intent, p: RankingParams, factors: dict[str, float]) -> float:
    kind = chunk.content
    mult = 1.0
    if kind in intent.wants:
        if p.lift != 1.0:
            mult = factors[f"content:{kind}"] = p.lift
    elif kind != ContentKind.CODE:
        prior = p.priors.get(kind, 1.0)
        if prior != 1.0:
            mult = factors[f"content:{kind}"] = prior
    if chunk.kind == SymbolKind.Module and kind == ContentKind.CODE and p.prior_module != 1.0:
        factors["module"] = p.prior_module
        mult *= p.prior_module
    if chunk.part and p.prior_part != 1.0:
        factors["part"] = p.prior_part
        mult *= p.prior_part
    return mult


def _definition(chunk: Chunk, intent: Intent, p: RankingParams,
                factors: dict[str, float]) -> float:
    if not p.definition or not chunk.is_symbol:
        return 0.0
    tier = 0.0
    if intent.identifiers:
        names = intent.identifiers
        if chunk.name in names or chunk.qualified_name in names or any(
                other in names for other in other_names(chunk)):
            tier = 1.0
        elif normalise(chunk.name) in {normalise(n) for n in names}:
            tier = p.definition_normalised
    if not tier and p.definition_stem:
        tier = p.definition_stem * _stem_coverage(chunk.name, intent.stems)
    if intent.kind == MIXED and (chunk.kind in TYPE_KINDS or chunk.kind == SymbolKind.Constructor):
        # A sentence naming an identifier ("create an IOCase from a name") is about what
        # the type does: its members, which share the words, not its outline.
        tier *= p.definition_type
    if not tier:
        return 0.0
    if intent.kind == NATURAL:
        tier *= p.definition_natural
    elif intent.kind != IDENTIFIER:
        tier *= p.definition_mixed
    amount = p.definition * tier
    if amount:
        factors["definition"] = round(amount, 4)
    return amount


@functools.lru_cache(maxsize=65536)
def _name_stems(name: str) -> tuple[str, ...]:
    """Stems of an identifier's word parts ("refresh_tokens" -> refresh, token)."""
    toks = tokenize(name)
    return tuple(toks[1:]) if len(toks) > 1 else tuple(toks)


def _stem_coverage(name: str, stems: frozenset[str]) -> float:
    """The share of a multi-word name's parts that the query contains (stemmed), when at
    least two do: "allowUnknownOption" in "allow unknown options" -> 1.0. One-word names
    ("Option", "help") are left out: in a library about options they match any query."""
    parts = _name_stems(name)
    if len(parts) < 2 or not stems:
        return 0.0
    covered = sum(1 for s in parts if s in stems)
    return covered / len(parts) if covered >= 2 else 0.0


_SPLIT_PATH = re.compile(r"[/]")


@functools.lru_cache(maxsize=65536)
def _path_stems(path: str) -> frozenset[str]:
    """Stems of the file's stem and its parent directory's name."""
    parts = _SPLIT_PATH.split(path)
    base = parts[-1].split(".")[0]
    parent = parts[-2] if len(parts) > 1 else ""
    return frozenset(tokenize(f"{base} {parent}"))


def _path(chunk: Chunk, intent: Intent, p: RankingParams, factors: dict[str, float]) -> float:
    if not p.path or intent.kind == IDENTIFIER or not intent.stems:
        return 0.0
    found = _path_stems(chunk.path)
    matched = sum(1 for s in intent.stems if s in found)
    if not matched:
        return 0.0
    amount = p.path * matched / len(intent.stems)
    factors["path"] = round(amount, 4)
    return amount


def _aggregate_containers(items: list[Ranked], top: float, head: Sequence[tuple[int, Candidate]],
                          p: RankingParams) -> None:
    """A container (class, module...) whose members are candidates rises by the members'
    summed base score, squashed to at most `p.container`."""
    member_sum: dict[tuple[str, str], float] = {}
    member_count: dict[tuple[str, str], int] = {}
    for r in items:
        if r.chunk.container:
            key = (r.chunk.path, r.chunk.container)
            member_sum[key] = member_sum.get(key, 0.0) + r.score
            member_count[key] = member_count.get(key, 0) + 1
    for r in items:
        c = r.chunk
        if c.kind not in CONTAINER_KINDS or not c.is_symbol:
            continue
        key = (c.path, c.qualified_name)
        if member_count.get(key, 0) < 2:
            continue
        total = member_sum[key]
        amount = p.container * total / (1.0 + total)
        r.score += amount
        r.factors["container"] = round(amount, 4)


def _piece(chunk: Chunk) -> tuple[str, str, str, int]:
    return (chunk.path, chunk.container, chunk.name, int(chunk.kind))


def _dedupe_parts(items: list[Ranked], seen: set[tuple[str, str, str, int]] | None = None
                  ) -> list[Ranked]:
    """Pieces of one long definition: show the symbol once, at its best piece."""
    seen = set() if seen is None else seen
    out: list[Ranked] = []
    for r in items:
        if r.chunk.part:
            key = _piece(r.chunk)
            if key in seen:
                continue
            seen.add(key)
        out.append(r)
    return out


def _saturate(items: list[Ranked], decay: float, keep: int) -> list[Ranked]:
    """Greedy selection by score where each pick from one file beyond its first `keep`
    is multiplied by `decay` once more (items must be sorted by score, best first)."""
    if decay >= 1.0 or len(items) < 2:
        return items
    import heapq

    per_file: dict[str, int] = {}
    # Max-heap on the current effective score; an item's score is recomputed lazily when
    # its file has gained picks since it was pushed.
    heap = [(-r.score, r.fused_rank, i, 0) for i, r in enumerate(items)]
    heapq.heapify(heap)
    out: list[Ranked] = []
    while heap:
        neg, fr, i, seen = heapq.heappop(heap)
        r = items[i]
        count = per_file.get(r.chunk.path, 0)
        if count != seen:
            over = max(0, count - keep + 1)
            heapq.heappush(heap, (-(r.score * decay ** over), fr, i, count))
            continue
        if count >= keep:
            r.factors["file"] = round(decay ** (count - keep + 1), 4)
            r.score = -neg
        per_file[r.chunk.path] = count + 1
        out.append(r)
    return out


__all__ = ["RankingParams", "Candidate", "Ranked", "rank"]
