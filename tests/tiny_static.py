"""A tiny random static (model2vec) model, written in model2vec's own on-disk format:

    config.json          {"model_type": "model2vec", "architectures": ["StaticModel"], ...}
    model.safetensors    an `embeddings` tensor (vocab x dims, float32)
    tokenizer.json       a WordPiece tokenizer trained here with `tokenizers`

Nothing is downloaded. `write_hub_cache()` puts the same files into a Hugging Face hub
cache layout (models--OWNER--REPO/snapshots/REV/...) so that an `hf:OWNER/REPO` spec
resolves offline.

    python tests/tiny_static.py OUT_DIR    # prints the model folder
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

DIMS = 24
SEED = 11

_CORPUS = [
    "def parse_config(path): return json.loads(open(path).read())",
    "class TokenCache: def get(self, key): return self.items.get(key)",
    "function renderWidget(props) { return createElement('div', props) }",
    "func Decode(data []byte) (Token, error) { return decode(data) }",
    "fn main() { let cache = HashMap::new(); println!(\"{}\", cache.len()); }",
    "public class UserRepository { public User findById(long id) { return null; } }",
    "retry the request with exponential backoff until the deadline expires",
    "read the configuration file and validate every setting before starting",
    "hash the password with a salt and compare it in constant time",
    "open a database connection pool and run migrations at startup",
]


def train_tokenizer(vocab_size: int = 300) -> object:
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers

    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(vocab_size=vocab_size,
                                        special_tokens=["[PAD]", "[UNK]"])
    tok.train_from_iterator(_CORPUS * 4, trainer)
    return tok


def write_static_model(folder: Path, dims: int = DIMS, seed: int = SEED,
                       normalize: bool = True) -> Path:
    """Write the model into `folder` (created) and return it."""
    from safetensors.numpy import save_file

    folder.mkdir(parents=True, exist_ok=True)
    tok = train_tokenizer()
    vocab = tok.get_vocab_size()  # type: ignore[attr-defined]
    rng = np.random.default_rng(seed)
    table = rng.standard_normal((vocab, dims)).astype(np.float32)
    save_file({"embeddings": table}, str(folder / "model.safetensors"))
    tok.save(str(folder / "tokenizer.json"), pretty=False)  # type: ignore[attr-defined]
    config = {"model_type": "model2vec", "architectures": ["StaticModel"],
              "tokenizer_name": "tiny-wordpiece", "apply_pca": None, "hidden_dim": dims,
              "seq_length": 1000000, "normalize": normalize,
              "embedding_dtype": "float32"}
    (folder / "config.json").write_text(json.dumps(config, indent=4), encoding="utf-8")
    return folder


def write_hub_cache(hf_home: Path, repo_id: str, dims: int = DIMS, seed: int = SEED) -> Path:
    """The model as huggingface_hub caches a downloaded repository under HF_HOME
    (blobs + a snapshot of symlinks + refs/main); returns the snapshot folder."""
    revision = "0" * 40
    repo = hf_home / "hub" / f"models--{repo_id.replace('/', '--')}"
    source = write_static_model(repo / "_src", dims, seed)
    snapshot = repo / "snapshots" / revision
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for name in ("config.json", "model.safetensors", "tokenizer.json"):
        blob = repo / "blobs" / f"blob-{name}"
        (source / name).rename(blob)
        (snapshot / name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    source.rmdir()
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(revision)
    return snapshot


if __name__ == "__main__":
    if len(sys.argv) != 2:
        print(__doc__, file=sys.stderr)
        sys.exit(2)
    print(write_static_model(Path(sys.argv[1]).resolve()))
