"""A smaller manifest for a cross-encoder run: some packages of every language.

A CPU run of the cross-encoder sees a few thousand questions, so building the pairs of all
1,186 packages (the embedder's data) is not needed to train it; on a busy machine it is
the slowest step. This writes a manifest with, per language, the `train` packages whose
name hashes lowest (a fixed, seeded-like choice that needs no archive) and up to `valid`
of the packages `python -m training data` holds back for validation (the same stable hash
rule, so they stay held back). Everything else (exclusions, pins) is the full manifest's,
verbatim; the pairs it builds are a subset of the full build's packages. (A language with
no package of that hash has its lowest-hash package held back by the build; that package
is then the first of the `train` ones, and the language has one training package fewer.)

    python -m training.reranker.subset --train 12 --valid 2 > /tmp/manifest-subset.toml
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tomllib
from pathlib import Path

from training.data.build import VALID_EVERY
from training.data.manifest import MANIFEST

_BLOCK = "[[package]]\n"


def _name_hash(name: str) -> int:
    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16)


def subset(text: str, train: int, valid: int) -> str:
    """The manifest `text` with only the chosen packages (module doc)."""
    head, *blocks = text.split(_BLOCK)
    chosen: list[str] = []
    by_language: dict[str, list[tuple[int, str, str]]] = {}
    for block in blocks:
        package = tomllib.loads(_BLOCK + block)["package"][0]
        by_language.setdefault(package["language"], []).append(
            (_name_hash(package["name"]), package["name"], block))
    for _, items in sorted(by_language.items()):
        held = sorted(i for i in items if i[0] % VALID_EVERY == 0)
        rest = sorted(i for i in items if i[0] % VALID_EVERY != 0)
        keep = {i[1] for i in held[:valid] + rest[:train]}
        chosen += [block for _, name, block in items if name in keep]
    return head + "".join(_BLOCK + b for b in chosen)


def main(argv: list[str] | None = None) -> int:
    """Print the subset manifest."""
    ap = argparse.ArgumentParser(prog="python -m training.reranker.subset")
    ap.add_argument("--manifest", type=Path, default=MANIFEST)
    ap.add_argument("--train", type=int, default=12, help="training packages per language")
    ap.add_argument("--valid", type=int, default=2, help="held-back packages per language")
    args = ap.parse_args(argv)
    sys.stdout.write(subset(args.manifest.read_text(encoding="utf-8"), args.train, args.valid))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
