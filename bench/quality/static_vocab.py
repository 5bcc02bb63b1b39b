"""Mine a code vocabulary for distilling a static (model2vec) model: the words that
identifiers are made of, from a generic code corpus that is **not** in the benchmark.

    PYTHONPATH=server python bench/quality/static_vocab.py --out words.txt \
        [--size 20000] [--min-count 20] DIR...

Every `.py`/`.js`/`.ts`/`.mjs`/`.cjs` file under the given directories is read and split
into words exactly as the static embedder splits its input (`semcode.words.code_words`:
camelCase, snake_case, digits); directories named like a benchmark corpus
(bench/quality/corpora.toml) are skipped. The most frequent alphabetic words of three or
more letters are written one per line, most frequent first; `model2vec.distill(...,
vocabulary=words)` then gives each a whole-word vector (a WordPiece vocabulary without
them splits `parse` into `par ##se`). Pure standard library + semcode.words.
"""

from __future__ import annotations

import argparse
import os
import sys
import tomllib
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "server"))

from semcode.words import code_words  # noqa: E402

EXTENSIONS = (".py", ".js", ".ts", ".mjs", ".cjs")
MAX_BYTES = 1 << 20  # generated bundles say nothing a person would type


def benchmark_names() -> set[str]:
    """The benchmark's corpus names (and their last dash-separated part), never mined."""
    corpora = tomllib.loads((REPO / "bench" / "quality" / "corpora.toml").read_text())
    names = {c["name"].lower() for c in corpora["corpus"]}
    return names | {n.rsplit("-", 1)[-1] for n in names}


def mine(roots: list[Path], skip: set[str]) -> tuple[Counter[str], int]:
    counts: Counter[str] = Counter()
    files = 0
    for root in roots:
        for folder, dirs, names in os.walk(root):
            dirs[:] = [d for d in dirs if d.lower() not in skip and not d.startswith(".")]
            for name in names:
                path = Path(folder) / name
                if not name.endswith(EXTENSIONS) or name.endswith(".min.js"):
                    continue
                try:
                    if path.stat().st_size > MAX_BYTES:
                        continue
                    text = path.read_text(encoding="utf-8", errors="ignore")
                except OSError:
                    continue
                files += 1
                counts.update(w for w in code_words(text) if len(w) >= 3 and w.isalpha()
                              and w.isascii())
    return counts, files


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("roots", nargs="+", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--size", type=int, default=20000)
    ap.add_argument("--min-count", type=int, default=20)
    args = ap.parse_args(argv)
    counts, files = mine(args.roots, benchmark_names())
    words = [w for w, n in counts.most_common() if n >= args.min_count][:args.size]
    args.out.write_text("\n".join(words) + "\n")
    print(f"{files} files, {len(counts)} distinct words, wrote {len(words)} to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
