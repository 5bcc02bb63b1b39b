"""Indexing and embedding, as two parts of the session: `Indexing` runs the writer-thread
jobs that open, sync and close a folder's engine; `EmbeddingScheduler` embeds what the
indexes lack on the embed thread, in slices, open and recently edited files first, and
owns the edit-coalescing timer and the running embedding jobs' cancel events.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from typing import Any

from semcode.heap import settle_heap
from semcode.index.locking import WRITER_BUSY_NOTICE
from semcode.kinds import Role
from semcode.lsp.core import SessionContext
from semcode.lsp.folders import CLOSE_WAIT_S, Folder, _either
from semcode.lsp.progress import ProgressHandle, ProgressReporter
from semcode.search.engine import EMBED_SLICE_S, EmbedReport, Engine, Progress
from semcode.states import ServeState

log = logging.getLogger(__name__)


EDIT_EMBED_DELAY_S = 1.0  # coalesce edits before embedding their new chunks


class EmbeddingScheduler:
    """Embedding in the background: after indexing (`embed`) and after edits (`kick`,
    coalesced), one folder at a time on the embed thread; `cancel` stops what runs."""

    def __init__(self, ctx: SessionContext, progress: ProgressReporter) -> None:
        self._ctx, self._progress = ctx, progress
        self._timer: asyncio.TimerHandle | None = None
        self._task: asyncio.Task[Any] | None = None
        self._again = False
        self._cancels: set[threading.Event] = set()

    async def embed(self, folder: Folder, handle: ProgressHandle | None,
                    cancel: threading.Event | None = None) -> None:
        """Embed what `folder`'s index lacks (until done, `cancel` or the folder stops)."""
        ctx = self._ctx
        if folder.engine is None or ctx.unavailable(Role.EMBEDDER):
            return
        event = cancel or threading.Event()
        self._cancels.add(event)
        folder.state = ServeState.EMBEDDING
        ctx.status_changed()
        try:
            n = await ctx.run(ctx.embeds, folder, self._slices, folder, event,
                              self._progress.callback(folder, handle))
            folder.embedded_session += n
        finally:
            self._cancels.discard(event)
            if folder.state == ServeState.EMBEDDING:
                folder.state = ServeState.READY
            folder.progress = None
            ctx.status_changed()

    @staticmethod
    def _slices(folder: Folder, cancel: threading.Event,
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

    def kick(self) -> None:
        """Edits happened: embed their new chunks soon (coalesced)."""
        loop = self._ctx.loop
        if loop is None or self._timer is not None or self._ctx.closed:
            return
        self._timer = loop.call_later(EDIT_EMBED_DELAY_S, self._start)

    def _start(self) -> None:
        self._timer = None
        if self._task is not None and not self._task.done():
            self._again = True
            return
        self._task = self._ctx.tasks.spawn(self._embed_all(), "background embedding")

    async def _embed_all(self) -> None:
        ctx = self._ctx
        self._again = True
        while self._again and not ctx.closed:
            self._again = False
            for folder in list(ctx.folders):
                if folder.state == ServeState.READY:
                    await self.embed(folder, None)
        ctx.tasks.spawn(ctx.check_models(), "model check")

    def cancel(self) -> None:
        """Stop every running embedding job (each stops at its next chunk batch)."""
        for event in list(self._cancels):
            event.set()


class Indexing:
    """A folder's engine lifecycle on its writer thread: open and sync it (`index`, then
    embedding), close it (`close_folder`). `reapply_buffers` puts the open buffers back
    into a fresh or reset engine."""

    def __init__(self, ctx: SessionContext, progress: ProgressReporter,
                 embedding: EmbeddingScheduler,
                 reapply_buffers: Callable[[Folder], None]) -> None:
        self._ctx, self._progress, self._embedding = ctx, progress, embedding
        self._reapply_buffers = reapply_buffers

    @staticmethod
    def close_engine(folder: Folder) -> None:
        """Writer thread: detach the folder's engine (waiting for its readers), flush it,
        close it."""
        engine = folder.detach_engine()
        if engine is not None:
            try:
                engine.flush()
            finally:
                engine.close()

    async def close_folder(self, folder: Folder) -> None:
        """Stop the folder's jobs, close its engine and its writer thread."""
        folder.stop.set()
        self._embedding.cancel()
        if folder.inflight:
            await asyncio.wait(list(folder.inflight), timeout=CLOSE_WAIT_S)
        try:
            await self._ctx.run(folder.writer, None, self.close_engine, folder)
        except Exception:
            log.exception("closing %s failed", folder.ref.root)
        folder.writer.shutdown(wait=False)

    async def index(self, folder: Folder, reopen: bool = False, full: bool = False) -> None:
        """Open (`reopen`: close first; `full`: reset) and sync the folder, then embed."""
        ctx = self._ctx
        folder.state, folder.error = ServeState.INDEXING, ""
        ctx.status_changed()
        handle = await self._progress.begin(f"semcode: indexing {folder.name}")
        ended = "stopped"
        try:
            try:
                report = await ctx.run(folder.writer, folder, self.sync, folder, reopen,
                                       full, self._progress.callback(folder, handle))
            except Exception as exc:
                if not folder.stop.is_set():
                    log.exception("indexing %s failed", folder.ref.root)
                    folder.state, folder.error = ServeState.ERROR, f"indexing failed: {exc}"
                ended = folder.error or "stopped"
                return
            log.info("%s: %s", folder.ref.root, report)
            folder.state, folder.progress = ServeState.READY, None
            ctx.status_changed()
            if reopen or full:  # a fresh or reset engine does not know the open buffers
                self._reapply_buffers(folder)
            ended = await self._embed_after_index(folder, handle)
        finally:
            handle.end(ended)
            folder.progress = None
            ctx.status_changed()
            ctx.tasks.spawn(ctx.check_models(), "model check")

    async def _embed_after_index(self, folder: Folder, handle: ProgressHandle) -> str:
        """Embedding under the indexing's progress; how the progress ends."""
        try:
            if not handle.cancelled.is_set():
                await self._embedding.embed(folder, handle, handle.cancelled)
            return "ready" if not handle.cancelled.is_set() else "embedding stopped"
        except Exception as exc:
            # Not an indexing failure: the index is intact and lexical search works;
            # `embed` has put the state back to ready.
            if not folder.stop.is_set():
                log.warning("embedding %s stopped: %s", folder.ref.root, exc)
                folder.error = f"embedding failed: {exc}"
            return folder.error or "stopped"

    def sync(self, folder: Folder, reopen: bool, full: bool,
             progress: Callable[[Progress], None]) -> Any:
        """Writer thread: open (or reopen) the engine, then reconcile it with the disk."""
        if folder.engine is not None and reopen:
            self.close_engine(folder)
        if folder.engine is None:
            assert self._ctx.models is not None
            folder.engine = Engine.open(folder.ref.root, folder.settings, self._ctx.models,
                                        notice=_writer_notice(folder))
        try:
            if full:  # drop chunks and derived indexes; the embedding cache stays
                folder.engine.reset()
            return folder.engine.sync(progress=progress, cancel=folder.stop)
        finally:
            folder.writer_waiting.clear()
            settle_heap()


def _writer_notice(folder: Folder) -> Callable[[str], None]:
    """The index's notices for `folder` (writer thread): logged, and a wait for another
    process's write lock is marked on the folder until the writer's job ends, so that a
    search that cannot wait for its edits says why (`EditBarrier`)."""

    def notice(line: str) -> None:
        """One notice line from the index."""
        if line == WRITER_BUSY_NOTICE:
            folder.writer_waiting.set()
        log.warning("%s: %s", folder.ref.root, line)

    return notice
