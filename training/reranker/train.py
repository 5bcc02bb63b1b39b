"""Listwise fine-tuning of the cross-encoder, with checkpoints and validation curves.

Each step takes `batch` questions; a question's list is its gold code, its hard negatives
(the chunks of the same package that semcode's BM25 ranks highest: the first stage's own
confusions, which is what a reranker is for) and `random_negatives` gold codes of other
questions of the step. Every (question, candidate) pair is one transformer pass; the loss
is softmax cross-entropy over each list with the gold as the target (the model's raw logit
is the score, as llama.cpp's rank pooling returns it).

Validation scores each held-back question's gold and hard negatives (no random ones):
MRR@10 over that list, overall, per language (`macro` = their mean) and per pair source.
The run's order is a function of the seed and the step only (each epoch's permutation,
each step's random negatives and dropout), so a run resumed from a checkpoint continues
exactly where the interrupted one was.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from training.embedder.pairs import EncodedPairs
from training.embedder.train import mrr_summary
from training.reranker.inputs import PairFormat

CHECKPOINT = "checkpoint.pt"


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (recorded next to its curves)."""

    epochs: int = 1
    batch: int = 8  # questions per step
    random_negatives: int = 2
    hard_negatives: bool = True
    lr: float = 7e-5
    warmup: float = 0.1  # of the steps
    weight_decay: float = 0.01
    seed: int = 0
    eval_every: int = 100  # steps
    checkpoint_every: int = 25  # steps
    threads: int = 2
    device: str = "cpu"
    bf16: bool = True  # autocast the passes to bfloat16 (the weights stay float32)


def step_rows(config: TrainConfig, n_pairs: int, step: int) -> np.ndarray:
    """The pair rows of one step: a slice of its epoch's seeded permutation."""
    per_epoch = n_pairs // config.batch
    epoch, index = divmod(step, per_epoch)
    order = np.random.default_rng([config.seed, epoch]).permutation(n_pairs)
    return order[index * config.batch:(index + 1) * config.batch]


def candidate_lists(data: EncodedPairs, rows: np.ndarray, config: TrainConfig,
                    rng: np.random.Generator) -> list[list[int]]:
    """Each question's candidate texts, gold first: its hard negatives, then random golds
    of the other questions of the step (never a text of its own list)."""
    lists = []
    golds = data.gold[rows]
    for i, r in enumerate(rows):
        own = [int(data.gold[r])]
        if config.hard_negatives:
            own += [int(n) for n in data.negatives[r] if n >= 0]
        others = [int(g) for j, g in enumerate(golds) if j != i and int(g) not in own]
        others = list(dict.fromkeys(others))
        if others and config.random_negatives:
            take = min(config.random_negatives, len(others))
            own += [others[k] for k in rng.choice(len(others), size=take, replace=False)]
        lists.append(own)
    return lists


def score_pairs(model: Any, fmt: PairFormat, pairs: list[list[int]], config: TrainConfig,
                max_batch: int = 64) -> Any:
    """The model's logits for token-id pairs (a 1-d tensor, in order; keeps the graph)."""
    import torch

    parts = []
    for start in range(0, len(pairs), max_batch):
        inputs = {k: v.to(config.device) for k, v in
                  fmt.batch(pairs[start:start + max_batch]).items()}
        with torch.autocast(device_type=config.device.split(":")[0], dtype=torch.bfloat16,
                            enabled=config.bf16):
            parts.append(model(**inputs).logits[:, 0].float())
    return torch.cat(parts)


def text_ids(data: EncodedPairs, t: int) -> np.ndarray:
    """Token ids of text `t` of `data`."""
    return data.ids[data.offsets[t]:data.offsets[t + 1]]


def list_pairs(fmt: PairFormat, data: EncodedPairs, rows: np.ndarray,
               lists: list[list[int]]) -> list[list[int]]:
    """The input pairs of every (question, candidate) of `lists`, flattened in order."""
    return [fmt.pair(text_ids(data, int(data.query[r])), text_ids(data, c))
            for r, cands in zip(rows, lists, strict=True) for c in cands]


def listwise_loss(scores: Any, lengths: list[int]) -> Any:
    """Mean softmax cross-entropy of lists laid end to end in `scores`, gold first."""
    import torch

    table = torch.full((len(lengths), max(lengths)), float("-inf"), device=scores.device)
    start = 0
    for i, n in enumerate(lengths):
        table[i, :n] = scores[start:start + n]
        start += n
    target = torch.zeros(len(lengths), dtype=torch.long, device=scores.device)
    return torch.nn.functional.cross_entropy(table, target)


def validate(model: Any, fmt: PairFormat, data: EncodedPairs, config: TrainConfig,
             k: int = 10) -> dict[str, float]:
    """MRR@k of every held-back question's gold among its hard negatives (module doc)."""
    import torch

    rows = np.arange(len(data))
    lists = [[int(data.gold[r]), *(int(n) for n in data.negatives[r] if n >= 0)] for r in rows]
    was_training = model.training
    model.eval()
    scores = []
    with torch.no_grad():
        pairs = list_pairs(fmt, data, rows, lists)
        for start in range(0, len(pairs), 256):
            scores.append(score_pairs(model, fmt, pairs[start:start + 256], config).cpu())
    model.train(was_training)
    flat = torch.cat(scores).numpy()
    rr = np.zeros(len(data))
    start = 0
    for i, cands in enumerate(lists):
        s = flat[start:start + len(cands)]
        start += len(cands)
        rank = 1 + int((s[1:] > s[0]).sum())
        rr[i] = 1.0 / rank if rank <= k else 0.0
    return mrr_summary(rr, data.language, data.sources, k)


class Checkpoints:
    """The run folder: config, curves (JSON lines) and the latest checkpoint."""

    def __init__(self, out_dir: Path, config: TrainConfig) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / CHECKPOINT
        self.config_json = json.dumps(asdict(config), sort_keys=True)
        (out_dir / "config.json").write_text(self.config_json + "\n")
        self.curves = out_dir / "curves.jsonl"

    def record(self, entry: dict[str, object]) -> None:
        """Append one point of the curves."""
        with self.curves.open("a", encoding="utf-8") as f:
            f.write(json.dumps(entry) + "\n")

    def resume(self, model: Any, opt: Any, sched: Any, log: Callable[[str], None]) -> int:
        """Load the checkpoint into model/optimizer/schedule when it has this run's config;
        the step it was taken at (0: a fresh run)."""
        import torch

        if not self.path.is_file():
            return 0
        state = torch.load(self.path, weights_only=False, map_location="cpu")
        if state.get("config") != self.config_json:
            log(f"{self.path}: another config; starting afresh")
            return 0
        model.load_state_dict(state["model"])
        opt.load_state_dict(state["optimizer"])
        sched.load_state_dict(state["schedule"])
        log(f"resumed from {self.path} at step {state['step']}")
        return int(state["step"])

    def save(self, model: Any, opt: Any, sched: Any, step: int) -> None:
        """Write the checkpoint atomically (an interrupted save leaves the previous one)."""
        import torch

        tmp = self.path.with_suffix(".tmp")
        torch.save({"model": model.state_dict(), "optimizer": opt.state_dict(),
                    "schedule": sched.state_dict(), "step": step,
                    "config": self.config_json}, tmp)
        tmp.replace(self.path)


def _optimizer(model: Any, config: TrainConfig, total: int) -> tuple[Any, Any]:
    import torch
    from transformers import get_linear_schedule_with_warmup

    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=config.lr, weight_decay=config.weight_decay)
    sched = get_linear_schedule_with_warmup(opt, int(config.warmup * total), total)
    return opt, sched


def train(model: Any, fmt: PairFormat, data: EncodedPairs, valid: EncodedPairs | None,
          out_dir: Path, config: TrainConfig, log: Callable[[str], None] = print,
          stop_at: int | None = None) -> Any:
    """Fine-tune `model` on `data` (module doc); returns it in eval mode, trained to the
    last step or to `stop_at` (checkpointed there, for a later run to resume)."""
    import torch

    if config.device == "cpu":
        torch.set_num_threads(config.threads)
    model.to(config.device)
    total = config.epochs * (len(data) // config.batch)
    if total < 1:
        raise SystemExit(f"{len(data)} pairs: fewer than one batch of {config.batch}")
    opt, sched = _optimizer(model, config, total)
    runs = Checkpoints(out_dir, config)
    step = runs.resume(model, opt, sched, log)
    if valid is not None and step == 0:
        runs.record({"step": 0, "valid": validate(model, fmt, valid, config)})
    model.train()
    began, losses = time.monotonic(), []
    stop = min(total, stop_at) if stop_at else total
    while step < stop:
        loss = _one_step(model, fmt, data, config, step)
        opt.zero_grad()
        loss.backward()
        opt.step()
        sched.step()
        step += 1
        losses.append(float(loss.item()))
        if step % 10 == 0 or step == total:
            runs.record({"step": step, "loss": float(np.mean(losses[-10:])),
                         "seconds": round(time.monotonic() - began, 1)})
        if step % config.checkpoint_every == 0 or step in (total, stop):
            runs.save(model, opt, sched, step)
        if valid is not None and (step % config.eval_every == 0 or step == total):
            scores = validate(model, fmt, valid, config)
            runs.record({"step": step, "valid": scores})
            log(f"step {step}/{total} loss {np.mean(losses[-50:]):.4f} valid MRR@10 "
                f"{scores['mrr@10']:.4f} macro {scores['macro']:.4f} "
                f"({time.monotonic() - began:.0f} s)")
    model.eval()
    return model


def _one_step(model: Any, fmt: PairFormat, data: EncodedPairs, config: TrainConfig,
              step: int) -> Any:
    """The loss of step `step` (its rows, random negatives and dropout fixed by the seed)."""
    import torch

    torch.manual_seed(config.seed * 1_000_003 + step)
    rows = step_rows(config, len(data), step)
    lists = candidate_lists(data, rows, config, np.random.default_rng([config.seed, 1, step]))
    scores = score_pairs(model, fmt, list_pairs(fmt, data, rows, lists), config)
    return listwise_loss(scores, [len(c) for c in lists])
