"""What every model backend shares, written once: throughput measurement, input
truncation, the yes/no score, L2 normalisation, packing sequences into batches, and the
parts of an embedder or a yes/no reranker that do not depend on the runtime.

The backends (`llama_cpp`, `mlx`, `remote`) keep only what their runtime does
differently: loading weights, tokenising, running a forward pass, talking HTTP.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from collections.abc import Callable, Sequence

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
from .profiles import RerankTemplate, reranker_template

# Before tokenising, cut absurdly long texts: tokens are never shorter than one byte and
# code averages 3-4 characters a token, so this never removes text that would survive
# truncation, and a 50 MB minified file does not get tokenised (or sent over HTTP) whole.
CHARS_PER_TOKEN_CAP = 32

# Sequences per batch. llama.cpp caps n_seq_max (LLAMA_MAX_SEQ = 256); more than a few
# dozen short documents per batch buys nothing on CPU.
MAX_SEQS = 64


class Throughput:
    """Tokens processed per second of model time, over an instance's lifetime (the
    engine fits rerank depth into a latency budget with it)."""

    def __init__(self) -> None:
        self.tokens: float = 0
        self.seconds = 0.0

    def add(self, tokens: float, seconds: float) -> None:
        """Count `tokens` processed in `seconds` of model time."""
        self.tokens += tokens
        self.seconds += seconds

    def rate(self) -> float | None:
        """Tokens per second so far; None before anything was measured."""
        return self.tokens / self.seconds if self.seconds > 0 and self.tokens else None


def truncate(tokens: list[int], budget: int, keep_last: bool) -> list[int]:
    """Cut to `budget` tokens; with keep_last, the final (EOS/SEP) token survives."""
    if len(tokens) <= budget:
        return tokens
    if keep_last:
        return tokens[: budget - 1] + tokens[-1:]
    return tokens[:budget]


def embedding_input(ids: list[int], *, eos: int | None, append_eos: bool,
                    keep: Sequence[int | None], budget: int) -> list[int]:
    """An embedder's final token ids: the profile's EOS appended when it wants one, cut
    to `budget` keeping a trailing token listed in `keep` (last-token pooling reads it);
    never empty."""
    if append_eos and eos is not None and (not ids or ids[-1] != eos):
        ids.append(eos)
    keep_last = bool(ids) and ids[-1] in keep
    return truncate(ids, budget, keep_last) or [eos if eos is not None else 0]


def yes_probability(yes_logit: float, no_logit: float) -> float:
    """P("yes") of a yes/no answer: the softmax over the two logits, which is the sigmoid
    of their difference; computed in float64 so that a confident model cannot overflow."""
    diff = float(no_logit) - float(yes_logit)
    return 1.0 / (1.0 + math.exp(diff)) if diff < 700 else 0.0


def sigmoid(x: float) -> float:
    """A logit as a probability (a rank head's yes-minus-no, a server's raw score)."""
    return yes_probability(x, 0.0)


def normalize_rows(mat: np.ndarray) -> np.ndarray:
    """L2-normalise each row in place (a zero row stays zero); returns `mat`."""
    mat /= np.maximum(np.linalg.norm(mat, axis=1, keepdims=True), 1e-12)
    return mat


def output_dims(profile: EmbeddingProfile, width: int) -> int:
    """The vector width an embedder returns: the profile's Matryoshka cut, if any."""
    return min(profile.dims, width) if profile.dims else width


def pack(lengths: Sequence[int], start: int, budget: int,
         max_seqs: int = MAX_SEQS) -> tuple[int, int]:
    """Whole sequences from `start` that fit one batch of `budget` tokens and `max_seqs`
    sequences (at least one, whatever its length): returns (end, tokens used)."""
    end, used = start, 0
    while end < len(lengths) and end - start < max_seqs:
        if end > start and used + lengths[end] > budget:
            break
        used += lengths[end]
        end += 1
    return end, used


def single_token(encode: Callable[[str], list[int]], word: str, model_name: str) -> int:
    """The id of an answer word that must be exactly one token."""
    ids = encode(word)
    if len(ids) != 1:
        raise ModelError(f"{model_name}: the answer word {word!r} is not a single token ({ids})")
    return ids[0]


class DescribedEmbedder(Embedder):
    """An embedder that keeps its ModelInfo and width in `_info` and `_dims`, set by the
    subclass."""

    _info: ModelInfo
    _dims: int

    @property
    def info(self) -> ModelInfo:
        """The ModelInfo the subclass stored in `_info`."""
        return self._info

    @property
    def dims(self) -> int:
        """The vector width the subclass stored in `_dims`."""
        return self._dims


class MeasuredEmbedder(DescribedEmbedder):
    """A DescribedEmbedder that also keeps its throughput in `_speed` (a Throughput)."""

    _speed: Throughput

    def tokens_per_second(self) -> float | None:
        """Measured tokens/s of embedding so far."""
        return self._speed.rate()


class MeasuredReranker(Reranker):
    """A reranker that keeps its ModelInfo and throughput in `_info` and `_speed`."""

    _info: ModelInfo
    _speed: Throughput

    @property
    def info(self) -> ModelInfo:
        """The ModelInfo the subclass stored in `_info`."""
        return self._info

    def tokens_per_second(self) -> float | None:
        """Measured tokens/s of scoring so far."""
        return self._speed.rate()


class TokenEmbedder(MeasuredEmbedder):
    """An in-process embedder: format with the profile, tokenise (`tokenize`), run the
    model over token ids (`_embed`). Subclasses set `profile`, `_info`, `_dims` and
    `_speed`."""

    @abstractmethod
    def tokenize(self, text: str) -> list[int]:
        """The exact token ids embedded for `text` (already formatted)."""

    @abstractmethod
    def _embed(self, seqs: list[list[int]], progress: ProgressFn | None) -> np.ndarray:
        """One row per token sequence, in order (fewer if `progress` asked to stop)."""

    def embed_documents(
        self, texts: Sequence[str], progress: ProgressFn | None = None
    ) -> np.ndarray:
        """One row per text, in order. If `progress` returns True the rows finished so far
        are returned (fewer than len(texts))."""
        seqs = [self.tokenize(self.profile.format_document(t)) for t in texts]
        return self._embed(seqs, progress)

    def embed_query(self, query: str) -> np.ndarray:
        """The query formatted with the profile's instruction, tokenised and embedded: one row,
        shape (dims,)."""
        vecs: np.ndarray = self._embed([self.tokenize(self.profile.format_query(query))], None)
        return vecs[0]


class YesNoReranker(MeasuredReranker):
    """An in-process yes/no cross-encoder: the prompt of the profile's template split in
    a query prefix (shared by all documents), a document part trimmed to the budget, and
    a suffix that opens the answer; the score is P("yes") against "no".

    Subclasses call `_init_prompt` once the model can tokenise, and implement `_encode`."""

    _template: RerankTemplate
    _yes: int
    _no: int
    _suffix: list[int]
    _doc_budget: int
    _batch_tokens: int

    @abstractmethod
    def _encode(self, text: str, add_special: bool) -> list[int]:
        """Token ids of `text`; add_special adds the tokenizer's own BOS etc."""

    def _init_prompt(self, profile: RerankerProfile, batch_tokens: int, model_name: str) -> None:
        """Template, answer tokens, suffix and budgets of `profile`."""
        self.profile = profile
        self._template = reranker_template(profile)
        self._yes = single_token(lambda w: self._encode(w, False), self._template.yes, model_name)
        self._no = single_token(lambda w: self._encode(w, False), self._template.no, model_name)
        self._suffix = self._encode(self._template.suffix, False)
        self._doc_budget = max(1, profile.max_doc_tokens)
        # The batch must hold at least one whole document with its suffix.
        self._batch_tokens = max(batch_tokens, self._doc_budget + len(self._suffix))

    def prefix_text(self, query: str) -> str:
        """The prompt up to the document: system turn, instruction, query."""
        return self._template.format_prefix(self.profile.instruction, query)

    def document_tokens(self, doc: str) -> list[int]:
        """The document part (leading space included), trimmed, then the suffix."""
        text = self._template.format_document(doc[: self._doc_budget * CHARS_PER_TOKEN_CAP])
        return self._encode(text, False)[: self._doc_budget] + self._suffix

    def full_prompt_tokens(self, query: str, doc: str) -> list[int]:
        """The whole prompt tokenised in one piece (reference for tests and debugging)."""
        t = self._template
        return self._encode(self.prefix_text(query) + t.format_document(doc) + t.suffix, True)


class PairClassifier(MeasuredReranker):
    """The runtime-free half of a classifier cross-encoder: each (query, document) pair
    as one sequence `[CLS] query [SEP] document [SEP]`, the query cut first to the
    profile's `query_tokens`, then the document so that the pair fits `max_tokens`.

    Subclasses set `profile`, `_cls`, `_sep` and `_max_tokens`, and implement `_encode`
    (token ids without special tokens)."""

    _cls: int
    _sep: int
    _max_tokens: int  # per pair, specials included
    _doc_cap: int  # a settings cap on the document's tokens (`rerank_doc_tokens`)

    @abstractmethod
    def _encode(self, text: str) -> list[int]:
        """Token ids of `text`, without the tokenizer's special tokens."""

    def query_ids(self, query: str) -> list[int]:
        """The query's tokens as every pair carries them: cut to `query_tokens`, and to
        what leaves the document at least one token."""
        budget = max(1, min(self.profile.query_tokens, self._max_tokens - 4))
        return self._encode(query[: budget * CHARS_PER_TOKEN_CAP])[:budget]

    def pair_tokens(self, query_ids: Sequence[int], document: str) -> list[int]:
        """One pair's token ids: `[CLS] query [SEP] document [SEP]`, the document cut so
        that the pair is at most `max_tokens` (and the document at most `_doc_cap`)."""
        room = max(1, min(self._max_tokens - len(query_ids) - 3, self._doc_cap))
        doc = self._encode(document[: room * CHARS_PER_TOKEN_CAP])[:room]
        return [self._cls, *query_ids, self._sep, *doc, self._sep]
