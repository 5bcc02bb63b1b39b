"""Fit how a static (model2vec) embedder's list enters fusion, on the **tune split** only.

    PYTHONPATH=server:. python -m bench.quality.static_fit --model DIR [--split tune]
        [--profiles static-mean,static-code-words] [--floor] [--out bench/out/static_fit.json]

Each prepared corpus is indexed once (the bench's own lexical index, reused) and every
query's BM25 list, intent and candidate chunks are kept in memory (cached in a pickle per
split). Then, per static profile (models/profiles.py: how the text is prepared before
the model's tokenizer, models/static.py `PREPARATIONS`), every chunk of every corpus is
embedded with semcode's own `StaticEmbedder` and the exact cosine top-`candidates` list
of every query is computed;
fusion and ranking are the engine's own code (bench/quality/tune.py `score`). A grid of
fusion weights is scored on macro MRR@10 over languages (all styles pooled); the dense
list alone is reported too. The test split is read only with `--split test`, to report
values frozen on tune.
"""

from __future__ import annotations

import argparse
import itertools
import json
import pickle
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "server"))

import numpy as np  # noqa: E402

from bench.quality.tune import Q, score  # noqa: E402
from semcode.chunks import Chunk  # noqa: E402
from semcode.config import Settings  # noqa: E402
from semcode.index.tokenizer import query_tokens  # noqa: E402
from semcode.search.engine import Engine  # noqa: E402
from semcode.search.intent import classify_query  # noqa: E402


@dataclass
class Corpus:
    name: str
    language: str
    chunks: dict[int, Chunk]
    queries: list[dict[str, Any]]  # text, style, gold, lexical [(id, score)]


def load_split(split: str, prepared: Path, index_dir: Path, cache: Path,
               candidates: int) -> list[Corpus]:
    """Every corpus of `split` with its chunks and BM25 lists (cached in `cache`)."""
    if cache.is_file():  # plain tuples: the class may have been pickled as __main__.Corpus
        return [Corpus(*t) for t in pickle.loads(cache.read_bytes())]
    settings = Settings.from_mapping({"embedding_model": "off", "reranker_model": "off",
                                      "rerank": False, "offline": True,
                                      "index_dir": str(index_dir)})
    out: list[Corpus] = []
    for d in sorted(prepared.iterdir()):
        qfile = d / "queries.json"
        if not qfile.is_file():
            continue
        data = json.loads(qfile.read_text())
        if data["split"] != split:
            continue
        t = time.perf_counter()
        engine = Engine.open(d / "tree", settings)
        try:
            engine.sync()
            ids = sorted(engine.indexer.refs)
            chunks = engine.indexer.chunks(ids)
            queries = [{"text": q["text"], "style": q["style"], "gold": q["gold"],
                        "lexical": engine.indexer.lexical.search(query_tokens(q["text"]),
                                                                 candidates)}
                       for q in data["queries"]]
        finally:
            engine.close()
        out.append(Corpus(data["corpus"], data["language"], chunks, queries))
        print(f"  {data['corpus']:<14} {data['language']:<11} {len(chunks):6} chunks "
              f"{len(queries):4} queries ({time.perf_counter() - t:.1f}s)", flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(pickle.dumps([(c.name, c.language, c.chunks, c.queries) for c in out]))
    return out


def dense_lists(corpora: list[Corpus], embedder: Any, candidates: int
                ) -> list[list[list[tuple[int, float]]]]:
    """Per corpus, per query: the exact cosine top-`candidates` (chunk id, cosine)."""
    out = []
    for c in corpora:
        ids = sorted(c.chunks)
        m = embedder.embed_documents([c.chunks[i].embedding_text() for i in ids])
        id_arr = np.asarray(ids)
        per_query = []
        for q in c.queries:
            s = m @ embedder.embed_query(q["text"])
            top = np.argsort(-s, kind="stable")[:candidates]
            per_query.append([(int(id_arr[j]), float(s[j])) for j in top])
        out.append(per_query)
    return out


def build(corpora: list[Corpus], dense: list[list[list[tuple[int, float]]]] | None,
          only_dense: bool = False, floor: bool = False) -> list[Q]:
    """tune.Q records (the engine's fusion + ranking run on them in `score`)."""
    out = []
    for ci, c in enumerate(corpora):
        for qi, q in enumerate(c.queries):
            found: dict[str, list[tuple[int, float]]] = {}
            if not only_dense:
                found["lexical"] = q["lexical"]
            if dense is not None:
                hits = dense[ci][qi]
                if floor and hits:  # scores above the list's last one: missing = 0
                    hits = [(i, v - hits[-1][1]) for i, v in hits]
                found["dense"] = hits
            lists = {n: [i for i, _ in h] for n, h in found.items()}
            raw = {n: dict(h) for n, h in found.items()}
            ids = {i for v in lists.values() for i in v}
            out.append(Q(c.language, c.name, q["style"], frozenset(q["gold"]),
                         classify_query(q["text"]), lists, raw,
                         {i: c.chunks[i] for i in ids if i in c.chunks}, q["text"]))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, required=True, help="model2vec folder")
    ap.add_argument("--split", choices=("tune", "test"), default="tune")
    ap.add_argument("--profiles", default="static-mean,static-code-words",
                    help="comma list of static embedding profiles")
    ap.add_argument("--weights", default="0,0.002,0.05,0.1,0.2,0.3,0.5,1.0",
                    help="effective dense weights to score")
    ap.add_argument("--identifier-dense", default="0,0.25,0.5,1.0")
    ap.add_argument("--natural-lexical", default="0.5,0.75,1.0")
    ap.add_argument("--floor", action="store_true",
                    help="dense scores relative to the last of its list")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    ap.add_argument("--out", type=Path, default=REPO / "bench" / "out" / "static_fit.json")
    args = ap.parse_args(argv)

    from bench.quality import quality as qb
    from bench.quality.corpora import cache_dir
    from bench.quality.prepare import prepared_root
    from semcode.models import static
    from semcode.models.profiles import get_embedding_profile

    index_dir = cache_dir() / "index" / qb.code_key() / qb.index_key({})
    base = Settings.from_mapping(dict(kv.split("=", 1) for kv in args.set), Settings())
    corpora = load_split(args.split, prepared_root(), index_dir,
                         REPO / "bench" / "out" / f"static_fit-{args.split}.pkl", base.candidates)
    print(f"{args.split}: {len(corpora)} corpora, "
          f"{sum(len(c.chunks) for c in corpora)} chunks, "
          f"{sum(len(c.queries) for c in corpora)} queries", flush=True)
    lexical = build(corpora, None)
    lex, lex_langs, lex_styles = score(lexical, base)
    print(f"lexical: macro {lex:.4f}", {k: round(v, 3) for k, v in lex_langs.items()},
          {k: round(v, 3) for k, v in lex_styles.items()}, flush=True)
    report: dict[str, Any] = {"split": args.split, "lexical": {
        "macro": lex, "languages": lex_langs, "styles": lex_styles}, "profiles": {}}
    names = args.profiles.split(",")
    grid = list(itertools.product([float(w) for w in args.weights.split(",")],
                                  [float(w) for w in args.identifier_dense.split(",")],
                                  [float(w) for w in args.natural_lexical.split(",")]))
    for name in names:
        profile = get_embedding_profile(name)
        t = time.perf_counter()
        embedder = static.StaticEmbedder(args.model, profile=profile)
        dense = dense_lists(corpora, embedder, base.candidates)
        embed_s = time.perf_counter() - t
        alone = score(build(corpora, dense, only_dense=True), base)
        qs = build(corpora, dense, floor=args.floor)
        rows = []
        for w, ident, nat in grid:
            s = Settings.from_mapping({"dense_weight": w, "fusion_identifier_dense": ident,
                                       "fusion_natural_lexical": nat}, base)
            m, langs, styles = score(qs, s)
            rows.append({"dense_weight": w, "fusion_identifier_dense": ident,
                         "fusion_natural_lexical": nat, "macro": m, "languages": langs,
                         "styles": styles,
                         "worse_languages": sum(langs[k] < lex_langs[k] - 1e-9 for k in langs)})
        best = max(rows, key=lambda r: r["macro"])
        print(f"[{name}] embed {embed_s:.1f}s; dense alone macro {alone[0]:.4f} "
              f"{ {k: round(v, 3) for k, v in alone[2].items()} }", flush=True)
        for r in sorted(rows, key=lambda r: -r["macro"])[:8]:
            print(f"   w={r['dense_weight']:<6} ident={r['fusion_identifier_dense']:<5} "
                  f"nat={r['fusion_natural_lexical']:<5} macro {r['macro']:.4f} "
                  f"(Δ {r['macro'] - lex:+.4f}, {r['worse_languages']} languages below) "
                  f"{ {k: round(v, 3) for k, v in r['styles'].items()} }", flush=True)
        report["profiles"][name] = {"embed_s": embed_s, "dense_alone": {
            "macro": alone[0], "languages": alone[1], "styles": alone[2]},
            "grid": rows, "best": best}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
