"""What a model choice costs here, in one line for `semcode models`: how long embedding
this index would take with a static model (measured) or a transformer on the CPU
(estimated from its size and this machine's measured matmul speed).

Separate from `auto.py` because nothing is decided here: it only informs the user; the
CLI imports it when `semcode models` runs.
"""

from __future__ import annotations

import time
from pathlib import Path

from semcode.config import Settings
from semcode.models.auto import cpu_embedding_model
from semcode.models.base import ModelError
from semcode.models.machine import cpu_tokens_per_second, detect_hardware

# Parameter counts of models semcode documents (for CPU cost estimates); keys are
# lower-case substrings of the model setting.
KNOWN_PARAMS: dict[str, float] = {
    "qwen3-embedding-0.6b": 0.6e9, "qwen3-reranker-0.6b": 0.6e9, "qwen3-embedding-4b": 4e9,
    "qwen3-embedding-8b": 8e9, "minilm-l6": 22e6, "minilm-l12": 33e6, "bge-small": 33e6,
    "bge-base": 110e6, "nomic-embed-text": 137e6, "nomic-embed-code": 7e9,
    "embeddinggemma": 0.3e9, "jina-embeddings-v2-base-code": 161e6,
}

STATIC_CHUNKS_PER_S = 8000  # measured on the 2-core reference machine (one core busy)
_TOKENS_PER_CHUNK = 200  # a typical code chunk


def model_params(spec: str, path: Path | None = None) -> float | None:
    """Approximate parameter count: known names first, else a GGUF's size (≈1 byte per
    parameter at Q8_0)."""
    text = spec.lower().replace("_", "-")
    for key, params in KNOWN_PARAMS.items():
        if key in text:
            return params
    if path is not None and path.is_file() and path.suffix.lower() == ".gguf":
        return path.stat().st_size / 1.07
    return None


def embedding_cost(settings: Settings, spec: str, backend: str, path: Path | None,
                   chunks: int | None) -> str | None:
    """One line on what embedding `chunks` chunks will cost with this model here, or
    None where there is nothing useful to say (a GPU, a remote server, the model off).
    A static model that is on disk is measured; a transformer on the CPU is estimated
    from its size and this machine's measured matmul speed."""
    n = chunks if chunks else 1000
    what = f"the {chunks:,} chunks of this index" if chunks else "1,000 chunks"
    if backend == "model2vec":
        rate = _measure_static(path) if path is not None else None
        how = "measured" if rate else "typical"
        rate = rate or STATIC_CHUNKS_PER_S
        return f"~{rate:,.0f} chunks/s ({how}): {what} in ~{duration_text(n / rate)}"
    if backend != "llama.cpp" or detect_hardware().gpu:
        return None
    params = model_params(spec, path)
    if params is None:
        return None
    tps = cpu_tokens_per_second(params)
    seconds = n * _TOKENS_PER_CHUNK / tps
    line = (f"on this CPU ~{tps / _TOKENS_PER_CHUNK:,.1f} chunks/s (estimated): {what} "
            f"in ~{duration_text(seconds)}; lexical results work meanwhile")
    if seconds > 600:
        line += f"; embedding_model = \"auto\" uses {cpu_embedding_model()} here (seconds)"
    return line


def _measure_static(folder: Path) -> float | None:
    """Chunks/s of a static model on ~2,000 code-like texts (a fraction of a second)."""
    try:
        from .static import StaticEmbedder

        model = StaticEmbedder(folder)
    except ModelError:
        return None
    text = ("def load_settings(path, overrides=None):\n    \"\"\"Read the config file.\"\"\"\n"
            "    data = tomllib.loads(Path(path).read_text())\n    return Settings(**data)\n")
    docs = [f"{text}# {i}\n" * 3 for i in range(2000)]
    model.embed_documents(docs[:100])
    t = time.perf_counter()
    model.embed_documents(docs)
    return len(docs) / max(time.perf_counter() - t, 1e-6)


def duration_text(seconds: float) -> str:
    """A rough duration for a person: `12 s`, `0.4 s`, `7 min`, `2.5 h`, `3.0 days`."""
    if seconds < 90:
        return f"{seconds:.0f} s" if seconds >= 1 else f"{seconds:.1f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 172800:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} days"
