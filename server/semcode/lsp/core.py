"""What every part of the session shares, owned in one place (`SessionContext`): the
client connection, the event loop, the settings, the models, the workspace folders and
the worker pools, and the small helpers all parts use. Each part (buffers.py,
scheduler.py, searching.py, progress.py) owns its own state on top of this; the host
(`session.Session`) builds the parts and wires them. See the package docstring for the
thread model.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
from collections.abc import Callable, Coroutine
from concurrent.futures import Executor, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, TypeVarTuple

from lsprotocol import types
from pygls.uris import to_fs_path

from semcode.config import ConfigError, Settings, load_settings, model_is_off
from semcode.kinds import Role
from semcode.lsp.folders import Folder
from semcode.lsp.records import FolderRef
from semcode.lsp.tasks import Tasks, Throttled
from semcode.models.registry import ModelSet
from semcode.states import MODEL_UNAVAILABLE, ModelState

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)
T = TypeVar("T")
Args = TypeVarTuple("Args")


STATUS_INTERVAL_S = 0.5  # semcode/status at most this often
UNAVAILABLE = MODEL_UNAVAILABLE


class SessionContext:
    """The session's shared state: the folders, settings, models, pools, loop and the
    background tasks. Every part gets this one object; nothing else is shared."""

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
        self.tasks = Tasks()
        self.ids = itertools.count(1)  # progress tokens and `semcode/related` ids
        self.closed = False
        self._status: Throttled | None = None
        self._model_states: dict[str, ModelState] = {}

    def start(self, loop: asyncio.AbstractEventLoop,
              push_status: Callable[[], Coroutine[Any, Any, None]]) -> None:
        """`initialize` (loop thread): the loop, and the throttled `semcode/status` push."""
        self.loop = loop
        self._status = Throttled(loop, STATUS_INTERVAL_S, push_status, self.tasks)

    def stop_status(self) -> None:
        """No more status pushes (closing)."""
        if self._status is not None:
            self._status.cancel()

    def add_folder(self, uri: str, name: str) -> Folder | None:
        """A workspace folder from its URI; None (and one warning) for a URI that is not a
        local folder: `file:` with an absolute path. Anything else (`vscode-vfs:`,
        `https:`, a bare path) would become a path relative to the server's working
        directory, and the wrong folder would be indexed."""
        fs = to_fs_path(uri) if uri.lower().startswith("file:") else None
        if not fs or not Path(fs).is_absolute():
            self.show(types.MessageType.Warning,
                      f"semcode: workspace folder {uri!r} is not a local folder (a file: URI "
                      "with an absolute path): it is not indexed")
            return None
        root = Path(fs)
        folder = Folder(
            ref=FolderRef(uri, root), name=name or root.name,
            settings=self.folder_settings(root),
            writer=ThreadPoolExecutor(1, thread_name_prefix=f"semcode-write-{root.name}"))
        self.folders.append(folder)
        return folder

    def folder_settings(self, root: Path) -> Settings:
        """User config < the folder's `.semcode.toml` < the client's settings."""
        try:
            return load_settings(root, self.overrides)
        except ConfigError as exc:
            self.show(types.MessageType.Warning, f"semcode: {exc} (using the editor's settings)")
            return self.settings

    def locate(self, uri: str) -> tuple[Folder, str] | None:
        """The folder holding `uri` (the innermost one) and the folder-relative path."""
        fs = to_fs_path(uri)
        if not fs:
            return None
        path = Path(fs)
        for folder in sorted(self.folders, key=lambda f: len(str(f.ref.root)), reverse=True):
            rel = folder.rel(path)
            if rel is not None:
                return folder, rel
        return None

    async def run(self, executor: Executor, folder: Folder | None,
                  fn: Callable[[*Args], T], *args: *Args) -> T:
        """`fn(*args)` on `executor`; counted in `folder.inflight` (closing waits for it)."""
        assert self.loop is not None
        fut = self.loop.run_in_executor(executor, functools.partial(fn, *args))
        if folder is not None:
            folder.inflight.add(fut)
            fut.add_done_callback(folder.inflight.discard)
        return await fut

    def status_changed(self) -> None:
        """Something the status shows changed: push `semcode/status` soon (throttled)."""
        if self._status is not None and not self.closed:
            self._status.changed()

    async def check_models(self) -> None:
        """Remember which models are unavailable (to skip embedding / reranking)."""
        if self.models is None or self.closed:
            return
        status = await self.run(self.reads, None, self.models.status)
        self._model_states = {role: st.state for role, st in status.items()}

    def unavailable(self, role: str) -> bool:
        """Whether the model in `role` ("embedder", "reranker") is off or cannot load."""
        settings = self.settings
        spec = settings.embedding_model if role == Role.EMBEDDER else settings.reranker_model
        return model_is_off(spec) or self._model_states.get(role) in UNAVAILABLE

    def show(self, kind: types.MessageType, message: str) -> None:
        """Log `message` and show it in the editor (`window/showMessage`)."""
        log.warning("%s", message)
        self.ls.window_show_message(types.ShowMessageParams(type=kind, message=message))
