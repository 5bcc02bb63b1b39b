"""Fit the first stage's fusion and ranking parameters on the **tune split** only.

    PYTHONPATH=server python -m bench.quality.tune [--mode lexical|hybrid] [--rounds 2]
        [--embedder GGUF] [--out bench/out/tune.json]

Each prepared corpus of the tune split (bench/quality/prepare.py) is indexed once; for
every query the retrievers' candidate lists and the chunks are kept in memory, so a
parameter setting costs only fusion + ranking (search/fusion.py, search/ranking.py: the
engine's own code) per query. Coordinate ascent over a small grid per parameter, on the
macro average over languages of MRR@10 (all query styles of a language pooled), the
metric the acceptance is stated in. A value replaces the current one only when it gains
more than `--min-gain` (ties keep the earlier, simpler value). The test split is never
read here.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "server"))

from semcode.chunks import Chunk  # noqa: E402
from semcode.config import Settings  # noqa: E402
from semcode.index.tokenizer import query_tokens  # noqa: E402
from semcode.search.engine import Engine  # noqa: E402
from semcode.search.fusion import intent_weights, reciprocal_rank_fusion  # noqa: E402
from semcode.search.intent import Intent, classify_query  # noqa: E402
from semcode.search.ranking import Candidate, RankingParams, rank  # noqa: E402

GRID: dict[str, list[Any]] = {
    "rank_base": ["rrf", "score"],
    "rrf_k": [5, 10, 20, 40, 60, 100, 200],
    "rank_definition": [0.0, 0.25, 0.5, 1.0, 2.0, 4.0],
    "rank_definition_normalised": [0.5, 0.8, 1.0],
    "rank_definition_stem": [0.0, 0.2, 0.4, 0.8],
    "rank_definition_mixed": [0.25, 0.5, 1.0],
    "rank_definition_natural": [0.25, 0.5, 1.0],
    "rank_definition_type": [0.0, 0.25, 0.5, 0.75, 1.0],
    "rank_prior_test": [0.2, 0.35, 0.5, 0.7, 1.0],
    "rank_prior_example": [0.2, 0.35, 0.5, 0.7, 1.0],
    "rank_prior_docs": [0.2, 0.35, 0.5, 0.7, 1.0],
    "rank_prior_config": [0.2, 0.5, 1.0],
    "rank_prior_generated": [0.2, 0.5, 1.0],
    "rank_prior_declaration": [0.3, 0.5, 0.7, 1.0],
    "rank_prior_reexport": [0.3, 0.5, 1.0],
    "rank_prior_module": [0.4, 0.6, 0.8, 1.0],
    "rank_prior_part": [0.2, 0.4, 0.5, 0.6, 0.8, 1.0],  # flat below 0.5: 0.5 kept
    "rank_path": [0.0, 0.1, 0.2, 0.4],
    "rank_container": [0.0, 0.05, 0.1, 0.2],
    "rank_file_decay": [0.5, 0.7, 0.85, 1.0],
    "rank_file_keep": [1, 2, 3],
}
HYBRID_GRID: dict[str, list[Any]] = {
    "fusion_identifier_dense": [0.0, 0.25, 0.5, 1.0],
    "fusion_natural_lexical": [0.5, 0.75, 1.0],
}


@dataclass
class Q:
    language: str
    corpus: str
    style: str
    gold: frozenset[str]
    intent: Intent
    lists: dict[str, list[int]]
    raw: dict[str, dict[int, float]]
    chunks: dict[int, Chunk]
    text: str = ""


def _static_dense(engine: Engine, model: Any) -> Any:
    """A query -> [(chunk id, cosine)] function over every chunk, embedded with a
    model2vec static model (the `--static` experiment: a fast stand-in for the GGUF
    embedder, computed here, not through the engine)."""
    import numpy as np

    ids = sorted(engine.indexer.refs)
    chunks = engine.indexer.chunks(ids)
    ids = [i for i in ids if i in chunks]
    if not ids:
        return lambda text, k: []
    m = np.asarray(model.encode([chunks[i].embedding_text() for i in ids]), dtype=np.float32)
    m /= np.linalg.norm(m, axis=1, keepdims=True) + 1e-9
    id_arr = np.asarray(ids)

    def search(text: str, k: int) -> list[tuple[int, float]]:
        q = np.asarray(model.encode([text])[0], dtype=np.float32)
        s = m @ (q / (np.linalg.norm(q) + 1e-9))
        top = np.argsort(-s)[:k]
        return [(int(id_arr[j]), float(s[j])) for j in top]

    return search


def collect(prepared: Path, mode: str, base: Settings, log: Any = print,
            static: Any = None) -> list[Q]:
    data = json.loads((prepared / "queries.json").read_text())
    settings = base  # one index per workspace root under index_dir (indexer.index_dir_for)
    t = time.perf_counter()
    engine = Engine.open(prepared / "tree", settings)
    out: list[Q] = []
    try:
        engine.sync()
        if mode == "hybrid" and static is None:
            engine.embed_pending()
        static_search = _static_dense(engine, static) if static is not None else None
        for q in data["queries"]:
            found: dict[str, list[tuple[int, float]]] = {}
            found["lexical"] = engine.indexer.lexical.search(query_tokens(q["text"]),
                                                             settings.candidates)
            if static_search is not None:
                found["dense"] = static_search(q["text"], settings.candidates)
            elif mode == "hybrid":
                dense = engine._dense(q["text"], settings.candidates, None, [])
                if dense is not None:
                    found["dense"] = dense
            lists = {name: [i for i, _ in hits] for name, hits in found.items()}
            raw = {name: dict(hits) for name, hits in found.items()}
            ids = {i for ids in lists.values() for i in ids}
            out.append(Q(data["language"], data["corpus"], q["style"], frozenset(q["gold"]),
                          classify_query(q["text"]), lists, raw, engine.indexer.chunks(ids),
                          q["text"]))
    finally:
        engine.close()
        engine.models.close()
    log(f"  {data['corpus']:<14} {data['language']:<11} {len(out):4} queries "
        f"({time.perf_counter() - t:.1f}s)")
    return out


def key(chunk: Chunk) -> str:
    return f"{chunk.path}::{chunk.qualified_name}"


def reciprocal_rank(q: Q, s: Settings, params: RankingParams) -> float:
    weights = intent_weights(q.intent.kind, s.lexical_weight, s.dense_weight,
                             s.fusion_identifier_dense, s.fusion_natural_lexical)
    if len(q.lists) == 1:
        weights = {name: 1.0 for name in q.lists}
    fused = reciprocal_rank_fusion(q.lists, k=s.rrf_k, weights=weights)[:max(params.depth, 10)]
    params = replace(params, weights=weights)
    ranked = rank([Candidate(f.doc_id, f.score, q.chunks.get(f.doc_id),
                             {n: q.raw[n][f.doc_id] for n in f.ranks}) for f in fused],
                  q.intent, params)
    for n, r in enumerate(ranked[:10], start=1):
        if key(r.chunk) in q.gold:
            return 1.0 / n
    return 0.0


def score(queries: list[Q], s: Settings) -> tuple[float, dict[str, float], dict[str, float]]:
    """(macro MRR@10 over languages, per language, per style)."""
    params = RankingParams.from_settings(s)
    by_lang: dict[str, list[float]] = {}
    by_style: dict[str, list[float]] = {}
    for q in queries:
        rr = reciprocal_rank(q, s, params)
        by_lang.setdefault(q.language, []).append(rr)
        by_style.setdefault(q.style, []).append(rr)
    langs = {lg: sum(v) / len(v) for lg, v in sorted(by_lang.items())}
    styles = {st: sum(v) / len(v) for st, v in sorted(by_style.items())}
    return sum(langs.values()) / len(langs), langs, styles


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--prepared", type=Path, default=None, help="prepared corpora root")
    ap.add_argument("--mode", choices=("lexical", "hybrid"), default="lexical")
    ap.add_argument("--embedder", default="off")
    ap.add_argument("--embedding-profile", default="auto")
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--min-gain", type=float, default=0.001)
    ap.add_argument("--only", default="", help="comma list of parameters to fit")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="start from this setting (repeatable)")
    ap.add_argument("--index-dir", type=Path, default=None,
                    help="default: the index bench/run uses for this checkout (vectors reused)")
    ap.add_argument("--fields", default="", help="BM25F weights for this run, e.g. name=2,doc=1 "
                    "(index-time: each distinct value gets its own index)")
    ap.add_argument("--static", type=Path, default=None,
                    help="hybrid with this model2vec model computed here (an experiment)")
    ap.add_argument("--report-test", action="store_true",
                    help="after fitting, score the frozen values on the test split (once)")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "tune.json")
    args = ap.parse_args(argv)
    static = None
    if args.static is not None:
        from model2vec import StaticModel

        static = StaticModel.from_pretrained(str(args.static))
        args.mode = "hybrid"
    if args.fields:
        from semcode.index.tokenizer import FIELD_WEIGHTS

        for item in args.fields.split(","):
            name, value = item.split("=")
            assert f"§{name}" in FIELD_WEIGHTS, name
            FIELD_WEIGHTS[f"§{name}"] = float(value)  # the dict lexical.py reads
        args.index_dir = Path("/tmp/semcode-tune-index") / args.fields.replace(",", "_")
    if args.index_dir is None:
        from bench.quality import quality as qb
        from bench.quality.corpora import cache_dir

        args.index_dir = cache_dir() / "index" / qb.code_key() / qb.index_key({})
    if args.prepared is None:
        from bench.quality.prepare import prepared_root

        args.prepared = prepared_root()
    base = Settings.from_mapping({
        "embedding_model": args.embedder if args.mode == "hybrid" and static is None else "off",
        "embedding_profile": args.embedding_profile, "reranker_model": "off",
        "rerank": False, "offline": True, "index_dir": str(args.index_dir)})
    base = Settings.from_mapping(dict(kv.split("=", 1) for kv in args.set), base)
    dirs = sorted(d for d in args.prepared.iterdir() if (d / "queries.json").is_file())
    tune = [d for d in dirs if json.loads((d / "queries.json").read_text())["split"] == "tune"]
    print(f"tune split: {len(tune)} corpora ({args.mode})", flush=True)
    queries = [q for d in tune for q in collect(d, args.mode, base, static=static)]
    grid = dict(GRID, **(HYBRID_GRID if args.mode == "hybrid" else {}))
    if args.only:
        grid = {k: v for k, v in grid.items() if k in args.only.split(",")}
    current = base
    best, langs, styles = score(queries, current)
    off = score(queries, replace(base, ranking=False))
    print(f"start: macro MRR@10 {best:.4f} (ranking off: {off[0]:.4f})", flush=True)
    history = []
    for rnd in range(1, args.rounds + 1):
        changed = False
        for name, values in grid.items():
            results = []
            for v in values:
                cand = Settings.from_mapping({name: v}, current)
                results.append((score(queries, cand)[0], v))
            top, value = max(results, key=lambda t: t[0])
            if top > best + args.min_gain and value != getattr(current, name):
                current = Settings.from_mapping({name: value}, current)
                best, changed = top, True
            history.append({"round": rnd, "param": name, "value": getattr(current, name),
                            "macro": round(best, 4),
                            "grid": {str(v): round(m, 4) for m, v in results}})
            print(f"  r{rnd} {name:<28} -> {getattr(current, name)!s:<6} macro {best:.4f}   "
                  + " ".join(f"{v}:{m:.3f}" for m, v in results), flush=True)
        if not changed:
            break
    best, langs, styles = score(queries, current)
    fitted = {k: getattr(current, k) for k in grid}
    print(f"fitted: macro MRR@10 {best:.4f} (ranking off {off[0]:.4f})")
    print("per language:", {k: round(v, 3) for k, v in langs.items()})
    print("per style:", {k: round(v, 3) for k, v in styles.items()})
    print("values:", fitted)
    report: dict[str, Any] = {}
    if args.report_test:
        test = [d for d in dirs if json.loads((d / "queries.json").read_text())["split"] == "test"]
        tq = [q for d in test for q in collect(d, args.mode, base, static=static)]
        plain = Settings.from_mapping({"ranking": False, "rrf_k": 60, "lexical_weight": 1.0,
                                       "dense_weight": 1.0, "fusion_identifier_dense": 1.0,
                                       "fusion_natural_lexical": 1.0}, base)
        for name, s in (("fitted", current), ("defaults", base), ("plain RRF, no ranking", plain)):
            m, lg, st = score(tq, s)
            report[name] = {"macro": m, "languages": lg, "styles": st}
            print(f"test ({len(tq)} queries) {name}: macro MRR@10 {m:.4f}",
                  {k: round(v, 3) for k, v in st.items()},
                  {k: round(v, 3) for k, v in lg.items()}, flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({
        "mode": args.mode, "n_queries": len(queries), "corpora": [d.name for d in tune],
        "macro_mrr10": best, "ranking_off_macro_mrr10": off[0], "languages": langs,
        "styles": styles, "fitted": fitted, "history": history, "test": report},
        indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
