"""The language server's session: `Session` is the host that builds the parts and wires
them (each part owns its state; what they share is `core.SessionContext`), and does
the lifecycle, the settings, the folder changes and the status itself:
* `buffers.BufferRouting`: open documents, live updates to the writers, the read barrier;
* `scheduler.Indexing`: a folder's engine opened, synced and closed on its writer;
* `scheduler.EmbeddingScheduler`: background embedding (after indexing, after edits);
* `searching.TwoPhaseSearch`: searches, `related`, `workspace/symbol`;
* `progress.ProgressReporter`: work-done progress for indexing and embedding.
The parts and the host answer with records (`records.py`); the two notifications the
session sends are shaped by `convert.py` here, the handlers' results in `server.py`.
The thread model is in the package docstring.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import fields
from typing import TYPE_CHECKING

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path

import semcode
from semcode.config import ConfigError, Settings, load_settings
from semcode.lsp import convert
from semcode.lsp import params as P
from semcode.lsp.buffers import BufferRouting
from semcode.lsp.core import SessionContext
from semcode.lsp.folders import Folder
from semcode.lsp.progress import ProgressReporter
from semcode.lsp.records import FolderStatus, Refinement, ServerStatus
from semcode.lsp.scheduler import EmbeddingScheduler, Indexing
from semcode.lsp.searching import TwoPhaseSearch
from semcode.models.registry import ModelSet
from semcode.search.engine import Engine
from semcode.states import ServeState

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)


class Session:
    """One language-server session: every workspace folder, the models, the jobs."""

    def __init__(self, ls: LanguageServer) -> None:
        self.ctx = SessionContext(ls)
        self.progress = ProgressReporter(ls, self.ctx.ids, self.ctx.status_changed)
        self.embedding = EmbeddingScheduler(self.ctx, self.progress)
        self.buffers = BufferRouting(self.ctx, rescan=self._rescan, written=self.embedding.kick)
        self.indexing = Indexing(self.ctx, self.progress, self.embedding,
                                 reapply_buffers=self.buffers.reapply)
        self.searching = TwoPhaseSearch(self.ctx, self.buffers.apply_pending_edits,
                                        refined=self._send_refined)
        self.shutdown_requested = False

    @property
    def closed(self) -> bool:
        """Whether the session has shut down (or exited)."""
        return self.ctx.closed

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The event loop the session runs on (None before `initialize`)."""
        return self.ctx.loop

    def positions(self) -> convert.Positions:
        """How hits become positions for this client: its position encoding, the open
        buffers' lines."""
        encoding = self.ctx.ls.workspace.position_encoding or "utf-16"
        return convert.Positions(str(encoding), self.buffers.buffer_line)

    def initialize(self, params: types.InitializeParams) -> None:
        """`initialize`: the client's folders and settings (initializationOptions)."""
        ctx = self.ctx
        loop = asyncio.get_running_loop()
        ctx.start(loop, self._push_status)
        self.buffers.start(loop)
        try:
            ctx.overrides = P.settings_mapping(params.initialization_options,
                                               "initializationOptions")
            ctx.settings = load_settings(None, ctx.overrides)
        except ConfigError as exc:
            raise JsonRpcInvalidParams(message=f"invalid initializationOptions: {exc}") from None
        ctx.models = ModelSet(ctx.settings, on_notice=self._model_notice)
        roots = [(f.uri, f.name) for f in params.workspace_folders or []]
        root_uri = params.root_uri or (from_fs_path(params.root_path) if params.root_path else None)
        if not roots and root_uri:
            roots = [(root_uri, "")]
        for uri, name in roots:
            ctx.add_folder(uri, name)
        log.info("semcode %s: %d folder(s), settings %s", semcode.__version__,
                 len(ctx.folders), ctx.overrides)

    async def initialized(self) -> None:
        """`initialized`: open every folder and start indexing it."""
        tasks = self.ctx.tasks
        tasks.spawn(self._register_watchers(), "watcher registration")
        for folder in self.ctx.folders:
            tasks.spawn(self.indexing.index(folder), f"indexing {folder.name}")
        tasks.spawn(self._warm_up_models(), "model warm-up")

    def _rescan(self, folder: Folder) -> None:
        """Index `folder` again in the background (too many file events at once)."""
        self.ctx.tasks.spawn(self.indexing.index(folder), f"rescan {folder.name}")

    async def _warm_up_models(self) -> None:
        """Load the query embedder and the reranker now, in the background, so that the
        first search does not wait for them (the document embedder loads with indexing)."""
        ctx = self.ctx
        if ctx.models is None:
            return
        for load in (ctx.models.query_embedder, ctx.models.reranker):
            if ctx.closed:
                return
            await ctx.run(ctx.reads, None, load)
        await ctx.check_models()

    async def shutdown(self) -> None:
        """`shutdown`: cancel the work, close the folders' indexes and writers."""
        self.shutdown_requested = True
        await self._close_all()

    def exit(self) -> None:
        """`exit` without `shutdown`: stop what runs, flush what can be flushed quickly."""
        if not self.ctx.closed:
            self._stop_everything()
            for folder in self.ctx.folders:
                folder.writer.submit(self.indexing.close_engine, folder)
            self.ctx.closed = True

    def exit_code(self) -> int:
        """The exit status: 0 after a shutdown, 1 without one."""
        return 0 if self.shutdown_requested else 1

    async def configure(self, raw: object) -> None:
        """`workspace/didChangeConfiguration`: apply new settings (folders whose index settings
        changed are reopened)."""
        ctx = self.ctx
        try:
            overrides = {**ctx.overrides, **P.settings_mapping(raw, "settings")}
            settings = load_settings(None, overrides)
        except ConfigError as exc:
            ctx.show(types.MessageType.Error, f"semcode: invalid settings: {exc}")
            return
        if settings == ctx.settings:
            return
        old, ctx.overrides, ctx.settings = ctx.settings, overrides, settings
        changed = [f.name for f in fields(Settings)
                   if getattr(old, f.name) != getattr(settings, f.name)]
        log.info("settings changed: %s", ", ".join(changed))
        self.embedding.cancel()
        assert ctx.models is not None
        await ctx.run(ctx.embeds, None, ctx.models.reconfigure, settings)
        for folder in ctx.folders:
            fresh = ctx.folder_settings(folder.ref.root)
            engine = folder.engine
            folder.settings = fresh
            if engine is not None and not engine.needs_reopen(fresh):
                # Search-side settings (fusion, rerank, models): the index stays, searches
                # keep answering, and a new embedder fills its vectors in the background.
                engine.update_settings(fresh)
                self.embedding.kick()
                continue
            ctx.tasks.spawn(self.indexing.index(folder, reopen=engine is not None),
                            f"reindexing {folder.name}")

    async def change_folders(self, event: types.WorkspaceFoldersChangeEvent) -> None:
        """`workspace/didChangeWorkspaceFolders`: open added folders, close removed ones."""
        ctx = self.ctx
        for removed in event.removed:
            folder = next((f for f in ctx.folders if f.ref.uri == removed.uri), None)
            if folder is not None:
                ctx.folders.remove(folder)
                await self.indexing.close_folder(folder)
        for added in event.added:
            if all(f.ref.uri != added.uri for f in ctx.folders):
                folder = ctx.add_folder(added.uri, added.name)
                if folder is not None:
                    ctx.tasks.spawn(self.indexing.index(folder), f"indexing {folder.name}")
        ctx.status_changed()

    async def reindex(self, args: tuple[object, ...]) -> None:
        """The `semcode.reindex` command: re-index every folder (`full`: from scratch), in
        the background; embedding restarts afterwards."""
        full = P.reindex_full(args)
        self.embedding.cancel()
        for folder in self.ctx.folders:
            self.ctx.tasks.spawn(self.indexing.index(folder, full=full),
                                 f"reindex {folder.name}")

    def _stop_everything(self) -> None:
        self.searching.searches.cancel_all()
        self.embedding.cancel()
        for folder in self.ctx.folders:
            folder.stop.set()
        self.buffers.cancel_timers()
        self.ctx.stop_status()

    async def _close_all(self) -> None:
        ctx = self.ctx
        if ctx.closed:
            return
        self.searching.searches.cancel_all()
        self.embedding.cancel()
        await self.buffers.revert_all()
        self._stop_everything()
        await asyncio.gather(*(self.indexing.close_folder(f) for f in ctx.folders))
        if ctx.models is not None:
            await ctx.run(ctx.reads, None, ctx.models.close)
        ctx.closed = True

    def close_executors(self, timeout_s: float) -> bool:
        """After the loop ended: True when every worker thread finished in time."""
        ctx = self.ctx
        deadline = time.monotonic() + timeout_s
        pools: list[ThreadPoolExecutor] = [ctx.reads, ctx.embeds, ctx.reranks]
        for pool in pools:
            pool.shutdown(wait=False, cancel_futures=True)
        for folder in ctx.folders:  # queued flush/close jobs still run
            folder.writer.shutdown(wait=False)
        pools += [f.writer for f in ctx.folders]
        threads = [t for pool in pools for t in getattr(pool, "_threads", ())]
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    async def _register_watchers(self) -> None:
        caps = self.ctx.ls.client_capabilities.workspace
        watch = caps.did_change_watched_files if caps else None
        if not (watch and watch.dynamic_registration):
            return
        options = types.DidChangeWatchedFilesRegistrationOptions(
            watchers=[types.FileSystemWatcher(glob_pattern="**/*")])
        registration = types.Registration(
            id="semcode-watched-files", method=types.WORKSPACE_DID_CHANGE_WATCHED_FILES,
            register_options=options)
        await self.ctx.ls.client_register_capability_async(
            types.RegistrationParams(registrations=[registration]))

    async def status(self) -> ServerStatus:
        """The status: overall state, degraded stages, models and each folder."""
        ctx = self.ctx
        assert ctx.models is not None
        models = await ctx.run(ctx.reads, None, ctx.models.status)
        notices = await ctx.run(ctx.reads, None, ctx.models.notices)
        workspaces = await asyncio.gather(*(ctx.run(ctx.reads, f, self._folder_status, f)
                                            for f in ctx.folders))
        states = {f.state for f in ctx.folders}
        order = (ServeState.ERROR, ServeState.INDEXING, ServeState.STARTING, ServeState.EMBEDDING)
        state = next((s for s in order if s in states), ServeState.READY)
        return ServerStatus(semcode.__version__, state, notices, models, list(workspaces))

    @staticmethod
    def _folder_status(folder: Folder) -> FolderStatus:
        status = None
        if folder.engine is not None:
            try:
                status = folder.read(Engine.status)
            except Exception as exc:
                log.warning("status of %s failed: %s", folder.ref.root, exc)
        return FolderStatus(folder.ref, status, folder.progress, folder.state, folder.error,
                            folder.embedded_session)

    async def _push_status(self) -> None:
        if not self.ctx.closed:
            payload = convert.server_status(await self.status())
            self.ctx.ls.protocol.notify("semcode/status", payload)

    def _send_refined(self, refined: Refinement) -> None:
        """A search's second phase, to the client (loop thread)."""
        payload = convert.refinement(refined, self.positions())
        self.ctx.ls.protocol.notify("semcode/searchRefined", payload)

    def _model_notice(self, line: str) -> None:
        """ModelSet says a model is missing or broken (once per model, from any thread):
        one `window/showMessage` warning."""
        loop = self.ctx.loop
        if loop is not None and not self.ctx.closed:
            loop.call_soon_threadsafe(self.ctx.show, types.MessageType.Warning,
                                      f"semcode: {line}")


__all__ = ["Session", "Folder"]
