"""Write a trained table as a model2vec folder: what semcode loads and ships.

The folder is model2vec's own format (`config.json`, `model.safetensors` with an
`embeddings` tensor, `tokenizer.json`), so `StaticEmbedder` and `model2vec.StaticModel`
both read it. The table is stored as float16 (the size budget: <= 32 MB); `semcode.json`
records what semcode needs beyond model2vec's keys: the embedding profile the model was
trained with, its fusion weight (fitted on the benchmark's tune split) and where it came
from (the data manifest's hash, the training config and seed, validation scores).
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

SEMCODE_META = "semcode.json"


def export_model(table: np.ndarray, initial_dir: Path, out_dir: Path,
                 meta: dict[str, object]) -> Path:
    """Write `table` (vocab x dims) with `initial_dir`'s tokenizer and config to `out_dir`."""
    from safetensors.numpy import save_file

    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(initial_dir / "tokenizer.json", out_dir / "tokenizer.json")
    config = json.loads((initial_dir / "config.json").read_text(encoding="utf-8"))
    config.update({"hidden_dim": int(table.shape[1]), "normalize": True, "max_length": 512,
                   "tokenizer_name": "semcode-code-words"})
    (out_dir / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    save_file({"embeddings": np.ascontiguousarray(table, dtype=np.float16)},
              str(out_dir / "model.safetensors"))
    (out_dir / SEMCODE_META).write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out_dir
