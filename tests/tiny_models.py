"""Tiny random-weight Qwen3 GGUFs for tests that must run real llama.cpp without downloads.

Two files are written, both with the real Qwen3 architecture ("qwen3" in llama.cpp) and a
real byte-level BPE vocabulary trained here with `tokenizers` on a small built-in corpus:

* an **embedding** model: pooling LAST, `add_eos_token` true, like Qwen3-Embedding;
* a **reranker**: a plain causal LM (no pooling) whose logits for "yes"/"no" at the last
  position give P(yes), like Qwen3-Reranker.

The weights are random (fixed seed) but scaled so that attention and the MLP move the
residual stream as much as the token embedding does: different texts give clearly
different vectors, and the yes/no logits depend on the whole prompt. Nothing here means
anything; the files exercise tokenisation, batching, pooling, KV reuse and scoring.

Other test suites (LSP server, editor clients, benchmarks) call the CLI, so keep it stable:

    python tests/tiny_models.py OUT_DIR           # two lines: embedder path, reranker path
    python tests/tiny_models.py --json OUT_DIR    # {"embedder": "...", "reranker": "..."}

Paths are absolute. Exit status 0 on success, 2 on bad usage.

Files are cached in OUT_DIR under names that carry GENERATOR_VERSION; bump it whenever
the output would change, so stale caches are never reused.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path
from typing import NamedTuple

import numpy as np

GENERATOR_VERSION = 1

# Shape: small enough to write in well under a second and load instantly, big enough that
# multi-head attention with grouped KV heads (as in Qwen3) is really exercised.
VOCAB_SIZE = 512
N_EMBD = 64
N_HEAD = 4
N_HEAD_KV = 2
HEAD_DIM = 16
N_FF = 128
N_LAYER = 2
CONTEXT_LENGTH = 4096
SEED = 20240601

# Qwen's special tokens. The first three are CONTROL tokens (only parsed when tokenising
# with special=True); <think>/</think> are USER_DEFINED, as in the real Qwen3 GGUFs.
CONTROL_TOKENS = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
USER_DEFINED_TOKENS = ["<think>", "</think>"]

# Qwen2's pre-tokeniser regex (what llama.cpp applies for tokenizer.ggml.pre="qwen2"); the
# HF tokenizer uses the same split so that a tokenizer.json twin would agree with llama.cpp.
QWEN2_PRETOKENIZE_REGEX = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}|"
    r" ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)

_CORPUS = '''
def refresh_token(session, expires_at):
    """Refresh the access token when it has expired."""
    if session.token is None or expires_at < now():
        session.token = fetch_new_token(session.user)
    return session.token

class UserAccount:
    def __init__(self, name, email):
        self.name = name
        self.email = email

    def get_user_account(self, user_id: int) -> "UserAccount":
        return self.accounts.get(user_id)

function parseConfig(path) {
  const text = fs.readFileSync(path, "utf8");
  return JSON.parse(text);
}

fn main() -> Result<(), Error> {
    let args: Vec<String> = std::env::args().collect();
    for arg in args.iter() { println!("{}", arg); }
    Ok(())
}

func (s *Server) HandleRequest(w http.ResponseWriter, r *http.Request) error {
    return nil
}

import os
import sys
from pathlib import Path

for i in range(10):
    print(i, i * 2, i ** 2)

while queue:
    item = queue.pop()
    if not item:
        continue
    yield item

Judge whether the Document meets the requirements based on the Query and the Instruct
provided. Note that the answer can only be "yes" or "no".
Given a developer's question about a codebase, judge whether this code snippet is the code
that answers it.
Given a natural-language question about a codebase, retrieve the code that answers it.
Instruct: Query: Document: user assistant system
Where do we refresh expired tokens? How is the configuration file parsed? Which function
reads the user account from the database? The server handles each request in a thread.
The quick brown fox jumps over the lazy dog. Search code by meaning, not by name.
'''

# "yes" and "no" must come out of BPE training as single tokens (the reranker reads their
# logits), so the answers appear often enough to be merged early.
_ANSWERS = "yes no\nyes\nno\n" * 40


# Texts and a query that exercise tokenisation edge cases (templates' braces, non-ASCII,
# a one-character text, a long repetitive one); shared by the backend test suites.
SAMPLE_TEXTS = [
    "def refresh_token(session, expires_at):\n    return fetch_new_token(session.user)",
    "class UserAccount:\n    def __init__(self, name): self.name = name",
    "The quick brown fox jumps over the lazy dog.",
    'function parseConfig(path) { return JSON.parse(fs.readFileSync(path, "utf8")); }',
    'fn main() { println!("{}", 42); }  // braces {doc} {text} survive',
    "für größere Ströme: ünïcödé ✓ 日本語",
    "x",
    "for i in range(10):\n    print(i)\n" * 20,
]
SAMPLE_QUERY = "where do we refresh expired tokens"


class TinyModels(NamedTuple):
    embedder: Path
    reranker: Path


def _train_tokenizer():  # -> tokenizers.Tokenizer
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN2_PRETOKENIZE_REGEX), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=VOCAB_SIZE,
        min_frequency=2,
        special_tokens=[AddedToken(t, special=True, normalized=False) for t in CONTROL_TOKENS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([_CORPUS, _ANSWERS], trainer=trainer)
    # Added after training, as Qwen does: their ids follow the BPE vocabulary.
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in USER_DEFINED_TOKENS])
    return tok


def _vocab(tok) -> tuple[list[str], list[int], list[str]]:
    """Tokens in id order, their GGUF token types, and the merges ("a b")."""
    import json

    from gguf import TokenType

    vocab = tok.get_vocab(with_added_tokens=True)
    tokens = [""] * len(vocab)
    for text, idx in vocab.items():
        tokens[idx] = text
    if "" in tokens:
        raise RuntimeError("tokenizer vocabulary has gaps")
    types = []
    for t in tokens:
        if t in CONTROL_TOKENS:
            types.append(int(TokenType.CONTROL))
        elif t in USER_DEFINED_TOKENS:
            types.append(int(TokenType.USER_DEFINED))
        else:
            types.append(int(TokenType.NORMAL))
    model = json.loads(tok.to_str())["model"]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    for word in ("yes", "no"):
        if word not in vocab:
            raise RuntimeError(f"BPE training did not make {word!r} a single token")
    return tokens, types, merges


def _tensors(rng: np.random.Generator, n_vocab: int, role: str) -> dict[str, np.ndarray]:
    """Qwen3 weights. NumPy shapes are (out, in): GGUF stores them as ggml ne=[in, out]."""

    def lin(n_out: int, n_in: int) -> np.ndarray:
        # 1/sqrt(fan_in): each projection keeps activations O(1), so attention and the MLP
        # change the residual stream as much as the embedding does (std 0.02, the usual
        # init, would leave every last-token vector ~ the EOS embedding: all cosines ~1).
        return (rng.standard_normal((n_out, n_in)) / np.sqrt(n_in)).astype(np.float32)

    def norm(n: int) -> np.ndarray:
        return (1.0 + 0.1 * rng.standard_normal(n)).astype(np.float32)

    t: dict[str, np.ndarray] = {
        "token_embd.weight": rng.standard_normal((n_vocab, N_EMBD)).astype(np.float32),
        "output_norm.weight": norm(N_EMBD),
    }
    if role == "reranker":
        # An untied LM head of small scale, so that the yes/no logits differ by O(1) and
        # P(yes) spreads over (0, 1) instead of sticking to 0 or 1 (with the head tied to
        # embeddings of std 1, logits are ~+-8 and every score rounds to ~0).
        t["output.weight"] = (0.2 * rng.standard_normal((n_vocab, N_EMBD))).astype(np.float32)
    # The embedder has no output.weight: tied to token_embd, as in Qwen3-0.6B.
    for i in range(N_LAYER):
        p = f"blk.{i}."
        t[p + "attn_norm.weight"] = norm(N_EMBD)
        t[p + "attn_q.weight"] = lin(N_HEAD * HEAD_DIM, N_EMBD)
        t[p + "attn_k.weight"] = lin(N_HEAD_KV * HEAD_DIM, N_EMBD)
        t[p + "attn_v.weight"] = lin(N_HEAD_KV * HEAD_DIM, N_EMBD)
        t[p + "attn_output.weight"] = lin(N_EMBD, N_HEAD * HEAD_DIM)
        t[p + "attn_q_norm.weight"] = norm(HEAD_DIM)
        t[p + "attn_k_norm.weight"] = norm(HEAD_DIM)
        t[p + "ffn_norm.weight"] = norm(N_EMBD)
        t[p + "ffn_gate.weight"] = lin(N_FF, N_EMBD)
        t[p + "ffn_up.weight"] = lin(N_FF, N_EMBD)
        t[p + "ffn_down.weight"] = lin(N_EMBD, N_FF)
    return t


def _write_gguf(path: Path, role: str, tokens, types, merges, seed: int) -> None:
    import gguf

    tmp_fd, tmp_name = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    os.close(tmp_fd)
    try:
        w = gguf.GGUFWriter(tmp_name, "qwen3")
        w.add_name(f"semcode-tiny-qwen3-{role}")
        w.add_string("semcode.tiny_generator_version", str(GENERATOR_VERSION))
        w.add_file_type(gguf.LlamaFileType.ALL_F32)
        w.add_context_length(CONTEXT_LENGTH)
        w.add_embedding_length(N_EMBD)
        w.add_block_count(N_LAYER)
        w.add_feed_forward_length(N_FF)
        w.add_head_count(N_HEAD)
        w.add_head_count_kv(N_HEAD_KV)
        w.add_key_length(HEAD_DIM)
        w.add_value_length(HEAD_DIM)
        w.add_rope_freq_base(1_000_000.0)
        w.add_layer_norm_rms_eps(1e-6)

        ids = {t: i for i, t in enumerate(tokens)}
        w.add_tokenizer_model("gpt2")
        w.add_tokenizer_pre("qwen2")
        w.add_token_list(tokens)
        w.add_token_types(types)
        w.add_token_merges(merges)
        w.add_bos_token_id(ids["<|endoftext|>"])
        w.add_pad_token_id(ids["<|endoftext|>"])
        w.add_add_bos_token(False)
        if role == "embedding":
            # Qwen3-Embedding: EOS = <|endoftext|>, appended to every input, last-token pooling.
            w.add_eos_token_id(ids["<|endoftext|>"])
            w.add_add_eos_token(True)
            w.add_pooling_type(gguf.PoolingType.LAST)
        else:
            # Qwen3 chat/reranker: EOS = <|im_end|>, nothing appended, logits from the LM head.
            w.add_eos_token_id(ids["<|im_end|>"])
            w.add_add_eos_token(False)

        rng = np.random.default_rng(seed)
        for name, arr in _tensors(rng, len(tokens), role).items():
            w.add_tensor(name, arr)
        w.write_header_to_file()
        w.write_kv_data_to_file()
        w.write_tensors_to_file()
        w.close()
        os.chmod(tmp_name, 0o644)  # mkstemp creates 0600
        # Atomic: a concurrent test worker sees either nothing or the whole file.
        os.replace(tmp_name, path)
    finally:
        if os.path.exists(tmp_name):
            os.unlink(tmp_name)


def write_tiny_models(out_dir: Path) -> TinyModels:
    """Write (or reuse) the two tiny GGUFs in `out_dir` and return their paths."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    result = TinyModels(
        embedder=out_dir / f"tiny-qwen3-embedding-v{GENERATOR_VERSION}.gguf",
        reranker=out_dir / f"tiny-qwen3-reranker-v{GENERATOR_VERSION}.gguf",
    )
    if all(p.is_file() and p.stat().st_size > 0 for p in result):
        return result
    tokens, types, merges = _vocab(_train_tokenizer())
    _write_gguf(result.embedder, "embedding", tokens, types, merges, seed=SEED)
    _write_gguf(result.reranker, "reranker", tokens, types, merges, seed=SEED + 1)
    return result


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    as_json = "--json" in args
    if as_json:
        args.remove("--json")
    if len(args) != 1 or args[0].startswith("-"):
        print("usage: python tests/tiny_models.py [--json] OUT_DIR", file=sys.stderr)
        return 2
    models = write_tiny_models(Path(args[0]))
    paths = {"embedder": str(models.embedder.resolve()), "reranker": str(models.reranker.resolve())}
    if as_json:
        import json

        print(json.dumps(paths))
    else:
        print(paths["embedder"])
        print(paths["reranker"])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
