"""Buffer routing: editor buffers and file events to the folder's writer thread, in
order (debounced per document), and back to the disk's text on close. `BufferRouting`
owns the open documents' bookkeeping and the edits handed to a writer and not applied
yet, which a search waits for (`apply_pending_edits`).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Future
from enum import StrEnum
from pathlib import Path
from typing import Any

from lsprotocol import types
from pygls.uris import from_fs_path

from semcode.lsp.core import SessionContext
from semcode.lsp.documents import Documents, doc_key
from semcode.lsp.folders import EditBarrier, Folder
from semcode.search.engine import Engine
from semcode.states import ServeState

log = logging.getLogger(__name__)


BULK_WATCHED_EVENTS = 200  # more file events than this at once: rescan the folder instead
PENDING_EDITS_WAIT_S = 5.0  # a search waits at most this long for edits to be applied
_SURROGATE = re.compile("[\ud800-\udfff]")


class BufferOp(StrEnum):
    """One live update the writer thread applies to a folder's index."""

    UPDATE = "update"  # a buffer's text (debounced edits, didOpen)
    REMOVE = "remove"  # a deleted file
    CLOSE = "close"  # a closed buffer: back to the disk's text (unless it is a directory)
    REVERT = "revert"  # a file changed on disk: its disk text
    RENAME = "rename"  # a file renamed within the folder (the new path is passed as text)


def buffer_text(text: str) -> str:
    """An editor buffer's text as the index can store it: a lone surrogate (JSON allows
    `\\ud800`; UTF-8 cannot encode it) becomes U+FFFD, as invalid bytes do on disk."""
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        return _SURROGATE.sub("\ufffd", text)  # one for one: offsets stay as they were


class BufferRouting:
    """didOpen/didChange/didSave/didClose, watched files and renames. `rescan` indexes a
    folder again (too many file events at once); `written` runs after each live update
    is applied (embedding its new chunks)."""

    def __init__(self, ctx: SessionContext, rescan: Callable[[Folder], None],
                 written: Callable[[], None]) -> None:
        self._ctx, self._rescan, self._on_written = ctx, rescan, written
        self._documents: Documents | None = None
        # Buffer edits handed to a writer and not done yet (a search waits for them).
        self._edits: dict[Future[Any], Folder] = {}

    def start(self, loop: asyncio.AbstractEventLoop) -> None:
        """`initialize` (loop thread): the per-document debounce timers run on `loop`."""
        self._documents = Documents(loop, self._flush_document)

    @property
    def documents(self) -> Documents:
        """The open buffers (exists once `initialize` ran)."""
        assert self._documents is not None
        return self._documents

    def buffer_line(self, path: Path, line: int) -> str | None:
        """The 0-based `line` of the open buffer of `path` as the index stores it; None when
        the file is not open (or has no such line). Hits' columns are counted in it."""
        uri = from_fs_path(str(path))
        doc = self._ctx.ls.workspace.text_documents.get(doc_key(uri)) if uri else None
        if doc is None:
            return None
        lines = doc.lines
        return buffer_text(lines[line].rstrip("\r\n")) if 0 <= line < len(lines) else None

    def did_open(self, uri: str) -> None:
        """Index an opened buffer's text (debounced)."""
        self.documents.opened(uri)

    def did_change(self, uri: str) -> None:
        """Index a changed buffer's text (debounced)."""
        self.documents.changed(uri)

    def did_save(self, uri: str) -> None:
        """Index a saved buffer's text (debounced)."""
        self.documents.saved(uri)

    def did_close(self, uri: str) -> None:
        """A closed buffer: its file's disk text again, once the writer gets to it."""
        loc = self._ctx.locate(uri)
        if self.documents.closed(uri) and loc is not None:
            self._write(loc[0], BufferOp.CLOSE, loc[1], edit=True)
        self._update_priority()

    def apply_pending_edits(self) -> EditBarrier:
        """Hand every debounced edit to its writer now (loop thread) and return what a read
        waits for before it reads (at most `PENDING_EDITS_WAIT_S`): a search sees every
        keystroke made before it, not the text of 300 ms ago, or says which it lacks."""
        if self._documents is not None:
            for key in self.documents.take_pending():
                self._flush_document(key)
        # Not behind a folder's scan: the writer applies edits after it (minutes for a
        # first index), and a search meanwhile answers from what is indexed so far.
        waits: dict[Folder, list[Future[Any]]] = {}
        behind_scan: dict[Folder, int] = {}
        for job, folder in self._edits.items():
            if folder.state != ServeState.INDEXING:
                waits.setdefault(folder, []).append(job)
            else:
                behind_scan[folder] = behind_scan.get(folder, 0) + 1
        return EditBarrier(waits, PENDING_EDITS_WAIT_S, behind_scan)

    def cancel_timers(self) -> None:
        """Closing: no debounced edit fires any more."""
        if self._documents is not None:
            self._documents.cancel_all()

    async def revert_all(self) -> None:
        """Shutdown: every buffer the index holds (or is about to) back to the disk's text;
        unsaved buffers must not outlive the session in the index."""
        if self._documents is None:
            return
        reverts = []
        for key in self.documents.buffered() + self.documents.pending():
            loc = self._ctx.locate(key)
            if loc is not None:
                folder = loc[0]
                reverts.append(self._ctx.run(folder.writer, folder, apply_op, folder,
                                             BufferOp.CLOSE, loc[1]))
        await asyncio.gather(*reverts, return_exceptions=True)

    def _flush_document(self, key: str) -> None:
        """Debounce timer fired (or a search asked): hand the buffer's current text to
        the folder's writer."""
        loc = self._ctx.locate(key)
        doc = self._ctx.ls.workspace.text_documents.get(key)
        if loc is None or doc is None:
            return
        folder, rel = loc
        if rel in folder.recent:
            folder.recent.remove(rel)
        folder.recent.appendleft(rel)
        self._update_priority()
        self.documents.submitted(key)
        self._write(folder, BufferOp.UPDATE, rel, buffer_text(doc.source),
                    lambda: self.documents.applied(key), edit=True)

    def _update_priority(self) -> None:
        open_rel: dict[Folder, list[str]] = {}
        for key in self.documents.open:
            loc = self._ctx.locate(key)
            if loc is not None:
                open_rel.setdefault(loc[0], []).append(loc[1])
        for folder in self._ctx.folders:
            seen = dict.fromkeys([*folder.recent, *open_rel.get(folder, [])])
            folder.priority = tuple(seen)

    def _write(self, folder: Folder, op: BufferOp, rel: str, text: str | None = None,
               then: Callable[[], None] | None = None, edit: bool = False) -> None:
        """Queue one live update on the folder's writer thread now (so that a search
        asked next finds it queued). `text` is the buffer's text for UPDATE and the new
        relative path for RENAME. An `edit` (a buffer's text, a close) is what a search
        waits for (`apply_pending_edits`); `then` runs on the loop once it is applied."""
        try:
            job = folder.writer.submit(apply_op, folder, op, rel, text)
        except RuntimeError:  # the writer was shut down: the folder is gone
            return
        if edit:
            self._edits[job] = folder
        self._ctx.tasks.spawn(self._written(folder, job, then), f"{op} {rel}")

    async def _written(self, folder: Folder, job: Future[Any],
                       then: Callable[[], None] | None) -> None:
        """Loop thread: after a live update (`_write`)."""
        done = asyncio.wrap_future(job)
        folder.inflight.add(done)
        done.add_done_callback(folder.inflight.discard)
        try:
            await done
        finally:
            self._edits.pop(job, None)
        if then is not None:
            then()
        self._on_written()
        self._ctx.status_changed()

    def reapply(self, folder: Folder) -> None:
        """After a scan: the open buffers win over the disk again."""
        for key in list(self.documents.open):
            loc = self._ctx.locate(key)
            doc = self._ctx.ls.workspace.text_documents.get(key)
            if loc is not None and loc[0] is folder and doc is not None:
                self._write(folder, BufferOp.UPDATE, loc[1], buffer_text(doc.source))

    def watched_files(self, changes: Sequence[types.FileEvent]) -> None:
        """Files changed on disk (not open in the editor): re-read or drop each; too many at once
        rescan the folder."""
        per_folder: dict[Folder, list[tuple[str, types.FileChangeType]]] = {}
        for change in changes:
            loc = self._ctx.locate(change.uri)
            if loc is not None and not self.documents.is_open(change.uri):
                per_folder.setdefault(loc[0], []).append((loc[1], change.type))
        for folder, events in per_folder.items():
            if len(events) > BULK_WATCHED_EVENTS:
                self._rescan(folder)
                continue
            for rel, kind in events:
                deleted = kind == types.FileChangeType.Deleted
                self._write(folder, BufferOp.REMOVE if deleted else BufferOp.REVERT, rel)

    def renamed_files(self, files: Iterable[types.FileRename]) -> None:
        """Renamed files: moved within a folder, or removed from one and read into another."""
        for f in files:
            old, new = self._ctx.locate(f.old_uri), self._ctx.locate(f.new_uri)
            if old is not None and new is not None and old[0] is new[0]:
                self._write(old[0], BufferOp.RENAME, old[1], new[1])
                continue
            if old is not None:
                self._write(old[0], BufferOp.REMOVE, old[1])
            if new is not None:
                self._write(new[0], BufferOp.REVERT, new[1])


def apply_op(folder: Folder, op: BufferOp, rel: str, text: str | None = None) -> None:
    """Writer thread: one live update; never raises (an edit must not kill the server)."""
    engine = folder.engine
    if engine is None or folder.stop.is_set():
        return
    try:
        if op == BufferOp.UPDATE and text is not None:
            refused = _refuse_buffer(folder, engine, rel)
            if refused:
                log.info("%s: not indexed (%s)", rel, refused)
            else:
                for warning in engine.update_file(rel, text):
                    log.info("%s", warning)
        elif op == BufferOp.REMOVE:
            engine.remove_file(rel)
        elif op == BufferOp.CLOSE:  # a closed buffer: the disk's text again
            if not (folder.ref.root / rel).is_dir():  # a "document" that is a directory
                engine.revert_file(rel)
        elif op == BufferOp.REVERT:
            engine.revert_file(rel)
        elif op == BufferOp.RENAME and text is not None:
            engine.rename_file(rel, text)
    except Exception:
        log.exception("%s %s failed", op, rel)
    finally:
        folder.writer_waiting.clear()  # whatever it waited for, it is done


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
