"""The engine: one workspace's index plus the models, behind the API that the CLI and
the LSP server call. It knows no editor and no model runtime.

    query ─► BM25 top-N ──┐
          ─► dense top-N ─┴► RRF ─► ranking ─► first-stage hits  (search)
                                       └► cross-encoder on the top few ─► reranked (rerank)

Thread-safety: `search`, `rerank`, `related` and the write methods may be called from
different threads. Index mutations are serialised by the indexer's lock; each model is
used by one thread at a time (ModelSet locks), and queries have their own embedder
instance so they never wait behind background embedding.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from semcode.config import Settings
from semcode.index.indexer import Indexer, IndexStatus, Progress, ProgressFn, SyncReport
from semcode.index.tokenizer import query_tokens
from semcode.kinds import RerankRecipe, Role, SearchMode, Stage
from semcode.models.base import ModelError, RerankBlend, Reranker
from semcode.models.registry import QUERY_EMBEDDER, ModelSet
from semcode.search import ranking
from semcode.search.fusion import intent_weights, reciprocal_rank_fusion
from semcode.search.intent import classify_query
from semcode.search.paths import compile_globs
from semcode.search.reranking import (
    RERANK_MIN,
    RERANK_PROBE,
    apply_rerank_scores,
    fit_depth,
    rerank_text,
    reranks,
)
from semcode.search.results import (
    CONTENT_KINDS,
    MAX_QUERY_CHARS,
    MODES,
    EmbedReport,
    Hit,
    SearchError,
    SearchRequest,
    SearchResponse,
    StageScore,
)

log = logging.getLogger(__name__)

EMBED_BATCH_CHUNKS = 16  # small batches keep cancellation and budgets responsive
# The budget of one background `embed_pending` call in the language server and the MCP
# server: between calls they refresh what goes first (open, recently edited files).
EMBED_SLICE_S = 5.0

# The request and result types are part of the engine's API (the CLI, LSP and MCP import
# them from here); they live in results.py so that the second stage can use them too.
__all__ = ["EMBED_SLICE_S", "Engine", "SearchRequest", "SearchResponse", "Hit", "StageScore",
           "Progress", "SyncReport", "EmbedReport", "SearchError", "MODES", "CONTENT_KINDS",
           "MAX_QUERY_CHARS"]


class Engine:
    """The facade every adapter (CLI, LSP, MCP, evaluation) calls: index updates, two-phase search,
    related code and status over one workspace's index and its models."""

    def __init__(self, indexer: Indexer, models: ModelSet) -> None:
        self.indexer = indexer
        self.models = models
        self.root = indexer.root
        self.settings = indexer.settings
        self._embed_lock = threading.Lock()  # one embedding pass at a time

    # Settings that change what is indexed; any other setting applies to the next search.
    INDEX_SETTINGS = ("max_file_bytes", "exclude", "include_hidden", "max_chunk_lines",
                      "chunk_overlap_lines", "window_lines", "index_dir", "bm25_fields")

    def needs_reopen(self, settings: Settings) -> bool:
        """Whether `settings` change what is indexed (then the engine must be reopened, not
        updated)."""
        return any(getattr(self.settings, k) != getattr(settings, k) for k in self.INDEX_SETTINGS)

    def update_settings(self, settings: Settings) -> None:
        """Apply settings that leave the index as it is (fusion, reranking, models...).
        Model changes reach the index through `_attach_embedder` on the next use."""
        if self.needs_reopen(settings):
            raise ValueError("these settings change the index: reopen the engine")
        self.settings = settings

    @classmethod
    def open(cls, root: Path, settings: Settings, models: ModelSet | None = None,
             notice: Callable[[str], None] | None = None) -> Engine:
        """Open (or create) the persisted index of `root`. Fast: no scan, no model load.
        `notice` receives the index's one-line notices (waiting for another writer)."""
        return cls(Indexer(root, settings, notice=notice), models or ModelSet(settings))

    # ================================================================ writing
    def sync(self, progress: ProgressFn | None = None,
             cancel: threading.Event | None = None) -> SyncReport:
        """Bring the index up to date with the workspace on disk (incremental)."""
        return self.indexer.sync(progress, cancel)

    def update_file(self, rel_path: str, text: str) -> list[str]:
        """Index an editor buffer's text for `rel_path`; returns warnings (e.g. why it was not
        indexed)."""
        return self.indexer.update_text(rel_path, text)

    def remove_file(self, rel_path: str) -> None:
        """Drop a file's chunks from the index."""
        self.indexer.remove_file(rel_path)

    def rename_file(self, old_rel: str, new_rel: str) -> None:
        """Move a file's chunks to its new path (re-read from disk; the embedding cache answers)."""
        # Re-reading the new path is enough: its chunks hash the same, so the embedding
        # cache answers and nothing is embedded again.
        self.indexer.remove_file(old_rel)
        self.indexer.revert_file(new_rel)

    def revert_file(self, rel_path: str) -> None:
        """Index the file's text on disk again (a closed buffer, a file changed on disk)."""
        self.indexer.revert_file(rel_path)

    def is_included(self, rel_path: str) -> bool:
        """Whether the workspace rules index this relative path."""
        return self.indexer.workspace.is_included(rel_path)

    def rel_path(self, path: Path | str) -> str | None:
        """The workspace-relative path of `path`, or None when it is outside the workspace."""
        return self.indexer.workspace.rel_path(path)

    def reset(self) -> None:
        """Forget the whole index (the next sync rebuilds it)."""
        self.indexer.reset()

    def _attach_embedder(self) -> bool:
        identity = self.models.embedder_identity()
        if identity is None:
            self.indexer.detach_model()
            return False
        self.indexer.attach_model(*identity)
        key = self.models.embedder_key()
        if key is not None:  # so that `status` can count its vectors without loading it
            self.indexer.remember_model(key, identity[0])
        return True

    def embed_pending(self, progress: ProgressFn | None = None,
                      cancel: threading.Event | None = None, budget_s: float | None = None,
                      priority: Sequence[str] = ()) -> EmbedReport:
        """Embed chunks that have no vector yet (the cache answers first), in small
        batches, priority paths first; stops on `cancel` or after `budget_s` seconds."""
        started = time.perf_counter()
        report = EmbedReport()
        with self._embed_lock:
            if not self._attach_embedder():
                return report
            # The budget is for embedding: loading the model (on a first run, its download)
            # must not use it up before one chunk is embedded.
            budget_from = time.perf_counter()
            embedder = self.models.embedder()
            assert embedder is not None and self.indexer.model_id is not None
            model_id = self.indexer.model_id
            report.model = model_id
            pending = self.indexer.pending_embeddings(priority)
            total = len(pending)
            # A fast embedder (static: ~0.1 s per 512 chunks) asks for bigger batches: per
            # batch, the store and the vector index cost more than its embedding.
            batch = max(EMBED_BATCH_CHUNKS, int(getattr(embedder, "batch_chunks", 0)))
            for start in range(0, total, batch):
                if cancel is not None and cancel.is_set():
                    report.cancelled = True
                    break
                if budget_s is not None and time.perf_counter() - budget_from > budget_s:
                    break
                ids = pending[start:start + batch]
                chunks = self.indexer.chunks(ids)  # some may be gone since
                ids = [i for i in ids if i in chunks]
                if not ids:
                    continue
                hashes = [chunks[i].content_hash() for i in ids]
                # Identical chunks (copied code, license headers) are embedded once: the
                # first copy's vector is in the cache by the time a later batch needs it.
                known = self.indexer.store.embeddings.cached_vectors(model_id, hashes)
                todo: dict[str, str] = {}  # hash -> text, each content once
                for i, h in zip(ids, hashes, strict=True):
                    if h not in known:
                        todo.setdefault(h, chunks[i].embedding_text())
                computed: Sequence[np.ndarray] = []
                try:
                    with self.models.using(Role.EMBEDDER, embedder):
                        if todo:
                            computed = list(embedder.embed_documents(list(todo.values())))
                except ModelError as exc:  # the rest stays pending for the next pass
                    report.error = str(exc)
                    log.warning("embedding stopped: %s", exc)
                    break
                known.update(zip(todo, computed, strict=True))
                vectors = np.stack([known[h] for h in hashes])
                self.indexer.add_vectors(model_id, ids, hashes, vectors)
                report.embedded += len(todo)
                if progress:
                    done = min(start + len(ids), total)
                    progress(Progress("embed", done, total, f"embedding {done}/{total} chunks"))
        report.pending = self.indexer.pending_count()
        report.seconds = time.perf_counter() - started
        return report

    def flush(self) -> None:
        """Persist the lexical and vector structures now."""
        self.indexer.flush()

    def close(self) -> None:
        """Persist and close the index."""
        self.indexer.flush()
        self.indexer.close()

    # ================================================================ reading
    def search(self, req: SearchRequest) -> SearchResponse:
        """The first stage: BM25 and dense retrieval, fused by RRF. Keeps enough fused
        candidates (`SearchResponse.candidates`) for a later `rerank`."""
        req.validate()
        self.indexer.refresh()  # another process may have written (issue 12)
        s = self.settings
        notices: list[str] = []
        owed = self.indexer.rebuild_owed()
        if owed is not None:  # new, recovered, or a --full not finished: never silent
            notices.append(f"the index is incomplete ({owed}): results may be missing "
                           "until it is rebuilt")
        timings: dict[str, float] = {}
        lists, mode, capped = self._retrieve(req, notices, timings)

        t = time.perf_counter()
        intent = classify_query(req.query)
        weights = intent_weights(intent.kind, s.lexical_weight, self.models.dense_weight(),
                                 s.fusion_identifier_dense, s.fusion_natural_lexical)
        if len(lists) == 1:
            weights = {name: 1.0 for name in lists}  # one list: its own order
        fused = reciprocal_rank_fusion(
            {name: [i for i, _ in hits] for name, hits in lists.items()},
            k=s.rrf_k, weights=weights, tiebreak=self.indexer.order_key,
        )
        raw_scores = {name: dict(hits) for name, hits in lists.items()}
        keep = max(req.limit, self.settings.rerank_depth if self._wants_rerank(req) else 0)
        params = ranking.RankingParams.from_settings(s, weights)
        fused = fused[:max(keep, params.depth if params.enabled else 0)]
        chunks = self.indexer.chunks(f.doc_id for f in fused)
        timings["fusion"] = _ms(t)
        t = time.perf_counter()
        by_id = {f.doc_id: f for f in fused}
        ranked = ranking.rank([ranking.Candidate(f.doc_id, f.score, chunks.get(f.doc_id),
                                                 {n: raw_scores[n][f.doc_id] for n in f.ranks})
                               for f in fused],
                              intent, params)
        hits: list[Hit] = []
        for n, r in enumerate(ranked[:keep], start=1):
            f = by_id[r.chunk_id]
            stages = {name: StageScore(rk, raw_scores[name][f.doc_id])
                      for name, rk in f.ranks.items()}
            stages[Stage.FUSED] = StageScore(r.fused_rank, f.score)
            if params.enabled:
                stages[Stage.RANKING] = StageScore(n, r.score, r.factors)
            hits.append(Hit(f.doc_id, r.chunk, r.score, stages))
        timings[Stage.RANKING] = _ms(t)
        if capped and len(hits) < req.limit:  # fewer than asked, and there were more
            notices.append(f"the list was cut at {len(hits)} of the {req.limit} results asked: "
                           f"each retriever keeps its best {s.candidates} candidates "
                           "(the `candidates` setting)")
        return SearchResponse(hits=hits[:req.limit], reranked=False, mode=mode, notices=notices,
                              timings_ms=timings, candidates=hits)

    def _retrieve(self, req: SearchRequest, notices: list[str], timings: dict[str, float]
                  ) -> tuple[dict[str, list[tuple[int, float]]], str, bool]:
        """Each retriever's candidates for `req` (dense, lexical), the mode that really
        ran (lexical when dense search is unavailable: `notices` says why), and whether a
        retriever had more candidates than the `candidates` it keeps."""
        s = self.settings
        allow = self._filter(req)
        lists: dict[str, list[tuple[int, float]]] = {}
        mode = req.mode
        capped = False
        if mode in (SearchMode.HYBRID, SearchMode.DENSE):
            t = time.perf_counter()
            dense = self._dense(req.query, s.candidates, allow, notices)
            timings[Stage.DENSE] = _ms(t)
            if dense is None:
                mode = SearchMode.LEXICAL  # degrade, and say so
            else:
                lists[Stage.DENSE] = dense
                capped |= len(dense) >= s.candidates  # nearest neighbours: always more
        if mode in (SearchMode.HYBRID, SearchMode.LEXICAL):
            t = time.perf_counter()
            tokens = query_tokens(req.query)
            # One more than kept: whether the cap cut the list (top-k is deterministic).
            found = self.indexer.lexical.search(tokens, s.candidates + 1, allow)
            capped |= len(found) > s.candidates
            lists[Stage.LEXICAL] = found[:s.candidates]
            timings[Stage.LEXICAL] = _ms(t)
        return lists, mode, capped

    def _dense(self, query: str, k: int, allow: Callable[[int], bool] | None,
               notices: list[str]) -> list[tuple[int, float]] | None:
        embedder = self.models.query_embedder()
        if embedder is None or not self._attach_embedder():
            notices.extend(n.line() for n in self.models.notices() if n.role == Role.EMBEDDER)
            return None
        vectors = self.indexer.vectors
        if vectors is None or len(vectors) == 0:
            notices.append("semantic search has no vectors yet: run `semcode index` "
                           "(or wait for the background embedding)")
            return None
        pending = self.indexer.pending_count()
        if pending:
            notices.append(f"semantic search covers {len(vectors)} of "
                           f"{len(vectors) + pending} chunks (embedding in progress)")
        try:
            with self.models.using(QUERY_EMBEDDER, embedder):
                qv = embedder.embed_query(query)
        except ModelError as exc:  # e.g. a remote server went down: degrade this query
            notices.append(f"semantic search is off: {exc}")
            return None
        return vectors.search(qv, k, allow)

    def _filter(self, req: SearchRequest) -> Callable[[int], bool] | None:
        if not (req.languages or req.paths or req.kinds or req.contents):
            return None
        globs = compile_globs(req.paths)  # validated by req.validate(); cached
        # Column masks over the chunk table; each distinct path is matched once.
        allowed = self.indexer.refs.select(req.languages, req.kinds, req.contents,
                                           globs.allowed if globs is not None else None)
        return allowed.__contains__

    # ================================================================ second stage
    def _wants_rerank(self, req: SearchRequest) -> bool:
        return self.settings.rerank if req.rerank is None else req.rerank

    def rerank(self, req: SearchRequest, first: SearchResponse,
               cancel: threading.Event | None = None) -> SearchResponse:
        """Reorder the top of the first stage with the cross-encoder, combined with the
        first stage's order (`reranking.apply_rerank_scores`). The depth is the
        `rerank_depth` setting, shrunk to what fits `rerank_budget_ms` at the measured
        throughput. Returns `first` unchanged when there is no reranker, when the query
        is an identifier lookup, or when the reranker's weight is 0 (`notices` says so
        for the last two)."""
        if not self.will_rerank(req) or not first.candidates:
            return first
        reranker = self.models.reranker()
        if reranker is None:
            first.notices.extend(n.line() for n in self.models.notices()
                                 if n.role == Role.RERANKER)
            return first
        blend = self.rerank_blend(reranker)
        if blend.weight <= 0:
            first.notices.append("reranking is off: the reranker's weight is 0 (not fitted, or "
                                 "it did not help on the benchmark's tune split; the "
                                 "`rerank_weight` setting runs it anyway)")
            return first
        t = time.perf_counter()
        try:
            with self.models.using(Role.RERANKER, reranker):
                if cancel is not None and cancel.is_set():
                    return first
                scores, depth = self._score_head(req.query, first.candidates, reranker, cancel)
        except ModelError as exc:
            first.notices.append(f"reranking is off: {exc}")
            return first
        head, tail = first.candidates[:depth], first.candidates[depth:]
        if (cancel is not None and cancel.is_set()) or len(scores) != len(head):
            return first  # stopped early: the partial order is not worth showing
        reranked = apply_rerank_scores(head, tail, scores, blend)
        timings = dict(first.timings_ms)
        timings[Stage.RERANK] = _ms(t)
        return SearchResponse(hits=reranked[:req.limit], reranked=True, mode=first.mode,
                              notices=first.notices, timings_ms=timings, candidates=reranked)

    def will_rerank(self, req: SearchRequest) -> bool:
        """Whether `rerank` would run a reranker on this request: reranking asked for (the
        request or the `rerank` setting) and the query not an identifier lookup."""
        return self._wants_rerank(req) and reranks(classify_query(req.query))

    def rerank_blend(self, reranker: Reranker) -> RerankBlend:
        """How the reranker's order is combined with the first stage's: the model's own
        (fitted) values, each overridden by its setting when that is set."""
        s, own = self.settings, reranker.blend
        weight = own.weight if s.rerank_weight < 0 else s.rerank_weight
        k = own.k if s.rerank_rrf_k <= 0 else float(s.rerank_rrf_k)
        return RerankBlend(weight=weight, k=k, fitted=own.fitted and s.rerank_weight < 0,
                           method=own.method)

    def _score_head(self, query: str, candidates: Sequence[Hit], reranker: Reranker,
                    cancel: threading.Event | None) -> tuple[list[float], int]:
        """The reranker's scores of the head of `candidates` and the head's depth: fitted
        to the budget at the measured throughput (a cold reranker scores a couple first to
        measure it: at full depth on a CPU it could take minutes)."""
        budget_ms = self.settings.rerank_budget_ms
        limit = min(self.settings.rerank_depth, len(candidates))
        recipe = reranker.profile.recipe
        t = time.perf_counter()

        def progress(done: int, total: int) -> bool:
            """The reranker's progress hook: asks it to stop once the search is cancelled."""
            return bool(cancel is not None and cancel.is_set())

        def score(hits: Sequence[Hit]) -> list[float]:
            """Reranker scores of `hits`, in order (fewer if cancelled)."""
            texts = [rerank_text(h.chunk, recipe) for h in hits]
            return list(reranker.score(query, texts, progress=progress)) if hits else []

        scores: list[float] = []
        if reranker.tokens_per_second() is None and budget_ms and limit > RERANK_PROBE:
            scores = score(candidates[:RERANK_PROBE])
            depth = RERANK_PROBE + self._fit_depth(
                query, reranker, candidates[RERANK_PROBE:limit], budget_ms - _ms(t))
        else:
            depth = self._fit_depth(query, reranker, candidates, budget_ms)
        depth = max(depth, min(RERANK_MIN, limit))  # always rerank a few: that was asked
        scores += score(candidates[len(scores):depth])
        return scores, depth

    def _fit_depth(self, query: str, reranker: Reranker, candidates: Sequence[Hit],
                   budget_ms: float) -> int:
        s, profile = self.settings, reranker.profile
        if profile.recipe == RerankRecipe.CLASSIFIER:
            # Each pair is decoded whole: the query's tokens come with every document.
            cap = min(profile.max_tokens, s.rerank_doc_tokens + profile.query_tokens)
            overhead = min(len(query) // 3, profile.query_tokens) + 3
        else:  # the prompt is decoded once; each document brings its suffix
            cap, overhead = s.rerank_doc_tokens, 40
        return fit_depth(reranker.tokens_per_second(), candidates, budget_ms,
                         depth=s.rerank_depth, doc_tokens=cap, overhead=overhead,
                         budgeted=bool(s.rerank_budget_ms))

    # ================================================================ related code
    def related(self, rel_path: str, line: int, limit: int = 20) -> SearchResponse:
        """Code most similar to the chunk at `rel_path:line` (1-based), by its stored
        vector: no query embedding."""
        notices: list[str] = []
        t = time.perf_counter()
        self.indexer.refresh()  # another process may have written (issue 12)
        chunks = self.indexer.store.chunks_of_file(rel_path)
        # The innermost chunk containing the line (the smallest span).
        containing = [(c.end_line - c.start_line, i) for i, c in chunks.items()
                      if c.start_line <= line <= c.end_line]
        if not containing:
            notices.append(f"no indexed symbol at {rel_path}:{line}")
            return SearchResponse([], False, SearchMode.DENSE, notices)
        _, chunk_id = min(containing)
        if not self._attach_embedder() or self.indexer.vectors is None:
            notices.extend(n.line() for n in self.models.notices() if n.role == Role.EMBEDDER)
            return SearchResponse([], False, SearchMode.DENSE, notices)
        vector = self.indexer.vectors.get(chunk_id)
        if vector is None:
            notices.append("that symbol has not been embedded yet")
            return SearchResponse([], False, SearchMode.DENSE, notices)
        found = self.indexer.vectors.search(np.asarray(vector, dtype=np.float32), limit + 1,
                                            lambda i: i != chunk_id)
        found = found[:limit]
        found_chunks = self.indexer.chunks(i for i, _ in found)
        hits = [Hit(i, found_chunks[i], score, {Stage.DENSE: StageScore(rank, score)})
                for rank, (i, score) in enumerate(found, start=1) if i in found_chunks]
        return SearchResponse(hits, False, SearchMode.DENSE, notices, {Stage.DENSE: _ms(t)})

    # ================================================================ status
    def status(self) -> IndexStatus:
        """What the index holds (files, chunks, embedded chunks...). With no embedder
        attached in this process (`semcode status` loads no model), the embedded count
        is the configured model's, counted in the store."""
        status = self.indexer.status()
        if self.indexer.vectors is None:
            key = self.models.embedder_key()
            if key is None:
                return dataclasses.replace(status, embedded=0, pending_embeddings=0)
            embedded = self.indexer.embedded_count(key)
            return dataclasses.replace(status, embedded=embedded,
                                       pending_embeddings=status.chunks - embedded)
        return status


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)
