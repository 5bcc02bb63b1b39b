"""Embedder and reranker on MLX (`mlx-lm`): Apple silicon's GPU, or MLX's CPU build.

Same recipes as the llama.cpp backend, read from `profiles.py`:

* embeddings: the profile's templates; the tokenizer's own special tokens, then the
  profile's EOS (config.json's `eos_token_id`) when it wants one, truncated keeping that
  EOS; the *final-norm* hidden state (`model.model(...)`) pooled per the profile (last
  token, mean, first), L2-normalised. Documents are sorted by length and right-padded
  into batches: with a causal mask a real token never sees the padding after it, so the
  pooled rows equal one-at-a-time ones.
* reranking: P("yes") against "no" at the last position of the official template; the
  query prefix is run once into a KV cache, which each batch of (right-padded) documents
  extends (keys/values broadcast over the batch), and only the rows at each document's
  last token go through the LM head (never (batch, length, vocab) logits).

A model is a local folder in MLX or Hugging Face format (config.json, *.safetensors,
tokenizer.json), or a hub repo ("mlx-community/Qwen3-Embedding-0.6B-4bit-DWQ") fetched
with huggingface_hub unless offline. Checkpoints saved without the "model." prefix (HF's
Qwen3-Embedding is a bare `Qwen3Model`) are accepted.

Thread-safety: one thread at a time per instance (as llama.cpp).
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import time
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np

from .base import (
    EmbeddingProfile,
    ModelError,
    ModelInfo,
    ModelMissing,
    ProgressFn,
    RerankerProfile,
)
from .common import (
    CHARS_PER_TOKEN_CAP,
    MAX_SEQS,
    Throughput,
    TokenEmbedder,
    YesNoReranker,
    embedding_input,
    normalize_rows,
    output_dims,
    yes_probability,
)
from .profiles import detect_embedding_profile, detect_reranker_profile

if TYPE_CHECKING:  # importing semcode must not load MLX
    from mlx.core import array as MxArray

BACKEND = "mlx"


def mlx_available() -> str | None:
    """None when mlx and mlx-lm import, else why not (one line)."""
    try:
        import mlx.core  # noqa: F401
        import mlx_lm  # noqa: F401
    except Exception as e:  # noqa: BLE001 - ImportError, or a broken native wheel
        return f"mlx-lm is not installed ({type(e).__name__}: {e})"
    return None


def _mx() -> ModuleType:
    why = mlx_available()
    if why:
        raise ModelError(why)
    import mlx.core as mx

    if mx.default_device() == mx.cpu:
        # MLX's CPU backend JIT-compiles `mx.compile`d functions (mlx-lm compiles its
        # activations) by generating C++ source through iostreams; with usearch's native
        # module loaded in the same process (the engine always loads it) that source
        # comes out truncated and g++ fails. Plain eager evaluation gives the same
        # numbers; on Apple silicon the GPU path keeps compilation.
        mx.disable_compile()
    return mx


def resolve_mlx_model(spec: str | os.PathLike[str], offline: bool = False) -> Path:
    """A local folder as is; "hf:owner/repo" or "owner/repo" from the hub cache or hub."""
    text = str(spec).strip()
    if text.startswith("hf:"):
        text = text[3:]
    local = Path(os.path.expanduser(text))
    if local.exists():
        if not (local / "config.json").is_file():
            raise ModelError(f"not an MLX/Hugging Face model folder (no config.json): {local}")
        return local
    if text.count("/") != 1 or text.startswith(("/", ".", "~")):
        raise ModelMissing(f"model folder not found: {local}")
    from huggingface_hub import snapshot_download

    patterns = ["*.json", "*.safetensors", "*.txt", "*.model", "*.tiktoken"]
    try:
        return Path(snapshot_download(text, allow_patterns=patterns, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached
        if offline:
            raise ModelMissing(f"model {text} is not in the cache (offline mode)") from None
    try:
        return Path(snapshot_download(text, allow_patterns=patterns))
    except Exception as e:  # noqa: BLE001
        line = (str(e).strip().splitlines() or [""])[0]
        raise ModelMissing(f"cannot download {text}: {type(e).__name__}: {line}") from None


def folder_identity(path: Path) -> str:
    """Content fingerprint of a model folder: config, tokenizer and each weight file's
    safetensors header (names, dtypes, shapes, offsets) plus 64 KiB samples of it."""
    h = hashlib.sha256()
    for name in ("config.json", "tokenizer.json"):
        p = path / name
        if p.is_file():
            h.update(p.read_bytes())
    for wf in sorted(path.glob("*.safetensors")):
        st = wf.stat()
        h.update(f"{wf.name}|{st.st_size}".encode())
        with open(wf, "rb") as f:
            h.update(f.read(1 << 20))
            for i in range(1, 9):
                f.seek(st.st_size * i // 9)
                h.update(f.read(64 << 10))
    return h.hexdigest()


def _safetensors_keys(path: Path) -> list[str]:
    keys: list[str] = []
    for wf in sorted(path.glob("*.safetensors")):
        with open(wf, "rb") as f:
            (n,) = struct.unpack("<Q", f.read(8))
            keys.extend(k for k in json.loads(f.read(n)) if k != "__metadata__")
    return keys


class _Model:
    """Weights (mlx-lm module), tokenizer (HF `tokenizers`) and config of a folder."""

    def __init__(self, spec: str | os.PathLike[str], offline: bool) -> None:
        self.mx = _mx()
        self.path = resolve_mlx_model(spec, offline)
        try:
            self.config = json.loads((self.path / "config.json").read_text())
        except (OSError, ValueError) as e:
            raise ModelError(f"cannot read {self.path / 'config.json'}: {e}") from None
        self.module = self._load_module()
        inner = getattr(self.module, "model", None)
        if inner is None or not hasattr(inner, "layers") or not hasattr(inner, "embed_tokens"):
            raise ModelError(f"{self.path.name}: mlx-lm model without a decoder stack "
                             f"({self.config.get('model_type')}) is not supported")
        self.inner = inner
        tok_file = self.path / "tokenizer.json"
        if not tok_file.is_file():
            raise ModelError(f"{self.path}: no tokenizer.json")
        from tokenizers import Tokenizer

        self.tokenizer = Tokenizer.from_file(str(tok_file))
        self.tokenizer.no_padding()
        self.tokenizer.no_truncation()
        eos = self.config.get("eos_token_id")
        if isinstance(eos, list):
            eos = eos[0] if eos else None
        if eos is None:
            tc = self._tokenizer_config()
            name = tc.get("eos_token")
            if isinstance(name, dict):
                name = name.get("content")
            eos = self.tokenizer.token_to_id(name) if name else None
        self.eos: int | None = int(eos) if eos is not None else None
        self.n_embd = int(self.config.get("hidden_size", 0))
        self.identity = folder_identity(self.path)

    def _tokenizer_config(self) -> dict[str, Any]:
        p = self.path / "tokenizer_config.json"
        try:
            data = json.loads(p.read_text()) if p.is_file() else {}
        except (OSError, ValueError):
            data = {}
        return data if isinstance(data, dict) else {}

    def _load_module(self) -> Any:
        from mlx_lm.utils import load_model

        try:
            keys = _safetensors_keys(self.path)
            if not keys:
                raise ModelError(f"{self.path}: no *.safetensors weights")
            if any(k.startswith("model.") for k in keys):
                module, _ = load_model(self.path)
                return module
            # A bare base model (HF Qwen3-Embedding): build, then load with the prefix.
            module, _ = load_model(self.path, lazy=True, strict=False)
            mx = self.mx
            weights: dict[str, Any] = {}
            for wf in sorted(self.path.glob("*.safetensors")):
                weights.update(mx.load(str(wf)))
            weights = {k if k.startswith("lm_head") else "model." + k: v
                       for k, v in weights.items()}
            if hasattr(module, "sanitize"):
                weights = module.sanitize(weights)
            module.load_weights(list(weights.items()), strict=True)
            mx.eval(module.parameters())
            return module
        except ModelError:
            raise
        except Exception as e:  # noqa: BLE001 - shape mismatch, unknown model_type...
            line = (str(e).strip().splitlines() or [""])[0]
            raise ModelError(f"mlx-lm could not load {self.path}: {type(e).__name__}: "
                             f"{line}") from None

    def encode(self, text: str, add_special: bool) -> list[int]:
        """Token ids of `text` (HF `tokenizers`); `add_special` adds the tokenizer's own special
        tokens (BOS etc.)."""
        return list(self.tokenizer.encode(text, add_special_tokens=add_special).ids)

    @property
    def device(self) -> str:
        """"metal" when MLX runs on the GPU, else "cpu"."""
        d = self.mx.default_device()
        return "metal" if "gpu" in str(d).lower() else "cpu"

    def hidden(self, batch: list[list[int]], cache: list[_PrefixCache] | None = None
               ) -> MxArray:
        """Final-norm hidden states (B, L, D) of right-padded sequences."""
        mx = self.mx
        width = max(len(s) for s in batch)
        pad = self.eos if self.eos is not None else 0
        arr = mx.array([s + [pad] * (width - len(s)) for s in batch], dtype=mx.int32)
        return self.inner(arr, cache=cache)

    def lm_head(self, h: MxArray) -> MxArray:
        """Vocabulary logits of hidden states `h`: the model's LM head, or the tied input embeddings
        when it has none."""
        if getattr(self.module, "lm_head", None) is not None:
            return self.module.lm_head(h)
        return self.inner.embed_tokens.as_linear(h)


class _PrefixCache:
    """A per-layer KV cache holding a shared prompt prefix, broadcast over a batch.

    Implements what mlx-lm's attention uses: `offset`, `update_and_fetch`, `make_mask`."""

    def __init__(self, keys: MxArray | None = None, values: MxArray | None = None,
                 offset: int = 0) -> None:
        self.keys, self.values, self.offset = keys, values, offset

    def update_and_fetch(self, keys: MxArray, values: MxArray) -> tuple[MxArray, MxArray]:
        """Append this step's `keys`/`values` (batch, heads, length, dim) after the cached ones,
        broadcasting a one-row prefix over the batch; returns everything cached (what attention
        attends to)."""
        import mlx.core as mx

        if self.keys is None or self.values is None:  # set together: both or neither
            self.keys, self.values = keys, values
        else:
            b = keys.shape[0]
            old_k, old_v = self.keys, self.values
            if old_k.shape[0] != b:
                old_k = mx.broadcast_to(old_k, (b, *old_k.shape[1:]))
                old_v = mx.broadcast_to(old_v, (b, *old_v.shape[1:]))
            self.keys = mx.concatenate([old_k, keys], axis=2)
            self.values = mx.concatenate([old_v, values], axis=2)
        self.offset += keys.shape[2]
        return self.keys, self.values

    def make_mask(self, n: int, return_array: bool = False, window_size: int | None = None
                  ) -> MxArray | None:
        """The causal mask for `n` new tokens after `offset` cached ones (None for a single token,
        as mlx-lm's own caches do); the other arguments are mlx-lm's, unused."""
        from mlx_lm.models.base import create_causal_mask

        if n == 1:
            return None
        return create_causal_mask(n, offset=self.offset)

    def fork(self) -> _PrefixCache:
        """A cache for one batch that starts from this prefix (arrays shared, not copied;
        `update_and_fetch` concatenates into new ones)."""
        return _PrefixCache(self.keys, self.values, self.offset)


def _batches(lengths: list[int], order: list[int], budget: int) -> list[list[int]]:
    """Group indices (in `order`) so that rows x longest row stays within budget."""
    out: list[list[int]] = []
    cur: list[int] = []
    longest = 0
    for i in order:
        new_longest = max(longest, lengths[i])
        if cur and (new_longest * (len(cur) + 1) > budget or len(cur) >= MAX_SEQS):
            out.append(cur)
            cur, new_longest = [], lengths[i]
        cur.append(i)
        longest = new_longest
    if cur:
        out.append(cur)
    return out


# --------------------------------------------------------------------------- embedder


class MlxEmbedder(TokenEmbedder):
    """An embedding model (Qwen3-Embedding, ...) on MLX; `model` is a folder or hub repo."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        profile: EmbeddingProfile | None = None,
        batch_tokens: int = 2048,
        offline: bool = False,
    ) -> None:
        self._model = m = _Model(model, offline)
        meta = {"general.architecture": m.config.get("model_type", ""),
                "general.name": m.config.get("_name_or_path", "")}
        self.profile = profile or detect_embedding_profile(meta, m.path.name)
        if self.profile.pooling not in ("last", "mean", "cls"):
            raise ModelError(f"pooling {self.profile.pooling!r} is not supported on MLX")
        if self.profile.append_eos and m.eos is None:
            raise ModelError(f"{m.path.name}: the profile wants an EOS but the model has none")
        n_ctx = int(m.config.get("max_position_embeddings", 1 << 30))
        self._budget = max(8, min(self.profile.max_tokens, batch_tokens, n_ctx))
        self._batch_tokens = max(batch_tokens, self._budget)
        self._dims = output_dims(self.profile, m.n_embd)
        self._speed = Throughput()
        recipe = self.profile.recipe_key(self._budget, self._dims)
        self._info = ModelInfo(identity=f"mlx:{m.identity[:32]}:{recipe}", backend=BACKEND,
                               device=m.device, path=str(m.path), dims=self._dims)

    def tokenize(self, text: str) -> list[int]:
        """The token ids embedded for `text` (already formatted): special tokens, the profile's EOS
        when it wants one, cut to the token budget keeping that EOS. The text is cut by characters
        first so a huge file is never tokenised whole."""
        m = self._model
        ids = m.encode(text[: self._budget * CHARS_PER_TOKEN_CAP], add_special=True)
        return embedding_input(ids, eos=m.eos, append_eos=self.profile.append_eos,
                               keep=(m.eos,), budget=self._budget)

    def _embed(self, seqs: list[list[int]], progress: ProgressFn | None) -> np.ndarray:
        m, mx = self._model, self._model.mx
        out = np.zeros((len(seqs), self._dims), dtype=np.float32)
        lengths = [len(s) for s in seqs]
        # In input order, so that an early stop returns a prefix of the list; the
        # batch budget counts padding (rows x longest), so mixed lengths pack fewer rows.
        order = list(range(len(seqs)))
        done = 0
        for group in _batches(lengths, order, self._batch_tokens):
            t0 = time.perf_counter()
            h = m.hidden([seqs[i] for i in group])
            lens = mx.array([lengths[i] for i in group])
            if self.profile.pooling == "last":
                pooled = mx.take_along_axis(h, (lens - 1)[:, None, None], axis=1)[:, 0, :]
            elif self.profile.pooling == "cls":
                pooled = h[:, 0, :]
            else:
                keep = (mx.arange(h.shape[1])[None, :] < lens[:, None]).astype(h.dtype)
                pooled = (h * keep[:, :, None]).sum(axis=1) / lens[:, None].astype(h.dtype)
            rows = np.asarray(pooled.astype(mx.float32))[:, : self._dims]
            out[group] = rows
            self._speed.add(sum(lengths[i] for i in group), time.perf_counter() - t0)
            done += len(group)
            if progress is not None and progress(done, len(seqs)):
                out = out[:done]
                break
        if self.profile.normalize:
            normalize_rows(out)
        return out


# --------------------------------------------------------------------------- reranker


class MlxReranker(YesNoReranker):
    """A yes/no cross-encoder (Qwen3-Reranker) on MLX: P("yes") against "no"."""

    def __init__(
        self,
        model: str | os.PathLike[str],
        profile: RerankerProfile | None = None,
        batch_tokens: int = 2048,
        max_doc_tokens: int | None = None,
        offline: bool = False,
        share_prefix: bool = True,
    ) -> None:
        self._model = m = _Model(model, offline)
        meta = {"general.architecture": m.config.get("model_type", "")}
        profile = profile or detect_reranker_profile(meta, m.path.name)
        if max_doc_tokens is not None:
            profile = replace(profile, max_doc_tokens=max_doc_tokens)
        self._init_prompt(profile, batch_tokens, m.path.name)
        self._share_prefix = share_prefix
        self._speed = Throughput()
        self._info = ModelInfo(identity=f"mlx:{m.identity[:32]}:{self.profile.name}",
                               backend=BACKEND, device=m.device, path=str(m.path))

    def _encode(self, text: str, add_special: bool) -> list[int]:
        return self._model.encode(text, add_special)

    def prefix_tokens(self, query: str) -> list[int]:
        """The prompt up to the document, tokenised (special tokens included), cut to one batch."""
        return self._model.encode(self.prefix_text(query), add_special=True)[: self._batch_tokens]

    def score(
        self, query: str, documents: Sequence[str], progress: ProgressFn | None = None
    ) -> list[float]:
        """One P(yes) per document, in order. With `share_prefix` the query prefix runs once into a
        KV cache that each batch extends; otherwise every document carries the prefix. If `progress`
        returns True, the scores finished so far are returned (a shorter list)."""
        if not documents:
            return []
        m, mx = self._model, self._model.mx
        prefix = self.prefix_tokens(query)
        docs = [self.document_tokens(d) for d in documents]
        base: list[_PrefixCache] | None = None
        if self._share_prefix:
            t0 = time.perf_counter()
            base = [_PrefixCache() for _ in m.inner.layers]
            m.hidden([prefix], cache=list(base))
            mx.eval([c.keys for c in base] + [c.values for c in base])
            self._speed.add(len(prefix), time.perf_counter() - t0)
        else:
            docs = [prefix + d for d in docs]
        lengths = [len(d) for d in docs]
        scores = [0.0] * len(docs)
        done = 0
        # In input order (not sorted), so that an early stop returns a prefix of the list.
        for group in _batches(lengths, list(range(len(docs))), self._batch_tokens):
            t0 = time.perf_counter()
            cache = [c.fork() for c in base] if base is not None else None
            h = m.hidden([docs[i] for i in group], cache=cache)
            lens = mx.array([lengths[i] for i in group])
            last = mx.take_along_axis(h, (lens - 1)[:, None, None], axis=1)[:, 0, :]
            logits = m.lm_head(last)
            pair = np.array(logits[:, mx.array([self._yes, self._no])].astype(mx.float32))
            for row, i in enumerate(group):
                scores[i] = yes_probability(pair[row, 0], pair[row, 1])
            self._speed.add(sum(lengths[i] for i in group), time.perf_counter() - t0)
            done += len(group)
            if progress is not None and progress(done, len(docs)):
                return scores[:done]
        return scores

    def score_plain(self, query: str, document: str) -> float:
        """One pair, whole prompt tokenised in one piece, no cache (the reference)."""
        m, mx = self._model, self._model.mx
        ids = self.full_prompt_tokens(query, document)
        h = m.hidden([ids])
        logits = m.lm_head(h[:, -1, :])
        pair = np.array(logits[0, mx.array([self._yes, self._no])].astype(mx.float32))
        return yes_probability(pair[0], pair[1])
