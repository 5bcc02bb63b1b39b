"""Small concurrency helpers: rate limits for progress callbacks from worker threads, a
throttled pusher on the event loop, and a registry of background tasks."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any

log = logging.getLogger(__name__)


class RateLimit:
    """Thread-safe: `allow()` is true at most once per `interval_s` (always when forced)."""

    def __init__(self, interval_s: float) -> None:
        self._interval = interval_s
        self._last = 0.0
        self._lock = threading.Lock()

    def allow(self, force: bool = False) -> bool:
        """Whether an event may pass now (at most one per interval; `force` always passes)."""
        now = time.monotonic()
        with self._lock:
            if force or now - self._last >= self._interval:
                self._last = now
                return True
            return False


class Throttled:
    """Runs `fn` (async) at most every `interval_s` while `changed()` keeps being called;
    the last change is always followed by a run. Loop thread only."""

    def __init__(self, loop: asyncio.AbstractEventLoop, interval_s: float,
                 fn: Callable[[], Coroutine[Any, Any, None]], tasks: Tasks) -> None:
        self._loop, self._interval, self._fn, self._tasks = loop, interval_s, fn, tasks
        self._handle: asyncio.TimerHandle | None = None
        self._last = -interval_s

    def changed(self) -> None:
        """Something changed: run the callback now if the interval has passed, else once at its
        end."""
        if self._handle is not None:
            return
        delay = max(0.0, self._last + self._interval - self._loop.time())
        self._handle = self._loop.call_later(delay, self._fire)

    def cancel(self) -> None:
        """Drop a pending call."""
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        self._last = self._loop.time()
        self._tasks.spawn(self._fn(), "status push")


class Tasks:
    """Keeps references to fire-and-forget tasks and logs their failures."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(self, coro: Coroutine[Any, Any, Any], what: str) -> asyncio.Task[Any]:
        """Run a coroutine as a tracked task; its exceptions are logged, not lost."""
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)

        def done(t: asyncio.Task[Any]) -> None:
            self._tasks.discard(t)
            if not t.cancelled() and t.exception() is not None:
                log.error("%s failed", what, exc_info=t.exception())

        task.add_done_callback(done)
        return task

    def cancel_all(self) -> None:
        """Cancel every tracked task (shutdown)."""
        for task in list(self._tasks):
            task.cancel()
