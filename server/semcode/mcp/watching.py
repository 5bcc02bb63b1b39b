"""Which files changed on disk, as the OS reports them (`watchfiles`: inotify, FSEvents,
ReadDirectoryChangesW), so that the MCP server need not walk the whole workspace before
every tool call. The language server is told the same by the editor
(`workspace/didChangeWatchedFiles`); an agent's MCP server has no editor, so it watches.

`ChangeWatcher` collects changed paths in a background thread; `take()` hands over what
changed since the last call, or None when that is not known (too many changes at once,
the watcher failed or never started): then the caller checks the whole workspace.
A change is reported some milliseconds after it happens (the OS's delivery plus
`STEP_MS` of quiet), so the MCP server relies on the watcher only where walking the
workspace is slow (`McpService`); on a small workspace every call still walks it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from pathlib import Path

log = logging.getLogger(__name__)

# Changes are delivered once nothing changed for STEP_MS, or at the latest after
# DEBOUNCE_MS of continuous changes (a checkout).
STEP_MS = 10
DEBOUNCE_MS = 200
# More changed paths than this before they are taken: checking everything is cheaper than
# one update per path (a branch switch), and the set stays bounded.
MAX_PENDING = 1000


class ChangeWatcher:
    """Paths changed under `root` (workspace-relative, `/`-separated) since the last
    `take()`, collected by a daemon thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._changed: set[str] = set()
        self._overflow = False
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.error = ""  # why it does not watch (empty while it does)

    @property
    def watching(self) -> bool:
        """Whether changes are being collected (started and not failed)."""
        return self._thread is not None and self._thread.is_alive() and not self.error

    def start(self) -> bool:
        """Start watching, in a daemon thread; returns False (with `error` set) when there
        is no watcher library. Where the OS refuses later (too many directories for its
        limit, permissions), `take()` says so by returning None from then on. Start it
        before the first full check of the workspace: a change the watches are not set
        up for yet is still seen by that check (the watcher walks the tree faster)."""
        try:
            import watchfiles  # noqa: F401, PLC0415  (optional at run time: fall back)
        except ImportError as exc:
            self.error = f"no file watcher ({exc})"
            return False
        self._thread = threading.Thread(target=self._run, name="semcode-mcp-watch",
                                        daemon=True)
        self._thread.start()
        return True

    def _run(self) -> None:
        import watchfiles  # noqa: PLC0415

        try:
            for changes in watchfiles.watch(self.root, debounce=DEBOUNCE_MS, step=STEP_MS,
                                            stop_event=self._stop, raise_interrupt=False,
                                            recursive=True):
                self._note(path for _, path in changes)
        except Exception as exc:  # the OS refused (limits, permissions): check everything
            self.error = f"watching {self.root} failed: {exc}"
            log.warning("%s; every tool call checks the whole workspace instead", self.error)

    def _note(self, paths: Iterable[str]) -> None:
        with self._lock:
            for path in paths:
                try:
                    rel = Path(path).relative_to(self.root).as_posix()
                except ValueError:
                    continue
                self._changed.add(rel)
            if len(self._changed) > MAX_PENDING:
                self._changed.clear()
                self._overflow = True

    def take(self) -> list[str] | None:
        """The paths changed since the last call (sorted), or None when that is not known
        (the watcher is not running, or too many changed): check everything."""
        with self._lock:
            changed, overflow = sorted(self._changed), self._overflow
            self._changed.clear()
            self._overflow = False
        if overflow or not self.watching:
            return None
        return changed

    def close(self) -> None:
        """Stop watching (the thread ends within the watcher's timeout)."""
        self._stop.set()
