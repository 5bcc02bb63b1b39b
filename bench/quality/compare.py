"""Compare two quality-benchmark runs query by query (e.g. 0.1.0 against a branch):

    python -m bench.quality.compare bench/out/baseline-0.1.0/results.json \\
        bench/out/results.json [--out FILE.md]

For each mode, split and style (and all styles): macro MRR@10 of each run with its 95%
interval, the paired difference (new − base, bootstrap stratified by language) and the
languages the new run makes worse beyond their own interval. Queries are matched by
(corpus, query id); only queries present in both runs count.
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

from bench.quality.quality import STYLES, ablation_markdown, ablation_table  # noqa: E402


def records(path: Path) -> tuple[str, dict[str, list[dict[str, Any]]]]:
    """A results.json's label and its first variant's records per mode."""
    bench = json.loads(path.read_text())["quality"]["bench"]
    out: dict[str, list[dict[str, Any]]] = {}
    for key, recs in bench["queries"].items():
        mode = key.split("/", 1)[0]
        out.setdefault(mode, recs)  # the first variant of each mode
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
    for mode in sorted(set(base_recs) & set(new_recs)):
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


def main(argv: list[str] | None = None) -> int:
    """Print (or write) the comparison of two results.json files."""
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("base", type=Path)
    ap.add_argument("new", type=Path)
    ap.add_argument("--out", type=Path)
    args = ap.parse_args(argv)
    text = compare(args.base, args.new)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
