"""Two-phase search: the first stage answers at once (read pool), the rerank follows as
`semcode/searchRefined` (rerank thread); multi-root answers are merged (searches.py).
`TwoPhaseSearch` owns the running searches (`SearchBook`); it reaches the buffers only
through the read barrier it is given (`pending_edits`). It answers with records
(`records.SearchAnswer`, `Refinement`); `convert.py` makes their JSON.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Sequence

from semcode.kinds import Role, SearchMode
from semcode.lsp import params as P
from semcode.lsp.core import SessionContext
from semcode.lsp.folders import EditBarrier, Folder
from semcode.lsp.records import FolderRef, Refinement, SearchAnswer
from semcode.lsp.searches import Merged, SearchBook, merge
from semcode.search.engine import (
    Engine,
    SearchError,
    SearchRequest,
    SearchResponse,
)
from semcode.search.intent import classify_query
from semcode.search.reranking import reranks

log = logging.getLogger(__name__)


WORKSPACE_SYMBOL_LIMIT = 50


class TwoPhaseSearch:
    """semcode/search, the semcode.search command, workspace/symbol, semcode/related.
    `pending_edits` hands every debounced buffer edit to the writers and returns the
    barrier a read waits behind (`BufferRouting.apply_pending_edits`); `refined` sends a
    search's second phase (`semcode/searchRefined`)."""

    def __init__(self, ctx: SessionContext, pending_edits: Callable[[], EditBarrier],
                 refined: Callable[[Refinement], None]) -> None:
        self._ctx, self._pending_edits, self._refined = ctx, pending_edits, refined
        self.searches = SearchBook()

    async def search(self, raw: object) -> SearchAnswer:
        """`semcode/search`: the first phase's hits at once, then the reranked list as a
        notification when a reranker runs."""
        req = P.search_request(raw)
        edits = self._pending_edits() if req.query.strip() else EditBarrier()
        sid, cancel = self.searches.start()
        pending = False
        try:
            first = await self._first_stage(req, edits) if req.query.strip() else []
            merged = _merge(first, req.limit)
            pending = bool(merged.hits) and self._wants_rerank(req) and not cancel.is_set()
            if pending:  # the response goes out before this task can notify (FIFO loop)
                self._ctx.tasks.spawn(self._refine(sid, req, first, merged, cancel),
                                      f"rerank {sid}")
            return SearchAnswer(sid, merged, pending)
        except asyncio.CancelledError:  # $/cancelRequest
            cancel.set()
            raise
        finally:
            if not pending:
                self.searches.finish(sid)

    async def search_command(self, args: tuple[object, ...]) -> SearchAnswer:
        """The `semcode.search` command: the same search, arguments given positionally."""
        req = P.search_command(args)
        edits = self._pending_edits() if req.query.strip() else EditBarrier()
        sid, cancel = self.searches.start()
        try:
            answers = await self._first_stage(req, edits) if req.query.strip() else []
            if self._wants_rerank(req):
                answers = await self._rerank(req, answers, cancel)
            return SearchAnswer(sid, _merge(answers, req.limit), False)
        except asyncio.CancelledError:  # $/cancelRequest: stop the rerank too
            cancel.set()
            raise
        finally:
            self.searches.finish(sid)

    async def workspace_symbols(self, query: str) -> Merged[FolderRef]:
        """`workspace/symbol`: the first phase's hits (shown as symbols)."""
        query = P.query_text("workspace/symbol", query)
        if not query.strip():
            return Merged([], False, SearchMode.HYBRID)
        edits = self._pending_edits()
        req = SearchRequest(query=query, limit=WORKSPACE_SYMBOL_LIMIT, rerank=False)
        return _merge(await self._first_stage(req, edits), req.limit)

    async def related(self, raw: object) -> SearchAnswer:
        """`semcode/related`: code similar to the chunk at the position."""
        p = P.related(raw)
        edits = self._pending_edits()
        loc = self._ctx.locate(p.uri)
        sid = f"r{next(self._ctx.ids)}"
        if loc is None or loc[0].engine is None:
            notice = "this file is not in an indexed workspace folder"
            return SearchAnswer(sid, Merged([], False, SearchMode.DENSE, [notice]), False)
        folder, rel = loc
        response = await self._ctx.run(self._ctx.reads, folder, edits.read, folder,
                                       Engine.related, rel, p.line + 1, p.limit)
        if response is None:
            notice = f"{folder.name} is being re-indexed"
            return SearchAnswer(sid, Merged([], False, SearchMode.DENSE, [notice]), False)
        return SearchAnswer(sid, _merge([(folder, response)], p.limit), False)

    def cancel_search(self, raw: object) -> None:
        """`semcode/cancelSearch`: cancel the search whose id is given."""
        self.searches.cancel(P.search_id(raw))

    async def _first_stage(self, req: SearchRequest, edits: EditBarrier
                           ) -> list[tuple[Folder, SearchResponse]]:
        """Each folder's first stage on the read pool, once its edits are in (`edits`)."""
        ctx = self._ctx
        folders = [f for f in ctx.folders if f.engine is not None]
        answers = await asyncio.gather(
            *(ctx.run(ctx.reads, f, edits.read, f, Engine.search, req) for f in folders),
            return_exceptions=True)
        out: list[tuple[Folder, SearchResponse]] = []
        for folder, answer in zip(folders, answers, strict=True):
            if answer is None:  # reopened meanwhile
                answer = SearchResponse([], False, req.mode,
                                        [f"{folder.name} is being re-indexed"], {})
            if isinstance(answer, SearchError):
                raise P.ParamError("semcode/search", str(answer))
            if isinstance(answer, BaseException):
                log.error("search in %s failed: %r", folder.ref.root, answer)
                answer = SearchResponse([], False, req.mode,
                                        [f"search failed in {folder.name}: {answer}"], {})
            out.append((folder, answer))
        self._ctx.tasks.spawn(self._ctx.check_models(), "model check")
        return out

    async def _rerank(self, req: SearchRequest, first: list[tuple[Folder, SearchResponse]],
                      cancel: threading.Event) -> list[tuple[Folder, SearchResponse]]:
        out = []
        for folder, response in first:
            engine = folder.engine
            if response.hits and engine is not None and not cancel.is_set():
                reranked = await self._ctx.run(self._ctx.reranks, folder, folder.read,
                                               Engine.rerank, req, response, cancel)
                response = reranked if reranked is not None else response
            out.append((folder, response))
        return out

    async def _refine(self, sid: str, req: SearchRequest,
                      first: list[tuple[Folder, SearchResponse]],
                      first_merged: Merged[FolderRef], cancel: threading.Event) -> None:
        t0 = time.perf_counter()
        merged, reranked, cancelled, error = first_merged, False, False, None
        try:
            second = _merge(await self._rerank(req, first, cancel), req.limit)
            if cancel.is_set():
                cancelled = True
            elif not second.reranked:
                error = "; ".join(second.notices) or "reranking is unavailable"
            else:
                merged, reranked = second, True
        except Exception as exc:
            log.exception("rerank %s failed", sid)
            error = f"reranking failed: {exc}"
        finally:
            self.searches.finish(sid)
        self._refined(Refinement(sid, merged, reranked, (time.perf_counter() - t0) * 1000,
                                 cancelled, error))
        self._ctx.tasks.spawn(self._ctx.check_models(), "model check")

    def _wants_rerank(self, req: SearchRequest) -> bool:
        wanted = self._ctx.settings.rerank if req.rerank is None else req.rerank
        # An identifier lookup keeps its first-stage order (Engine.rerank skips it): no
        # `semcode/searchRefined` is promised for it.
        return (wanted and not self._ctx.unavailable(Role.RERANKER)
                and reranks(classify_query(req.query)))


def _merge(answers: Sequence[tuple[Folder, SearchResponse]], limit: int) -> Merged[FolderRef]:
    """The folders' responses merged (searches.merge), each hit with its folder's ref."""
    return merge([(folder.ref, response) for folder, response in answers], limit)
