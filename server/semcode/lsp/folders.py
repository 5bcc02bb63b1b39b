"""A workspace folder as the session sees it: its engine (borrowed by readers, detached
by the writer that closes it), its writer thread, its state and embedding priority.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar, TypeVarTuple

from semcode.config import Settings
from semcode.lsp.records import FolderRef
from semcode.search.engine import Engine, Progress, SearchResponse
from semcode.states import ServeState

log = logging.getLogger(__name__)
T = TypeVar("T")
Args = TypeVarTuple("Args")

CLOSE_WAIT_S = 30.0  # how long closing waits for in-flight engine work


@dataclass(eq=False)
class Folder:
    """One workspace folder: its engine, writer thread and state."""

    ref: FolderRef
    name: str
    settings: Settings
    writer: ThreadPoolExecutor
    engine: Engine | None = None
    state: ServeState = ServeState.STARTING
    error: str = ""
    progress: Progress | None = None
    recent: deque[str] = field(default_factory=lambda: deque(maxlen=64))
    priority: tuple[str, ...] = ()  # open + recently edited rel paths, most urgent first
    embedded_session: int = 0  # chunks embedded by this server process
    stop: threading.Event = field(default_factory=threading.Event)  # closing: stop everything
    # Held while the embed thread uses the engine and while the writer closes it.
    lifecycle: threading.Lock = field(default_factory=threading.Lock)
    inflight: set[asyncio.Future[Any]] = field(default_factory=set)
    # Readers (searches, related, status) borrow the engine; closing it waits for them.
    readers: threading.Condition = field(default_factory=threading.Condition)
    borrowed: int = 0
    # Set while the writer waits for another process's write lock (the index's notice).
    writer_waiting: threading.Event = field(default_factory=threading.Event)

    def rel(self, path: Path) -> str | None:
        """The folder-relative path of `path` (resolving symlinks either side); None outside
        the folder, for the folder itself, or for a path that cannot be resolved."""
        try:
            for root in (self.ref.root, self.ref.root.resolve()):
                for p in (path, path.resolve()) if path.is_absolute() else (path,):
                    try:
                        rel = p.relative_to(root).as_posix()
                    except ValueError:
                        continue
                    return rel if rel != "." else None
        except (OSError, ValueError, RuntimeError):  # a NUL byte, a symlink loop
            return None
        return None

    def read(self, fn: Callable[[Engine, *Args], T], *args: *Args) -> T | None:
        """Any thread: `fn(engine, *args)` with the engine borrowed, so that a reopen (a
        settings change, a removed folder) cannot close it under a running search. None
        when there is no engine."""
        with self.readers:
            engine = self.engine
            if engine is None:
                return None
            self.borrowed += 1
        try:
            return fn(engine, *args)
        finally:
            with self.readers:
                self.borrowed -= 1
                self.readers.notify_all()

    def detach_engine(self) -> Engine | None:
        """Writer thread: take the engine away from new readers, wait for the current ones."""
        with self.lifecycle, self.readers:
            engine, self.engine = self.engine, None
            if not self.readers.wait_for(lambda: self.borrowed == 0, timeout=CLOSE_WAIT_S):
                log.warning("%s: closing the index under %d running searches",
                            self.ref.root, self.borrowed)
        return engine


class EditBarrier:
    """The buffer edits handed to each folder's writer before a read (a search), and how
    long the read waits for them. The read job waits on its own thread (`read`), so it
    starts the moment the writer is done, without a round trip through the event loop.

    What a search guarantees (docs/protocol.md, Document sync): its answer holds every
    edit sent before it, or its `notices` say how many are missing and why: the wait
    ran out (another process holds the index's write lock, e.g. a terminal `semcode
    index --full`), or the folder was being indexed (`behind_scan`: edits are applied
    after the scan, and a search does not wait minutes for it)."""

    def __init__(self, edits: Mapping[Folder, Sequence[Future[Any]]] | None = None,
                 wait_s: float = 0.0, behind_scan: Mapping[Folder, int] | None = None) -> None:
        self._edits = {f: list(jobs) for f, jobs in (edits or {}).items() if jobs}
        self._behind_scan = {f: n for f, n in (behind_scan or {}).items() if n}
        self._wait_s = wait_s
        self._deadline = time.monotonic() + wait_s

    def read(self, folder: Folder, fn: Callable[[Engine, *Args], SearchResponse | None],
             *args: *Args) -> SearchResponse | None:
        """Read thread: wait until `folder`'s edits are in its index (at most until the
        deadline: then the read answers from what is there and its notices say so), then
        `folder.read(fn, ...)`."""
        jobs = self._edits.get(folder, [])
        if jobs:
            wait(jobs, timeout=max(0.0, self._deadline - time.monotonic()))
        missing = sum(not job.done() for job in jobs)
        response = folder.read(fn, *args)
        notice = self._notice(folder, missing)
        if response is not None and notice:
            response.notices.append(notice)
        return response

    def _notice(self, folder: Folder, missing: int) -> str:
        """Why `folder`'s answer lacks edits sent before the search ("" when it has them)."""
        if missing:
            why = ("another semcode process is writing this index (a terminal `semcode "
                   "index`?)" if folder.writer_waiting.is_set() else
                   f"they were not applied within {self._wait_s:g} s")
            edits, verb = _edits(missing, folder)
            return (f"{edits} sent before this search {verb} not in its results: {why}; "
                    "search again once they are applied")
        behind = self._behind_scan.get(folder, 0)
        if behind:
            edits, verb = _edits(behind, folder)
            return (f"{edits} {verb} not in these results yet: they are applied when its "
                    "indexing is done")
        return ""


def _edits(n: int, folder: Folder) -> tuple[str, str]:
    """('1 buffer edit in proj', 'is') / ('3 buffer edits in proj', 'are')."""
    if n == 1:
        return f"1 buffer edit in {folder.name}", "is"
    return f"{n} buffer edits in {folder.name}", "are"


class _Either(threading.Event):
    """Set when either of two events is (checked lazily by `is_set`)."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        super().__init__()
        self._a, self._b = a, b

    def is_set(self) -> bool:
        """Whether either event, or this one, is set."""
        return self._a.is_set() or self._b.is_set() or super().is_set()


def _either(a: threading.Event, b: threading.Event) -> threading.Event:
    return _Either(a, b)

