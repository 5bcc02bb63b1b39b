"""The state behind the language server's handlers: `Session` puts the jobs together
(lifecycle, folders, status here; indexing in scheduler.py, buffers in buffers.py,
searches in searching.py). The thread model is in the package docstring.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import Any

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path

import semcode
from semcode.config import ConfigError, Settings, load_settings
from semcode.lsp import PROTOCOL_VERSION
from semcode.lsp import params as P
from semcode.lsp.buffers import BufferOp, BufferRouting
from semcode.lsp.core import STATUS_INTERVAL_S
from semcode.lsp.documents import Documents
from semcode.lsp.folders import Folder
from semcode.lsp.progress import progress_text
from semcode.lsp.scheduler import IndexingScheduler
from semcode.lsp.searching import TwoPhaseSearch
from semcode.lsp.tasks import Throttled
from semcode.models.registry import ModelSet
from semcode.search.engine import Engine
from semcode.states import ServeState

log = logging.getLogger(__name__)


class Session(IndexingScheduler, BufferRouting, TwoPhaseSearch):
    """One language-server session: every workspace folder, the models, the jobs."""

    def initialize(self, params: types.InitializeParams) -> None:
        """`initialize`: the client's folders and settings (initializationOptions)."""
        self.loop = asyncio.get_running_loop()
        self._documents = Documents(self.loop, self._flush_document)
        self._status = Throttled(self.loop, STATUS_INTERVAL_S, self._push_status, self.tasks)
        try:
            self.overrides = P.settings_mapping(params.initialization_options,
                                                "initializationOptions")
            self.settings = load_settings(None, self.overrides)
        except ConfigError as exc:
            raise JsonRpcInvalidParams(message=f"invalid initializationOptions: {exc}") from None
        self.models = ModelSet(self.settings, on_notice=self._model_notice)
        roots = [(f.uri, f.name) for f in params.workspace_folders or []]
        root_uri = params.root_uri or (from_fs_path(params.root_path) if params.root_path else None)
        if not roots and root_uri:
            roots = [(root_uri, "")]
        for uri, name in roots:
            self._add_folder(uri, name)
        log.info("semcode %s: %d folder(s), settings %s", semcode.__version__,
                 len(self.folders), self.overrides)

    async def initialized(self) -> None:
        """`initialized`: open every folder and start indexing it."""
        self.tasks.spawn(self._register_watchers(), "watcher registration")
        for folder in self.folders:
            self.tasks.spawn(self._index(folder), f"indexing {folder.name}")
        self.tasks.spawn(self._warm_up_models(), "model warm-up")

    async def _warm_up_models(self) -> None:
        """Load the query embedder and the reranker now, in the background, so that the
        first search does not wait for them (the document embedder loads with indexing)."""
        if self.models is None:
            return
        for load in (self.models.query_embedder, self.models.reranker):
            if self.closed:
                return
            await self._run(self.reads, None, load)
        await self._check_models()

    async def shutdown(self) -> None:
        """`shutdown`: cancel the work, close the folders' indexes and writers."""
        self.shutdown_requested = True
        await self._close_all()

    def exit(self) -> None:
        """`exit` without `shutdown`: stop what runs, flush what can be flushed quickly."""
        if not self.closed:
            self._stop_everything()
            for folder in self.folders:
                folder.writer.submit(self._close_engine, folder)
            self.closed = True

    def exit_code(self) -> int:
        """The exit status: 0 after a shutdown, 1 without one."""
        return 0 if self.shutdown_requested else 1

    async def configure(self, raw: object) -> None:
        """`workspace/didChangeConfiguration`: apply new settings (folders whose index settings
        changed are reopened)."""
        try:
            overrides = {**self.overrides, **P.settings_mapping(raw, "settings")}
            settings = load_settings(None, overrides)
        except ConfigError as exc:
            self._show(types.MessageType.Error, f"semcode: invalid settings: {exc}")
            return
        if settings == self.settings:
            return
        old, self.overrides, self.settings = self.settings, overrides, settings
        changed = [f.name for f in fields(Settings)
                   if getattr(old, f.name) != getattr(settings, f.name)]
        log.info("settings changed: %s", ", ".join(changed))
        self._cancel_embedding()
        assert self.models is not None
        await self._run(self.embeds, None, self.models.reconfigure, settings)
        for folder in self.folders:
            fresh = self._folder_settings(folder.ref.root)
            engine = folder.engine
            folder.settings = fresh
            if engine is not None and not engine.needs_reopen(fresh):
                # Search-side settings (fusion, rerank, models): the index stays, searches
                # keep answering, and a new embedder fills its vectors in the background.
                engine.update_settings(fresh)
                self._kick_embedding()
                continue
            self.tasks.spawn(self._index(folder, reopen=engine is not None),
                             f"reindexing {folder.name}")

    async def change_folders(self, event: types.WorkspaceFoldersChangeEvent) -> None:
        """`workspace/didChangeWorkspaceFolders`: open added folders, close removed ones."""
        for removed in event.removed:
            folder = next((f for f in self.folders if f.ref.uri == removed.uri), None)
            if folder is not None:
                self.folders.remove(folder)
                await self._close_folder(folder)
        for added in event.added:
            if all(f.ref.uri != added.uri for f in self.folders):
                folder = self._add_folder(added.uri, added.name)
                if folder is not None:
                    self.tasks.spawn(self._index(folder), f"indexing {folder.name}")
        self._status_changed()

    def _stop_everything(self) -> None:
        self.searches.cancel_all()
        self._cancel_embedding()
        for folder in self.folders:
            folder.stop.set()
        if self._documents is not None:
            self._documents.cancel_all()
        if self._status is not None:
            self._status.cancel()

    async def _close_all(self) -> None:
        if self.closed:
            return
        self.searches.cancel_all()
        self._cancel_embedding()
        # Unsaved buffers must not outlive the session in the index.
        reverts = []
        for key in self.documents.buffered() + self.documents.pending():
            loc = self._locate(key)
            if loc is not None:
                reverts.append(self._run(loc[0].writer, loc[0], self._apply, loc[0], BufferOp.CLOSE,
                                         loc[1]))
        await asyncio.gather(*reverts, return_exceptions=True)
        self._stop_everything()
        await asyncio.gather(*(self._close_folder(f) for f in self.folders))
        if self.models is not None:
            await self._run(self.reads, None, self.models.close)
        self.closed = True

    def close_executors(self, timeout_s: float) -> bool:
        """After the loop ended: True when every worker thread finished in time."""
        deadline = time.monotonic() + timeout_s
        pools: list[ThreadPoolExecutor] = [self.reads, self.embeds, self.reranks]
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        for folder in self.folders:  # queued flush/close jobs still run
            folder.writer.shutdown(wait=False)
        pools += [f.writer for f in self.folders]
        threads = [t for pool in pools for t in getattr(pool, "_threads", ())]
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    async def _register_watchers(self) -> None:
        caps = self.ls.client_capabilities.workspace
        watch = caps.did_change_watched_files if caps else None
        if not (watch and watch.dynamic_registration):
            return
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern="**/*")])
        registration = types.Registration(
            id="semcode-watched-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=options)
        await self.ls.client_register_capability_async(
            types.RegistrationParams(registrations=[registration]))

    async def status(self) -> dict[str, Any]:
        """The status payload: overall state, degraded stages, models and each folder."""
        assert self.models is not None
        models = await self._run(self.reads, None, self.models.status)
        degraded = await self._run(self.reads, None, self.models.notices)
        workspaces = await asyncio.gather(*(self._run(self.reads, f, self._folder_status, f)
                                            for f in self.folders))
        states = {f.state for f in self.folders}
        order = (ServeState.ERROR, ServeState.INDEXING, ServeState.STARTING, ServeState.EMBEDDING)
        state = next((s for s in order if s in states), ServeState.READY)
        return {"version": semcode.__version__, "protocolVersion": PROTOCOL_VERSION,
                "state": state.value, "degraded": degraded, "models": models,
                "workspaces": list(workspaces)}

    @staticmethod
    def _folder_status(folder: Folder) -> dict[str, Any]:
        base: dict[str, Any] = {"root": str(folder.ref.root), "indexDir": "", "files": 0,
                                "chunks": 0, "embedded": 0, "pendingEmbeddings": 0,
                                "skippedFiles": 0}
        if folder.engine is not None:
            try:
                base.update(folder.read(Engine.status) or {})
            except Exception as exc:
                log.warning("status of %s failed: %s", folder.ref.root, exc)
        p = folder.progress
        base["progress"] = None if p is None else {
            "stage": p.stage, "done": p.done, "total": p.total, "message": progress_text(p)[0]}
        base.update(workspaceFolder=folder.ref.uri, state=folder.state.value, error=folder.error,
                    embeddedThisSession=folder.embedded_session)
        return base

    async def _push_status(self) -> None:
        if not self.closed:
            self.ls.protocol.notify("semcode/status", await self.status())

    def _model_notice(self, line: str) -> None:
        """ModelSet says a model is missing or broken (once per model, from any thread):
        one `window/showMessage` warning."""
        if self.loop is not None and not self.closed:
            self.loop.call_soon_threadsafe(self._show, types.MessageType.Warning,
                                           f"semcode: {line}")


__all__ = ["Session", "Folder"]
