"""The quality benchmark that decides: prepared corpora (bench/quality/prepare.py) searched
through the public Engine API only (Engine.open, sync, embed_pending, search with a
SearchRequest), so the same run works against any semcode on PYTHONPATH, 0.1.0 included.

For each repository of the chosen split, each query style and each mode (`lexical`:
mode=lexical, embeddings off, the final first-stage order; `hybrid`: with the embedder),
record the rank of the gold definition and the content kinds of the top 5; report MRR@10,
nDCG@10, R@1, R@10 with 95% bootstrap intervals per language × style, their macro average
over languages, and "prose on top" (for docstring/prose queries, whose answer is code: the
mean share of the top 5 that is docs/test/example). Ablations: the same run once per named
settings variant, one table of macro MRR@10 (with the paired difference to the first
variant) and per-language MRR@10.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import re
import time
import tomllib
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

REPO = Path(__file__).resolve().parents[2]
STYLES = ("docstring", "prose", "identifier")
LIMIT = 20  # what a picker shows; every metric is @10 or less
TOP_K_PROSE = 5
NOT_CODE = ("docs", "test", "example")
METRICS = ("MRR@10", "nDCG@10", "R@1", "R@10")
MIN_MACRO_QUERIES = 10  # a language with fewer queries of a style is shown, not averaged


def _load_metrics() -> ModuleType:
    """This checkout's `semcode/evaluation/metrics.py`, loaded by path: the semcode on
    PYTHONPATH may be another version (0.1.0 has no such module), and the metrics must
    be the same for every version measured."""
    path = REPO / "server" / "semcode" / "evaluation" / "metrics.py"
    spec = importlib.util.spec_from_file_location("_bench_metrics", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


M = _load_metrics()

# ---------------------------------------------------------------- content kinds
_DOC_EXT = re.compile(r"\.(md|markdown|rst|txt|adoc)$|(^|/)(README|CHANGES|HISTORY|NEWS)[^/]*$",
                      re.I)
_TEST = re.compile(r"(^|/)(tests?|Tests?|testing|__tests__|spec|specs|testdata|fixtures?)(/|$)|"
                   r"(^|/)(test_[^/]*|[^/]*_tests?\.\w+|[^/]*_spec\.rb|[^/]*[._-](test|spec)"
                   r"\.[jt]sx?|[^/]*Tests?\.\w+|conftest\.py)$")
_EXAMPLE = re.compile(r"(^|/)(examples?|samples?|demos?|bench|benches|benchmarks?)(/|$)")


def content_kind(chunk: Any) -> str:
    """The chunk's content kind: the engine's own `content` field when it has one
    (semcode > 0.1.0), else `path_kind`."""
    value = getattr(chunk, "content", None)
    if value:
        return str(getattr(value, "value", value))
    return path_kind(chunk)


def path_kind(chunk: Any) -> str:
    """A version-independent path heuristic: docs / test / example / code (so "prose on
    top" can also be compared across versions whose classifiers differ)."""
    path = chunk.path
    if _DOC_EXT.search(path) or getattr(chunk, "language", "") in ("markdown", "rst"):
        return "docs"
    if _TEST.search(path):
        return "test"
    if _EXAMPLE.search(path):
        return "example"
    return "code"


# ---------------------------------------------------------------- running
def code_key() -> str:
    """Identifies the semcode being measured (its location), so each version keeps its
    own stable index directories under the bench cache."""
    import semcode

    where = str(Path(semcode.__file__).resolve().parent)
    digest = hashlib.sha256(where.encode()).hexdigest()[:8]
    return f"{getattr(semcode, '__version__', 'x')}-{digest}"


def index_key(overrides: dict[str, Any]) -> str:
    """The part of a variant's settings that changes the index (Engine.INDEX_SETTINGS)."""
    from semcode.search.engine import Engine

    keys = set(getattr(Engine, "INDEX_SETTINGS", ()))
    relevant = {k: overrides[k] for k in sorted(overrides) if k in keys}
    if not relevant:
        return "default"
    return hashlib.sha256(json.dumps(relevant, sort_keys=True, default=str).encode()
                          ).hexdigest()[:8]


def load_prepared(directory: Path) -> dict[str, Any]:
    """A prepared corpus: {corpus, language, split, stats, queries} plus its tree path."""
    data: dict[str, Any] = json.loads((directory / "queries.json").read_text())
    data["tree"] = directory / "tree"
    return data


def run_corpus(prepared: dict[str, Any], settings: Any, mode: str, styles: Sequence[str],
               log: Callable[[str], None] = print) -> dict[str, Any]:
    """Index (incrementally) and search one prepared corpus in one mode; per-query records."""
    from semcode.search.engine import Engine, SearchRequest

    t = time.perf_counter()
    engine = Engine.open(Path(prepared["tree"]), settings)
    records: list[dict[str, Any]] = []
    try:
        engine.sync()
        if mode != "lexical":
            engine.embed_pending()
        index_s = time.perf_counter() - t
        t = time.perf_counter()
        for q in prepared["queries"]:
            if q["style"] not in styles:
                continue
            response = engine.search(SearchRequest(query=q["text"], limit=LIMIT, mode=mode,
                                                   rerank=False))
            keys = [f"{h.chunk.path}::{h.chunk.qualified_name}" for h in response.hits]
            ranks = M.relevant_ranks(keys, frozenset(q["gold"]))
            seen: set[str] = set()
            kinds: list[str] = []
            path_kinds: list[str] = []
            for h, key in zip(response.hits, keys, strict=True):
                if key not in seen and len(kinds) < TOP_K_PROSE:
                    seen.add(key)
                    kinds.append(content_kind(h.chunk))
                    path_kinds.append(path_kind(h.chunk))
            records.append({"id": q["id"], "style": q["style"], "text": q["text"][:300],
                            "gold": q["gold"], "language": prepared["language"],
                            "corpus": prepared["corpus"], "ranks": ranks,
                            "n_gold": len(q["gold"]), "top5": kinds, "top5_path": path_kinds,
                            "mode": getattr(response, "mode", mode)})
        query_s = time.perf_counter() - t
    finally:
        engine.close()
        models = getattr(engine, "models", None)
        if models is not None and hasattr(models, "close"):
            models.close()
    log(f"   {prepared['corpus']:<12} {mode:<7} {len(records):4} queries, index/sync "
        f"{index_s:5.1f}s, queries {query_s:5.1f}s")
    return {"records": records, "index_s": index_s, "query_s": query_s}


def query_metrics(record: dict[str, Any]) -> dict[str, float]:
    """The reported metrics of one query, plus its "prose on top" share."""
    values: dict[str, float] = M.metric_values(record["ranks"], record["n_gold"])
    out = {m: values[m] for m in METRICS}
    top = record["top5"]
    out["prose_on_top"] = sum(k in NOT_CODE for k in top) / TOP_K_PROSE if top else 0.0
    top = record.get("top5_path", top)
    out["prose_on_top_path"] = sum(k in NOT_CODE for k in top) / TOP_K_PROSE if top else 0.0
    return out


def summarize(records: Sequence[dict[str, Any]], seed: int = 0) -> dict[str, Any]:
    """Per style (and all styles): per language each metric's mean [95% CI], and the macro
    average over the languages with at least MIN_MACRO_QUERIES queries of that style
    (stratified bootstrap); prose on top for docstring/prose."""
    out: dict[str, Any] = {}
    for style in (*STYLES, "all"):
        rs = [r for r in records if style == "all" or r["style"] == style]
        if not rs:
            continue
        by_lang: dict[str, list[dict[str, float]]] = {}
        for r in rs:
            by_lang.setdefault(r["language"], []).append(query_metrics(r))
        metrics = list(METRICS)
        if style in ("docstring", "prose"):
            metrics += ["prose_on_top", "prose_on_top_path"]
        block: dict[str, Any] = {"n": len(rs), "languages": {}, "macro": {}}
        for lang in sorted(by_lang):
            vals = by_lang[lang]
            block["languages"][lang] = {"n": len(vals), **{
                m: M.ci_dict(M.bootstrap_ci([v[m] for v in vals], seed=seed)) for m in metrics}}
        in_macro = [lg for lg in sorted(by_lang) if len(by_lang[lg]) >= MIN_MACRO_QUERIES]
        block["macro_languages"] = in_macro
        for m in metrics:
            groups = [[v[m] for v in by_lang[lang]] for lang in in_macro]
            block["macro"][m] = M.ci_dict(M.stratified_bootstrap(groups, seed=seed))
        out[style] = block
    return out


def markdown(summary: dict[str, Any], title: str) -> str:
    """Tables: one per style, languages as rows, metrics as columns, macro last."""
    lines: list[str] = []
    for style, block in summary.items():
        metrics = list(block["macro"])
        lines += [f"**{title} — {style}** ({block['n']} queries; mean [95% bootstrap CI])", "",
                  "| language | n | " + " | ".join(metrics) + " |",
                  "|---|---|" + "---|" * len(metrics)]
        for lang, v in block["languages"].items():
            mark = "" if lang in block.get("macro_languages", [lang]) else " (not in macro)"
            lines.append(f"| {lang}{mark} | {v['n']} | "
                         + " | ".join(M.format_ci(v[m]) for m in metrics) + " |")
        lines.append(f"| **macro** ({len(block.get('macro_languages', []))} languages) | "
                     f"{block['n']} | "
                     + " | ".join(M.format_ci(block["macro"][m]) for m in metrics) + " |")
        lines.append("")
    return "\n".join(lines)


# ---------------------------------------------------------------- ablations
def load_ablations(path: Path) -> dict[str, dict[str, Any]]:
    """Named variants from a TOML file: `[variants.NAME]` tables of settings overrides
    (as `--set key=value` would give). The first variant is the reference."""
    data = tomllib.loads(path.read_text())
    variants = data.get("variants", {})
    if not isinstance(variants, dict) or not variants:
        raise ValueError(f"{path}: no [variants.NAME] tables")
    return {name: dict(v) for name, v in variants.items()}


def ablation_table(runs: dict[str, list[dict[str, Any]]], seed: int = 0) -> dict[str, Any]:
    """Macro MRR@10 per variant with its CI (languages with at least MIN_MACRO_QUERIES
    queries), the paired difference to the reference (first) variant, and MRR@10 and its
    paired difference per language."""
    names = list(runs)
    ref = {(r["corpus"], r["id"]): r for r in runs[names[0]]}
    out: dict[str, Any] = {}
    for name in names:
        rs = runs[name]
        by_lang: dict[str, list[float]] = {}
        deltas: dict[str, list[float]] = {}
        for r in rs:
            v = query_metrics(r)["MRR@10"]
            by_lang.setdefault(r["language"], []).append(v)
            base = ref.get((r["corpus"], r["id"]))
            if base is not None:
                deltas.setdefault(r["language"], []).append(v - query_metrics(base)["MRR@10"])
        langs = [lg for lg in sorted(by_lang) if len(by_lang[lg]) >= MIN_MACRO_QUERIES]
        out[name] = {
            "n": len(rs),
            "macro": M.ci_dict(M.stratified_bootstrap([by_lang[lg] for lg in langs], seed=seed)),
            "delta": M.ci_dict(M.stratified_bootstrap([deltas.get(lg, []) for lg in langs],
                                                      seed=seed)),
            "macro_languages": langs,
            "languages": {lg: M.ci_dict(M.bootstrap_ci(v, seed=seed)) for lg, v in by_lang.items()},
            "language_delta": {lg: M.ci_dict(M.bootstrap_ci(d, seed=seed))
                               for lg, d in deltas.items() if d},
        }
    return out


def ablation_markdown(table: dict[str, Any], title: str) -> str:
    """The ablation table: variants as rows; macro MRR@10, its paired difference to the
    reference, then MRR@10 per language."""
    if not table:
        return ""
    langs = sorted({lg for v in table.values() for lg in v["languages"]})
    lines = [f"**{title}** (MRR@10, mean [95% CI]; Δ = paired difference to the first "
             "variant, stratified by language; worse = languages whose own paired Δ interval "
             "lies below 0)", "",
             "| variant | n | macro | Δ macro | worse (Δ CI < 0) | " + " | ".join(langs) + " |",
             "|---|---|---|---|---|" + "---|" * len(langs)]
    for name, v in table.items():
        cells = [f"{v['languages'][lg]['mean']:.3f}" if lg in v["languages"] else "–"
                 for lg in langs]
        worse = [lg for lg, d in v["language_delta"].items() if d["hi"] < 0]
        lines.append(f"| {name} | {v['n']} | {M.format_ci(v['macro'])} | "
                     f"{M.format_ci(v['delta'], signed=True)} | {', '.join(worse) or '–'} | "
                     + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def overview_markdown(summaries: dict[str, dict[str, Any]], title: str) -> str:
    """One compact table of macro averages: a row per mode/split × style."""
    lines = [f"**{title}** — macro average over languages, mean [95% CI]; prose on top: "
             "the engine's `content` kinds (path heuristic where it has none) / the path "
             "heuristic alone", "",
             "| mode / split | style | n | MRR@10 | nDCG@10 | R@1 | R@10 | prose on top | "
             "prose on top (path) |", "|---|---|---|---|---|---|---|---|---|"]
    for where, summary in summaries.items():
        for style, block in summary.items():
            m = block["macro"]
            tops = [M.format_ci(m[k]) if k in m else "–"
                    for k in ("prose_on_top", "prose_on_top_path")]
            lines.append(f"| {where} | {style} | {block['n']} | "
                         + " | ".join(M.format_ci(m[k]) for k in METRICS) + " | "
                         + " | ".join(tops) + " |")
    return "\n".join(lines) + "\n"
