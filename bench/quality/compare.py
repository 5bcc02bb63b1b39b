"""Compare two quality-benchmark runs query by query (e.g. 0.1.0 against a branch):

    python -m bench.quality.compare bench/out/baseline-0.1.0/results.json \\
        bench/out/results.json [--out FILE.md]
    python -m bench.quality.compare bench/out/results.json --modes lexical,hybrid \\
        [--split test]          # two modes of one run, per language

For each mode, split and style (and all styles): macro MRR@10 of each run with its 95%
interval, the paired difference (new − base, bootstrap stratified by language) and the
languages the new run makes worse beyond their own interval. Queries are matched by
(corpus, query id); only queries present in both runs count.

With `--modes BASE,NEW` and one file: per language, MRR@10 and R@10 of the two modes of
that run (e.g. lexical and hybrid) with their 95% intervals and the paired per-query
difference of MRR@10 with its interval; the macro row is stratified by language.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.quality.quality import (  # noqa: E402
    MIN_MACRO_QUERIES,
    STYLES,
    M,
    ablation_markdown,
    ablation_table,
    query_metrics,
)


def records(path: Path) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """A results.json's label and its first variant's records per mode."""
    bench = json.loads(path.read_text())["quality"]["bench"]
    out: dict[str, list[dict[str, Any]]] = {}
    for key, recs in bench["queries"].items():
        mode = key.split("/", 1)[0]
        out.setdefault(mode, recs)  # the first variant of each mode
        out[key] = recs  # and every variant as "mode/variant"
    return bench["label"], out


def _pick(rs: list[dict[str, Any]], split: str, style: str,
          common: set[tuple[str, str]]) -> list[dict[str, Any]]:
    return [r for r in rs if r.get("split") == split
            and (style == "all" or r["style"] == style) and (r["corpus"], r["id"]) in common]


def compare(base: Path, new: Path) -> str:
    """The Markdown comparison of two runs."""
    base_label, base_recs = records(base)
    new_label, new_recs = records(new)
    parts = [f"# {new_label} against {base_label}", ""]
    for mode in sorted(m for m in set(base_recs) & set(new_recs) if "/" not in m):
        b_all, n_all = base_recs[mode], new_recs[mode]
        common = ({(r["corpus"], r["id"]) for r in b_all}
                  & {(r["corpus"], r["id"]) for r in n_all})
        for split in ("tune", "test"):
            for style in (*STYLES, "all"):
                b, n = (_pick(rs, split, style, common) for rs in (b_all, n_all))
                if not b:
                    continue
                table = ablation_table({base_label: b, new_label: n})
                parts.append(ablation_markdown(table, f"{mode} · split {split} · {style}"))
    return "\n".join(parts)


def modes_table(path: Path, base_mode: str, new_mode: str, split: str,
                style: str = "all") -> str:
    """Per language: each mode's MRR@10 and R@10 [95% CI] and the paired MRR@10
    difference (new − base) [95% CI], from one run; the macro row is stratified by
    language (languages with fewer than MIN_MACRO_QUERIES queries are left out of it)."""
    label, recs = records(path)
    base = {(r["corpus"], r["id"]): r for r in _pick(recs[base_mode], split, style, {
        (r["corpus"], r["id"]) for r in recs[base_mode]})}
    pairs: dict[str, list[tuple[dict[str, float], dict[str, float]]]] = {}
    for r in _pick(recs[new_mode], split, style, set(base)):
        b = base[(r["corpus"], r["id"])]
        pairs.setdefault(r["language"], []).append((query_metrics(b), query_metrics(r)))
    head = (f"| language | n | {base_mode} MRR@10 | {new_mode} MRR@10 | Δ MRR@10 (paired) "
            f"| {base_mode} R@10 | {new_mode} R@10 |")
    lines = [f"**{label}: {new_mode} against {base_mode} · split {split} · {style}** "
             "(mean [95% bootstrap CI])", "", head, "|---|---|---|---|---|---|---|"]

    def row(name: str, groups: list[list[tuple[dict[str, float], dict[str, float]]]]) -> str:
        ci = M.bootstrap_ci if len(groups) == 1 else M.stratified_bootstrap

        def cell(fn: Any) -> str:
            vals = [[fn(b, n) for b, n in g] for g in groups]
            return str(M.format_ci(M.ci_dict(ci(vals[0] if len(groups) == 1 else vals)),
                                   signed=fn is delta))

        def delta(b: dict[str, float], n: dict[str, float]) -> float:
            return n["MRR@10"] - b["MRR@10"]

        return (f"| {name} | {sum(len(g) for g in groups)} | "
                f"{cell(lambda b, n: b['MRR@10'])} | {cell(lambda b, n: n['MRR@10'])} | "
                f"{cell(delta)} | {cell(lambda b, n: b['R@10'])} | "
                f"{cell(lambda b, n: n['R@10'])} |")

    for lang in sorted(pairs):
        lines.append(row(lang, [pairs[lang]]))
    macro = [lg for lg in sorted(pairs) if len(pairs[lg]) >= MIN_MACRO_QUERIES]
    lines.append(row(f"**macro** ({len(macro)} languages)", [pairs[lg] for lg in macro]))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Print (or write) the comparison of two results.json files."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path, nargs="?")
    ap.add_argument("--modes", default="",
                    help="BASE,NEW: two modes of one run (MODE or MODE/VARIANT)")
    ap.add_argument("--split", default="test")
    ap.add_argument("--style", default="all")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    if args.modes:
        base_mode, new_mode = args.modes.split(",")
        text = modes_table(args.base, base_mode, new_mode, args.split, args.style)
    else:
        if args.new is None:
            ap.error("two results.json files, or one with --modes")
        text = compare(args.base, args.new)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
