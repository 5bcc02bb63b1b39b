"""Static embeddings (model2vec): a text's vector is the mean of pre-computed token vectors.

No neural network runs at embedding time: tokenise (the Rust `tokenizers` library, in
parallel), look the token ids up in a (vocab x dims) table, average, L2-normalise. That
is thousands of chunks per second on one CPU core, which is what makes semantic search
usable at once on a machine without a GPU (`minishlab/potion-code-16M-v2` is trained
for code retrieval).

The model is read in model2vec's own on-disk format, which is small and stable:
`config.json`, `model.safetensors` (an `embeddings` tensor; optional `weights` and
`mapping` for vocabulary-quantised models) and a `tokenizer.json`; the
sentence-transformers layouts of the same weights (`embedding.weight`, possibly under
`0_StaticEmbedding/`) are read too. Reading it ourselves (safetensors + tokenizers, no
torch, no joblib) keeps the CLI's start-up cost at a few tens of milliseconds; a test
checks the vectors against `model2vec.StaticModel` itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from itertools import chain, islice
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ..chunks import SymbolKind
from ..words import code_words
from .base import EmbeddingProfile, ModelError, ModelInfo, ProgressFn
from .builtin import model_meta
from .common import DescribedEmbedder
from .profiles import STATIC_CODE_WORDS, STATIC_MEAN, get_embedding_profile

if TYPE_CHECKING:
    from tokenizers import Tokenizer

BACKEND = "model2vec"

# The same weights in the layouts model2vec knows: (config, embeddings, tokenizer, tensor).
LAYOUTS: tuple[tuple[str, str, str, str], ...] = (
    ("config.json", "model.safetensors", "tokenizer.json", "embeddings"),
    ("config_sentence_transformers.json", "model.safetensors", "tokenizer.json",
     "embedding.weight"),
    ("config_sentence_transformers.json", "0_StaticEmbedding/model.safetensors",
     "0_StaticEmbedding/tokenizer.json", "embedding.weight"),
)
# Files fetched from the hub for a static model (the first layout; the others are
# tried when these are not in the repository).
HUB_FILES = LAYOUTS[0][:3]

# How much of the `dense_weight` setting a static model's list gets in fusion. Fitted on
# the bench's tune split (bench/quality/static_fit.py) with a static model distilled from
# all-MiniLM-L6-v2: 0.2 gains a little over lexical alone (macro MRR@10 +0.004 with
# static-code-words, +0.003 with static-mean), full weight loses (-0.001, -0.012); 0.002,
# the value before, kept the list out of the lexical top 100 (no gain). On the test split
# 0.2 gives +0.005 [+0.001, +0.009] (paired, both profiles alike) and no language worse
# beyond its interval (bench/RESULTS.md).
FUSION_WEIGHT = 0.2

# The first line of a symbol chunk's `embedding_text()`: "<kind> <qualified name>".
_KINDS = "|".join(k.name.lower() for k in SymbolKind)
_HEADER = re.compile(rf"^(?:{_KINDS}) \S+$")


def _words(text: str) -> str:
    return " ".join(code_words(text))


def _words_with_header_twice(text: str) -> str:
    """Code words, with a symbol's header line ("function load_settings") counted twice:
    its name is what the rest of the chunk is about (BM25 repeats it likewise)."""
    head, sep, rest = text.partition("\n")
    if not sep or not _HEADER.match(head):
        return _words(text)
    words = code_words(head)
    return " ".join(words + words + code_words(rest))


def _verbatim(text: str) -> str:
    return text


# Profile name -> (document preparation, query preparation), applied after the profile's
# templates and before the tokenizer. A profile not listed gets the text as it is.
PREPARATIONS: dict[str, tuple[Callable[[str], str], Callable[[str], str]]] = {
    STATIC_MEAN.name: (_verbatim, _verbatim),
    STATIC_CODE_WORDS.name: (_words_with_header_twice, _words),
}


DOCS_PER_BATCH = 512  # texts tokenised together
_WORD_CACHE_MAX = 1 << 20  # whitespace-separated pieces remembered with their token ids

# Text that exercises what a word cache could get wrong (checked against the tokenizer
# itself at load time): punctuation runs, underscores, digits, case, accents, CJK, tabs.
_PROBE = (
    "def __init__(self, path='~/.config/x.toml'): # TODO(x): 3.14e-2 >= 0x1F\n\t"
    "return {\"k\": [1, 2]}?.map(a=>a*2) && foo::Bar<T>; Ünïcode naïve café 東京 ½ "
    "snake_case camelCaseWord SCREAMING_CASE --flag /usr/lib/x86_64 ---- ==== ''' \"\"\" "
    "averyveryveryverylongidentifierthatkeepsgoingandgoingandgoingandgoingandgoingand"
    "goingandgoingandgoingandgoingandgoingwithoutanybreakatall_at_all"
)


def find_layout(folder: Path) -> tuple[Path, Path, Path, str] | None:
    """(config, embeddings, tokenizer, tensor name) of a model2vec folder, or None."""
    for config, weights, tokenizer, tensor in LAYOUTS:
        paths = (folder / config, folder / weights, folder / tokenizer)
        if all(p.is_file() for p in paths):
            return paths[0], paths[1], paths[2], tensor
    return None


def is_static_folder(folder: Path) -> bool:
    """Whether `folder` holds a static (model2vec) model, from its files alone."""
    layout = find_layout(folder)
    if layout is None:
        return False
    if layout[3] == "embeddings":
        try:
            config = json.loads(layout[0].read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return False
        # model2vec writes model_type "model2vec"; a transformers checkpoint with a
        # tokenizer.json and model.safetensors has another model_type.
        return isinstance(config, dict) and (
            config.get("model_type") == "model2vec"
            or "StaticModel" in (config.get("architectures") or []))
    return True


_NAME_HINTS = ("model2vec", "potion", "static-", "m2v")


def looks_static_repo(repo_id: str) -> bool:
    """A hub repository that is a static model, by name: minishlab publishes model2vec
    models (potion-*, M2V_*), and distilled ones usually carry one of these words."""
    name = repo_id.lower()
    return name.startswith("minishlab/") or any(h in name for h in _NAME_HINTS)


# --------------------------------------------------------------------------- identity

_digest_cache: dict[tuple[str, int, int], str] = {}
_FULL_HASH_BYTES = 128 << 20
_SAMPLE_BYTES = 1 << 20
_SAMPLES = 32


def _file_digest(path: Path) -> str:
    """sha256 of a file's content (sampled beyond 128 MB), cached by (path, size, mtime)."""
    p = os.path.realpath(path)
    st = os.stat(p)
    key = (p, st.st_size, st.st_mtime_ns)
    if key in _digest_cache:
        return _digest_cache[key]
    h = hashlib.sha256(str(st.st_size).encode())
    with open(p, "rb") as f:
        if st.st_size <= _FULL_HASH_BYTES:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        else:
            step = st.st_size // _SAMPLES
            for i in range(_SAMPLES):
                f.seek(i * step)
                h.update(f.read(_SAMPLE_BYTES))
    _digest_cache[key] = digest = h.hexdigest()
    return digest


def folder_identity(config: Path, weights: Path, tokenizer: Path) -> str:
    """The model's content fingerprint: weights, tokenizer and config, never the path
    (a moved copy or a hub snapshot elsewhere keeps its cached vectors)."""
    h = hashlib.sha256()
    for p in (weights, tokenizer, config):
        h.update(_file_digest(p).encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- embedder

class StaticEmbedder(DescribedEmbedder):
    """A model2vec model (a folder in its on-disk format) behind the Embedder interface.

    Safe to use from several threads at once (the word cache is only ever added to or
    replaced), so ModelSet lets queries share the document embedder's instance."""

    def __init__(self, folder: str | os.PathLike[str], profile: EmbeddingProfile | None = None,
                 max_tokens: int | None = None) -> None:
        from safetensors import safe_open
        from tokenizers import Tokenizer

        self.folder = Path(folder)
        layout = find_layout(self.folder)
        if layout is None:
            raise ModelError(f"{self.folder} is not a model2vec model (expected config.json, "
                             f"model.safetensors and tokenizer.json)")
        config_path, weights_path, tokenizer_path, tensor = layout
        try:
            config = json.loads(config_path.read_text(encoding="utf-8"))
            if not isinstance(config, dict):
                config = {}
            with safe_open(str(weights_path), framework="numpy") as f:
                names = set(f.keys())
                if tensor not in names:
                    raise ModelError(f"{weights_path}: no {tensor!r} tensor")
                table = f.get_tensor(tensor)
                weights = f.get_tensor("weights") if "weights" in names else None
                mapping = f.get_tensor("mapping") if "mapping" in names else None
            self._tokenizer = Tokenizer.from_file(str(tokenizer_path))
        except ModelError:
            raise
        except Exception as exc:  # noqa: BLE001 - a broken file is one line for the user
            first = (str(exc).strip().splitlines() or [""])[0]
            raise ModelError(f"cannot read {self.folder}: {type(exc).__name__}: {first}") from None
        if table.ndim != 2 or table.shape[0] == 0:
            raise ModelError(f"{weights_path}: {tensor} has shape {table.shape}")
        vocab = self._tokenizer.get_vocab_size(with_added_tokens=True)
        # Fold the per-token weights and the vocabulary mapping into one float32 table
        # indexed by token id: the hot loop is then a gather and a mean.
        table = table.astype(np.float32)
        if mapping is not None:
            table = table[np.asarray(mapping, dtype=np.int64)]
        if weights is not None:
            table = table * np.asarray(weights, dtype=np.float32)[: len(table), None]
        if len(table) < vocab:
            raise ModelError(f"{weights_path}: {len(table)} vectors for a vocabulary of {vocab}")
        self._table = np.ascontiguousarray(table)
        self._unk = _unk_token_id(self._tokenizer)
        if self._unk is not None and self._unk < len(self._table):
            self._table[self._unk] = 0.0  # never averaged in (see _encode)
        self._tokenizer.no_padding()
        # A model trained by semcode says how it was trained to be read (its profile) and
        # how much its list counts in fusion (fitted for that model); an explicit profile
        # setting still wins.
        meta = model_meta(self.folder)
        base = profile or _meta_profile(meta) or STATIC_MEAN
        weight = meta.get("fusion_weight")
        self.fusion_weight = float(weight) if isinstance(weight, int | float) and \
            weight > 0 else FUSION_WEIGHT
        budget = max_tokens or config.get("max_length") or base.max_tokens
        self.profile = replace(base, max_tokens=int(budget))
        self.prepare_document, self.prepare_query = PREPARATIONS.get(
            base.name, (_verbatim, _verbatim))
        self._budget = int(budget)
        self._tokenizer.enable_truncation(self._budget)
        self._words: dict[str, list[int]] = {}
        self._fast = self._word_cache_agrees()
        # model2vec cuts texts before tokenising (max_length x the median token length):
        # a 100 kB minified line need not be tokenised whole to keep its first 512 tokens.
        lengths = [len(t) for t in self._tokenizer.get_vocab(with_added_tokens=False)]
        self._char_cap = self._budget * max(4, int(np.median(lengths)) if lengths else 4)
        self._dims = int(self._table.shape[1])
        identity = folder_identity(config_path, weights_path, tokenizer_path)
        recipe = self.profile.recipe_key(self._budget, self._dims)
        self._info = ModelInfo(identity=f"m2v:{identity[:32]}:{recipe}", backend=BACKEND,
                               device="cpu", path=str(self.folder), dims=self._dims)

    # Chunks the engine hands over per batch (it uses 16 for transformers): 512 take
    # ~0.1 s here, and fewer, bigger batches cut the store's and the HNSW's per-call costs.
    batch_chunks = DOCS_PER_BATCH

    def token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """The token ids averaged for each (already formatted) text."""
        unk = self._unk
        return [[i for i in x if i != unk] for x in self._raw_ids(texts)]

    def _raw_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Token ids, truncated to the budget, unknown tokens still in."""
        cap = self._char_cap
        texts = [t[:cap] for t in texts]
        if self._fast:
            return self._cached_token_ids(texts)
        return [e.ids for e in self._tokenizer.encode_batch_fast(texts,
                                                                 add_special_tokens=False)]

    def _cached_token_ids(self, texts: Sequence[str]) -> list[list[int]]:
        """Tokenise whitespace-separated pieces once each: code repeats its words (names,
        keywords, punctuation runs) so much that after the first few thousand chunks
        nearly every piece is a dictionary hit, several times faster than running the
        tokenizer's pipeline over every character again. Only used where the tokenizer
        treats whitespace as a hard boundary (checked at load time)."""
        words = self._words
        pieces = [t.split() for t in texts]
        missing = list(set(chain.from_iterable(pieces)).difference(words))
        if missing:
            if len(words) + len(missing) > _WORD_CACHE_MAX:
                self._words = words = {}  # a new dict: another thread may be reading the old
            encoded = self._tokenizer.encode_batch_fast(missing, add_special_tokens=False)
            words.update(zip(missing, (e.ids for e in encoded), strict=True))
        budget, lookup = self._budget, words.__getitem__
        return [list(islice(chain.from_iterable(map(lookup, p)), budget)) for p in pieces]

    def _word_cache_agrees(self) -> bool:
        """Whether tokenising piece by piece gives exactly the tokenizer's own ids (true
        for BERT-style WordPiece and Metaspace tokenizers, false for byte-level BPE, whose
        pieces carry the space before them)."""
        probe = [_PROBE, _PROBE.upper(), " ".join(_PROBE.split()[::-1])]
        slow = [e.ids for e in self._tokenizer.encode_batch_fast(
            probe, add_special_tokens=False)]
        try:
            fast = self._cached_token_ids(probe)
        except Exception:  # noqa: BLE001 - any surprise means: not safe
            fast = []
        self._words.clear()
        return fast == slow

    def _encode(self, texts: Sequence[str]) -> np.ndarray:
        ids = self._raw_ids(texts)
        out = np.zeros((len(ids), self._dims), dtype=np.float32)
        table, unk = self._table, self._unk
        # One small gather per text: it stays in the CPU cache, which makes this loop
        # ~20x faster than one big gather + np.add.reduceat over a whole batch. The
        # unknown token's row is zero, so it only has to be left out of the count
        # (model2vec drops it).
        for i, x in enumerate(ids):
            n = len(x) - (x.count(unk) if unk is not None else 0)
            if n > 0:
                np.add.reduce(table.take(x, axis=0), axis=0, out=out[i])
                out[i] /= n
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        out /= np.maximum(norms, 1e-12)
        return out

    def embed_documents(self, texts: Sequence[str],
                        progress: ProgressFn | None = None) -> np.ndarray:
        """Unit vectors of chunk texts (the profile's document template, then its text
        preparation), one row each, in batches with progress."""
        fmt, prepare = self.profile.format_document, self.prepare_document
        parts: list[np.ndarray] = []
        done = 0
        for start in range(0, len(texts), DOCS_PER_BATCH):
            batch = [prepare(fmt(t)) for t in texts[start:start + DOCS_PER_BATCH]]
            parts.append(self._encode(batch))
            done += len(batch)
            if progress is not None and progress(done, len(texts)) and done < len(texts):
                break
        if not parts:
            return np.zeros((0, self._dims), dtype=np.float32)
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def embed_query(self, query: str) -> np.ndarray:
        """The unit vector of a query, prepared like the documents it is compared with."""
        vec: np.ndarray = self._encode([self.prepare_query(self.profile.format_query(query))])[0]
        return vec

    def close(self) -> None:
        """Drop the word cache."""
        # Nothing native to free: the table goes with the last reference (a query that
        # is still running keeps working).
        self._words = {}


def _meta_profile(meta: dict[str, object]) -> EmbeddingProfile | None:
    """The static profile a model's `semcode.json` names (None when it names none we know)."""
    name = meta.get("profile")
    if name not in PREPARATIONS:
        return None
    return get_embedding_profile(str(name))


def _unk_token_id(tokenizer: Tokenizer) -> int | None:
    """The tokenizer's unknown token (dropped before averaging, as model2vec does)."""
    model = tokenizer.model
    token = getattr(model, "unk_token", None)
    if token is not None:
        found: int | None = tokenizer.token_to_id(token)
        return found
    if hasattr(model, "unk_token"):
        return None
    try:  # Unigram models keep an unk_id instead
        unk_id = json.loads(tokenizer.to_str())["model"].get("unk_id")
    except (ValueError, KeyError, TypeError):
        return None
    return int(unk_id) if isinstance(unk_id, int) else None
