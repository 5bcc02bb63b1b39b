"""What a search is asked and what it answers: the engine's request and result types,
shared by the first stage (engine.py), the second (reranking.py) and every adapter (CLI,
LSP, MCP import them through engine.py). Plain data, no behaviour beyond validation.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from semcode.chunks import Chunk
from semcode.kinds import ContentKind, SearchMode
from semcode.search.paths import PathGlobError, compile_globs

# The search modes and content kinds as tuples for membership checks and messages (their
# home is semcode/kinds.py); the one home of the query length cap.
MODES: tuple[SearchMode, ...] = tuple(SearchMode)
CONTENT_KINDS: tuple[ContentKind, ...] = tuple(ContentKind)
MAX_QUERY_CHARS = 10_000


class SearchError(ValueError):
    """A request the engine cannot answer as asked (bad mode, query too long…)."""


@dataclass(frozen=True)
class SearchRequest:
    """One search: the query, how many hits, the retrieval mode and the filters (languages, path
    globs, symbol kinds, content kinds)."""

    query: str
    limit: int = 20
    mode: str = SearchMode.HYBRID
    languages: tuple[str, ...] = ()
    paths: tuple[str, ...] = ()  # gitignore-style globs on workspace-relative paths
    kinds: tuple[int, ...] = ()  # SymbolKind values
    contents: tuple[str, ...] = ()  # content kinds (chunking/content.py); empty = all
    rerank: bool | None = None  # None: the `rerank` setting

    def validate(self) -> None:
        """Raise SearchError naming the first bad field (empty or too long query, unknown mode or
        content kind, limit out of 1..1000, a bad path glob: `paths.PathGlobError`)."""
        if not self.query.strip():
            raise SearchError("query is empty")
        if len(self.query) > MAX_QUERY_CHARS:
            raise SearchError(f"query is longer than {MAX_QUERY_CHARS} characters")
        if self.mode not in MODES:
            raise SearchError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if not 1 <= self.limit <= 1000:
            raise SearchError("limit must be between 1 and 1000")
        unknown = [c for c in self.contents if c not in CONTENT_KINDS]
        if unknown:
            raise SearchError(f"unknown content kind {unknown[0]!r}; one of "
                              f"{', '.join(CONTENT_KINDS)}")
        try:  # valid, bounded, compiled once (cached in search/paths.py)
            compile_globs(self.paths)
        except PathGlobError as exc:
            raise SearchError(str(exc)) from None


@dataclass(frozen=True)
class StageScore:
    """A hit's rank and score in one stage (lexical, dense, fused, ranking, rerank)."""

    rank: int  # 1-based
    score: float
    # The ranking stage only: the priors and boosts that moved the hit (search/ranking.py).
    factors: dict[str, float] | None = None


@dataclass(frozen=True)
class Hit:
    """One search result: the chunk, the score the list is ordered by, and its score in
    each stage."""

    chunk_id: int
    chunk: Chunk
    score: float  # the score the list is ordered by (combined when reranked, else ranking)
    stages: dict[str, StageScore]


@dataclass
class SearchResponse:
    """The hits of a search, whether they were reranked, the mode actually used, notices about
    degraded stages and per-stage timings."""

    hits: list[Hit]
    reranked: bool
    mode: str
    notices: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)
    # Fused candidates beyond `hits`, kept for the reranker (not shown to users).
    candidates: list[Hit] = field(default_factory=list, repr=False)


@dataclass
class EmbedReport:
    """What one `embed_pending` call did: chunks embedded, chunks still pending, time, and why it
    stopped early if it did."""

    embedded: int = 0  # chunks embedded by the model in this call
    pending: int = 0  # still without a vector afterwards
    seconds: float = 0.0
    cancelled: bool = False
    model: str = ""
    error: str = ""  # why embedding stopped early, if a model call failed
