"""The tiny Qwen3 test GGUFs (tests/tiny_models.py) as Hugging Face / MLX folders.

The folder is written *from the GGUF* (tensors through `gguf.GGUFReader`, vocabulary and
merges from its metadata), so both formats hold the same weights and tokenizer:
config.json, model.safetensors, tokenizer.json, tokenizer_config.json.

Tensor layout: GGUF stores a (out, in) matrix as ggml ne=[in, out], which GGUFReader
returns as a NumPy (out, in) array: HF's layout, no transpose. llama.cpp's HF converter
permutes Q/K rows only for LLaMA-style "normal" RoPE (LlamaModel.permute); Qwen2/Qwen3 use
NeoX RoPE (rotate halves) in both llama.cpp and HF/MLX, so there is no permutation to
undo: the parity test in tests/test_mlx_backend.py checks it numerically.

    python tests/tiny_models_mlx.py OUT_DIR     # two lines: embedder folder, reranker folder
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
import tiny_models as tm  # noqa: E402

MLX_VERSION = 1  # bump when the folder layout changes

_NAMES = {
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "attn_q_norm": "self_attn.q_norm",
    "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
}


class TinyMlxModels(NamedTuple):
    embedder: Path
    reranker: Path


def _hf_name(name: str) -> str:
    if name == "token_embd.weight":
        return "model.embed_tokens.weight"
    if name == "output_norm.weight":
        return "model.norm.weight"
    if name == "output.weight":
        return "lm_head.weight"
    blk, i, part, kind = name.split(".")
    assert blk == "blk", name
    return f"model.layers.{i}.{_NAMES[part]}.{kind}"


def _field(reader, key):  # -> value of a GGUF metadata field
    f = reader.fields[key]
    return f.contents()


def gguf_to_hf(gguf_path: Path, out: Path) -> Path:
    """Write the HF/MLX folder for a tiny Qwen3 GGUF (atomically) and return it."""
    from gguf import GGUFReader, TokenType
    from safetensors.numpy import save_file
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers

    if (out / "model.safetensors").is_file():
        return out
    r = GGUFReader(str(gguf_path))
    tensors = {_hf_name(t.name): np.ascontiguousarray(np.asarray(t.data, dtype=np.float32))
               for t in r.tensors}
    tokens: list[str] = list(_field(r, "tokenizer.ggml.tokens"))
    types: list[int] = list(_field(r, "tokenizer.ggml.token_type"))
    merges: list[str] = list(_field(r, "tokenizer.ggml.merges"))
    eos = int(_field(r, "tokenizer.ggml.eos_token_id"))
    pad = int(_field(r, "tokenizer.ggml.padding_token_id"))

    vocab = {t: i for i, t in enumerate(tokens)}
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[tuple(m.split(" ", 1)) for m in merges]))
    tok.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(tm.QWEN2_PRETOKENIZE_REGEX), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    tok.decoder = decoders.ByteLevel()
    added = []
    for t, ty in zip(tokens, types, strict=True):
        if ty == int(TokenType.CONTROL):
            added.append(AddedToken(t, special=True, normalized=False))
        elif ty == int(TokenType.USER_DEFINED):
            added.append(AddedToken(t, special=False, normalized=False))
    tok.add_special_tokens([a for a in added if a.special])
    tok.add_tokens([a for a in added if not a.special])
    for a in added:  # added tokens must keep their GGUF ids
        assert tok.token_to_id(a.content) == vocab[a.content], a.content

    tied = "lm_head.weight" not in tensors
    config = {
        "architectures": ["Qwen3ForCausalLM"],
        "model_type": "qwen3",
        "hidden_size": tm.N_EMBD,
        "intermediate_size": tm.N_FF,
        "num_hidden_layers": tm.N_LAYER,
        "num_attention_heads": tm.N_HEAD,
        "num_key_value_heads": tm.N_HEAD_KV,
        "head_dim": tm.HEAD_DIM,
        "rms_norm_eps": float(_field(r, "qwen3.attention.layer_norm_rms_epsilon")),
        "rope_theta": float(_field(r, "qwen3.rope.freq_base")),
        "max_position_embeddings": int(_field(r, "qwen3.context_length")),
        "vocab_size": len(tokens),
        "tie_word_embeddings": tied,
        "eos_token_id": eos,
        "pad_token_id": pad,
        "bos_token_id": None,
        "torch_dtype": "float32",
        "semcode_source_gguf": gguf_path.name,
    }
    tok_config = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "eos_token": tokens[eos],
        "pad_token": tokens[pad],
        "bos_token": None,
        "add_bos_token": False,
        "model_max_length": config["max_position_embeddings"],
    }
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))
    try:
        save_file(tensors, str(tmp / "model.safetensors"), metadata={"format": "pt"})
        tok.save(str(tmp / "tokenizer.json"))
        (tmp / "config.json").write_text(json.dumps(config, indent=2))
        (tmp / "tokenizer_config.json").write_text(json.dumps(tok_config, indent=2))
        os.chmod(tmp, 0o755)
        try:
            os.replace(tmp, out)
        except OSError:  # a concurrent writer won
            if not (out / "model.safetensors").is_file():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def write_tiny_mlx_models(out_dir: Path) -> TinyMlxModels:
    ggufs = tm.write_tiny_models(out_dir)
    v = f"v{tm.GENERATOR_VERSION}.{MLX_VERSION}"
    return TinyMlxModels(
        embedder=gguf_to_hf(ggufs.embedder, Path(out_dir) / f"tiny-qwen3-embedding-hf-{v}"),
        reranker=gguf_to_hf(ggufs.reranker, Path(out_dir) / f"tiny-qwen3-reranker-hf-{v}"),
    )


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print("usage: python tests/tiny_models_mlx.py OUT_DIR", file=sys.stderr)
        raise SystemExit(2)
    m = write_tiny_mlx_models(Path(sys.argv[1]))
    print(m.embedder.resolve())
    print(m.reranker.resolve())
