"""Embedder and reranker on llama.cpp (llama-cpp-python's low-level ctypes API).

Why not the high-level `llama_cpp.Llama`: its `embed()` tokenises with special=False,
truncates silently to n_batch (dropping the EOS that last-token pooling reads) and returns
n_embd floats under RANK pooling; `Llama.scores` stays empty without `logits_all`, and
there is no way to share a prompt prefix across documents. So this module drives the
C API directly:

* tokenise with `parse_special=True` (as HF tokenizers do), append the EOS ourselves
  when the profile wants one, truncate to a per-document budget keeping that EOS;
* embeddings: several documents per `llama_decode`, one sequence id each, pooled per
  sequence by llama.cpp (`llama_get_embeddings_seq`), then L2-normalised;
* reranking: decode the query prefix once on sequence 0, copy its KV cells to sequences
  1..k (`llama_memory_seq_cp`: with a unified KV cache this only tags cells, no copy),
  decode the k document suffixes in one batch, read the "yes"/"no" logits at each
  sequence's last token (`llama_get_logits_ith`); score = P(yes) over the two.

Thread-safety: an instance owns one llama.cpp context and must be used by one thread at
a time (the search engine serialises calls). Separate instances are independent.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import math
import os
import sys
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from .base import (
    Embedder,
    EmbeddingProfile,
    ModelError,
    ModelInfo,
    ProgressFn,
    Reranker,
    RerankerProfile,
)
from .profiles import (
    detect_embedding_profile,
    detect_reranker_profile,
    gguf_pooling,
    reranker_template,
)

BACKEND = "llama.cpp"

# llama.cpp's enum llama_pooling_type.
_POOLING_IDS = {"none": 0, "mean": 1, "cls": 2, "last": 3, "rank": 4}
# Sequences per decode. llama.cpp caps n_seq_max (LLAMA_MAX_SEQ = 256); more than a few
# dozen short documents per batch buys nothing on CPU.
_MAX_SEQS = 64


def _lib() -> Any:
    """Import llama_cpp lazily: importing semcode must not load native code, and a missing
    wheel must surface as a ModelError, not an ImportError at import time."""
    try:
        import llama_cpp
    except ImportError as e:  # pragma: no cover - depends on the install
        raise ModelError(f"llama-cpp-python is not installed ({e})") from None
    _install_log_handler(llama_cpp)
    return llama_cpp


# --------------------------------------------------------------------------- logging

# llama.cpp logs every tensor it loads to stderr; an LSP server's stderr is the client's
# log pane. One process-wide callback drops the chatter unless some instance asked for
# verbose output, and keeps the last error lines to explain a failed load.
_log_lock = threading.Lock()
_log_installed = False
_log_verbose = False
_log_errors: deque[str] = deque(maxlen=8)
_log_callback: Any = None  # keep a reference: ctypes callbacks die with their Python object


def _install_log_handler(llama_cpp: Any) -> None:
    global _log_installed, _log_callback
    with _log_lock:
        if _log_installed:
            return

        def on_log(level: int, text: bytes, _user_data: Any) -> None:
            msg = text.decode("utf-8", "replace") if text else ""
            if level == 3 and msg.strip():  # GGML_LOG_LEVEL_ERROR
                _log_errors.append(msg.strip())
            if _log_verbose:
                sys.stderr.write(msg)

        _log_callback = llama_cpp.llama_log_callback(on_log)
        llama_cpp.llama_log_set(_log_callback, ctypes.c_void_p(0))
        llama_cpp.llama_backend_init()
        _log_installed = True


def _last_error() -> str:
    return f": {_log_errors[-1]}" if _log_errors else ""


def _extra_buffers_allowed() -> bool:
    """Whether llama.cpp may use its "extra" CPU buffer types (AMX, weight repacking).

    On a CPU that advertises AMX, ggml routes quantized matmuls (Q4_K, Q8_0, ...) to AMX
    tile instructions; in at least one VM (Linux 6.18 under Firecracker, where the kernel
    grants the AMX permission) `tileloadd` raises SIGILL and kills the whole process.
    Losing the repack speed-up is better than a crash, so extra buffers are off on AMX
    hosts unless SEMCODE_LLAMA_EXTRA_BUFTS=1 says they work there (=0 forces them off)."""
    env = os.environ.get("SEMCODE_LLAMA_EXTRA_BUFTS")
    if env is not None:
        return env.strip() not in ("", "0", "false", "no")
    if sys.platform != "linux":
        return True
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return "amx_tile" not in line.split()
    except OSError:
        pass
    return True


# --------------------------------------------------------------------------- identity

_identity_cache: dict[tuple[str, int, int], str] = {}
_HEAD_BYTES = 4 << 20  # header, metadata, tensor infos (and the first weights)
_SAMPLE_BYTES = 64 << 10
_SAMPLES = 16


def file_identity(path: str | os.PathLike[str]) -> str:
    """A content fingerprint of a model file, cheap enough for every start.

    Hashing all of a 600 MB GGUF takes seconds; the header plus 16 evenly spaced 64 KiB
    samples of the weights plus the size (about 5 MB read) tells apart any two files
    that differ in shape, metadata or weights, while a renamed or moved copy keeps its
    id. Cached by (path, size, mtime)."""
    p = os.path.realpath(path)
    st = os.stat(p)
    key = (p, st.st_size, st.st_mtime_ns)
    cached = _identity_cache.get(key)
    if cached:
        return cached
    h = hashlib.sha256()
    h.update(str(st.st_size).encode())
    with open(p, "rb") as f:
        h.update(f.read(_HEAD_BYTES))
        if st.st_size > _HEAD_BYTES:
            step = (st.st_size - _HEAD_BYTES) // _SAMPLES
            for i in range(_SAMPLES):
                f.seek(_HEAD_BYTES + i * step)
                h.update(f.read(_SAMPLE_BYTES))
    digest = h.hexdigest()
    _identity_cache[key] = digest
    return digest


# --------------------------------------------------------------------------- model


class _Model:
    """A loaded GGUF: weights, vocabulary, metadata. Shared code of both roles."""

    def __init__(self, path: str | os.PathLike[str], n_gpu_layers: int, verbose: bool) -> None:
        global _log_verbose
        self.path = Path(path)
        if not self.path.is_file():
            raise ModelError(f"model file not found: {self.path}")
        try:
            with open(self.path, "rb") as f:
                magic = f.read(4)
        except OSError as e:
            raise ModelError(f"cannot read model file {self.path}: {e.strerror}") from None
        if magic != b"GGUF":
            raise ModelError(f"not a GGUF model file: {self.path}")

        self.lib = _lib()
        if verbose:
            _log_verbose = True
        self.n_gpu_layers = n_gpu_layers
        params = self.lib.llama_model_default_params()
        params.n_gpu_layers = n_gpu_layers
        params.use_extra_bufts = _extra_buffers_allowed()
        _log_errors.clear()
        self.ptr = self.lib.llama_model_load_from_file(str(self.path).encode(), params)
        if not self.ptr:
            raise ModelError(f"llama.cpp could not load {self.path}{_last_error()}")
        self.vocab = self.lib.llama_model_get_vocab(self.ptr)
        self.metadata = self._read_metadata()
        self.arch = self.metadata.get("general.architecture", "")
        self.n_embd = int(self.lib.llama_model_n_embd(self.ptr))
        self.n_ctx_train = int(self.lib.llama_model_n_ctx_train(self.ptr))
        self.n_vocab = int(self.lib.llama_vocab_n_tokens(self.vocab))
        self.eos = int(self.lib.llama_vocab_eos(self.vocab))
        self.sep = int(self.lib.llama_vocab_sep(self.vocab))
        self.identity = file_identity(self.path)

    def _read_metadata(self) -> dict[str, str]:
        lib, out = self.lib, {}
        buf = ctypes.create_string_buffer(1 << 16)
        for i in range(int(lib.llama_model_meta_count(self.ptr))):
            n = lib.llama_model_meta_key_by_index(self.ptr, i, buf, len(buf))
            if n < 0:
                continue
            key = buf.value.decode("utf-8", "replace")
            n = lib.llama_model_meta_val_str_by_index(self.ptr, i, buf, len(buf))
            if n < 0:
                continue
            out[key] = buf.value.decode("utf-8", "replace")
        return out

    def tokenize(self, text: str, add_special: bool) -> list[int]:
        # parse_special=True: control tokens written in a template (<|im_start|>...)
        # become their ids, as HF tokenizers do; with False they would be split into
        # bytes and the model would see a different prompt.
        data = text.encode("utf-8")
        cap = len(data) + 8
        buf = (ctypes.c_int32 * cap)()
        n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        if n < 0:  # buffer too small: -n is the size needed
            cap = -n
            buf = (ctypes.c_int32 * cap)()
            n = self.lib.llama_tokenize(self.vocab, data, len(data), buf, cap, add_special, True)
        return list(buf[:n])

    def single_token(self, word: str) -> int:
        ids = self.tokenize(word, add_special=False)
        if len(ids) != 1:
            raise ModelError(
                f"{self.path.name}: the answer word {word!r} is not a single token ({ids})"
            )
        return ids[0]

    @property
    def device(self) -> str:
        offload = self.n_gpu_layers != 0 and bool(self.lib.llama_supports_gpu_offload())
        if not offload:
            return "cpu"
        return "metal" if sys.platform == "darwin" else "gpu"

    def new_context(
        self,
        *,
        n_ctx: int,
        n_batch: int,
        n_seq_max: int,
        n_threads: int,
        embeddings: bool,
        pooling: str,
    ) -> Any:
        p = self.lib.llama_context_default_params()
        p.n_ctx = n_ctx
        p.n_batch = n_batch
        # Pooled embeddings need each sequence whole inside one micro-batch.
        p.n_ubatch = n_batch
        p.n_seq_max = n_seq_max
        threads = n_threads if n_threads > 0 else max(1, os.cpu_count() or 1)
        p.n_threads = threads
        p.n_threads_batch = threads
        p.embeddings = embeddings
        p.pooling_type = _POOLING_IDS[pooling]
        # One KV buffer for all sequences: a copied prefix is shared, not duplicated, and
        # any mix of sequence lengths fits as long as the total does.
        p.kv_unified = True
        p.no_perf = True
        _log_errors.clear()
        ctx = self.lib.llama_init_from_model(self.ptr, p)
        if not ctx:
            raise ModelError(f"llama.cpp could not create a context for {self.path}{_last_error()}")
        return ctx

    def free(self) -> None:
        if self.ptr:
            self.lib.llama_model_free(self.ptr)
            self.ptr = None


class _Batch:
    """A llama_batch we fill token by token; one sequence id per token."""

    def __init__(self, lib: Any, capacity: int) -> None:
        self.lib = lib
        self.capacity = capacity
        self.raw = lib.llama_batch_init(capacity, 0, 1)
        self.n = 0

    def clear(self) -> None:
        self.n = 0
        self.raw.n_tokens = 0

    def add(self, token: int, pos: int, seq: int, output: bool) -> int:
        i = self.n
        if i >= self.capacity:
            raise RuntimeError("llama batch overflow")  # a packing bug, not a user error
        b = self.raw
        b.token[i] = token
        b.pos[i] = pos
        b.n_seq_id[i] = 1
        b.seq_id[i][0] = seq
        b.logits[i] = output
        self.n += 1
        b.n_tokens = self.n
        return i

    def free(self) -> None:
        if self.raw is not None:
            self.lib.llama_batch_free(self.raw)
            self.raw = None


def _decode(model: _Model, ctx: Any, batch: _Batch) -> None:
    rc = model.lib.llama_decode(ctx, batch.raw)
    if rc != 0:
        raise ModelError(f"llama_decode failed ({rc}) on {model.path.name}{_last_error()}")


class _Throughput:
    """Tokens decoded per second of decode time, over the instance's lifetime."""

    def __init__(self) -> None:
        self.tokens = 0
        self.seconds = 0.0

    def add(self, tokens: int, seconds: float) -> None:
        self.tokens += tokens
        self.seconds += seconds

    def rate(self) -> float | None:
        return self.tokens / self.seconds if self.seconds > 0 and self.tokens else None


def _truncate(tokens: list[int], budget: int, keep_last: bool) -> list[int]:
    """Cut to `budget` tokens; with keep_last, the final (EOS/SEP) token survives."""
    if len(tokens) <= budget:
        return tokens
    if keep_last:
        return tokens[: budget - 1] + tokens[-1:]
    return tokens[:budget]


# Before tokenising, cut absurdly long texts: tokens are never shorter than one byte and
# code averages 3-4 characters a token, so this never removes text that would survive
# truncation, and a 50 MB minified file does not get tokenised whole.
_CHARS_PER_TOKEN_CAP = 32


# --------------------------------------------------------------------------- embedder


class LlamaCppEmbedder(Embedder):
    """A GGUF embedding model (Qwen3-Embedding, BERT-family, ...) on llama.cpp.

    `profile` defaults to the one detected from the GGUF's metadata and file name.
    `batch_tokens` bounds the tokens decoded at once (and each document's length).
    Use from one thread at a time."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        profile: EmbeddingProfile | None = None,
        n_threads: int = 0,
        n_gpu_layers: int = -1,
        batch_tokens: int = 2048,
        verbose: bool = False,
    ) -> None:
        self._model = _Model(path, n_gpu_layers, verbose)
        try:
            m = self._model
            self.profile = profile or detect_embedding_profile(m.metadata, m.path.name)
            declared = gguf_pooling(m.metadata)
            if declared == "rank" or (declared is None and m.lib.llama_model_n_cls_out(m.ptr)):
                raise ModelError(f"{m.path.name} is a reranker (rank head), not an embedder")
            self._budget = max(8, min(self.profile.max_tokens, batch_tokens, m.n_ctx_train))
            self._batch_tokens = max(batch_tokens, self._budget)
            self._ctx = m.new_context(
                n_ctx=self._batch_tokens,
                n_batch=self._batch_tokens,
                n_seq_max=_MAX_SEQS,
                n_threads=n_threads,
                embeddings=True,
                pooling=self.profile.pooling,
            )
            self._mem = m.lib.llama_get_memory(self._ctx)
            self._batch = _Batch(m.lib, self._batch_tokens)
        except BaseException:
            self._model.free()
            raise
        dims = self.profile.dims
        self._dims = min(dims, m.n_embd) if dims else m.n_embd
        self._speed = _Throughput()
        self._info = ModelInfo(
            identity=self._identity(),
            backend=BACKEND,
            device=m.device,
            path=str(m.path),
            dims=self._dims,
        )

    def _identity(self) -> str:
        # Vectors depend on the weights *and* on how inputs are prepared, so both are in
        # the cache key: the model's content hash, not its path, plus the recipe.
        recipe = self.profile.recipe_key(self._budget, self._dims)
        return f"gguf:{self._model.identity[:32]}:{recipe}"

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def dims(self) -> int:
        return self._dims

    def tokens_per_second(self) -> float | None:
        return self._speed.rate()

    def tokenize(self, text: str) -> list[int]:
        """The exact token ids embedded for `text` (already formatted): special tokens
        parsed, the tokenizer's own BOS/EOS, the profile's EOS, truncated to the budget."""
        m = self._model
        text = text[: self._budget * _CHARS_PER_TOKEN_CAP]
        ids = m.tokenize(text, add_special=True)
        if self.profile.append_eos and (not ids or ids[-1] != m.eos):
            ids.append(m.eos)
        # Keep the tokenizer's or our trailing EOS/SEP: last-token pooling reads it.
        keep_last = bool(ids) and ids[-1] in (m.eos, m.sep)
        return _truncate(ids, self._budget, keep_last) or [m.eos]

    def embed_documents(
        self, texts: Sequence[str], progress: ProgressFn | None = None
    ) -> np.ndarray:
        """One row per text, in order. If `progress` returns True the rows finished so far
        are returned (fewer than len(texts))."""
        seqs = [self.tokenize(self.profile.format_document(t)) for t in texts]
        return self._embed(seqs, progress)

    def embed_query(self, query: str) -> np.ndarray:
        vecs: np.ndarray = self._embed([self.tokenize(self.profile.format_query(query))], None)
        return vecs[0]

    def _embed(self, seqs: list[list[int]], progress: ProgressFn | None) -> np.ndarray:
        m, lib = self._model, self._model.lib
        out = np.zeros((len(seqs), self._dims), dtype=np.float32)
        done = 0
        while done < len(seqs):
            # Pack whole documents until the batch (tokens or sequence ids) is full.
            end, used = done, 0
            while end < len(seqs) and end - done < _MAX_SEQS:
                if end > done and used + len(seqs[end]) > self._batch_tokens:
                    break
                used += len(seqs[end])
                end += 1
            self._batch.clear()
            for s, ids in enumerate(seqs[done:end]):
                for pos, tok in enumerate(ids):
                    self._batch.add(tok, pos, s, output=True)
            lib.llama_memory_clear(self._mem, True)
            t0 = time.perf_counter()
            _decode(m, self._ctx, self._batch)
            for s in range(end - done):
                ptr = lib.llama_get_embeddings_seq(self._ctx, s)
                if not ptr:
                    raise ModelError(f"{m.path.name}: no pooled embedding (pooling type NONE?)")
                vec = np.ctypeslib.as_array(ptr, shape=(m.n_embd,))[: self._dims]
                out[done + s] = vec
            self._speed.add(used, time.perf_counter() - t0)
            done = end
            if progress is not None and progress(done, len(seqs)):
                out = out[:done]
                break
        if self.profile.normalize:
            norms = np.linalg.norm(out, axis=1, keepdims=True)
            out /= np.maximum(norms, 1e-12)
        return out

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            self._batch.free()
            self._model.lib.llama_free(self._ctx)
            self._ctx = None
        self._model.free()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


# --------------------------------------------------------------------------- reranker


class LlamaCppReranker(Reranker):
    """A yes/no cross-encoder (Qwen3-Reranker, or any chat model given a template).

    score(query, docs) = P("yes") against "no" at the answer position of the profile's
    prompt, with the query prefix decoded once per call and shared by all documents.
    If `profile.use_rank_head` is set and the GGUF carries a rank head (pooling RANK /
    cls.output), that head scores instead. `max_doc_tokens` overrides the profile's
    per-document budget. Use from one thread at a time."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        profile: RerankerProfile | None = None,
        n_threads: int = 0,
        n_gpu_layers: int = -1,
        batch_tokens: int = 2048,
        verbose: bool = False,
        max_doc_tokens: int | None = None,
    ) -> None:
        self._model = _Model(path, n_gpu_layers, verbose)
        try:
            m = self._model
            self.profile = profile or detect_reranker_profile(m.metadata, m.path.name)
            if max_doc_tokens is not None:  # a settings override of the profile's budget
                self.profile = replace(self.profile, max_doc_tokens=max_doc_tokens)
            declared = gguf_pooling(m.metadata)
            if declared in ("mean", "cls", "last"):
                raise ModelError(
                    f"{m.path.name} is an embedding model (pooling {declared}), not a reranker"
                )
            n_cls_out = int(m.lib.llama_model_n_cls_out(m.ptr))
            self._rank_head = bool(self.profile.use_rank_head and (declared == "rank" or n_cls_out))
            self._template = reranker_template(self.profile)
            self._yes = m.single_token(self._template.yes)
            self._no = m.single_token(self._template.no)
            self._suffix = m.tokenize(self._template.suffix, add_special=False)
            self._doc_budget = max(1, self.profile.max_doc_tokens)
            # The batch must hold at least one whole document with its suffix.
            self._batch_tokens = max(batch_tokens, self._doc_budget + len(self._suffix))
            # Room for a prefix as large as a batch on top of a full batch of documents.
            n_ctx = min(2 * self._batch_tokens, max(m.n_ctx_train, self._batch_tokens))
            self._n_ctx = n_ctx
            self._ctx = m.new_context(
                n_ctx=n_ctx,
                n_batch=self._batch_tokens,
                n_seq_max=_MAX_SEQS + 1,
                n_threads=n_threads,
                embeddings=self._rank_head,
                pooling="rank" if self._rank_head else "none",
            )
            self._mem = m.lib.llama_get_memory(self._ctx)
            self._batch = _Batch(m.lib, self._batch_tokens)
        except BaseException:
            self._model.free()
            raise
        self._speed = _Throughput()
        self._info = ModelInfo(
            identity=f"gguf:{m.identity[:32]}:{self.profile.name}",
            backend=BACKEND,
            device=m.device,
            path=str(m.path),
        )

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def uses_rank_head(self) -> bool:
        return self._rank_head

    def tokens_per_second(self) -> float | None:
        return self._speed.rate()

    # -- prompt pieces

    def prefix_tokens(self, query: str) -> list[int]:
        m = self._model
        # Keep the prefix within one batch and leave a full document's room in the
        # context: an over-long query is cut (by characters, so the template survives).
        limit = min(self._batch_tokens, self._n_ctx - self._batch_tokens)
        while True:
            ids = m.tokenize(self._template.format_prefix(self.profile.instruction, query), True)
            if len(ids) <= limit or not query:
                return ids[:limit]
            query = query[: len(query) // 2]

    def document_tokens(self, doc: str) -> list[int]:
        """The document part (leading space included), trimmed, then the suffix."""
        m = self._model
        text = self._template.format_document(doc[: self._doc_budget * _CHARS_PER_TOKEN_CAP])
        ids = m.tokenize(text, add_special=False)[: self._doc_budget]
        return ids + self._suffix

    def full_prompt_tokens(self, query: str, doc: str) -> list[int]:
        """The whole prompt tokenised in one piece (reference for tests and debugging)."""
        t = self._template
        text = t.format_prefix(self.profile.instruction, query) + t.format_document(doc) + t.suffix
        return self._model.tokenize(text, add_special=True)

    # -- scoring

    def score(
        self, query: str, documents: Sequence[str], progress: ProgressFn | None = None
    ) -> list[float]:
        """One P(yes) per document, in order. If `progress` returns True, scoring stops
        and the scores finished so far are returned (a shorter list)."""
        if not documents:
            return []
        if self._rank_head:
            return self._score_rank_head(query, documents, progress)
        m, lib = self._model, self._model.lib
        prefix = self.prefix_tokens(query)
        docs = [self.document_tokens(d) for d in documents]
        room = min(self._batch_tokens, self._n_ctx - len(prefix))

        lib.llama_memory_clear(self._mem, True)
        t0 = time.perf_counter()
        self._decode_sequence(prefix, seq=0, start=0, want_last=False)
        self._speed.add(len(prefix), time.perf_counter() - t0)

        scores: list[float] = []
        done = 0
        while done < len(docs):
            end, used = done, 0
            while end < len(docs) and end - done < _MAX_SEQS:
                if end > done and used + len(docs[end]) > room:
                    break
                used += len(docs[end])
                end += 1
            self._batch.clear()
            last: list[int] = []
            for s, ids in enumerate(docs[done:end], start=1):
                # Sequence s sees the prefix's KV cells as its own positions 0..P-1.
                lib.llama_memory_seq_cp(self._mem, 0, s, -1, -1)
                for j, tok in enumerate(ids):
                    i = self._batch.add(tok, len(prefix) + j, s, output=j == len(ids) - 1)
                last.append(i)
            t0 = time.perf_counter()
            _decode(m, self._ctx, self._batch)
            scores.extend(self._yes_probability(i) for i in last)
            self._speed.add(used, time.perf_counter() - t0)
            for s in range(1, end - done + 1):
                lib.llama_memory_seq_rm(self._mem, s, -1, -1)
            done = end
            if progress is not None and progress(done, len(docs)):
                break
        return scores

    def score_plain(self, query: str, document: str) -> float:
        """One pair, whole prompt decoded from scratch: no prefix reuse, no batching.
        The reference the batched path must match; also handy for debugging."""
        ids = self.full_prompt_tokens(query, document)
        self._model.lib.llama_memory_clear(self._mem, True)
        i = self._decode_sequence(ids, seq=0, start=0, want_last=True)
        if self._rank_head:
            return self._rank_score(0)
        return self._yes_probability(i)

    def _decode_sequence(self, ids: list[int], seq: int, start: int, want_last: bool) -> int:
        """Decode one sequence in batch-sized chunks; index of the last token's output."""
        i = -1
        for off in range(0, len(ids), self._batch_tokens):
            chunk = ids[off : off + self._batch_tokens]
            self._batch.clear()
            for j, tok in enumerate(chunk):
                is_last = want_last and off + j == len(ids) - 1
                i = self._batch.add(tok, start + off + j, seq, output=is_last)
            _decode(self._model, self._ctx, self._batch)
        return i

    def _yes_probability(self, batch_index: int) -> float:
        lib = self._model.lib
        logits = lib.llama_get_logits_ith(self._ctx, batch_index)
        if not logits:
            raise ModelError(f"{self._model.path.name}: no logits at the answer position")
        # softmax over the two answers == sigmoid of their difference; float64 avoids
        # overflow for confident models.
        diff = float(logits[self._no]) - float(logits[self._yes])
        return 1.0 / (1.0 + math.exp(diff)) if diff < 700 else 0.0

    def _rank_score(self, seq: int) -> float:
        ptr = self._model.lib.llama_get_embeddings_seq(self._ctx, seq)
        if not ptr:
            raise ModelError(f"{self._model.path.name}: the rank head gave no score")
        x = float(ptr[0])
        # Converted Qwen3 rerankers store yes-minus-no as a one-output head: sigmoid of it
        # is P(yes), the same number the yes/no path gives.
        return 1.0 / (1.0 + math.exp(-x)) if x > -700 else 0.0

    def _score_rank_head(
        self, query: str, documents: Sequence[str], progress: ProgressFn | None
    ) -> list[float]:
        # RANK pooling reads whole sequences, so no prefix sharing: each pair is its own
        # sequence, several per batch.
        m, lib = self._model, self._model.lib
        prefix = self.prefix_tokens(query)
        seqs = [prefix + self.document_tokens(d) for d in documents]
        scores: list[float] = []
        done = 0
        while done < len(seqs):
            end, used = done, 0
            while end < len(seqs) and end - done < _MAX_SEQS:
                if end > done and used + len(seqs[end]) > self._batch_tokens:
                    break
                used += len(seqs[end])
                end += 1
            lib.llama_memory_clear(self._mem, True)
            self._batch.clear()
            for s, ids in enumerate(seqs[done:end]):
                for pos, tok in enumerate(ids[: self._batch_tokens]):
                    self._batch.add(tok, pos, s, output=True)
            t0 = time.perf_counter()
            _decode(m, self._ctx, self._batch)
            scores.extend(self._rank_score(s) for s in range(end - done))
            self._speed.add(min(used, self._batch_tokens), time.perf_counter() - t0)
            done = end
            if progress is not None and progress(done, len(seqs)):
                break
        return scores

    def close(self) -> None:
        if getattr(self, "_ctx", None):
            self._batch.free()
            self._model.lib.llama_free(self._ctx)
            self._ctx = None
        self._model.free()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()
