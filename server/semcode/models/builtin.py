"""The models that ship inside the semcode package: no download, no network.

`embedding_model = "builtin"` names semcode's own static code embedder (a model2vec folder
under `models/builtin/`, trained by `training/embedder` on pinned public packages); `auto`
picks it on a machine without a GPU. Its folder carries `semcode.json` next to model2vec's
files: the embedding profile it was trained with, its fusion weight and its measured
quality, which `semcode models` and the editors' status show.

`reranker_model = "builtin"` names semcode's own code cross-encoder
(`models/builtin/semcode-code-rerank/`, trained by `training/` from all-MiniLM-L6-v2):
`model.gguf` (a BertForSequenceClassification with one output, converted by llama.cpp,
Q8_0) and its `semcode.json`:

    {"recipe": "classifier",            # kinds.RerankRecipe; must match the GGUF's own
     "max_tokens": 256,                 # tokens per pair, specials included (trained so)
     "query_tokens": 64,                # the query is cut to this first
     "layers": 6,
     "blend": {"method": "rrf",         # search/reranking.py: "rrf" (weighted RRF of
               "weight": 0.6, "k": 10,  #   the orders) or "interpolate" (of the scores),
               "split": "tune"},        #   fitted on the bench's tune split (rerank_fit.py)
     "speed": {"tokens_per_s": 2400,    # measured by bench/speed/rerank.py --record:
               "gflops": 190,           #   pair tokens/s at this matmul speed
               "pair_tokens": 144},     #   (machine.cpu_gflops) and mean pair length
     "quality": "one line for `semcode models`",
     "training": {...}}                 # free-form: how it was trained

Without `blend` (or with a weight of 0: it did not help on tune) `auto` does not pick it
and the engine does not run it; without `speed` `auto` cannot tell whether it fits the
budget and does not pick it either. Until the trained model is shipped the folder is
absent: `builtin` is then a missing model, and `auto` leaves reranking off on a CPU.

Imports nothing of semcode beyond the standard library, so the registry, the backend
choice and the CLI can all ask it.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path

BUILTIN = "builtin"  # the setting that names the shipped embedder
_NAMES = frozenset({BUILTIN, "built-in"})
EMBEDDER_DIR = Path(__file__).with_name("builtin") / "semcode-code-static"
RERANKER_DIR = Path(__file__).with_name("builtin") / "semcode-code-rerank"
RERANKER_FILE = "model.gguf"
META_FILE = "semcode.json"


def is_builtin(spec: str) -> bool:
    """Whether a model setting names the shipped embedder (`builtin`, any case)."""
    return spec.strip().lower() in _NAMES


def embedder_folder() -> Path | None:
    """The shipped embedder's folder, or None when this installation has none (a source
    checkout whose model was removed)."""
    return EMBEDDER_DIR if (EMBEDDER_DIR / "model.safetensors").is_file() else None


def reranker_file() -> Path | None:
    """The shipped reranker's GGUF, or None when this installation has none (not trained
    yet, or removed)."""
    path = RERANKER_DIR / RERANKER_FILE
    return path if path.is_file() else None


def reranker_meta() -> dict[str, object]:
    """The shipped reranker's `semcode.json` (empty without one)."""
    return model_meta(RERANKER_DIR) if reranker_file() is not None else {}


def model_meta(folder: Path) -> dict[str, object]:
    """A model folder's `semcode.json` (empty when it has none or it is unreadable)."""
    try:
        meta = json.loads((folder / META_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return meta if isinstance(meta, dict) else {}


@cache
def builtin_quality() -> str:
    """One line on what the shipped embedder measured, from its `semcode.json` ("" when
    unknown or not shipped). Read once: it is package data, and the servers' status asks
    for it on every status notification."""
    folder = embedder_folder()
    quality = model_meta(folder).get("quality") if folder is not None else None
    return quality if isinstance(quality, str) else ""


def builtin_reranker_quality() -> str:
    """One line on what the shipped reranker measured ("" when unknown or not shipped)."""
    quality = reranker_meta().get("quality")
    return quality if isinstance(quality, str) else ""
