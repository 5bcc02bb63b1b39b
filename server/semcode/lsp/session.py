"""The state behind the language server's handlers: one `Engine` per workspace folder
over one shared `ModelSet`, indexing in the background, live updates from buffers and
the file watcher, two-phase searches, status.

Threads (nothing slow ever runs on the event loop):
* one *writer* thread per folder: `Engine.open`, `sync`, `update_file`, `remove_file`,
  `revert_file`, `rename_file`, `flush`, `close`, in the order they were asked for (so a
  buffer's text always lands after the scan that would otherwise overwrite it);
* one *embed* thread: `embed_pending` in slices of `EMBED_SLICE_S`, open and recently
  edited files first (the priority is re-read between slices);
* one *rerank* thread: the cross-encoder, so a slow rerank never delays an edit;
* a small *read* pool: first-stage searches, `related`, status.
Results and notifications are always sent from the event loop.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import logging
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ThreadPoolExecutor
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from lsprotocol import types
from pygls.exceptions import JsonRpcInvalidParams
from pygls.uris import from_fs_path, to_fs_path

import semcode
from semcode.config import ConfigError, Settings, load_settings
from semcode.lsp import PROTOCOL_VERSION
from semcode.lsp import params as P
from semcode.lsp.convert import FolderRef, search_item, workspace_symbol
from semcode.lsp.documents import Documents, doc_key
from semcode.lsp.searches import Merged, SearchBook, merge
from semcode.lsp.tasks import RateLimit, Tasks, Throttled
from semcode.models.registry import ModelSet
from semcode.search.engine import (
    EmbedReport,
    Engine,
    Progress,
    SearchError,
    SearchRequest,
    SearchResponse,
)

if TYPE_CHECKING:
    from pygls.lsp.server import LanguageServer

log = logging.getLogger(__name__)
T = TypeVar("T")

EMBED_SLICE_S = 5.0  # embed_pending budget per call; the priority is refreshed between calls
EDIT_EMBED_DELAY_S = 1.0  # coalesce edits before embedding their new chunks
STATUS_INTERVAL_S = 0.5  # semcode/status at most this often
PROGRESS_INTERVAL_S = 0.2  # $/progress reports at most this often
WORKSPACE_SYMBOL_LIMIT = 50
BULK_WATCHED_EVENTS = 200  # more file events than this at once: rescan the folder instead
CLOSE_WAIT_S = 30.0  # how long closing waits for in-flight engine work
UNAVAILABLE = ("off", "missing", "error")
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(eq=False)
class Folder:
    ref: FolderRef
    name: str
    settings: Settings
    writer: ThreadPoolExecutor
    engine: Engine | None = None
    state: str = "starting"  # starting | indexing | embedding | ready | error
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

    def rel(self, path: Path) -> str | None:
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

    def read(self, fn: Callable[..., T], *args: Any) -> T | None:
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


class ProgressHandle:
    """A server-initiated `window/workDoneProgress`; inert when the client has none."""

    def __init__(self, ls: LanguageServer, token: str | None) -> None:
        self._ls, self.token = ls, token
        self.cancelled = threading.Event()
        if token is not None:
            fut = ls.work_done_progress.tokens.get(token)
            if fut is not None:
                fut.add_done_callback(self._on_done)

    def _on_done(self, fut: Any) -> None:
        if fut.cancelled():  # the client sent window/workDoneProgress/cancel
            self.cancelled.set()

    def begin(self, title: str) -> None:
        if self.token is not None:
            self._ls.work_done_progress.begin(self.token, types.WorkDoneProgressBegin(
                title=title, cancellable=True, message="starting", percentage=0))

    def report(self, message: str, percentage: int | None) -> None:
        if self.token is not None:
            self._ls.work_done_progress.report(self.token, types.WorkDoneProgressReport(
                message=message, percentage=percentage, cancellable=True))

    def end(self, message: str) -> None:
        if self.token is not None:
            self._ls.work_done_progress.end(self.token, types.WorkDoneProgressEnd(message=message))
            self._ls.work_done_progress.tokens.pop(self.token, None)
            self.token = None


def buffer_text(text: str) -> str:
    """An editor buffer's text as the index can store it: a lone surrogate (JSON allows
    `\\ud800`; UTF-8 cannot encode it) becomes U+FFFD, as invalid bytes do on disk."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)  # one for one: offsets stay as they were


def progress_text(p: Progress) -> tuple[str, int | None]:
    pct = int(100 * p.done / p.total) if p.total else None
    if p.message:
        return p.message, pct
    noun = "chunks" if p.stage == "embed" else "files"
    verb = "embedding " if p.stage == "embed" else ""
    return f"{verb}{p.done}/{p.total} {noun}", pct


class Session:
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
        self._ids = itertools.count(1)
        self.shutdown_requested = False
        self.closed = False

    # ------------------------------------------------------------------ lifecycle
    def initialize(self, params: types.InitializeParams) -> None:
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
        return 0 if self.shutdown_requested else 1

    async def configure(self, raw: Any) -> None:
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
        for removed in event.removed:
            folder = next((f for f in self.folders if f.ref.uri == removed.uri), None)
            if folder is not None:
                self.folders.remove(folder)
                await self._close_folder(folder)
        for added in event.added:
            if all(f.ref.uri != added.uri for f in self.folders):
                folder = self._add_folder(added.uri, added.name)
                self.tasks.spawn(self._index(folder), f"indexing {folder.name}")
        self._status_changed()

    # ------------------------------------------------------------------ folders
    def _add_folder(self, uri: str, name: str) -> Folder:
        root = Path(to_fs_path(uri) or uri)
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
                   fn: Callable[..., T], *args: Any) -> T:
        assert self.loop is not None
        fut = self.loop.run_in_executor(executor, functools.partial(fn, *args))
        if folder is not None:
            folder.inflight.add(fut)
            fut.add_done_callback(folder.inflight.discard)
        return await fut

    def _close_engine(self, folder: Folder) -> None:
        engine = folder.detach_engine()
        if engine is not None:
            try:
                engine.flush()
            finally:
                engine.close()

    async def _close_folder(self, folder: Folder) -> None:
        folder.stop.set()
        self._cancel_embedding()
        if folder.inflight:
            await asyncio.wait(list(folder.inflight), timeout=CLOSE_WAIT_S)
        try:
            await self._run(folder.writer, None, self._close_engine, folder)
        except Exception:
            log.exception("closing %s failed", folder.ref.root)
        folder.writer.shutdown(wait=False)

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
                reverts.append(self._run(loc[0].writer, loc[0], self._apply, loc[0], "close",
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

    # ------------------------------------------------------------------ indexing
    async def _index(self, folder: Folder, reopen: bool = False, full: bool = False) -> None:
        folder.state, folder.error = "indexing", ""
        self._status_changed()
        handle = await self._progress(f"semcode: indexing {folder.name}")
        ended = "stopped"
        try:
            try:
                report = await self._run(folder.writer, folder, self._sync, folder, reopen,
                                         full, self._progress_cb(folder, handle))
            except Exception as exc:
                if not folder.stop.is_set():
                    log.exception("indexing %s failed", folder.ref.root)
                    folder.state, folder.error = "error", f"indexing failed: {exc}"
                ended = folder.error or "stopped"
                return
            log.info("%s: %s", folder.ref.root, report)
            folder.state, folder.progress = "ready", None
            self._status_changed()
            if reopen or full:  # a fresh or reset engine does not know the open buffers
                self._reapply_buffers(folder)
            try:
                if not handle.cancelled.is_set():
                    await self._embed(folder, handle, handle.cancelled)
                ended = "ready" if not handle.cancelled.is_set() else "embedding stopped"
            except Exception as exc:
                # Not an indexing failure: the index is intact and lexical search works;
                # `_embed` has put the state back to ready.
                if not folder.stop.is_set():
                    log.warning("embedding %s stopped: %s", folder.ref.root, exc)
                    folder.error = f"embedding failed: {exc}"
                ended = folder.error or "stopped"
        finally:
            handle.end(ended)
            folder.progress = None
            self._status_changed()
            self.tasks.spawn(self._check_models(), "model check")

    def _sync(self, folder: Folder, reopen: bool, full: bool,
              progress: Callable[[Progress], None]) -> Any:
        """Writer thread: open (or reopen) the engine, then reconcile it with the disk."""
        if folder.engine is not None and reopen:
            self._close_engine(folder)
        if folder.engine is None:
            assert self.models is not None
            folder.engine = Engine.open(folder.ref.root, folder.settings, self.models)
        if full:  # drop chunks and derived indexes; the embedding cache stays
            folder.engine.reset()
        return folder.engine.sync(progress=progress, cancel=folder.stop)

    async def _embed(self, folder: Folder, handle: ProgressHandle | None,
                     cancel: threading.Event | None = None) -> None:
        if folder.engine is None or self._unavailable("embedder"):
            return
        event = cancel or threading.Event()
        self._embed_cancels.add(event)
        folder.state = "embedding"
        self._status_changed()
        try:
            n = await self._run(self.embeds, folder, self._embed_slices, folder, event,
                                self._progress_cb(folder, handle))
            folder.embedded_session += n
        finally:
            self._embed_cancels.discard(event)
            if folder.state == "embedding":
                folder.state = "ready"
            folder.progress = None
            self._status_changed()

    def _embed_slices(self, folder: Folder, cancel: threading.Event,
                      progress: Callable[[Progress], None]) -> int:
        """Embed thread: `embed_pending` in slices until nothing is left (or stopped)."""
        total = 0
        stop = _either(cancel, folder.stop)
        while not stop.is_set():
            with folder.lifecycle:
                if folder.engine is None:
                    break
                report: EmbedReport = folder.engine.embed_pending(
                    progress=progress, cancel=stop, budget_s=EMBED_SLICE_S,
                    priority=folder.priority)
            total += report.embedded
            if report.embedded == 0 or report.pending == 0 or report.cancelled:
                break
        return total

    def _kick_embedding(self) -> None:
        """Edits happened: embed their new chunks soon (coalesced)."""
        if self.loop is None or self._embed_timer is not None or self.closed:
            return
        self._embed_timer = self.loop.call_later(EDIT_EMBED_DELAY_S, self._start_embedding)

    def _start_embedding(self) -> None:
        self._embed_timer = None
        if self._embed_task is not None and not self._embed_task.done():
            self._embed_again = True
            return
        self._embed_task = self.tasks.spawn(self._embed_all(), "background embedding")

    async def _embed_all(self) -> None:
        self._embed_again = True
        while self._embed_again and not self.closed:
            self._embed_again = False
            for folder in list(self.folders):
                if folder.state == "ready":
                    await self._embed(folder, None)
        self.tasks.spawn(self._check_models(), "model check")

    def _cancel_embedding(self) -> None:
        for event in list(self._embed_cancels):
            event.set()

    def _progress_cb(self, folder: Folder,
                     handle: ProgressHandle | None) -> Callable[[Progress], None]:
        """A callback for worker threads: rate-limited, forwarded to the loop."""
        limit = RateLimit(PROGRESS_INTERVAL_S)
        loop = self.loop
        assert loop is not None

        def on_progress(p: Progress) -> None:
            if limit.allow(force=p.total > 0 and p.done >= p.total):
                loop.call_soon_threadsafe(self._on_progress, folder, handle, p)

        return on_progress

    def _on_progress(self, folder: Folder, handle: ProgressHandle | None, p: Progress) -> None:
        folder.progress = p
        if handle is not None:
            handle.report(*progress_text(p))
        self._status_changed()

    async def _progress(self, title: str) -> ProgressHandle:
        caps = self.ls.client_capabilities
        if not (caps.window and caps.window.work_done_progress):
            return ProgressHandle(self.ls, None)
        token = f"semcode-{next(self._ids)}"
        try:
            await asyncio.wait_for(self.ls.work_done_progress.create_async(token), 10)
        except Exception as exc:
            log.warning("window/workDoneProgress/create failed: %s", exc)
            return ProgressHandle(self.ls, None)
        handle = ProgressHandle(self.ls, token)
        handle.begin(title)
        return handle

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

    # ------------------------------------------------------------------ live updates
    @property
    def documents(self) -> Documents:
        assert self._documents is not None
        return self._documents

    def did_open(self, uri: str) -> None:
        self.documents.opened(uri)

    def did_change(self, uri: str) -> None:
        self.documents.changed(uri)

    def did_save(self, uri: str) -> None:
        self.documents.saved(uri)

    def did_close(self, uri: str) -> None:
        loc = self._locate(uri)
        if self.documents.closed(uri) and loc is not None:
            self._write(loc[0], "close", loc[1])
        self._update_priority()

    def _flush_document(self, key: str) -> None:
        """Debounce timer fired: hand the buffer's current text to the folder's writer."""
        loc = self._locate(key)
        doc = self.ls.workspace.text_documents.get(key)
        if loc is None or doc is None:
            return
        folder, rel = loc
        if rel in folder.recent:
            folder.recent.remove(rel)
        folder.recent.appendleft(rel)
        self._update_priority()
        self.documents.submitted(key)
        self._write(folder, "update", rel, buffer_text(doc.source),
                    lambda: self.documents.applied(key))

    def _update_priority(self) -> None:
        open_rel: dict[Folder, list[str]] = {}
        for key in self.documents.open:
            loc = self._locate(key)
            if loc is not None:
                open_rel.setdefault(loc[0], []).append(loc[1])
        for folder in self.folders:
            seen = dict.fromkeys([*folder.recent, *open_rel.get(folder, [])])
            folder.priority = tuple(seen)

    def _write(self, folder: Folder, op: str, rel: str, text: str | None = None,
               then: Callable[[], None] | None = None) -> None:
        self.tasks.spawn(self._write_async(folder, op, rel, text, then), f"{op} {rel}")

    async def _write_async(self, folder: Folder, op: str, rel: str, text: str | None,
                           then: Callable[[], None] | None) -> None:
        try:
            await self._run(folder.writer, folder, self._apply, folder, op, rel, text)
        except RuntimeError:  # the writer was shut down: the folder is gone
            return
        if then is not None:
            then()
        self._kick_embedding()
        self._status_changed()

    @staticmethod
    def _apply(folder: Folder, op: str, rel: str, text: str | None = None) -> None:
        """Writer thread: one live update; never raises (an edit must not kill the server)."""
        engine = folder.engine
        if engine is None or folder.stop.is_set():
            return
        try:
            if op == "update" and text is not None:
                refused = Session._refuse_buffer(folder, engine, rel)
                if refused:
                    log.info("%s: not indexed (%s)", rel, refused)
                else:
                    for warning in engine.update_file(rel, text):
                        log.info("%s", warning)
            elif op == "remove":
                engine.remove_file(rel)
            elif op == "close":  # a closed buffer: the disk's text again
                if not (folder.ref.root / rel).is_dir():  # a "document" that is a directory
                    engine.revert_file(rel)
            elif op == "revert":
                engine.revert_file(rel)
            elif op.startswith("rename:"):
                engine.rename_file(rel, op.removeprefix("rename:"))
        except Exception:
            log.exception("%s %s failed", op, rel)

    @staticmethod
    def _refuse_buffer(folder: Folder, engine: Engine, rel: str) -> str | None:
        """Why an editor buffer at `rel` must not be indexed, by the workspace's own rules
        (as a scan would judge the file): None when it may."""
        if not engine.is_included(rel):
            return "excluded"
        path = folder.ref.root / rel
        if path.is_dir():  # a didOpen of a directory: never index it as a file
            return "a directory"
        real = engine.rel_path(path)  # symlinks resolved; None when outside the root
        if real is None:
            return "it resolves outside the workspace"
        if real != rel and engine.is_included(real):
            return f"a symlink to {real}, which is indexed under its own path"
        return None

    def _reapply_buffers(self, folder: Folder) -> None:
        """After a scan: the open buffers win over the disk again."""
        for key in list(self.documents.open):
            loc = self._locate(key)
            doc = self.ls.workspace.text_documents.get(key)
            if loc is not None and loc[0] is folder and doc is not None:
                self._write(folder, "update", loc[1], buffer_text(doc.source))

    def watched_files(self, changes: Sequence[types.FileEvent]) -> None:
        per_folder: dict[Folder, list[tuple[str, types.FileChangeType]]] = {}
        for change in changes:
            loc = self._locate(change.uri)
            if loc is not None and not self.documents.is_open(change.uri):
                per_folder.setdefault(loc[0], []).append((loc[1], change.type))
        for folder, events in per_folder.items():
            if len(events) > BULK_WATCHED_EVENTS:
                self.tasks.spawn(self._index(folder), f"rescan {folder.name}")
                continue
            for rel, kind in events:
                self._write(folder, "remove" if kind == types.FileChangeType.Deleted else "revert",
                            rel)

    def renamed_files(self, files: Iterable[types.FileRename]) -> None:
        for f in files:
            old, new = self._locate(f.old_uri), self._locate(f.new_uri)
            if old is not None and new is not None and old[0] is new[0]:
                self._write(old[0], f"rename:{new[1]}", old[1])
                continue
            if old is not None:
                self._write(old[0], "remove", old[1])
            if new is not None:
                self._write(new[0], "revert", new[1])

    async def reindex(self, args: tuple[Any, ...]) -> dict[str, Any]:
        full = P.reindex_full(args)
        self._cancel_embedding()
        for folder in self.folders:
            self.tasks.spawn(self._index(folder, full=full), f"reindex {folder.name}")
        return {"started": True}

    # ------------------------------------------------------------------ searching
    async def search(self, raw: Any) -> dict[str, Any]:
        req = P.search_request(raw)
        sid, cancel = self.searches.start()
        pending = False
        try:
            first = await self._first_stage(req) if req.query.strip() else []
            merged = merge(first, req.limit)
            items = self._items(merged)
            pending = bool(items) and self._wants_rerank(req) and not cancel.is_set()
            if pending:  # the response goes out before this task can notify (FIFO loop)
                self.tasks.spawn(self._refine(sid, req, first, items, cancel), f"rerank {sid}")
            return self._result(sid, merged, items, pending)
        except asyncio.CancelledError:  # $/cancelRequest
            cancel.set()
            raise
        finally:
            if not pending:
                self.searches.finish(sid)

    async def search_command(self, args: tuple[Any, ...]) -> dict[str, Any]:
        req = P.search_command(args)
        sid, cancel = self.searches.start()
        try:
            answers = await self._first_stage(req) if req.query.strip() else []
            if self._wants_rerank(req):
                answers = await self._rerank(req, answers, cancel)
            merged = merge(answers, req.limit)
            return self._result(sid, merged, self._items(merged), False)
        except asyncio.CancelledError:  # $/cancelRequest: stop the rerank too
            cancel.set()
            raise
        finally:
            self.searches.finish(sid)

    async def workspace_symbols(self, query: str) -> list[dict[str, Any]]:
        query = P.query_text("workspace/symbol", query)
        if not query.strip():
            return []
        req = SearchRequest(query=query, limit=WORKSPACE_SYMBOL_LIMIT, rerank=False)
        merged = merge(await self._first_stage(req), req.limit)
        return [workspace_symbol(item) for item in self._items(merged)]

    async def related(self, raw: Any) -> dict[str, Any]:
        p = P.related(raw)
        loc = self._locate(p.uri)
        sid = f"r{next(self._ids)}"
        if loc is None or loc[0].engine is None:
            notice = "this file is not in an indexed workspace folder"
            return self._result(sid, Merged([], False, "dense", [notice]), [], False)
        folder, rel = loc
        response = await self._run(self.reads, folder, folder.read, Engine.related, rel,
                                   p.line + 1, p.limit)
        if response is None:
            notice = f"{folder.name} is being re-indexed"
            return self._result(sid, Merged([], False, "dense", [notice]), [], False)
        merged = merge([(folder, response)], p.limit)
        return self._result(sid, merged, self._items(merged), False)

    def cancel_search(self, raw: Any) -> None:
        self.searches.cancel(P.search_id(raw))

    async def _first_stage(self, req: SearchRequest) -> list[tuple[Folder, SearchResponse]]:
        folders = [f for f in self.folders if f.engine is not None]
        answers = await asyncio.gather(
            *(self._run(self.reads, f, f.read, Engine.search, req) for f in folders),
            return_exceptions=True)
        out: list[tuple[Folder, SearchResponse]] = []
        for folder, answer in zip(folders, answers, strict=True):
            if answer is None:  # reopened meanwhile
                answer = SearchResponse([], False, req.mode,
                                        [f"{folder.name} is being re-indexed"], {})
            if isinstance(answer, SearchError):
                raise P.ParamError("semcode/search", str(answer))
            if isinstance(answer, BaseException):
                log.error("search in %s failed: %r", folder.ref.root, answer)
                answer = SearchResponse([], False, req.mode,
                                        [f"search failed in {folder.name}: {answer}"], {})
            out.append((folder, answer))
        self.tasks.spawn(self._check_models(), "model check")
        return out

    async def _rerank(self, req: SearchRequest, first: list[tuple[Folder, SearchResponse]],
                      cancel: threading.Event) -> list[tuple[Folder, SearchResponse]]:
        out = []
        for folder, response in first:
            engine = folder.engine
            if response.hits and engine is not None and not cancel.is_set():
                reranked = await self._run(self.reranks, folder, folder.read, Engine.rerank,
                                           req, response, cancel)
                response = reranked if reranked is not None else response
            out.append((folder, response))
        return out

    async def _refine(self, sid: str, req: SearchRequest,
                      first: list[tuple[Folder, SearchResponse]],
                      first_items: list[dict[str, Any]], cancel: threading.Event) -> None:
        t0 = time.perf_counter()
        message: dict[str, Any] = {"searchId": sid, "items": first_items, "reranked": False}
        try:
            merged = merge(await self._rerank(req, first, cancel), req.limit)
            if cancel.is_set():
                message["cancelled"] = True
            elif not merged.reranked:
                message["error"] = "; ".join(merged.notices) or "reranking is unavailable"
            else:
                message.update(items=self._items(merged), reranked=True)
        except Exception as exc:
            log.exception("rerank %s failed", sid)
            message["error"] = f"reranking failed: {exc}"
        finally:
            self.searches.finish(sid)
        message["timingsMs"] = {"rerank": round((time.perf_counter() - t0) * 1000, 1)}
        self.ls.protocol.notify("semcode/searchRefined", message)
        self.tasks.spawn(self._check_models(), "model check")

    def _wants_rerank(self, req: SearchRequest) -> bool:
        wanted = self.settings.rerank if req.rerank is None else req.rerank
        return wanted and not self._unavailable("reranker")

    def _unavailable(self, role: str) -> bool:
        spec = self.settings.embedding_model if role == "embedder" else self.settings.reranker_model
        return spec.strip().lower() == "off" or self._model_states.get(role) in UNAVAILABLE

    def _items(self, merged: Merged[Folder]) -> list[dict[str, Any]]:
        encoding = str(self.ls.workspace.position_encoding or "utf-16")
        return [search_item(hit, folder.ref, self._buffer_line, encoding)
                for folder, hit in merged.hits]

    def _buffer_line(self, path: Path, line: int) -> str | None:
        uri = from_fs_path(str(path))
        doc = self.ls.workspace.text_documents.get(doc_key(uri)) if uri else None
        if doc is None:
            return None
        lines = doc.lines
        return buffer_text(lines[line].rstrip("\r\n")) if 0 <= line < len(lines) else None

    @staticmethod
    def _result(sid: str, merged: Merged[Folder], items: list[dict[str, Any]],
                pending: bool) -> dict[str, Any]:
        return {"searchId": sid, "items": items, "reranked": merged.reranked,
                "rerankPending": pending, "mode": merged.mode, "notices": merged.notices,
                "timingsMs": {k: round(v, 2) for k, v in merged.timings_ms.items()}}

    # ------------------------------------------------------------------ status
    async def status(self) -> dict[str, Any]:
        assert self.models is not None
        models = await self._run(self.reads, None, self.models.status)
        degraded = await self._run(self.reads, None, self.models.notices)
        workspaces = await asyncio.gather(*(self._run(self.reads, f, self._folder_status, f)
                                            for f in self.folders))
        states = {f.state for f in self.folders}
        state = next((s for s in ("error", "indexing", "starting", "embedding") if s in states),
                     "ready")
        return {"version": semcode.__version__, "protocolVersion": PROTOCOL_VERSION,
                "state": state, "degraded": degraded, "models": models,
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
        base.update(workspaceFolder=folder.ref.uri, state=folder.state, error=folder.error,
                    embeddedThisSession=folder.embedded_session)
        return base

    def _status_changed(self) -> None:
        if self._status is not None and not self.closed:
            self._status.changed()

    async def _push_status(self) -> None:
        if not self.closed:
            self.ls.protocol.notify("semcode/status", await self.status())

    async def _check_models(self) -> None:
        """Remember which models are unavailable (to skip embedding / reranking)."""
        if self.models is None or self.closed:
            return
        status = await self._run(self.reads, None, self.models.status)
        self._model_states = {role: str(st.get("state", "")) for role, st in status.items()}

    def _model_notice(self, line: str) -> None:
        """ModelSet says a model is missing or broken (once per model, from any thread):
        one `window/showMessage` warning."""
        if self.loop is not None and not self.closed:
            self.loop.call_soon_threadsafe(self._show, types.MessageType.Warning,
                                           f"semcode: {line}")

    def _show(self, kind: types.MessageType, message: str) -> None:
        log.warning("%s", message)
        self.ls.window_show_message(types.ShowMessageParams(type=kind, message=message))


class _Either(threading.Event):
    """Set when either of two events is (checked lazily by `is_set`)."""

    def __init__(self, a: threading.Event, b: threading.Event) -> None:
        super().__init__()
        self._a, self._b = a, b

    def is_set(self) -> bool:
        return self._a.is_set() or self._b.is_set() or super().is_set()


def _either(a: threading.Event, b: threading.Event) -> threading.Event:
    return _Either(a, b)


__all__ = ["Session", "Folder"]
