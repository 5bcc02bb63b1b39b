"""Fit how a reranker's order is combined with the first stage's, on the **tune split**
only, and report the frozen fit on the test split:

    PYTHONPATH=server:. python -m bench.quality.rerank_fit --reranker MODEL.gguf \\
        [--embedder builtin|off|DIR] [--max-queries N] [--fit-depth 20] [--threads 1] \\
        [--max-tokens N] [--prepared DIR] [--out bench/out/rerank_fit.json] \\
        [--write-meta semcode.json]

1. The first stage, per split: every prepared corpus indexed once (the bench's lexical
   index; BM25 lists and chunks cached in a pickle per split, shared with
   static_fit.py), the built-in static embedder's exact cosine lists (the default CPU
   configuration: lexical + built-in hybrid), fused and ranked by the engine's own code
   (search/fusion.py, search/ranking.py) with the engine's weights (`dense_weight` times
   the embedder's `fusion_weight`).
2. The reranker scores each query's first-stage top `--depth-max` (50) once, through the
   engine's own recipe code (`open_reranker`, `search.reranking.rerank_text`); scores
   are cached on disk (`bench/out/rerank-scores.sqlite`), keyed by the model's identity,
   the query and the text the reranker read. Identifier lookups are not reranked (the
   engine skips them), so they keep their first-stage order in every variant.
3. The fit: a grid of both blend methods (search/reranking.py `RerankBlend`: the
   weighted RRF's (weight, k), the min-max interpolation's weight) at `--fit-depth`,
   scored on macro MRR@10 over languages (all styles pooled) of the tune split. A
   weight above 0 wins only if it gains more than `--min-gain` over the first stage
   (weight 0) *and* its paired gain's interval on tune lies above 0 (the grid's best of
   ~70 tries would otherwise pick noise): else the reranker does not help, the fit
   says 0.
4. The report, per split (tune: what was fitted on; test: held out): first stage,
   reranked with the fitted blend at depths 10, 20, 50, and the reranker's own order
   (no interpolation, weight 1) and the other method's best blend on tune, at the fit
   depth; per style and all styles, macro MRR@10 with its interval and the paired
   difference to the first stage per language
   (bench/quality/quality.py `ablation_table`, the statistics compare.py uses).

`--write-meta FILE` merges the fit into a model's `semcode.json` as its `blend` block.
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import pickle
import sqlite3
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "server"))

from bench.quality import quality as qb  # noqa: E402
from bench.quality.static_fit import Corpus, build, dense_lists, load_split  # noqa: E402
from bench.quality.tune import Q, key  # noqa: E402
from semcode.config import Settings  # noqa: E402
from semcode.kinds import BlendMethod  # noqa: E402
from semcode.models.base import RerankBlend  # noqa: E402
from semcode.search.fusion import intent_weights, reciprocal_rank_fusion  # noqa: E402
from semcode.search.ranking import Candidate, RankingParams, rank  # noqa: E402
from semcode.search.reranking import apply_rerank_scores, rerank_text, reranks  # noqa: E402
from semcode.search.results import Hit, StageScore  # noqa: E402

DEPTHS = (10, 20, 50)
WEIGHTS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0)
KS = (1.0, 2.0, 5.0, 10.0, 20.0, 60.0)
OUT = REPO / "bench" / "out"


class ScoreCache:
    """Reranker scores on disk: (model identity, query, document text) -> score. One
    SQLite file, committed per query, so an interrupted run resumes where it stopped."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("CREATE TABLE IF NOT EXISTS scores (key TEXT PRIMARY KEY, score REAL)")

    @staticmethod
    def key(identity: str, query: str, text: str) -> str:
        """The cache key of one pair."""
        return hashlib.sha256(f"{identity}\0{query}\0{text}".encode()).hexdigest()

    def scores(self, reranker: Any, query: str, texts: list[str]) -> list[float]:
        """The reranker's scores of `texts` for `query`, computing only the missing ones."""
        keys = [self.key(reranker.info.identity, query, t) for t in texts]
        known: dict[str, float] = {}
        for i in range(0, len(keys), 500):
            part = keys[i:i + 500]
            rows = self.db.execute(f"SELECT key, score FROM scores WHERE key IN "
                                   f"({','.join('?' * len(part))})", part)
            known.update(rows.fetchall())
        todo = [i for i, k in enumerate(keys) if k not in known]
        if todo:
            got = reranker.score(query, [texts[i] for i in todo])
            rows = [(keys[i], float(s)) for i, s in zip(todo, got, strict=True)]
            self.db.executemany("INSERT OR REPLACE INTO scores VALUES (?, ?)", rows)
            self.db.commit()
            known.update(rows)
        return [known[k] for k in keys]


def first_stage(q: Q, s: Settings, params: RankingParams, depth: int) -> list[Hit]:
    """The engine's first-stage order of one query's candidates (fusion with the intent's
    weights, then ranking), its top `depth` as hits."""
    weights = intent_weights(q.intent.kind, s.lexical_weight, s.dense_weight,
                             s.fusion_identifier_dense, s.fusion_natural_lexical)
    if len(q.lists) == 1:
        weights = {name: 1.0 for name in q.lists}
    fused = reciprocal_rank_fusion(q.lists, k=s.rrf_k, weights=weights)
    fused = fused[:max(params.depth, depth, qb.LIMIT)]
    ranked = rank([Candidate(f.doc_id, f.score, q.chunks.get(f.doc_id),
                             {n: q.raw[n][f.doc_id] for n in f.ranks}) for f in fused],
                  q.intent, replace(params, weights=weights))
    return [Hit(r.chunk_id, r.chunk, r.score, {"ranking": StageScore(n, r.score)})
            for n, r in enumerate(ranked[:max(depth, qb.LIMIT)], start=1)]


def record(q: Q, qid: str, hits: list[Hit]) -> dict[str, Any]:
    """A query's record as bench/quality/quality.py writes them (what its statistics read)."""
    keys = [key(h.chunk) for h in hits[:qb.LIMIT]]
    seen: set[str] = set()
    top5: list[str] = []
    for h, k in zip(hits, keys, strict=False):
        if k not in seen and len(top5) < qb.TOP_K_PROSE:
            seen.add(k)
            top5.append(qb.content_kind(h.chunk))
    return {"id": qid, "corpus": q.corpus, "language": q.language, "style": q.style,
            "ranks": qb.M.relevant_ranks(keys, q.gold), "n_gold": len(q.gold), "top5": top5}


def prepare_split(split: str, args: argparse.Namespace, base: Settings,
                  embedder: Any) -> list[tuple[Q, str]]:
    """Every query of `split` (at most `--max-queries` per corpus and style) as a tune.Q
    with both retrievers' lists, and its id."""
    from bench.quality.corpora import cache_dir

    index_dir = cache_dir() / "index" / qb.code_key() / qb.index_key({})
    corpora = load_split(split, args.prepared, index_dir, OUT / f"static_fit-{split}.pkl",
                         base.candidates)
    corpora = [_subsample(c, args.max_queries) for c in corpora]
    dense = None
    if embedder is not None:
        # The lists are of the subsampled queries: the sample size is part of the key.
        cache = OUT / (f"rerank_fit-dense-{split}-q{args.max_queries}-"
                       f"{embedder.info.identity[:24]}.pkl")
        if cache.is_file():
            dense = pickle.loads(cache.read_bytes())
        else:
            dense = dense_lists(corpora, embedder, base.candidates)
            cache.write_bytes(pickle.dumps(dense))
    queries = build(corpora, dense)
    ids = [f"{c.name}#{i}" for c in corpora for i in range(len(c.queries))]
    return list(zip(queries, ids, strict=True))


def _subsample(c: Corpus, per_style: int) -> Corpus:
    """The first `per_style` queries of each style (all when 0), in the file's order."""
    if per_style <= 0:
        return c
    counts: dict[str, int] = {}
    kept = []
    for q in c.queries:
        counts[q["style"]] = counts.get(q["style"], 0) + 1
        if counts[q["style"]] <= per_style:
            kept.append(q)
    return Corpus(c.name, c.language, c.chunks, kept)


def score_split(queries: list[tuple[Q, str]], reranker: Any, cache: ScoreCache,
                s: Settings, depth_max: int) -> list[dict[str, Any]]:
    """Per query: its first-stage hits and the reranker's scores of the top `depth_max`
    (None for identifier lookups, which the engine does not rerank)."""
    params = RankingParams.from_settings(s)
    recipe = reranker.profile.recipe
    out = []
    t = time.perf_counter()
    for n, (q, qid) in enumerate(queries, start=1):
        hits = first_stage(q, s, params, depth_max)
        scores = None
        if reranks(q.intent) and hits:
            head = hits[:depth_max]
            scores = cache.scores(reranker, q.text, [rerank_text(h.chunk, recipe) for h in head])
        out.append({"q": q, "id": qid, "hits": hits, "scores": scores})
        if n % 50 == 0:
            print(f"   {n}/{len(queries)} queries ({time.perf_counter() - t:.0f}s)", flush=True)
    return out


def reranked_records(scored: list[dict[str, Any]], blend: RerankBlend | None,
                     depth: int) -> list[dict[str, Any]]:
    """Every query's record with the head of `depth` reranked by `blend` (None: the first
    stage)."""
    out = []
    for item in scored:
        hits = item["hits"]
        if blend is not None and item["scores"] is not None:
            d = min(depth, len(item["scores"]))
            hits = apply_rerank_scores(hits[:d], hits[d:], item["scores"][:d], blend)
        out.append(record(item["q"], item["id"], hits))
    return out


def paired_gain(base: list[dict[str, Any]], new: list[dict[str, Any]]) -> dict[str, float]:
    """The macro MRR@10 difference new - base with its 95% interval, per query paired,
    stratified by language (records in the same query order)."""
    deltas: dict[str, list[float]] = {}
    for b, n in zip(base, new, strict=True):
        delta = qb.query_metrics(n)["MRR@10"] - qb.query_metrics(b)["MRR@10"]
        deltas.setdefault(b["language"], []).append(delta)
    return dict(qb.M.ci_dict(qb.M.stratified_bootstrap(list(deltas.values()))))


def macro_mrr(records: list[dict[str, Any]]) -> float:
    """Macro MRR@10 over languages, all styles pooled (what the fit maximises)."""
    by_lang: dict[str, list[float]] = {}
    for r in records:
        by_lang.setdefault(r["language"], []).append(qb.query_metrics(r)["MRR@10"])
    return sum(sum(v) / len(v) for v in by_lang.values()) / max(1, len(by_lang))


def fit(scored: list[dict[str, Any]], depth: int, min_gain: float) -> dict[str, Any]:
    """The blend of the best macro MRR@10 on these (tune) queries, over both methods (the
    weighted RRF's (weight, k) grid, the interpolation's weights); weight 0 unless some
    blend gains more than `min_gain` over the first stage (weight 0). Ties prefer RRF
    and the smaller weight."""
    base = macro_mrr(reranked_records(scored, None, depth))
    grid = []
    candidates = [RerankBlend(w, k) for w, k in itertools.product(WEIGHTS[1:], KS)]
    candidates += [RerankBlend(w, method=BlendMethod.INTERPOLATE) for w in WEIGHTS[1:]]
    for blend in candidates:
        grid.append({"method": str(blend.method), "weight": blend.weight, "k": blend.k,
                     "macro": macro_mrr(reranked_records(scored, blend, depth))})
    best = max(grid, key=lambda r: (r["macro"], r["method"] == BlendMethod.RRF, -r["weight"]))
    # A grid's best is the best of many tries: it must also beat the first stage per
    # query, its paired interval (stratified by language) above 0, or it is noise.
    chosen = RerankBlend(best["weight"], best["k"], method=BlendMethod(best["method"]))
    gain = paired_gain(reranked_records(scored, None, depth),
                       reranked_records(scored, chosen, depth))
    helps = best["macro"] - base > min_gain and gain["lo"] > 0
    interpolation = max((r for r in grid if r["method"] == BlendMethod.INTERPOLATE),
                        key=lambda r: (r["macro"], -r["weight"]))
    return {"method": best["method"], "weight": best["weight"] if helps else 0.0,
            "k": best["k"], "depth": depth, "best_weight": best["weight"],
            "first_stage_macro": base, "best_macro": best["macro"], "helps": helps,
            "paired_gain": gain,
            "interpolation": {"weight": interpolation["weight"],
                              "macro": interpolation["macro"]},
            "grid": sorted(grid, key=lambda r: -r["macro"])}


def report(scored: list[dict[str, Any]], blend: RerankBlend, fit_depth: int,
           title: str, other: RerankBlend) -> tuple[str, dict[str, Any]]:
    """The tables of one split: variants per style, paired against the first stage."""
    variants = {"first stage": reranked_records(scored, None, 0)}
    for d in DEPTHS:
        variants[f"reranked @{d} ({_label(blend)})"] = reranked_records(scored, blend, d)
    variants[f"reranker alone @{fit_depth} (w=1)"] = \
        reranked_records(scored, RerankBlend(1.0, blend.k), fit_depth)
    variants[f"other method @{fit_depth} ({_label(other)})"] = \
        reranked_records(scored, other, fit_depth)
    parts, tables = [], {}
    for style in (*qb.STYLES, "all"):
        runs = {name: [r for r in rs if style == "all" or r["style"] == style]
                for name, rs in variants.items()}
        if not runs["first stage"]:
            continue
        table = qb.ablation_table(runs)
        tables[style] = table
        parts.append(qb.ablation_markdown(table, f"{title} · {style}"))
    return "\n".join(parts), tables


def _label(blend: RerankBlend) -> str:
    """How a variant's blend is named in the tables."""
    if blend.method == BlendMethod.INTERPOLATE:
        return f"interpolate, w={blend.weight:g}"
    return f"rrf, w={blend.weight:g}, k={blend.k:g}"


def load_models(args: argparse.Namespace) -> tuple[Any, Any, Settings]:
    """The reranker, the embedder (None: lexical first stage) and the first stage's
    settings (the embedder's fusion weight applied as the engine does)."""
    from semcode.models import static
    from semcode.models.builtin import embedder_folder, is_builtin
    from semcode.models.llama_cpp import open_reranker

    reranker = open_reranker(args.reranker, n_threads=args.threads, n_gpu_layers=0,
                             max_tokens=args.max_tokens or None)
    base = Settings()
    embedder = None
    if args.embedder != "off":
        folder = embedder_folder() if is_builtin(args.embedder) else Path(args.embedder)
        assert folder is not None, "this checkout has no built-in embedder"
        embedder = static.StaticEmbedder(folder)
        base = Settings.from_mapping(
            {"dense_weight": base.dense_weight * embedder.fusion_weight}, base)
    return reranker, embedder, base


def main(argv: list[str] | None = None) -> int:
    """Fit on tune, report tune and test; write the JSON and Markdown reports."""
    from bench.quality.corpora import prepared_root

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reranker", type=Path, required=True, help="a reranker GGUF")
    ap.add_argument("--embedder", default="builtin", help="builtin, off, or a model2vec folder")
    ap.add_argument("--prepared", type=Path, default=prepared_root())
    ap.add_argument("--max-queries", type=int, default=0, help="per corpus and style; 0: all")
    ap.add_argument("--depth-max", type=int, default=max(DEPTHS))
    ap.add_argument("--fit-depth", type=int, default=20)
    ap.add_argument("--min-gain", type=float, default=0.002)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--max-tokens", type=int, default=0, help="a classifier's pair budget")
    ap.add_argument("--splits", default="tune,test")
    ap.add_argument("--out", type=Path, default=OUT / "rerank_fit.json")
    ap.add_argument("--write-meta", type=Path, metavar="SEMCODE_JSON")
    args = ap.parse_args(argv)
    reranker, embedder, base = load_models(args)
    cache = ScoreCache(OUT / "rerank-scores.sqlite")
    print(f"reranker {reranker.info.identity} ({reranker.profile.recipe}); first stage "
          f"{'lexical + ' + embedder.info.identity if embedder else 'lexical'}", flush=True)
    result: dict[str, Any] = {"reranker": str(args.reranker),
                              "identity": reranker.info.identity, "splits": {}}
    markdown = []
    blend = RerankBlend(0.0)
    for split in args.splits.split(","):
        t = time.perf_counter()
        scored = score_split(prepare_split(split, args, base, embedder), reranker, cache,
                             base, args.depth_max)
        print(f"{split}: {len(scored)} queries scored in {time.perf_counter() - t:.0f}s",
              flush=True)
        if split == "tune":
            result["fit"] = fit(scored, args.fit_depth, args.min_gain)
            f = result["fit"]
            blend = RerankBlend(f["weight"], f["k"], fitted=True,
                                method=BlendMethod(f["method"]))
            print(f"fit on tune: {_label(blend)} (first stage {f['first_stage_macro']:.4f}, "
                  f"best {f['best_macro']:.4f})", flush=True)
        # A fit of weight 0 (no help on tune) is reported with the grid's best values, so
        # the tables say how far from helping it was; beside it, the other method's best.
        f = result.get("fit", {})
        shown = blend if blend.weight > 0 else replace(blend, weight=f.get("best_weight", 0.5))
        if shown.method == BlendMethod.INTERPOLATE:
            best_rrf = next((r for r in f.get("grid", []) if r["method"] == BlendMethod.RRF),
                            {"weight": 0.5, "k": 10.0})
            other = RerankBlend(best_rrf["weight"], best_rrf["k"])
        else:
            other = RerankBlend(f.get("interpolation", {}).get("weight", 0.5),
                                method=BlendMethod.INTERPOLATE)
        text, tables = report(scored, shown, args.fit_depth, f"split {split}", other)
        markdown.append(text)
        result["splits"][split] = {"queries": len(scored), "tables": tables}
        print(text, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, default=str))
    args.out.with_suffix(".md").write_text("\n".join(markdown))
    if args.write_meta and "fit" in result:
        meta = json.loads(args.write_meta.read_text()) if args.write_meta.is_file() else {}
        meta["blend"] = {"method": str(blend.method), "weight": blend.weight, "k": blend.k,
                         "split": "tune",
                         "depth": args.fit_depth, "fitted_by": "bench/quality/rerank_fit.py"}
        args.write_meta.write_text(json.dumps(meta, indent=2) + "\n")
    reranker.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
