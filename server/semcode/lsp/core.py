"""The state every part of the session shares (folders, models, executors, the loop)
and the small helpers they all use. See the package docstring for the thread model.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor, Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

from lsprotocol import types
from pygls.uris import to_fs_path

from semcode.config import ConfigError, Settings, load_settings, model_is_off
from semcode.lsp.convert import FolderRef
from semcode.lsp.documents import Documents
from semcode.lsp.folders import EditBarrier, Folder
from semcode.lsp.searches import SearchBook
from semcode.lsp.tasks import Tasks, Throttled
from semcode.models.registry import ModelSet
from semcode.states import MODEL_UNAVAILABLE

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)
T = TypeVar("T")
Args = TypeVarTuple("Args")


STATUS_INTERVAL_S = 0.5  # semcode/status at most this often
UNAVAILABLE = MODEL_UNAVAILABLE


class SessionCore:
    """Shared state and helpers; `Session` combines it with the jobs."""

    def __init__(self, ls: LanguageServer) -> None:
        self.ls = ls
        self.loop: asyncio.AbstractEventLoop | None = None
        self.overrides: dict[str, Any] = {}
        self.settings = Settings()
        self.models: ModelSet | None = None
        self.folders: list[Folder] = []
        self.reads = ThreadPoolExecutor(4, thread_name_prefix="semcode-read")
        self.embeds = ThreadPoolExecutor(1, thread_name_prefix="semcode-embed")
        self.reranks = ThreadPoolExecutor(1, thread_name_prefix="semcode-rerank")
        self.searches = SearchBook()
        self.tasks = Tasks()
        self._documents: Documents | None = None
        self._status: Throttled | None = None
        self._model_states: dict[str, str] = {}
        self._embed_timer: asyncio.TimerHandle | None = None
        self._embed_task: asyncio.Task[Any] | None = None
        self._embed_again = False
        self._embed_cancels: set[threading.Event] = set()
        # Buffer edits handed to a writer and not done yet (a search waits for them).
        self._edits: dict[Future[Any], Folder] = {}
        self._ids = itertools.count(1)
        self.shutdown_requested = False
        self.closed = False

    def _add_folder(self, uri: str, name: str) -> Folder | None:
        """A workspace folder from its URI; None (and one warning) for a URI that is not a
        local folder: `file:` with an absolute path. Anything else (`vscode-vfs:`,
        `https:`, a bare path) would become a path relative to the server's working
        directory, and the wrong folder would be indexed."""
        fs = to_fs_path(uri) if uri.lower().startswith("file:") else None
        if not fs or not Path(fs).is_absolute():
            self._show(types.MessageType.Warning,
                       f"semcode: workspace folder {uri!r} is not a local folder (a file: URI "
                       "with an absolute path): it is not indexed")
            return None
        root = Path(fs)
        folder = Folder(
            ref=FolderRef(uri, root), name=name or root.name,
            settings=self._folder_settings(root),
            writer=ThreadPoolExecutor(1, thread_name_prefix=f"semcode-write-{root.name}"))
        self.folders.append(folder)
        return folder

    def _folder_settings(self, root: Path) -> Settings:
        """User config < the folder's `.semcode.toml` < the client's settings."""
        try:
            return load_settings(root, self.overrides)
        except ConfigError as exc:
            self._show(types.MessageType.Warning, f"semcode: {exc} (using the editor's settings)")
            return self.settings

    def _locate(self, uri: str) -> tuple[Folder, str] | None:
        fs = to_fs_path(uri)
        if not fs:
            return None
        path = Path(fs)
        for folder in sorted(self.folders, key=lambda f: len(str(f.ref.root)), reverse=True):
            rel = folder.rel(path)
            if rel is not None:
                return folder, rel
        return None

    async def _run(self, executor: Executor, folder: Folder | None,
                   fn: Callable[[*Args], T], *args: *Args) -> T:
        assert self.loop is not None
        fut = self.loop.run_in_executor(executor, functools.partial(fn, *args))
        if folder is not None:
            folder.inflight.add(fut)
            fut.add_done_callback(folder.inflight.discard)
        return await fut

    @property
    def documents(self) -> Documents:
        """The open buffers (exists once `initialize` ran)."""
        assert self._documents is not None
        return self._documents

    def _status_changed(self) -> None:
        if self._status is not None and not self.closed:
            self._status.changed()

    async def _check_models(self) -> None:
        """Remember which models are unavailable (to skip embedding / reranking)."""
        if self.models is None or self.closed:
            return
        status = await self._run(self.reads, None, self.models.status)
        self._model_states = {role: str(st.get("state", "")) for role, st in status.items()}

    def _unavailable(self, role: str) -> bool:
        spec = self.settings.embedding_model if role == "embedder" else self.settings.reranker_model
        return model_is_off(spec) or self._model_states.get(role) in UNAVAILABLE

    def _show(self, kind: types.MessageType, message: str) -> None:
        log.warning("%s", message)
        self.ls.window_show_message(types.ShowMessageParams(type=kind, message=message))


    # Jobs that one part of the session asks of another (the real ones are in the mixins).
    def _kick_embedding(self) -> None:
        raise NotImplementedError

    async def _index(self, folder: Folder, reopen: bool = False, full: bool = False) -> None:
        raise NotImplementedError

    def _reapply_buffers(self, folder: Folder) -> None:
        raise NotImplementedError

    def apply_pending_edits(self) -> EditBarrier:
        """Hand every open buffer's debounced edits to the writers now; what a read must
        wait for (implemented by BufferRouting)."""
        raise NotImplementedError

