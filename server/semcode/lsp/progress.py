"""Server-initiated `window/workDoneProgress` and the text of its reports.
"""

from __future__ import annotations

import concurrent.futures
import logging
import threading
from typing import TYPE_CHECKING

from lsprotocol import types

from semcode.search.engine import Progress

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)


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

