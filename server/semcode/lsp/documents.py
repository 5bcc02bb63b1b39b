"""Per-document bookkeeping for live updates: which buffers are open, which may hold
text that differs from the disk, and a debounce timer per document.

Everything here runs on the event loop; the callbacks it fires submit the real work
(`engine.update_file` / `revert_file`) to worker threads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from urllib.parse import unquote

DEBOUNCE_S = 0.3


def doc_key(uri: str) -> str:
    """Documents are keyed like pygls keys them (unquoted URIs)."""
    return unquote(uri)


class Documents:
    """The open editor buffers: debounces each buffer's edits and tracks which buffers the index
    holds (so a close knows whether to revert)."""

    def __init__(self, loop: asyncio.AbstractEventLoop, flush: Callable[[str], None],
                 delay_s: float = DEBOUNCE_S) -> None:
        self._loop = loop
        self._flush = flush  # called with the uri once its edits have settled
        self._delay = delay_s
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self.open: set[str] = set()
        self._buffered: set[str] = set()  # the index holds this buffer's text
        self._inflight: dict[str, int] = {}  # updates handed to the writer, not applied yet

    def is_open(self, uri: str) -> bool:
        """Whether the editor has this document open."""
        return doc_key(uri) in self.open

    def opened(self, uri: str) -> None:
        """A buffer was opened: index its text once the edits settle."""
        self.open.add(doc_key(uri))
        self._schedule(uri)

    def changed(self, uri: str) -> None:
        """A buffer changed: (re)start its debounce timer."""
        self._schedule(uri)

    def saved(self, uri: str) -> None:
        """A buffer was saved: (re)start its debounce timer."""
        self._schedule(uri)

    def submitted(self, key: str) -> None:
        """The buffer's text was handed to the writer. From now until `applied`, the index
        may hold it: a close in between must revert (the revert queues behind it)."""
        self._inflight[key] = self._inflight.get(key, 0) + 1

    def applied(self, key: str) -> None:
        """The buffer's text went into the index. Even saved text is marked: the indexer
        now treats the file as the editor's (a scan skips it), and the disk may change
        again while the buffer is open; only a revert at close hands it back to the disk."""
        left = self._inflight.get(key, 0) - 1
        if left > 0:
            self._inflight[key] = left
        else:
            self._inflight.pop(key, None)
        if key in self.open:
            self._buffered.add(key)

    def closed(self, uri: str) -> bool:
        """Forget the buffer; True when the index must be reverted to the disk: it holds
        (or is about to hold) buffer text, or an edit had not been handed over yet."""
        key = doc_key(uri)
        self.open.discard(key)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        dirty = key in self._buffered or timer is not None or key in self._inflight
        self._buffered.discard(key)
        return dirty

    def take_pending(self) -> list[str]:
        """Cancel every debounce timer; the keys whose edits they would have flushed."""
        keys = list(self._timers)
        self.cancel_all()
        return keys

    def pending(self) -> list[str]:
        """Keys of the buffers whose edits wait for their debounce timer."""
        return list(self._timers)

    def buffered(self) -> list[str]:
        """Keys whose text the index holds or is about to hold."""
        return list(self._buffered | self._inflight.keys())

    def cancel_all(self) -> None:
        """Cancel every debounce timer (shutdown)."""
        for timer in self._timers.values():
            timer.cancel()
        self._timers.clear()

    def _schedule(self, uri: str) -> None:
        key = doc_key(uri)
        timer = self._timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        self._timers[key] = self._loop.call_later(self._delay, self._fire, key)

    def _fire(self, key: str) -> None:
        self._timers.pop(key, None)
        self._flush(key)
