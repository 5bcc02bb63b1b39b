"""Contrastive fine-tuning of a static embedding table.

The model is exactly what `StaticEmbedder` computes: the mean of a text's token rows,
L2-normalised; nothing else is learnt. A row's norm is its token's weight in that mean
(a mean of rows followed by normalisation weights each token by its row's length), so
training the rows learns per-token weights too.

Loss: InfoNCE with temperature `tau`. For a batch of B pairs the candidates of each query
are the B gold codes (in-batch negatives) plus every pair's hard negatives (B x K codes
mined with semcode's own BM25: the chunks that look most like the answer to the lexical
stage, which is what the dense list has to add to); plus the symmetric code -> query term.
Sparse gradients (only the rows a batch touches) with `SparseAdam`, so a step costs what
the batch costs, not the table.

Validation ranks each held-back query's gold among every code of its own package (gold
and hard negatives of that package's pairs): MRR@10, the metric the benchmark reports.
Checkpoints after every epoch; a later run with the same output folder resumes.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from training.embedder.pairs import EncodedPairs


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run (recorded next to its curves)."""

    epochs: int = 3
    batch: int = 1024
    lr: float = 0.01
    tau: float = 0.05
    hard_negatives: bool = True
    seed: int = 0
    eval_every: int = 200  # steps
    threads: int = 2
    # At most this many identifier pairs per other pair in an epoch (a fresh seeded sample
    # each epoch); None: every pair every epoch. Identifier pairs (a definition's own name
    # words -> it) are most of the data, and the first stage already finds by name.
    identifier_ratio: float | None = None


def epoch_order(rng: np.random.Generator, is_identifier: np.ndarray,
                ratio: float | None) -> np.ndarray:
    """The pair indices of one epoch, shuffled; with `ratio`, all non-identifier pairs and
    a sample of at most `ratio` identifier pairs for each of them."""
    if ratio is None:
        return rng.permutation(len(is_identifier))
    other = np.flatnonzero(~is_identifier)
    ident = np.flatnonzero(is_identifier)
    keep = min(len(ident), int(round(ratio * len(other))))
    chosen = rng.choice(ident, size=keep, replace=False) if keep else ident[:0]
    return rng.permutation(np.concatenate([other, chosen]))


def mean_vectors(table: np.ndarray, data: EncodedPairs, which: np.ndarray,
                 batch: int = 4096) -> np.ndarray:
    """Unit vectors of texts `which` under `table` (NumPy; what StaticEmbedder computes)."""
    out = np.zeros((len(which), table.shape[1]), dtype=np.float32)
    for start in range(0, len(which), batch):
        part = which[start:start + batch]
        flat, bag = data.texts(part)
        sums = np.add.reduceat(table[flat], bag, axis=0) if len(flat) else out[:0]
        lengths = np.diff(np.append(bag, len(flat)))
        out[start:start + len(part)] = sums / np.maximum(lengths, 1)[:, None]
    out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-12)
    return out


def validate(table: np.ndarray, data: EncodedPairs, k: int = 10) -> dict[str, float]:
    """MRR@k of every held-back query against all codes of its package, overall, per
    language (the macro over languages is `macro`) and per pair source (`source:NAME`)."""
    q = mean_vectors(table, data, data.query)
    rr = np.zeros(len(data), dtype=np.float64)
    for g in np.unique(data.group):
        rows = np.flatnonzero(data.group == g)
        pool = np.unique(np.concatenate([data.gold[rows], data.negatives[rows].ravel()]))
        pool = pool[pool >= 0]
        c = mean_vectors(table, data, pool)
        scores = q[rows] @ c.T
        gold_col = np.searchsorted(pool, data.gold[rows])
        gold_score = scores[np.arange(len(rows)), gold_col]
        rank = 1 + (scores > gold_score[:, None]).sum(axis=1)
        rr[rows] = np.where(rank <= k, 1.0 / rank, 0.0)
    return mrr_summary(rr, data.language, data.sources, k)


def mrr_summary(rr: np.ndarray, languages: list[str], sources: list[str],
                k: int = 10) -> dict[str, float]:
    """The validation record of per-query reciprocal ranks `rr`: `mrr@k` overall, one
    entry per language, their `macro` mean and one `source:NAME` entry per pair source."""
    by_lang: dict[str, list[float]] = {}
    for lang, v in zip(languages, rr, strict=True):
        by_lang.setdefault(lang, []).append(float(v))
    out = {f"mrr@{k}": float(rr.mean()) if len(rr) else 0.0}
    out |= {f"{lang}": float(np.mean(v)) for lang, v in sorted(by_lang.items())}
    out["macro"] = float(np.mean([np.mean(v) for v in by_lang.values()])) if by_lang else 0.0
    by_source: dict[str, list[float]] = {}
    for source, v in zip(sources, rr, strict=True):
        by_source.setdefault(source, []).append(float(v))
    out |= {f"source:{name}": float(np.mean(v)) for name, v in sorted(by_source.items())}
    return out


def train(table: np.ndarray, data: EncodedPairs, valid: EncodedPairs | None, out_dir: Path,
          config: TrainConfig, log: Callable[[str], None] = print) -> np.ndarray:
    """Fine-tune `table` (vocab x dims) on `data`; returns the trained table. Curves go to
    `out_dir/curves.jsonl`, the config to `out_dir/config.json`, a checkpoint after every
    epoch to `out_dir/checkpoint.pt` (resumed when present and the config matches)."""
    import torch

    torch.manual_seed(config.seed)
    torch.set_num_threads(config.threads)
    out_dir.mkdir(parents=True, exist_ok=True)
    emb = torch.nn.EmbeddingBag(table.shape[0], table.shape[1], mode="mean", sparse=True)
    with torch.no_grad():
        emb.weight.copy_(torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32)))
    opt = torch.optim.SparseAdam(emb.parameters(), lr=config.lr)
    start_epoch, step = 0, 0
    ckpt = out_dir / "checkpoint.pt"
    config_json = json.dumps(asdict(config), sort_keys=True)
    if ckpt.is_file():
        state = torch.load(ckpt, weights_only=False)
        if state.get("config") == config_json:
            emb.load_state_dict(state["model"])
            opt.load_state_dict(state["optimizer"])
            start_epoch, step = int(state["epoch"]), int(state["step"])
            log(f"resumed from {ckpt} (epoch {start_epoch}, step {step})")
    (out_dir / "config.json").write_text(config_json + "\n")
    curves = (out_dir / "curves.jsonl").open("a", encoding="utf-8")
    rng = np.random.default_rng(config.seed)
    is_identifier = np.array([s == "identifier" for s in data.sources], dtype=bool)
    for _ in range(start_epoch):  # the same shuffles as an uninterrupted run
        epoch_order(rng, is_identifier, config.identifier_ratio)

    def encode(which: np.ndarray) -> torch.Tensor:
        flat, bag = data.texts(which)
        vec = emb(torch.from_numpy(flat.astype(np.int64)), torch.from_numpy(bag))
        return torch.nn.functional.normalize(vec, dim=1)

    def record(entry: dict[str, object]) -> None:
        curves.write(json.dumps(entry) + "\n")
        curves.flush()

    if valid is not None and step == 0:
        record({"step": 0, "epoch": 0, "valid": validate(table, valid)})
    began = time.monotonic()
    for epoch in range(start_epoch, config.epochs):
        order = epoch_order(rng, is_identifier, config.identifier_ratio)
        losses: list[float] = []
        for start in range(0, len(order) - config.batch + 1, config.batch):
            rows = order[start:start + config.batch]
            q = encode(data.query[rows])
            golds = data.gold[rows]
            cand_ids = golds
            if config.hard_negatives:
                negs = data.negatives[rows].ravel()
                cand_ids = np.concatenate([golds, negs[negs >= 0]])
            c = encode(cand_ids)
            logits = q @ c.T / config.tau
            # A candidate that is some other query's gold text too is not a negative.
            same = torch.from_numpy(cand_ids[None, :] == golds[:, None])
            same.fill_diagonal_(False)
            logits = logits.masked_fill(same, float("-inf"))
            target = torch.arange(len(rows))
            loss = torch.nn.functional.cross_entropy(logits, target)
            back = (c[:len(rows)] @ q.T / config.tau).masked_fill(same[:, :len(rows)].T,
                                                                  float("-inf"))
            loss = (loss + torch.nn.functional.cross_entropy(back, target)) / 2
            opt.zero_grad()
            loss.backward()
            opt.step()
            step += 1
            losses.append(loss.item())
            if step % 20 == 0:
                record({"step": step, "epoch": epoch, "loss": float(np.mean(losses[-20:])),
                        "seconds": round(time.monotonic() - began, 1)})
            if valid is not None and step % config.eval_every == 0:
                scores = validate(emb.weight.detach().numpy(), valid)
                record({"step": step, "epoch": epoch, "valid": scores})
                log(f"step {step} epoch {epoch} loss {np.mean(losses[-50:]):.4f} "
                    f"valid MRR@10 {scores['mrr@10']:.4f} macro {scores['macro']:.4f}")
        torch.save({"model": emb.state_dict(), "optimizer": opt.state_dict(),
                    "epoch": epoch + 1, "step": step, "config": config_json}, ckpt)
        if valid is not None:
            scores = validate(emb.weight.detach().numpy(), valid)
            record({"step": step, "epoch": epoch + 1, "valid": scores})
            log(f"epoch {epoch + 1} done: step {step}, {time.monotonic() - began:.0f} s, "
                f"valid MRR@10 {scores['mrr@10']:.4f} macro {scores['macro']:.4f}")
    curves.close()
    trained: np.ndarray = emb.weight.detach().numpy().copy()
    return trained
