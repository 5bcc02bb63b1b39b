"""Does llama.cpp score a pair as PyTorch does?

For the same token ids (`inputs.PairFormat`), the PyTorch model's logit and llama.cpp's
rank-pooled score of the converted GGUF (llama-cpp-python, `LLAMA_POOLING_TYPE_RANK`, one
sequence per decode) are compared: the largest absolute difference and whether both
order the candidates alike (Spearman's rho over the scores, and the share of candidate
pairs ordered the same). Separately, llama.cpp's own tokenizer is compared with the
Hugging Face one on the texts (the ids a search sends are llama.cpp's): the share of
texts tokenised identically.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from training.reranker.inputs import PairFormat


def torch_scores(model: Any, fmt: PairFormat, pairs: Sequence[list[int]]) -> np.ndarray:
    """float32 logits of the PyTorch model (eval mode, no autocast)."""
    import torch

    model.eval()
    with torch.no_grad():
        logits = model(**fmt.batch(list(pairs))).logits[:, 0]
    out: np.ndarray = logits.float().cpu().numpy()
    return out


def llama_scores(gguf: Path, pairs: Sequence[list[int]]) -> np.ndarray:
    """llama.cpp's rank-pooled score of each pair (token ids as given)."""
    llama = _load(gguf, max(len(p) for p in pairs))
    out = np.zeros(len(pairs), dtype=np.float32)
    lib = _lib()
    for i, tokens in enumerate(pairs):
        llama._ctx.kv_cache_clear()
        llama._batch.reset()
        llama._batch.add_sequence(list(tokens), 0, False)
        llama._ctx.decode(llama._batch)
        out[i] = lib.llama_get_embeddings_seq(llama._ctx.ctx, 0)[0]
    llama.close()
    return out


def llama_tokens(gguf: Path, texts: Sequence[str]) -> list[list[int]]:
    """llama.cpp's token ids of each text (no specials)."""
    llama = _load(gguf, 512, vocab_only=True)
    out = [llama.tokenize(t.encode("utf-8"), add_bos=False, special=False) for t in texts]
    llama.close()
    return out


def _lib() -> Any:
    import llama_cpp

    return llama_cpp


def _load(gguf: Path, n_tokens: int, vocab_only: bool = False) -> Any:
    import llama_cpp
    import llama_cpp.llama as high_level

    n = max(64, n_tokens)
    # Without llama.cpp's extra CPU buffer types (weight repacking): on a CPU with AMX,
    # llama-cpp-python 0.3.36 crashed (SIGSEGV in decode) scoring a tiny Q8_0 export
    # through them. Parity compares numbers, not speed, and `Llama` has no argument
    # for it, so its default model parameters are wrapped while it loads.
    defaults = high_level.llama_cpp.llama_model_default_params

    def plain_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    high_level.llama_cpp.llama_model_default_params = plain_buffers
    try:
        return llama_cpp.Llama(model_path=str(gguf), embedding=True, n_ctx=n, n_batch=n,
                               n_ubatch=n, pooling_type=llama_cpp.LLAMA_POOLING_TYPE_RANK,
                               n_threads=2, vocab_only=vocab_only, verbose=False)
    finally:
        high_level.llama_cpp.llama_model_default_params = defaults


def agreement(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """max |a - b|, Spearman's rho and the share of pairs (i, j) that a and b order alike."""
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    rho = float(np.corrcoef(ra, rb)[0, 1]) if len(a) > 1 else 1.0
    i, j = np.triu_indices(len(a), k=1)
    same = np.sign(a[i] - a[j]) == np.sign(b[i] - b[j])
    return {"max_abs_diff": float(np.max(np.abs(a - b))), "spearman": rho,
            "pair_order_agreement": float(same.mean()) if len(i) else 1.0}


def check_pairs(model: Any, fmt: PairFormat, ggufs: dict[str, Path],
                pairs: Sequence[list[int]]) -> dict[str, Any]:
    """The parity record of token-id pairs for each GGUF type."""
    reference = torch_scores(model, fmt, pairs)
    report: dict[str, Any] = {"pairs": len(pairs),
                              "torch_scores": [round(float(x), 4) for x in reference]}
    for kind, path in ggufs.items():
        report[kind] = agreement(reference, llama_scores(path, pairs))
    return report


def tokenizer_agreement(fmt: PairFormat, gguf: Path, texts: Sequence[str],
                        is_query: Sequence[bool]) -> float:
    """The share of texts that llama.cpp tokenises exactly as the training did (within
    the lengths training keeps)."""
    ours = fmt.tokenise(list(texts), list(is_query))
    theirs = llama_tokens(gguf, texts)
    same = [list(t[:len(o)]) == list(o) and (len(t) == len(o) or len(o) >= limit)
            for o, t, limit in zip(ours, theirs, (64 if q else fmt.max_tokens - 3
                                                   for q in is_query), strict=True)]
    return float(np.mean(same)) if same else 1.0
