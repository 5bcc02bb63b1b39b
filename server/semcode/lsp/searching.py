"""Two-phase search: the first stage answers at once (read pool), the rerank follows as
`semcode/searchRefined` (rerank thread); multi-root answers are merged (searches.py).
`TwoPhaseSearch` owns the running searches (`SearchBook`); it reaches the buffers only
through the read barrier it is given (`pending_edits`).
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pygls.uris import from_fs_path

from semcode.kinds import Role, SearchMode, Stage
from semcode.lsp import params as P
from semcode.lsp.buffers import buffer_text
from semcode.lsp.convert import search_item, workspace_symbol
from semcode.lsp.core import SessionContext
from semcode.lsp.documents import doc_key
from semcode.lsp.folders import EditBarrier, Folder
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
    barrier a read waits behind (`BufferRouting.apply_pending_edits`)."""

    def __init__(self, ctx: SessionContext, pending_edits: Callable[[], EditBarrier]) -> None:
        self._ctx, self._pending_edits = ctx, pending_edits
        self.searches = SearchBook()

    async def search(self, raw: object) -> dict[str, Any]:
        """`semcode/search`: the first phase's hits at once, then the reranked list as a
        notification when a reranker runs."""
        req = P.search_request(raw)
        edits = self._pending_edits() if req.query.strip() else EditBarrier()
        sid, cancel = self.searches.start()
        pending = False
        try:
            first = await self._first_stage(req, edits) if req.query.strip() else []
            merged = merge(first, req.limit)
            items = self._items(merged)
            pending = bool(items) and self._wants_rerank(req) and not cancel.is_set()
            if pending:  # the response goes out before this task can notify (FIFO loop)
                self._ctx.tasks.spawn(self._refine(sid, req, first, items, cancel), f"rerank {sid}")
            return self._result(sid, merged, items, pending)
        except asyncio.CancelledError:  # $/cancelRequest
            cancel.set()
            raise
        finally:
            if not pending:
                self.searches.finish(sid)

    async def search_command(self, args: tuple[object, ...]) -> dict[str, Any]:
        """The `semcode.search` command: the same search, arguments given positionally."""
        req = P.search_command(args)
        edits = self._pending_edits() if req.query.strip() else EditBarrier()
        sid, cancel = self.searches.start()
        try:
            answers = await self._first_stage(req, edits) if req.query.strip() else []
            if self._wants_rerank(req):
                answers = await self._rerank(req, answers, cancel)
            merged = merge(answers, req.limit)
            return self._result(sid, merged, self._items(merged), False)
        except asyncio.CancelledError:  # $/cancelRequest: stop the rerank too
            cancel.set()
            raise
        finally:
            self.searches.finish(sid)

    async def workspace_symbols(self, query: str) -> list[dict[str, Any]]:
        """`workspace/symbol`: the first phase's hits as SymbolInformation-like items."""
        query = P.query_text("workspace/symbol", query)
        if not query.strip():
            return []
        edits = self._pending_edits()
        req = SearchRequest(query=query, limit=WORKSPACE_SYMBOL_LIMIT, rerank=False)
        merged = merge(await self._first_stage(req, edits), req.limit)
        return [workspace_symbol(item) for item in self._items(merged)]

    async def related(self, raw: object) -> dict[str, Any]:
        """`semcode/related`: code similar to the chunk at the position."""
        p = P.related(raw)
        edits = self._pending_edits()
        loc = self._ctx.locate(p.uri)
        sid = f"r{next(self._ctx.ids)}"
        if loc is None or loc[0].engine is None:
            notice = "this file is not in an indexed workspace folder"
            return self._result(sid, Merged([], False, SearchMode.DENSE, [notice]), [], False)
        folder, rel = loc
        response = await self._ctx.run(self._ctx.reads, folder, edits.read, folder,
                                       Engine.related, rel, p.line + 1, p.limit)
        if response is None:
            notice = f"{folder.name} is being re-indexed"
            return self._result(sid, Merged([], False, SearchMode.DENSE, [notice]), [], False)
        merged = merge([(folder, response)], p.limit)
        return self._result(sid, merged, self._items(merged), False)

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
                      first_items: list[dict[str, Any]], cancel: threading.Event) -> None:
        t0 = time.perf_counter()
        message: dict[str, Any] = {"searchId": sid, "items": first_items, "reranked": False}
        try:
            merged = merge(await self._rerank(req, first, cancel), req.limit)
            if cancel.is_set():
                message["cancelled"] = True
            elif not merged.reranked:
                message["error"] = "; ".join(merged.notices) or "reranking is unavailable"
            else:
                message.update(items=self._items(merged), reranked=True)
        except Exception as exc:
            log.exception("rerank %s failed", sid)
            message["error"] = f"reranking failed: {exc}"
        finally:
            self.searches.finish(sid)
        message["timingsMs"] = {Stage.RERANK: round((time.perf_counter() - t0) * 1000, 1)}
        self._ctx.ls.protocol.notify("semcode/searchRefined", message)
        self._ctx.tasks.spawn(self._ctx.check_models(), "model check")

    def _wants_rerank(self, req: SearchRequest) -> bool:
        wanted = self._ctx.settings.rerank if req.rerank is None else req.rerank
        # An identifier lookup keeps its first-stage order (Engine.rerank skips it): no
        # `semcode/searchRefined` is promised for it.
        return (wanted and not self._ctx.unavailable(Role.RERANKER)
                and reranks(classify_query(req.query)))

    def _items(self, merged: Merged[Folder]) -> list[dict[str, Any]]:
        encoding = str(self._ctx.ls.workspace.position_encoding or "utf-16")
        return [search_item(hit, folder.ref, self._buffer_line, encoding)
                for folder, hit in merged.hits]

    def _buffer_line(self, path: Path, line: int) -> str | None:
        uri = from_fs_path(str(path))
        doc = self._ctx.ls.workspace.text_documents.get(doc_key(uri)) if uri else None
        if doc is None:
            return None
        lines = doc.lines
        return buffer_text(lines[line].rstrip("\r\n")) if 0 <= line < len(lines) else None

    @staticmethod
    def _result(sid: str, merged: Merged[Folder], items: list[dict[str, Any]],
                pending: bool) -> dict[str, Any]:
        return {"searchId": sid, "items": items, "reranked": merged.reranked,
                "rerankPending": pending, "mode": merged.mode, "notices": merged.notices,
                "timingsMs": {k: round(v, 2) for k, v in merged.timings_ms.items()}}

