"""The static embedder's training pipeline end to end on a tiny corpus, no network:
pairs -> a distilled initial table -> one epoch of contrastive training -> a model2vec
folder -> loaded by semcode's own StaticEmbedder, which embeds with it.

The base transformer is a tiny random BERT that the test writes (distilling the real
all-MiniLM-L6-v2 takes minutes); everything after it is the code that trains the shipped
model. Needs the `train` extra (torch, transformers, model2vec's distill).
"""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]

FUNCS = {
    "parse_http_date": "Parse an HTTP date header into a timestamp.",
    "retry_request": "Retry a failed request with exponential backoff.",
    "load_config": "Load the configuration file from disk.",
    "hash_password": "Hash a password with a random salt.",
    "send_email": "Send an email message to the recipients.",
    "compress_bytes": "Compress a byte string with zlib.",
    "read_csv_rows": "Read the rows of a CSV file.",
    "resize_image": "Resize an image to the given width and height.",
}


def _pairs(package: str) -> list[dict[str, object]]:
    codes = {name: f"function {name}\ndef {name}(value):\n    return {name.split('_')[0]}(value)"
             for name in FUNCS}
    out = []
    for name, doc in FUNCS.items():
        negatives = [c for n, c in codes.items() if n != name][:2]
        out.append({"query": doc, "code": codes[name], "negatives": negatives,
                    "language": "python", "package": package, "source": "docstring",
                    "path": f"{package}/m.py", "name": name})
    return out


def _write_pairs(folder: Path) -> None:
    folder.mkdir(parents=True)
    for split, packages in (("train", ["a", "b", "c", "d"]), ("valid", ["e"])):
        with gzip.open(folder / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
            for p in packages:
                for pair in _pairs(p):
                    f.write(json.dumps(pair) + "\n")
    (folder / "stats.json").write_text(json.dumps({"manifest_sha256": "0" * 64, "pairs": 40}))


def _tiny_bert(folder: Path) -> None:
    """A random 1-layer BERT with a word-piece vocabulary of the corpus' words."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, trainers
    from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

    from semcode.words import code_words

    texts = [w for name, doc in FUNCS.items() for w in (doc, " ".join(code_words(name)))]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts * 5, trainers.WordPieceTrainer(
        vocab_size=300, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]))
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]",
                                   cls_token="[CLS]", sep_token="[SEP]", mask_token="[MASK]")
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=32, num_hidden_layers=1,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    BertModel(config).save_pretrained(str(folder))
    fast.save_pretrained(str(folder))


def test_pairs_to_a_model_semcode_loads(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("model2vec.distill")
    pairs, base, work, out = (tmp_path / n for n in ("pairs", "bert", "work", "model"))
    _write_pairs(pairs)
    _tiny_bert(base)
    cmd = [sys.executable, "-m", "training.embedder", "--pairs", str(pairs), "--out", str(out),
           "--work", str(work), "--base", str(base), "--vocab-size", "40", "--dims", "16",
           "--epochs", "1", "--batch", "8"]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "wrote" in proc.stdout

    # what training recorded: the config with its seed, loss and validation curves
    run = next((work / "runs").iterdir())
    assert json.loads((run / "config.json").read_text())["seed"] == 0
    curves = [json.loads(line) for line in (run / "curves.jsonl").read_text().splitlines()]
    assert any("valid" in c and c["step"] == 0 for c in curves)  # the initialisation
    assert any("valid" in c and c["step"] > 0 for c in curves)
    meta = json.loads((out / "semcode.json").read_text())
    assert meta["profile"] == "static-code-words" and meta["train"]["fine_tuned"]
    assert meta["data"]["manifest_sha256"] == "0" * 64

    # semcode's own loader reads it, with the profile it was trained with
    from semcode.models.static import StaticEmbedder

    emb = StaticEmbedder(out)
    assert emb.profile.name == "static-code-words" and emb.dims == 16
    q = emb.embed_query("retry a failed request")
    d = emb.embed_documents(["def retry_request(value):\n    return retry(value)"])
    assert q.shape == (16,) and d.shape == (1, 16)
    assert np.linalg.norm(q) == pytest.approx(1.0, abs=1e-3)

    # training moved the table away from the distillation it started from
    from safetensors.numpy import load_file

    initial = next(p for p in work.iterdir() if p.name.startswith("initial-"))
    before = load_file(str(initial / "model.safetensors"))["embeddings"]
    after = load_file(str(out / "model.safetensors"))["embeddings"].astype(np.float32)
    assert after.shape == before.shape
    assert not np.allclose(after, before.astype(np.float32), atol=1e-3)


def test_missing_pairs_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "training.embedder", "--pairs",
                           str(tmp_path / "none"), "--out", str(tmp_path / "m")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("no ") and "Traceback" not in proc.stderr
