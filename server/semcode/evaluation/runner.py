"""Run a quality protocol on the real `Engine` and summarise it: each stage's ranks per
query, metrics with 95% bootstrap intervals, Markdown tables and JSON.

Every stage (lexical, dense, fused, reranked) is read from one hybrid search with a
limit that covers the whole fused candidate list (each retriever's own ranks are kept per
hit), then `Engine.rerank` at a fixed depth.
"""

from __future__ import annotations

import random
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NotRequired, TypedDict, TypeVar

from semcode.chunking import ChunkerConfig
from semcode.chunks import Chunk
from semcode.config import Settings
from semcode.evaluation.metrics import (
    bootstrap_ci,
    ci_dict,
    format_ci,
    metric_values,
    paired_bootstrap,
    relevant_ranks,
)
from semcode.evaluation.protocols import (
    Query,
    TreeCheckout,
    commit_cases,
    docstring_corpus,
    file_key,
    symbol_key,
    write_tree,
)
from semcode.kinds import SearchMode, Stage
from semcode.search.engine import MAX_QUERY_CHARS, Engine, Hit, SearchRequest

STAGES = (Stage.LEXICAL, Stage.DENSE, Stage.FUSED, "reranked")
SEARCH_LIMIT = 1000  # the whole fused candidate list, so every stage is ranked in full
T = TypeVar("T")


@dataclass
class QueryResult:
    """One query's relevant ranks per stage, and how long each stage took."""

    query: Query
    ranks: dict[str, list[int]]  # stage -> relevant ranks
    latency_ms: dict[str, float] = field(default_factory=dict)

    def metrics(self, stage: str) -> dict[str, float]:
        """Every metric of this query at `stage` (zeros when the stage did not run)."""
        return metric_values(self.ranks.get(stage, []), len(self.query.gold))


# A metric's mean and 95% bootstrap interval, as `metrics.ci_dict` writes it:
# {"mean", "lo", "hi"}.
Interval = dict[str, float]


class SliceSummary(TypedDict):
    """The summary of one slice of the queries (all of them, or the hard ones)."""

    n: int  # queries in the slice
    stages: dict[str, dict[str, Interval]]  # stage -> metric -> interval
    # reranked - fused, paired per query (MRR@10, nDCG@10, R@1); when the reranker ran
    rerank_delta: NotRequired[dict[str, Interval]]


# "all", and "hard" when some queries are marked hard.
Summary = dict[str, SliceSummary]


class ProtocolRun(TypedDict):
    """One protocol run, as `run_docstring` and `run_commit` return it (`result_json`
    turns it into JSON)."""

    protocol: str  # "docstring" or "commit"
    corpus: dict[str, int]  # counts: documented symbols and dropped ones, or commits
    results: list[QueryResult]
    summary: Summary
    index_s: NotRequired[float]  # docstring protocol: indexing the stripped tree
    query_s: float
    notices: list[str]  # the engine's notices (a model missing, ...)


def stage_rankings(hits: Sequence[Hit], mode: str,
                   reranked: Sequence[Hit] | None) -> dict[str, list[Chunk]]:
    """Each stage's ranked chunks from one response (limit ≥ all candidates) in `mode`
    (what the engine ran): lexical and dense by their own ranks, fused in order, and the
    reranked list."""
    out: dict[str, list[Chunk]] = {}
    for stage in (Stage.LEXICAL, Stage.DENSE):
        if mode in (stage, SearchMode.HYBRID):
            ranked = [h for h in hits if stage in h.stages]
            out[stage] = [h.chunk for h in sorted(ranked, key=lambda h: h.stages[stage].rank)]
    out[Stage.FUSED] = [h.chunk for h in hits]
    if reranked is not None:
        out["reranked"] = [h.chunk for h in reranked]
    return out


def evaluate(engine: Engine, queries: Sequence[Query], key: Callable[[Chunk], str],
             rerank: bool = True, progress: Callable[[int, int], None] | None = None,
             results: list[QueryResult] | None = None) -> list[QueryResult]:
    """Run every query through the engine's first stage (and the reranker when asked and
    configured); return each stage's relevant ranks per query."""
    results = [] if results is None else results
    for n, query in enumerate(queries, start=1):
        req = SearchRequest(query=query.text[:MAX_QUERY_CHARS], limit=SEARCH_LIMIT,
                            mode=SearchMode.HYBRID, rerank=rerank)
        t = time.perf_counter()
        first = engine.search(req)
        latency = {"first_stage": (time.perf_counter() - t) * 1000}
        second = None
        if rerank:
            t = time.perf_counter()
            response = engine.rerank(req, first)
            if response.reranked:
                second = response.hits
                latency["rerank"] = (time.perf_counter() - t) * 1000
        rankings = stage_rankings(first.hits, first.mode, second)
        ranks = {stage: relevant_ranks((key(c) for c in chunks), query.gold)
                 for stage, chunks in rankings.items()}
        results.append(QueryResult(query, ranks, latency))
        if progress:
            progress(n, len(queries))
    return results


def summarize(results: Sequence[QueryResult], seed: int = 0,
              n_resamples: int = 1000) -> Summary:
    """Per stage: each metric's mean and 95% bootstrap interval; the reranker's paired
    effect on MRR@10 and nDCG@10; the same for the hard slice when it is marked."""

    def block(rs: Sequence[QueryResult]) -> SliceSummary:
        """The summary of the queries `rs`."""
        stages = [s for s in STAGES if rs and all(s in r.ranks for r in rs)]
        out: SliceSummary = {"n": len(rs), "stages": {}}
        for stage in stages:
            values = [r.metrics(stage) for r in rs]
            out["stages"][stage] = {
                m: ci_dict(bootstrap_ci([v[m] for v in values], n_resamples, seed))
                for m in values[0]}
        if "reranked" in stages:
            out["rerank_delta"] = {
                m: ci_dict(paired_bootstrap([r.metrics("reranked")[m] for r in rs],
                                        [r.metrics(Stage.FUSED)[m] for r in rs], n_resamples, seed))
                for m in ("MRR@10", "nDCG@10", "R@1")}
        return out

    summary: Summary = {"all": block(results)}
    hard = [r for r in results if r.query.hard]
    if hard:
        summary["hard"] = block(hard)
    return summary


def markdown_table(title: str, summary: Summary) -> str:
    """One Markdown table per slice: stages as rows, metrics as columns (mean [95% CI])."""
    lines: list[str] = []
    for slice_name, block in summary.items():
        stages = block.get("stages", {})
        lines.append(f"**{title}** — {slice_name} ({block['n']} queries)\n")
        if not stages:
            lines.append("_no queries_\n")
            continue
        metrics = list(next(iter(stages.values())))
        lines.append("| stage | " + " | ".join(metrics) + " |")
        lines.append("|---|" + "---|" * len(metrics))
        for stage, values in stages.items():
            cells = [format_ci(values[m]) for m in metrics]
            lines.append(f"| {stage} | " + " | ".join(cells) + " |")
        delta = block.get("rerank_delta")
        if delta:
            cells = [f"{m} {format_ci(v, signed=True)}" for m, v in delta.items()]
            lines.append(f"\nreranked − fused (paired): {', '.join(cells)}")
        lines.append("")
    return "\n".join(lines)


def open_engine(root: Path, settings: Settings) -> Engine:
    """Open the index of `root`, bring it up to date and embed what is pending."""
    engine = Engine.open(root, settings)
    engine.sync()
    engine.embed_pending()
    engine.indexer.rebuild_lexical()
    return engine


def sample(items: list[T], n: int, seed: int) -> list[T]:
    """At most n items, a seeded random subset in their original order."""
    if len(items) <= n:
        return items
    keep = set(random.Random(seed).sample(range(len(items)), n))
    return [x for i, x in enumerate(items) if i in keep]


def run_docstring(files: dict[str, str], settings: Settings, work_dir: Path,
                  max_queries: int = 200, seed: int = 0, rerank: bool = True,
                  log: Callable[[str], None] | None = None) -> ProtocolRun:
    """The docstring protocol on `files` (path -> original text): strip, write to
    `work_dir/tree`, index with the engine, query. Returns results and timings."""
    corpus = docstring_corpus(files, ChunkerConfig.of(settings))
    queries = sample(corpus.queries, max_queries, seed)
    tree = work_dir / "tree"
    shutil.rmtree(tree, ignore_errors=True)
    write_tree(corpus.files, tree)
    t = time.perf_counter()
    engine = open_engine(tree, settings)
    index_s = time.perf_counter() - t
    if log:
        log(f"docstring: {len(corpus.files)} files, {len(queries)} queries "
            f"(of {len(corpus.queries)}), indexed in {index_s:.1f}s")
    try:
        t = time.perf_counter()
        results = evaluate(engine, queries, symbol_key, rerank)
        query_s = time.perf_counter() - t
        notices = sorted({n.line() for n in engine.models.notices()})
    finally:
        engine.close()
        engine.models.close()
    return {"protocol": "docstring", "corpus": corpus.stats, "results": results,
            "summary": summarize(results, seed), "index_s": index_s, "query_s": query_s,
            "notices": notices}


def run_commit(repo: Path, settings: Settings, work_dir: Path, max_queries: int = 200,
               seed: int = 0, rerank: bool = True,
               log: Callable[[str], None] | None = None) -> ProtocolRun:
    """The commit protocol on a git repository: each commit's message searched in its
    parent's tree (one working tree moved commit to commit; the index follows)."""
    cases = sample(commit_cases(repo, max_cases=max_queries * 2), max_queries, seed)
    checkout = TreeCheckout(repo, work_dir / "commit-tree")
    results: list[QueryResult] = []
    if log:
        log(f"commit: {len(cases)} commits from {repo}")
    t = time.perf_counter()
    engine: Engine | None = None
    try:
        for case in cases:
            checkout.checkout(case.parent)
            if engine is None:
                engine = open_engine(checkout.root, settings)
            else:
                engine.sync()
                engine.embed_pending()
                engine.indexer.rebuild_lexical()
            query = Query(case.message, case.gold, id=case.sha[:12])
            evaluate(engine, [query], file_key, rerank, results=results)
        notices = sorted({n.line() for n in engine.models.notices()}) if engine else []
    finally:
        if engine is not None:
            engine.close()
            engine.models.close()
    return {"protocol": "commit", "corpus": {"commits": len(cases)}, "results": results,
            "summary": summarize(results, seed), "query_s": time.perf_counter() - t,
            "notices": notices}


def result_json(run: ProtocolRun) -> dict[str, object]:
    """A protocol run as JSON: the summary plus each query's ranks (for re-analysis)."""
    out = {k: v for k, v in run.items() if k != "results"}
    out["queries"] = [{"id": r.query.id, "query": r.query.text[:300], "hard": r.query.hard,
                       "gold": sorted(r.query.gold), "ranks": r.ranks,
                       "latency_ms": {k: round(v, 2) for k, v in r.latency_ms.items()}}
                      for r in run["results"]]
    return out

