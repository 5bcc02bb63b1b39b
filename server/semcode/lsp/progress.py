"""Server-initiated `window/workDoneProgress`, the text of its reports, and the reporter
that feeds a job's worker-thread progress to it.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from lsprotocol import types

from semcode.lsp.folders import Folder
from semcode.lsp.tasks import RateLimit
from semcode.search.engine import Progress

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.2  # $/progress reports at most this often


class ProgressHandle:
    """A server-initiated `window/workDoneProgress`; inert when the client has none."""

    def __init__(self, ls: LanguageServer, token: str | None) -> None:
        self._ls, self.token = ls, token
        self.cancelled = threading.Event()
        if token is not None:
            fut = ls.work_done_progress.tokens.get(token)
            if fut is not None:
                fut.add_done_callback(self._on_done)

    def _on_done(self, fut: concurrent.futures.Future[object]) -> None:
        if fut.cancelled():  # the client sent window/workDoneProgress/cancel
            self.cancelled.set()

    def begin(self, title: str) -> None:
        """Send the begin notification (when the client gave a token)."""
        if self.token is not None:
            self._ls.work_done_progress.begin(self.token, types.WorkDoneProgressBegin(
                title=title, cancellable=True, message="starting", percentage=0))

    def report(self, message: str, percentage: int | None) -> None:
        """Send a progress report (message, percentage)."""
        if self.token is not None:
            self._ls.work_done_progress.report(self.token, types.WorkDoneProgressReport(
                message=message, percentage=percentage, cancellable=True))

    def end(self, message: str) -> None:
        """Send the end notification."""
        if self.token is not None:
            self._ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self._ls.work_done_progress.tokens.pop(self.token, None)
            self.token = None


def progress_text(p: Progress) -> tuple[str, int | None]:
    """The message and percentage shown for an indexing or embedding Progress."""
    pct = int(100 * p.done / p.total) if p.total else None
    if p.message:
        return p.message, pct
    noun = "chunks" if p.stage == "embed" else "files"
    verb = "embedding " if p.stage == "embed" else ""
    return f"{verb}{p.done}/{p.total} {noun}", pct



class ProgressReporter:
    """Starts work-done progress for a job and turns worker-thread `Progress` into reports
    (rate-limited) and folder progress. Owns nothing but the wiring: the token ids come
    from the session (`ids`), `on_change` is the status push."""

    def __init__(self, ls: LanguageServer, ids: Iterator[int],
                 on_change: Callable[[], None]) -> None:
        self._ls, self._ids, self._on_change = ls, ids, on_change

    async def begin(self, title: str) -> ProgressHandle:
        """A progress for a new job, begun (inert when the client cannot show one)."""
        caps = self._ls.client_capabilities
        if not (caps.window and caps.window.work_done_progress):
            return ProgressHandle(self._ls, None)
        token = f"semcode-{next(self._ids)}"
        try:
            await asyncio.wait_for(self._ls.work_done_progress.create_async(token), 10)
        except Exception as exc:
            log.warning("window/workDoneProgress/create failed: %s", exc)
            return ProgressHandle(self._ls, None)
        handle = ProgressHandle(self._ls, token)
        handle.begin(title)
        return handle

    def callback(self, folder: Folder,
                 handle: ProgressHandle | None) -> Callable[[Progress], None]:
        """Loop thread: a callback for worker threads, rate-limited, forwarded to the loop."""
        limit = RateLimit(PROGRESS_INTERVAL_S)
        loop = asyncio.get_running_loop()

        def on_progress(p: Progress) -> None:
            if limit.allow(force=p.total > 0 and p.done >= p.total):
                loop.call_soon_threadsafe(self._report, folder, handle, p)

        return on_progress

    def _report(self, folder: Folder, handle: ProgressHandle | None, p: Progress) -> None:
        folder.progress = p
        if handle is not None:
            handle.report(*progress_text(p))
        self._on_change()
