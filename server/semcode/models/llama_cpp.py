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
  sequence's last token (`llama_get_logits_ith`); score = P(yes) over the two;
* classifier reranking (a converted BertForSequenceClassification): each pair
  `[CLS] query [SEP] document [SEP]` is its own sequence (an encoder attends both ways,
  so no prefix can be shared), several per decode, read through rank pooling
  (`llama_get_embeddings_seq`: the head's raw logit). `open_reranker` picks the recipe
  from the file's metadata.

The C API plumbing (loading, the log hook, contexts, batches) is in `llama_native.py`;
what all backends share (throughput, truncation, the yes/no score, packing) in
`common.py`.

Thread-safety: an instance owns one llama.cpp context and must be used by one thread at
a time (the search engine serialises calls). Separate instances are independent.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import replace

import numpy as np

from semcode.kinds import RerankRecipe

from .base import (
    EmbeddingProfile,
    ModelError,
    ModelInfo,
    ProgressFn,
    RerankerProfile,
)
from .common import (
    CHARS_PER_TOKEN_CAP,
    MAX_SEQS,
    PairClassifier,
    Throughput,
    TokenEmbedder,
    YesNoReranker,
    embedding_input,
    normalize_rows,
    output_dims,
    pack,
    sigmoid,
    yes_probability,
)
from .llama_native import Batch, LlamaModel, NativePointer, decode
from .profiles import (
    classifier_labels_key,
    detect_embedding_profile,
    detect_reranker_profile,
    gguf_pooling,
)

BACKEND = "llama.cpp"

# Names bench/speed/speed.py uses from here (the loader now lives in llama_native).
_Batch, _decode = Batch, decode


class _OwnsContext:
    """Frees the llama.cpp context, batch and model an embedder or reranker holds."""

    _model: LlamaModel
    _ctx: NativePointer  # 0 once freed
    _batch: Batch

    def close(self) -> None:
        """Free the context, the batch and the model (idempotent; also run on garbage
        collection)."""
        if getattr(self, "_ctx", None):
            self._batch.free()
            self._model.lib.llama_free(self._ctx)
            self._ctx = 0
        self._model.free()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


# --------------------------------------------------------------------------- embedder


class LlamaCppEmbedder(_OwnsContext, TokenEmbedder):
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
        self._model = LlamaModel(path, n_gpu_layers, verbose)
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
                n_seq_max=MAX_SEQS,
                n_threads=n_threads,
                embeddings=True,
                pooling=self.profile.pooling,
            )
            self._mem = m.lib.llama_get_memory(self._ctx)
            self._batch = Batch(m.lib, self._batch_tokens)
        except BaseException:
            self._model.free()
            raise
        self._dims = output_dims(self.profile, m.n_embd)
        self._speed = Throughput()
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

    def tokenize(self, text: str) -> list[int]:
        """The exact token ids embedded for `text` (already formatted): special tokens
        parsed, the tokenizer's own BOS/EOS, the profile's EOS, truncated to the budget."""
        m = self._model
        ids = m.tokenize(text[: self._budget * CHARS_PER_TOKEN_CAP], add_special=True)
        # Keep the tokenizer's or our trailing EOS/SEP: last-token pooling reads it.
        return embedding_input(ids, eos=m.eos, append_eos=self.profile.append_eos,
                               keep=(m.eos, m.sep), budget=self._budget)

    def _embed(self, seqs: list[list[int]], progress: ProgressFn | None) -> np.ndarray:
        m, lib = self._model, self._model.lib
        out = np.zeros((len(seqs), self._dims), dtype=np.float32)
        lengths = [len(s) for s in seqs]
        done = 0
        while done < len(seqs):
            # Pack whole documents until the batch (tokens or sequence ids) is full.
            end, used = pack(lengths, done, self._batch_tokens)
            self._batch.clear()
            for s, ids in enumerate(seqs[done:end]):
                for pos, tok in enumerate(ids):
                    self._batch.add(tok, pos, s, output=True)
            lib.llama_memory_clear(self._mem, True)
            t0 = time.perf_counter()
            decode(m, self._ctx, self._batch)
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
            normalize_rows(out)
        return out


# --------------------------------------------------------------------------- reranker


class LlamaCppReranker(_OwnsContext, YesNoReranker):
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
        model: LlamaModel | None = None,
    ) -> None:
        self._model = model or LlamaModel(path, n_gpu_layers, verbose)
        try:
            m = self._model
            profile = profile or detect_reranker_profile(m.metadata, m.path.name)
            if profile.recipe != RerankRecipe.YES_NO:
                raise ModelError(f"{m.path.name} is a {profile.recipe} reranker, not yes/no "
                                 f"(load it with open_reranker)")
            if max_doc_tokens is not None:  # a settings override of the profile's budget
                profile = replace(profile, max_doc_tokens=max_doc_tokens)
            declared = gguf_pooling(m.metadata)
            if declared in ("mean", "cls", "last"):
                raise ModelError(
                    f"{m.path.name} is an embedding model (pooling {declared}), not a reranker"
                )
            n_cls_out = int(m.lib.llama_model_n_cls_out(m.ptr))
            self._rank_head = bool(profile.use_rank_head and (declared == "rank" or n_cls_out))
            self._init_prompt(profile, batch_tokens, m.path.name)
            # Room for a prefix as large as a batch on top of a full batch of documents.
            n_ctx = min(2 * self._batch_tokens, max(m.n_ctx_train, self._batch_tokens))
            self._n_ctx = n_ctx
            self._ctx = m.new_context(
                n_ctx=n_ctx,
                n_batch=self._batch_tokens,
                n_seq_max=MAX_SEQS + 1,
                n_threads=n_threads,
                embeddings=self._rank_head,
                pooling="rank" if self._rank_head else "none",
            )
            self._mem = m.lib.llama_get_memory(self._ctx)
            self._batch = Batch(m.lib, self._batch_tokens)
        except BaseException:
            self._model.free()
            raise
        self._speed = Throughput()
        self._info = ModelInfo(
            identity=f"gguf:{m.identity[:32]}:{self.profile.name}",
            backend=BACKEND,
            device=m.device,
            path=str(m.path),
        )

    @property
    def uses_rank_head(self) -> bool:
        """Whether scores come from the GGUF's rank head (pooling RANK) instead of the yes/no
        logits; only recent conversions carry one, and the profile must allow it."""
        return self._rank_head

    # -- prompt pieces

    def _encode(self, text: str, add_special: bool) -> list[int]:
        return self._model.tokenize(text, add_special)

    def prefix_tokens(self, query: str) -> list[int]:
        """The prompt up to the document, tokenised (BOS included). It must fit one batch and leave
        a full batch of documents room in the context, so an over-long query is halved (by
        characters, keeping the template) until it does."""
        m = self._model
        # Keep the prefix within one batch and leave a full document's room in the
        # context: an over-long query is cut (by characters, so the template survives).
        limit = min(self._batch_tokens, self._n_ctx - self._batch_tokens)
        while True:
            ids = m.tokenize(self.prefix_text(query), True)
            if len(ids) <= limit or not query:
                return ids[:limit]
            query = query[: len(query) // 2]

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
        lengths = [len(d) for d in docs]
        done = 0
        while done < len(docs):
            end, used = pack(lengths, done, room)
            self._batch.clear()
            last: list[int] = []
            for s, ids in enumerate(docs[done:end], start=1):
                # Sequence s sees the prefix's KV cells as its own positions 0..P-1.
                lib.llama_memory_seq_cp(self._mem, 0, s, -1, -1)
                for j, tok in enumerate(ids):
                    i = self._batch.add(tok, len(prefix) + j, s, output=j == len(ids) - 1)
                last.append(i)
            t0 = time.perf_counter()
            decode(m, self._ctx, self._batch)
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
            decode(self._model, self._ctx, self._batch)
        return i

    def _yes_probability(self, batch_index: int) -> float:
        lib = self._model.lib
        logits = lib.llama_get_logits_ith(self._ctx, batch_index)
        if not logits:
            raise ModelError(f"{self._model.path.name}: no logits at the answer position")
        return yes_probability(logits[self._yes], logits[self._no])

    def _rank_score(self, seq: int) -> float:
        ptr = self._model.lib.llama_get_embeddings_seq(self._ctx, seq)
        if not ptr:
            raise ModelError(f"{self._model.path.name}: the rank head gave no score")
        # Converted Qwen3 rerankers store yes-minus-no as a one-output head: sigmoid of it
        # is P(yes), the same number the yes/no path gives.
        return sigmoid(float(ptr[0]))

    def _score_rank_head(
        self, query: str, documents: Sequence[str], progress: ProgressFn | None
    ) -> list[float]:
        # RANK pooling reads whole sequences, so no prefix sharing: each pair is its own
        # sequence, several per batch.
        m, lib = self._model, self._model.lib
        prefix = self.prefix_tokens(query)
        seqs = [prefix + self.document_tokens(d) for d in documents]
        scores: list[float] = []
        lengths = [len(s) for s in seqs]
        done = 0
        while done < len(seqs):
            end, used = pack(lengths, done, self._batch_tokens)
            lib.llama_memory_clear(self._mem, True)
            self._batch.clear()
            for s, ids in enumerate(seqs[done:end]):
                for pos, tok in enumerate(ids[: self._batch_tokens]):
                    self._batch.add(tok, pos, s, output=True)
            t0 = time.perf_counter()
            decode(m, self._ctx, self._batch)
            scores.extend(self._rank_score(s) for s in range(end - done))
            self._speed.add(min(used, self._batch_tokens), time.perf_counter() - t0)
            done = end
            if progress is not None and progress(done, len(seqs)):
                break
        return scores


# --------------------------------------------------------------------------- classifier

# Tokens decoded at once by a classifier: llama.cpp attends across every token of a
# micro-batch (masked per sequence), so packing many pairs costs more attention than it
# saves in overhead; two pairs of 256 tokens measured as fast as one, 1024 slower.
CLASSIFIER_BATCH_TOKENS = 512


class LlamaCppClassifier(_OwnsContext, PairClassifier):
    """A BERT-style cross-encoder (a sequence classifier with one output, converted by
    llama.cpp) on llama.cpp: every pair `[CLS] query [SEP] document [SEP]` is its own
    sequence, several per decode, read through rank pooling; the score is the head's raw
    logit. `max_tokens` caps each pair (default: the profile's, within the model's
    context); `max_doc_tokens` the document. Use from one thread at a time."""

    def __init__(
        self,
        path: str | os.PathLike[str],
        profile: RerankerProfile | None = None,
        n_threads: int = 0,
        n_gpu_layers: int = -1,
        batch_tokens: int = CLASSIFIER_BATCH_TOKENS,
        verbose: bool = False,
        max_doc_tokens: int | None = None,
        max_tokens: int | None = None,
        model: LlamaModel | None = None,
    ) -> None:
        self._model = model or LlamaModel(path, n_gpu_layers, verbose)
        try:
            m = self._model
            self.profile = profile or detect_reranker_profile(m.metadata, m.path.name)
            self._check_head(self.profile.recipe)
            self._max_tokens = max(8, min(max_tokens or self.profile.max_tokens, m.n_ctx_train))
            self._doc_cap = max(1, max_doc_tokens or self._max_tokens)
            self._cls, self._sep = self._special_ids()
            self._batch_tokens = max(batch_tokens, self._max_tokens)
            self._ctx = m.new_context(n_ctx=self._batch_tokens, n_batch=self._batch_tokens,
                                      n_seq_max=MAX_SEQS, n_threads=n_threads,
                                      embeddings=True, pooling="rank")
            self._mem = m.lib.llama_get_memory(self._ctx)
            self._batch = Batch(m.lib, self._batch_tokens)
        except BaseException:
            self._model.free()
            raise
        self._speed = Throughput()
        self._info = ModelInfo(
            identity=f"gguf:{m.identity[:32]}:{self.profile.name}:t={self._max_tokens}",
            backend=BACKEND, device=m.device, path=str(m.path))

    def _check_head(self, recipe: RerankRecipe) -> None:
        """A classifier must be one: the classifier recipe, one output."""
        m = self._model
        if recipe != RerankRecipe.CLASSIFIER:
            raise ModelError(f"{m.path.name} is a {recipe} reranker, not a classifier")
        outputs = int(m.lib.llama_model_n_cls_out(m.ptr))
        if outputs != 1:
            labels = m.metadata.get(classifier_labels_key(str(m.arch)), "")
            raise ModelError(f"{m.path.name}: the classification head has {outputs} outputs "
                             f"{labels}; a reranker needs one (a relevance logit)")

    def _special_ids(self) -> tuple[int, int]:
        """[CLS] and [SEP]: the tokenizer's BOS (BERT's [CLS]) and its separator."""
        m = self._model
        cls_id = int(m.lib.llama_vocab_bos(m.vocab))
        sep_id = m.sep if m.sep >= 0 else m.eos
        if cls_id < 0 or sep_id < 0 or max(cls_id, sep_id) >= m.n_vocab:
            raise ModelError(f"{m.path.name}: the vocabulary has no [CLS]/[SEP] tokens "
                             f"(bos {cls_id}, sep {sep_id})")
        return cls_id, sep_id

    def _encode(self, text: str) -> list[int]:
        return self._model.tokenize(text, False)

    @property
    def max_tokens(self) -> int:
        """The most tokens one pair is given (specials included)."""
        return self._max_tokens

    def score(
        self, query: str, documents: Sequence[str], progress: ProgressFn | None = None
    ) -> list[float]:
        """One raw logit per document, in order. If `progress` returns True, scoring stops
        and the scores finished so far are returned (a shorter list)."""
        if not documents:
            return []
        q = self.query_ids(query)
        seqs = [self.pair_tokens(q, d) for d in documents]
        lengths = [len(p) for p in seqs]
        scores: list[float] = []
        done = 0
        while done < len(seqs):
            end, used = pack(lengths, done, self._batch_tokens)
            scores.extend(self._decode_pairs(seqs[done:end]))
            done = end
            if progress is not None and progress(done, len(seqs)):
                break
        return scores

    def _decode_pairs(self, pairs: Sequence[list[int]]) -> list[float]:
        """The logits of pairs that fit one batch, each its own sequence from position 0."""
        m, lib = self._model, self._model.lib
        self._batch.clear()
        for s, ids in enumerate(pairs):
            for pos, tok in enumerate(ids):
                self._batch.add(tok, pos, s, output=True)
        lib.llama_memory_clear(self._mem, True)
        t0 = time.perf_counter()
        decode(m, self._ctx, self._batch)
        out = []
        for s in range(len(pairs)):
            ptr = lib.llama_get_embeddings_seq(self._ctx, s)
            if not ptr:
                raise ModelError(f"{m.path.name}: the classification head gave no score")
            out.append(float(ptr[0]))
        self._speed.add(self._batch.n, time.perf_counter() - t0)
        return out


def open_reranker(
    path: str | os.PathLike[str],
    n_threads: int = 0,
    n_gpu_layers: int = -1,
    verbose: bool = False,
    max_doc_tokens: int | None = None,
    profile: RerankerProfile | None = None,
    max_tokens: int | None = None,
) -> LlamaCppReranker | LlamaCppClassifier:
    """The reranker a GGUF is, with the recipe its metadata declares. A `profile` given
    (the built-in model's own budgets) must have that recipe: a ModelError otherwise.
    `max_tokens` overrides a classifier's pair budget. The file is loaded once."""
    model = LlamaModel(path, n_gpu_layers, verbose)
    try:
        chosen = detect_reranker_profile(model.metadata, model.path.name)
        if profile is not None and profile.recipe != chosen.recipe:
            raise ModelError(f"{model.path.name} is a {chosen.recipe} reranker, but its "
                             f"profile {profile.name!r} is for a {profile.recipe} one")
        chosen = profile or chosen
    except BaseException:
        model.free()
        raise
    if chosen.recipe == RerankRecipe.CLASSIFIER:
        return LlamaCppClassifier(path, chosen, n_threads=n_threads,
                                  max_doc_tokens=max_doc_tokens, max_tokens=max_tokens,
                                  model=model)
    return LlamaCppReranker(path, chosen, n_threads=n_threads, max_doc_tokens=max_doc_tokens,
                            model=model)
