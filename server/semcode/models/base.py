"""The interfaces every model backend implements, and the per-model recipe ("profile").

The recipe (how queries and documents are formatted, which instruction the reranker is
given) belongs to the *model*, not to the runtime: the same Qwen3 GGUF must produce the
same vectors whether llama.cpp, MLX or a remote server runs it.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from semcode.kinds import BlendMethod, RerankRecipe

# Called with (done, total) as batches finish; returning True asks the backend to stop early.
ProgressFn = Callable[[int, int], bool | None]


class ModelError(RuntimeError):
    """A model could not be found, downloaded or loaded. The message is one line meant
    for the user (no traceback): the engine degrades instead of failing."""


class ModelMissing(ModelError):
    """The model is not on this machine: no such local file or folder, not in the hub
    cache (offline, or not downloaded yet), or the download failed. The registry reports
    it as `missing` (fetching it may help), not as a broken model."""


@dataclass(frozen=True)
class EmbeddingProfile:
    """How a particular embedding model wants its inputs.

    `query_template` receives `{task}` and `{query}`. Qwen3-Embedding wants
    "Instruct: {task}\\nQuery:{query}" (no space after "Query:"), documents verbatim, an
    EOS token at the end of every input, last-token pooling and L2 normalisation.
    """

    name: str
    query_template: str = "{query}"
    document_template: str = "{text}"
    task: str = (
        "Given a natural-language question about a codebase, retrieve the code that answers it"
    )
    pooling: str = "last"  # "last" | "mean" | "cls"
    append_eos: bool = True
    normalize: bool = True
    max_tokens: int = 512  # per document; longer inputs are truncated (the EOS kept)
    dims: int | None = None  # Matryoshka truncation; None keeps the model's width

    def format_query(self, query: str) -> str:
        """`query` as this model wants to embed it: the query template filled with the task
        instruction and the query."""
        return self.query_template.format(task=self.task, query=query)

    def format_document(self, text: str) -> str:
        """`text` (a chunk's embedding text) as this model wants to embed it: the document template
        filled in (most models take it verbatim)."""
        return self.document_template.format(text=text)

    def recipe_key(self, token_budget: int, dims: int) -> str:
        """The recipe's share of an embedder's cache identity: the same weights prepared
        another way (templates, pooling, EOS, truncation, width) give other vectors."""
        templates = hashlib.sha256(
            f"{self.query_template}\0{self.document_template}".encode()).hexdigest()[:8]
        return (f"{self.name}|{self.pooling}|eos={int(self.append_eos)}|t={token_budget}"
                f"|d={dims}|{templates}")


@dataclass(frozen=True)
class RerankerProfile:
    """How a cross-encoder reads a pair: its recipe (`RerankRecipe`), and per recipe
    its budgets: a yes/no model's prompt (the official Qwen3-Reranker template) and
    document tokens; a classifier's query and pair tokens."""

    name: str
    recipe: RerankRecipe = RerankRecipe.YES_NO
    instruction: str = (
        "Given a developer's question about a codebase, judge whether this code "
        "snippet is the code that answers it"
    )
    max_doc_tokens: int = 384
    # Scoring with the GGUF's rank head (pooling_type=RANK) instead of yes/no logits:
    # only GGUFs converted by recent llama.cpp carry one; detected, never assumed.
    use_rank_head: bool = False
    extra: dict[str, str] = field(default_factory=dict)
    # The classifier recipe: the query is cut first to `query_tokens`, then the document
    # so that the whole pair, [CLS] and both [SEP] included, is at most `max_tokens`.
    query_tokens: int = 64
    max_tokens: int = 256


@dataclass(frozen=True)
class RerankBlend:
    """How a reranker's scores are combined with the first stage's (search/reranking.py).

    `rrf` (the default): a weighted reciprocal rank fusion of the two orders of the
    reranked head, `weight / (k + reranker rank) + (1 - weight) / (k + first-stage
    rank)`. `interpolate`: `weight * reranker score + (1 - weight) * first-stage score`,
    each min-max normalised over the head (k unused). Either way `weight` is the
    reranker's share: 0 keeps the first stage's order (the reranker is not worth running),
    1 is its own order. A built-in model carries the method and values fitted on the
    bench's tune split in its `semcode.json` (`fitted`); any other model gets these
    defaults, an even share of the two orders, until someone measures it."""

    weight: float = 0.5
    k: float = 10.0
    fitted: bool = False
    method: BlendMethod = BlendMethod.RRF


@dataclass(frozen=True)
class ModelInfo:
    """What `semcode models` and `semcode status` show about a loaded model."""

    # Stable id used in cache keys: backend-independent where the weights are the same.
    identity: str
    backend: str  # "llama.cpp", "mlx", "remote"
    device: str  # "cpu", "metal", "cuda", "http://host:port"...
    path: str  # local file/folder or URL
    dims: int | None = None  # embedders only


class Embedder(ABC):
    """Turns texts into L2-normalised float32 vectors of a fixed width."""

    profile: EmbeddingProfile

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """What this embedder is (identity, backend, device, path, width); its `identity` keys the
        embedding cache."""

    @property
    @abstractmethod
    def dims(self) -> int:
        """The width of every vector this embedder returns (after any Matryoshka cut)."""

    @abstractmethod
    def embed_documents(
        self, texts: Sequence[str], progress: ProgressFn | None = None
    ) -> np.ndarray:
        """Shape (len(texts), dims), float32, each row L2-normalised.
        Implementations batch many texts per forward pass."""

    @abstractmethod
    def embed_query(self, query: str) -> np.ndarray:
        """Shape (dims,), float32, L2-normalised, with the profile's query instruction."""

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free native resources."""


class Reranker(ABC):
    """Scores (query, document) pairs; higher is more relevant: P(yes) in [0, 1] for the
    yes/no recipe, the head's raw logit for a classifier (`profile.recipe` says which;
    the engine combines either with the first stage by rank, so their scales never mix)."""

    profile: RerankerProfile
    # How its order is combined with the first stage's (a built-in model's fitted values).
    blend: RerankBlend = RerankBlend()

    @property
    @abstractmethod
    def info(self) -> ModelInfo:
        """What this reranker is (identity, backend, device, path)."""

    @abstractmethod
    def score(
        self, query: str, documents: Sequence[str], progress: ProgressFn | None = None
    ) -> list[float]:
        """One score per document, in order. Implementations share the query prefix
        across documents and trim each document to `profile.max_doc_tokens`."""

    def tokens_per_second(self) -> float | None:
        """Measured throughput so far (used to fit rerank depth into a latency budget)."""
        return None

    def close(self) -> None:  # noqa: B027 - optional hook
        """Free native resources."""
