"""Indexing and embedding: the writer-thread jobs that open, sync and close a folder's
engine, and the embedding scheduler (slices on the embed thread, open and recently
edited files first, progress reported to the client).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from semcode.heap import settle_heap
from semcode.lsp import params as P
from semcode.lsp.core import SessionCore
from semcode.lsp.folders import Folder, _either
from semcode.lsp.progress import ProgressHandle, progress_text
from semcode.lsp.tasks import RateLimit
from semcode.search.engine import EmbedReport, Engine, Progress
from semcode.states import ServeState

log = logging.getLogger(__name__)


EMBED_SLICE_S = 5.0  # embed_pending budget per call; the priority is refreshed between calls
EDIT_EMBED_DELAY_S = 1.0  # coalesce edits before embedding their new chunks
PROGRESS_INTERVAL_S = 0.2  # $/progress reports at most this often
CLOSE_WAIT_S = 30.0  # how long closing waits for in-flight engine work


class IndexingScheduler(SessionCore):
    """Indexing a folder and embedding what it lacks, in the background."""

    def _close_engine(self, folder: Folder) -> None:
        engine = folder.detach_engine()
        if engine is not None:
            try:
                engine.flush()
            finally:
                engine.close()

    async def _close_folder(self, folder: Folder) -> None:
        folder.stop.set()
        self._cancel_embedding()
        if folder.inflight:
            await asyncio.wait(list(folder.inflight), timeout=CLOSE_WAIT_S)
        try:
            await self._run(folder.writer, None, self._close_engine, folder)
        except Exception:
            log.exception("closing %s failed", folder.ref.root)
        folder.writer.shutdown(wait=False)

    async def _index(self, folder: Folder, reopen: bool = False, full: bool = False) -> None:
        folder.state, folder.error = ServeState.INDEXING, ""
        self._status_changed()
        handle = await self._progress(f"semcode: indexing {folder.name}")
        ended = "stopped"
        try:
            try:
                report = await self._run(folder.writer, folder, self._sync, folder, reopen,
                                         full, self._progress_cb(folder, handle))
            except Exception as exc:
                if not folder.stop.is_set():
                    log.exception("indexing %s failed", folder.ref.root)
                    folder.state, folder.error = ServeState.ERROR, f"indexing failed: {exc}"
                ended = folder.error or "stopped"
                return
            log.info("%s: %s", folder.ref.root, report)
            folder.state, folder.progress = ServeState.READY, None
            self._status_changed()
            if reopen or full:  # a fresh or reset engine does not know the open buffers
                self._reapply_buffers(folder)
            try:
                if not handle.cancelled.is_set():
                    await self._embed(folder, handle, handle.cancelled)
                ended = "ready" if not handle.cancelled.is_set() else "embedding stopped"
            except Exception as exc:
                # Not an indexing failure: the index is intact and lexical search works;
                # `_embed` has put the state back to ready.
                if not folder.stop.is_set():
                    log.warning("embedding %s stopped: %s", folder.ref.root, exc)
                    folder.error = f"embedding failed: {exc}"
                ended = folder.error or "stopped"
        finally:
            handle.end(ended)
            folder.progress = None
            self._status_changed()
            self.tasks.spawn(self._check_models(), "model check")

    def _sync(self, folder: Folder, reopen: bool, full: bool,
              progress: Callable[[Progress], None]) -> Any:
        """Writer thread: open (or reopen) the engine, then reconcile it with the disk."""
        if folder.engine is not None and reopen:
            self._close_engine(folder)
        if folder.engine is None:
            assert self.models is not None
            folder.engine = Engine.open(folder.ref.root, folder.settings, self.models,
                                        notice=_writer_notice(folder))
        try:
            if full:  # drop chunks and derived indexes; the embedding cache stays
                folder.engine.reset()
            return folder.engine.sync(progress=progress, cancel=folder.stop)
        finally:
            folder.writer_waiting.clear()
            settle_heap()

    async def _embed(self, folder: Folder, handle: ProgressHandle | None,
                     cancel: threading.Event | None = None) -> None:
        if folder.engine is None or self._unavailable("embedder"):
            return
        event = cancel or threading.Event()
        self._embed_cancels.add(event)
        folder.state = ServeState.EMBEDDING
        self._status_changed()
        try:
            n = await self._run(self.embeds, folder, self._embed_slices, folder, event,
                                self._progress_cb(folder, handle))
            folder.embedded_session += n
        finally:
            self._embed_cancels.discard(event)
            if folder.state == ServeState.EMBEDDING:
                folder.state = ServeState.READY
            folder.progress = None
            self._status_changed()

    def _embed_slices(self, folder: Folder, cancel: threading.Event,
                      progress: Callable[[Progress], None]) -> int:
        """Embed thread: `embed_pending` in slices until nothing is left (or stopped)."""
        total = 0
        stop = _either(cancel, folder.stop)
        while not stop.is_set():
            with folder.lifecycle:
                if folder.engine is None:
                    break
                report: EmbedReport = folder.engine.embed_pending(
                    progress=progress, cancel=stop, budget_s=EMBED_SLICE_S,
                    priority=folder.priority)
            total += report.embedded
            if report.embedded == 0 or report.pending == 0 or report.cancelled:
                break
        return total

    def _kick_embedding(self) -> None:
        """Edits happened: embed their new chunks soon (coalesced)."""
        if self.loop is None or self._embed_timer is not None or self.closed:
            return
        self._embed_timer = self.loop.call_later(EDIT_EMBED_DELAY_S, self._start_embedding)

    def _start_embedding(self) -> None:
        self._embed_timer = None
        if self._embed_task is not None and not self._embed_task.done():
            self._embed_again = True
            return
        self._embed_task = self.tasks.spawn(self._embed_all(), "background embedding")

    async def _embed_all(self) -> None:
        self._embed_again = True
        while self._embed_again and not self.closed:
            self._embed_again = False
            for folder in list(self.folders):
                if folder.state == ServeState.READY:
                    await self._embed(folder, None)
        self.tasks.spawn(self._check_models(), "model check")

    def _cancel_embedding(self) -> None:
        for event in list(self._embed_cancels):
            event.set()

    def _progress_cb(self, folder: Folder,
                     handle: ProgressHandle | None) -> Callable[[Progress], None]:
        """A callback for worker threads: rate-limited, forwarded to the loop."""
        limit = RateLimit(PROGRESS_INTERVAL_S)
        loop = self.loop
        assert loop is not None

        def on_progress(p: Progress) -> None:
            if limit.allow(force=p.total > 0 and p.done >= p.total):
                loop.call_soon_threadsafe(self._on_progress, folder, handle, p)

        return on_progress

    def _on_progress(self, folder: Folder, handle: ProgressHandle | None, p: Progress) -> None:
        folder.progress = p
        if handle is not None:
            handle.report(*progress_text(p))
        self._status_changed()

    async def _progress(self, title: str) -> ProgressHandle:
        caps = self.ls.client_capabilities
        if not (caps.window and caps.window.work_done_progress):
            return ProgressHandle(self.ls, None)
        token = f"semcode-{next(self._ids)}"
        try:
            await asyncio.wait_for(self.ls.work_done_progress.create_async(token), 10)
        except Exception as exc:
            log.warning("window/workDoneProgress/create failed: %s", exc)
            return ProgressHandle(self.ls, None)
        handle = ProgressHandle(self.ls, token)
        handle.begin(title)
        return handle

    async def reindex(self, args: tuple[object, ...]) -> dict[str, Any]:
        """The `semcode.reindex` command: re-index every folder (`full`: from scratch); embedding
        restarts afterwards."""
        full = P.reindex_full(args)
        self._cancel_embedding()
        for folder in self.folders:
            self.tasks.spawn(self._index(folder, full=full), f"reindex {folder.name}")
        return {"started": True}


def _writer_notice(folder: Folder) -> Callable[[str], None]:
    """The index's notices for `folder` (writer thread): logged, and a wait for another
    process's write lock is marked on the folder until the writer's job ends, so that a
    search that cannot wait for its edits says why (`EditBarrier`)."""

    def notice(line: str) -> None:
        """One notice line from the index."""
        if line.startswith("waiting for another semcode process"):
            folder.writer_waiting.set()
        log.warning("%s: %s", folder.ref.root, line)

    return notice
