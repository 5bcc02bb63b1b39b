"""The writer lock: one process (and one thread in it) at a time writes an index
directory. An OS file lock (`filelock`) plus a re-entrant mutex.

It must not touch the database or any index file; failing to lock is a `StoreError`.
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from filelock import FileLock, Timeout

from semcode.index.store_errors import StoreError

log = logging.getLogger("semcode.index.store")

# The notice the index sends while another process holds its write lock; the language
# server marks the folder's writer as waiting when it sees it (lsp/scheduler.py).
WRITER_BUSY_NOTICE = "waiting for another semcode process writing this index…"

LOCK_FILE = "write.lock"


class WriteLock:
    """One writer per index directory across processes (an OS file lock, `filelock`)
    and across the threads of this process (a mutex), re-entrant. `hold()` waits for
    another process with one line through `notice` (once per wait)."""

    def __init__(self, directory: Path, notice: Callable[[str], None] | None = None,
                 wait_s: float = 600.0) -> None:
        self.directory = directory
        self.notice = notice or (lambda line: log.warning("%s", line))
        self.wait_s = wait_s
        self._file = FileLock(directory / LOCK_FILE, thread_local=False)
        self._mutex = threading.RLock()
        self._owner: int | None = None
        self._depth = 0

    @property
    def held(self) -> bool:
        """Whether the calling thread holds the lock."""
        return self._owner == threading.get_ident() and self._depth > 0

    @property
    def depth(self) -> int:
        """How many nested `hold()`s the calling thread is inside (0 when it does not hold the
        lock); the indexer catches up with other processes only on the outermost one."""
        return self._depth if self.held else 0

    @contextlib.contextmanager
    def hold(self) -> Iterator[None]:
        """Hold the lock for the block, waiting for another process that holds it (one notice line
        after half a second; `StoreError` after `wait_s`). Re-entrant in the holding thread; the
        file lock is taken by the outermost level only."""
        with self._mutex:
            if self._depth == 0:
                self._acquire_file()
            with self._entered():
                yield

    @contextlib.contextmanager
    def try_hold(self) -> Iterator[bool]:
        """Like `hold()` when the lock is free (yields True); yields False at once when
        another thread or process holds it."""
        if not self._mutex.acquire(blocking=False):
            yield False
            return
        try:
            if self._depth == 0:
                try:
                    self._file.acquire(timeout=0)
                except (Timeout, OSError):
                    got = False
                else:
                    got = True
                if not got:
                    yield False
                    return
            with self._entered():
                yield True
        finally:
            self._mutex.release()

    @contextlib.contextmanager
    def _entered(self) -> Iterator[None]:
        """One level of holding (the mutex held, the file lock taken at depth 0); the
        last level out releases the file lock."""
        self._owner = threading.get_ident()
        self._depth += 1
        try:
            yield
        finally:
            self._depth -= 1
            if self._depth == 0:
                self._owner = None
                with contextlib.suppress(OSError):
                    self._file.release()

    def _acquire_file(self) -> None:
        try:
            try:
                self._file.acquire(timeout=0.5)
                return
            except Timeout:
                pass
            self.notice(WRITER_BUSY_NOTICE)
            try:
                self._file.acquire(timeout=self.wait_s)
            except Timeout:
                raise StoreError(f"another semcode process kept the index at "
                                 f"{self.directory} locked for {self.wait_s:.0f}s") from None
        except OSError as exc:
            raise StoreError(f"cannot lock the index at {self.directory}: "
                             f"{exc.strerror or exc}") from None

