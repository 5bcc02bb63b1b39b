"""Write the trained cross-encoder: a Hugging Face checkpoint and its GGUF conversions.

llama.cpp's rank pooling computes `cls.output(tanh(cls(h[CLS])))` when the GGUF has a
`cls` tensor, and `cls.output(h[CLS])` when it has none. `BertForSequenceClassification`
computes `classifier(tanh(pooler.dense(h[CLS])))`, the first form, but the converter drops
`bert.pooler.dense` (it maps BERT's pooler to nothing) and would silently produce the
second. So the converter reads a *conversion view* of the checkpoint: the same config,
tokenizer and tensors, with the pooler named `classifier.dense` (-> `cls`) and the output
`classifier.out_proj` (-> `cls.output`), the names it maps for RoBERTa-style heads. The
standard checkpoint beside it is what PyTorch loads; both compute the same logit (`parity`
checks it). No sentence-transformers `modules.json` is copied: it would make the converter
write a mean/CLS pooling type.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from training.reranker import converter

TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "special_tokens_map.json",
                   "vocab.txt")
VIEW_NAMES = {"bert.pooler.dense.weight": "classifier.dense.weight",
              "bert.pooler.dense.bias": "classifier.dense.bias",
              "classifier.weight": "classifier.out_proj.weight",
              "classifier.bias": "classifier.out_proj.bias"}


def save_checkpoint(model: Any, tokenizer: Any, folder: Path) -> Path:
    """The standard Hugging Face folder (safetensors, config, tokenizer)."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(str(folder), safe_serialization=True)
    tokenizer.save_pretrained(str(folder))
    return folder


def conversion_view(checkpoint: Path, folder: Path) -> Path:
    """The checkpoint with the head's tensors renamed for the converter (module doc)."""
    from safetensors.torch import load_file, save_file

    folder.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", *TOKENIZER_FILES):
        if (checkpoint / name).is_file():
            shutil.copyfile(checkpoint / name, folder / name)
    tensors = load_file(str(checkpoint / "model.safetensors"))
    missing = [k for k in VIEW_NAMES if k not in tensors]
    if missing:
        raise SystemExit(f"{checkpoint}: no {', '.join(missing)} (not a BERT classifier?)")
    renamed = {VIEW_NAMES.get(k, k): v.contiguous() for k, v in tensors.items()}
    save_file(renamed, str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder


def export_gguf(checkpoint: Path, work: Path, outtypes: tuple[str, ...] = ("f16", "q8_0"),
                folder: Path | None = None) -> dict[str, Path]:
    """Convert the checkpoint to each GGUF type: {outtype: file}."""
    view = conversion_view(checkpoint, work / "conversion-view")
    return {t: converter.convert(view, work / f"model-{t}.gguf", t, folder) for t in outtypes}


def write_model(gguf: Path, out_dir: Path, meta: dict[str, object]) -> Path:
    """The shipped folder: `model.gguf` and the model card `semcode.json`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    tmp = out_dir / "model.gguf.tmp"
    shutil.copyfile(gguf, tmp)
    tmp.replace(out_dir / "model.gguf")
    (out_dir / "semcode.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out_dir
