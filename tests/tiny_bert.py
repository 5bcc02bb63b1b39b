"""Tiny random-weight BERT cross-encoder GGUFs for tests that run the classifier reranker
recipe on the real llama.cpp, without downloads.

The file looks like what llama.cpp's converter writes for a `BertForSequenceClassification`
with one label (architecture "bert", a WordPiece vocabulary in the converter's "phantom
space" form, [CLS]=BOS and [SEP]=EOS added around every text, `cls.output` as the head,
`bert.classifier.output_labels`), and variants for the detection and error tests: with
pooling type RANK declared or not, with the pooler's `cls` dense layer, with two outputs,
with a chat template, with no head at all (an embedding model).

The weights are random (fixed seed), scaled so that every token and every layer moves the
[CLS] vector: different pairs give clearly different logits. Nothing means anything.
"""

from __future__ import annotations

import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

N_EMBD = 32
N_HEAD = 4
N_FF = 64
N_LAYER = 2
CONTEXT_LENGTH = 128  # the model's own limit: pairs longer than this must be cut
SEED = 20261207

SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]

_WORDS = """
def class return self if else for while in import from and or not none true false
where do we refresh expired tokens token session user account config parse parser
file path read write the a of to is how which function method server request handle
error retry http client cache index search query rank score model load save test
"""


@dataclass(frozen=True)
class TinyBert:
    """Which variant to write (the defaults: what the converter writes for one label)."""

    pooling_rank: bool = False  # declare bert.pooling_type = RANK (the converter does not)
    labels: tuple[str, ...] = ("LABEL_0",)  # () writes no classifier labels
    head: bool = True  # cls.output tensors (False: an encoder without a head)
    pooler: bool = False  # a `cls` dense layer (dense + tanh) before the head
    chat_template: str | None = None
    seed: int = SEED

    def file_name(self) -> str:
        """A name that differs per variant (files are cached per variant)."""
        parts = ["tiny-bert-cls", f"r{int(self.pooling_rank)}", f"l{len(self.labels)}",
                 f"h{int(self.head)}", f"p{int(self.pooler)}",
                 f"c{int(self.chat_template is not None)}", str(self.seed)]
        return "-".join(parts) + ".gguf"


def vocabulary() -> list[str]:
    """Specials, whole words (phantom space "▁word"), then single characters as word
    starts and as continuations, so every lowercase ASCII text tokenises without [UNK]."""
    chars = [chr(c) for c in range(33, 127) if not chr(c).isupper()]
    words = sorted(set(_WORDS.split()) - set(chars))
    return SPECIALS + [f"\u2581{w}" for w in words] + [f"\u2581{c}" for c in chars] + chars


def _tensors(rng: np.random.Generator, n_vocab: int, spec: TinyBert) -> dict[str, np.ndarray]:
    """BERT weights. NumPy shapes are (out, in): GGUF stores them as ggml ne=[in, out]."""

    def lin(n_out: int, n_in: int) -> np.ndarray:
        return (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)

    def vec(n: int, scale: float = 0.1, base: float = 0.0) -> np.ndarray:
        return (base + scale * rng.standard_normal(n)).astype(np.float32)

    t: dict[str, np.ndarray] = {
        "token_embd.weight": rng.standard_normal((n_vocab, N_EMBD)).astype(np.float32),
        "token_types.weight": (0.5 * rng.standard_normal((2, N_EMBD))).astype(np.float32),
        "position_embd.weight": (0.5 * rng.standard_normal((CONTEXT_LENGTH, N_EMBD))
                                 ).astype(np.float32),
        "token_embd_norm.weight": vec(N_EMBD, base=1.0),
        "token_embd_norm.bias": vec(N_EMBD),
    }
    for i in range(N_LAYER):
        p = f"blk.{i}."
        for name in ("attn_q", "attn_k", "attn_v", "attn_output"):
            t[p + name + ".weight"] = lin(N_EMBD, N_EMBD)
            t[p + name + ".bias"] = vec(N_EMBD)
        t[p + "attn_output_norm.weight"] = vec(N_EMBD, base=1.0)
        t[p + "attn_output_norm.bias"] = vec(N_EMBD)
        t[p + "ffn_up.weight"] = lin(N_FF, N_EMBD)
        t[p + "ffn_up.bias"] = vec(N_FF)
        t[p + "ffn_down.weight"] = lin(N_EMBD, N_FF)
        t[p + "ffn_down.bias"] = vec(N_EMBD)
        t[p + "layer_output_norm.weight"] = vec(N_EMBD, base=1.0)
        t[p + "layer_output_norm.bias"] = vec(N_EMBD)
    if spec.pooler:
        t["cls.weight"] = lin(N_EMBD, N_EMBD)
        t["cls.bias"] = vec(N_EMBD)
    if spec.head:
        n_out = max(1, len(spec.labels))
        t["cls.output.weight"] = lin(n_out, N_EMBD)
        t["cls.output.bias"] = vec(n_out)
    return t


def write_tiny_bert(out_dir: Path, spec: TinyBert = TinyBert()) -> Path:
    """Write (or reuse) the variant `spec` in `out_dir`; returns its path."""
    import gguf

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / spec.file_name()
    if path.is_file() and path.stat().st_size > 0:
        return path
    tokens = vocabulary()
    types = [int(gguf.TokenType.CONTROL if t in SPECIALS else gguf.TokenType.NORMAL)
             for t in tokens]
    ids = {t: i for i, t in enumerate(tokens)}
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=out_dir)
    os.close(fd)
    try:
        w = gguf.GGUFWriter(tmp, "bert")
        w.add_name("semcode-tiny-bert-classifier")
        w.add_file_type(gguf.LlamaFileType.ALL_F32)
        w.add_context_length(CONTEXT_LENGTH)
        w.add_embedding_length(N_EMBD)
        w.add_block_count(N_LAYER)
        w.add_feed_forward_length(N_FF)
        w.add_head_count(N_HEAD)
        w.add_layer_norm_eps(1e-12)
        w.add_causal_attention(False)
        if spec.pooling_rank:
            w.add_pooling_type(gguf.PoolingType.RANK)
        if spec.labels:
            w.add_classifier_output_labels(list(spec.labels))
        w.add_token_type_count(2)
        w.add_tokenizer_model("bert")
        w.add_tokenizer_pre("jina-v2-en")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_bos_token_id(ids["[CLS]"])
        w.add_eos_token_id(ids["[SEP]"])
        w.add_sep_token_id(ids["[SEP]"])
        w.add_unk_token_id(ids["[UNK]"])
        w.add_pad_token_id(ids["[PAD]"])
        w.add_mask_token_id(ids["[MASK]"])
        w.add_add_bos_token(True)
        w.add_add_eos_token(True)
        if spec.chat_template is not None:
            w.add_chat_template(spec.chat_template)
        rng = np.random.default_rng(spec.seed)
        for name, arr in _tensors(rng, len(tokens), spec).items():
            w.add_tensor(name, arr)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)  # atomic: a concurrent worker sees nothing or the whole file
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def word_count(text: str) -> int:
    """How many tokens the tiny vocabulary gives `text` at least (a word or a character
    each): what a truncation test needs to make a text surely longer than a budget."""
    return len(re.findall(r"\w+|[^\w\s]", text))
