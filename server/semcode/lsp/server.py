"""`semcode serve`: the pygls adapter. Each handler is a few lines: it delegates to
`Session` or one of its parts (`session.buffers`, `session.searching`: state, threads),
which answer with records, and turns the answer into its JSON with `convert`;
retrieval lives in `semcode.search.engine`. The contract is docs/protocol.md.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
from pathlib import Path
from typing import Any, BinaryIO

from lsprotocol import types
from pygls.lsp.server import LanguageServer

import semcode
from semcode.lsp import convert, logs, wire
from semcode.lsp.protocol import SemcodeProtocol, converter_factory
from semcode.lsp.session import Session
from semcode.messages import first_line

log = logging.getLogger(__name__)

COMMANDS = ("semcode.search", "semcode.reindex", "semcode.status")


class SemcodeServer(LanguageServer):
    """The pygls server: semcode's protocol class and converter, and the Session that does the
    work."""

    def __init__(self) -> None:
        super().__init__("semcode", semcode.__version__,
                         text_document_sync_kind=types.TextDocumentSyncKind.Incremental,
                         protocol_cls=SemcodeProtocol, converter_factory=converter_factory)
        self.session = Session(self)
        self._loop_thread: int | None = None

    def log_to_client(self, level: int, text: str) -> None:
        """`window/logMessage` from any thread (a sink for `logs.ClientLogHandler`)."""
        loop = self.session.loop
        if loop is None or loop.is_closed() or self.session.closed:
            return
        kind = (types.MessageType.Error if level >= logging.ERROR else
                types.MessageType.Warning if level >= logging.WARNING else types.MessageType.Log)
        params = types.LogMessageParams(type=kind, message=text)
        if threading.get_ident() == self._loop_thread:
            self.window_log_message(params)
        else:
            loop.call_soon_threadsafe(self.window_log_message, params)

    def start_io(self, stdin: BinaryIO | None = None, stdout: BinaryIO | None = None) -> None:
        """pygls' stdio server with semcode's hardened framing (see `wire`)."""
        wire.serve_io(self, stdin, stdout)

    def report_server_error(self, error: Exception, source: Any) -> None:
        """One log line. pygls' default also pops a `window/showMessage` dialog for every
        failed notification (a bad didChange, an unknown document), which a client cannot
        act on; a failed request is already answered with its error."""
        log.warning("server error (%s): %s", getattr(source, "__name__", source),
                    first_line(error))


# ---------------------------------------------------------------------- lifecycle
def initialize(ls: SemcodeServer, params: types.InitializeParams) -> None:
    """`initialize`: note the event loop's thread; the session reads folders and settings."""
    ls._loop_thread = threading.get_ident()
    ls.session.initialize(params)


async def initialized(ls: SemcodeServer, params: types.InitializedParams) -> None:
    """`initialized`: start indexing the folders."""
    await ls.session.initialized()


async def shutdown(ls: SemcodeServer, params: object) -> None:
    """`shutdown`: stop the work in progress and close the indexes."""
    await ls.session.shutdown()


def exit_(ls: SemcodeServer, params: object) -> None:
    """`exit`: stop what still runs (see Session.exit)."""
    ls.session.exit()


async def did_change_configuration(ls: SemcodeServer,
                                   params: types.DidChangeConfigurationParams) -> None:
    """`workspace/didChangeConfiguration`: apply the new settings."""
    await ls.session.configure(params.settings)


async def did_change_folders(ls: SemcodeServer,
                             params: types.DidChangeWorkspaceFoldersParams) -> None:
    """`workspace/didChangeWorkspaceFolders`: open and close folders."""
    await ls.session.change_folders(params.event)


# ---------------------------------------------------------------------- documents
def did_open(ls: SemcodeServer, params: types.DidOpenTextDocumentParams) -> None:
    """`textDocument/didOpen`: the buffer's text is indexed (debounced)."""
    ls.session.buffers.did_open(params.text_document.uri)


def did_change(ls: SemcodeServer, params: types.DidChangeTextDocumentParams) -> None:
    """`textDocument/didChange`: the buffer's text is indexed (debounced)."""
    ls.session.buffers.did_change(params.text_document.uri)


def did_save(ls: SemcodeServer, params: types.DidSaveTextDocumentParams) -> None:
    """`textDocument/didSave`: the buffer's text is indexed (debounced)."""
    ls.session.buffers.did_save(params.text_document.uri)


def did_close(ls: SemcodeServer, params: types.DidCloseTextDocumentParams) -> None:
    """`textDocument/didClose`: back to the file's text on disk."""
    ls.session.buffers.did_close(params.text_document.uri)


def did_change_watched_files(ls: SemcodeServer,
                             params: types.DidChangeWatchedFilesParams) -> None:
    """`workspace/didChangeWatchedFiles`: re-read, or drop, the files changed on disk."""
    ls.session.buffers.watched_files(params.changes)


def did_rename_files(ls: SemcodeServer, params: types.RenameFilesParams) -> None:
    """`workspace/didRenameFiles`: move the renamed files' chunks."""
    ls.session.buffers.renamed_files(params.files)


# ---------------------------------------------------------------------- requests
async def search(ls: SemcodeServer, params: object) -> dict[str, Any]:
    """`semcode/search`: two-phase search (see docs/protocol.md)."""
    answer = await ls.session.searching.search(params)
    return convert.search_result(answer, ls.session.positions())


def cancel_search(ls: SemcodeServer, params: object) -> None:
    """`semcode/cancelSearch`: stop a search's second phase."""
    ls.session.searching.cancel_search(params)


async def related(ls: SemcodeServer, params: object) -> dict[str, Any]:
    """`semcode/related`: code similar to the chunk at a position."""
    answer = await ls.session.searching.related(params)
    return convert.search_result(answer, ls.session.positions())


async def workspace_symbol(ls: SemcodeServer,
                           params: types.WorkspaceSymbolParams) -> list[dict[str, Any]]:
    """`workspace/symbol`: search as symbols, for editors' symbol pickers."""
    merged = await ls.session.searching.workspace_symbols(params.query)
    return convert.workspace_symbols(merged, ls.session.positions())


async def command_search(ls: SemcodeServer, *args: object) -> dict[str, Any]:
    """The `semcode.search` command (`workspace/executeCommand`)."""
    answer = await ls.session.searching.search_command(args)
    return convert.search_result(answer, ls.session.positions())


async def command_reindex(ls: SemcodeServer, *args: object) -> dict[str, Any]:
    """The `semcode.reindex` command: re-index the folders (`full`: from scratch)."""
    await ls.session.reindex(args)
    return convert.reindex_started()


async def command_status(ls: SemcodeServer, *args: object) -> dict[str, Any]:
    """The `semcode.status` command: the status payload."""
    return convert.server_status(await ls.session.status())


_SAVE = types.SaveOptions(include_text=False)
_RENAMES = types.FileOperationRegistrationOptions(
    filters=[types.FileOperationFilter(pattern=types.FileOperationPattern(glob="**/*"))])

FEATURES: list[tuple[str, Any, Any]] = [
    (types.INITIALIZE, initialize, None),
    (types.INITIALIZED, initialized, None),
    (types.SHUTDOWN, shutdown, None),
    (types.EXIT, exit_, None),
    (types.WORKSPACE_DID_CHANGE_CONFIGURATION, did_change_configuration, None),
    (types.WORKSPACE_DID_CHANGE_WORKSPACE_FOLDERS, did_change_folders, None),
    (types.TEXT_DOCUMENT_DID_OPEN, did_open, None),
    (types.TEXT_DOCUMENT_DID_CHANGE, did_change, None),
    (types.TEXT_DOCUMENT_DID_SAVE, did_save, _SAVE),
    (types.TEXT_DOCUMENT_DID_CLOSE, did_close, None),
    (types.WORKSPACE_DID_CHANGE_WATCHED_FILES, did_change_watched_files, None),
    (types.WORKSPACE_DID_RENAME_FILES, did_rename_files, _RENAMES),
    (types.WORKSPACE_SYMBOL, workspace_symbol, None),
    ("semcode/search", search, None),
    ("semcode/cancelSearch", cancel_search, None),
    ("semcode/related", related, None),
]
COMMAND_HANDLERS = dict(zip(COMMANDS, (command_search, command_reindex, command_status),
                            strict=True))


def create_server() -> SemcodeServer:
    """A SemcodeServer with every feature and command registered."""
    ls = SemcodeServer()
    for name, handler, options in FEATURES:
        ls.feature(name, options)(handler)
    for name, handler in COMMAND_HANDLERS.items():
        ls.command(name)(handler)
    return ls


# ---------------------------------------------------------------------- entry point
def parse_args(argv: list[str]) -> argparse.Namespace:
    """The arguments of `semcode serve` (log file, log level; `--stdio` accepted)."""
    parser = argparse.ArgumentParser(prog="semcode serve",
                                     description="Run the semcode language server on stdio.")
    parser.add_argument("--stdio", action="store_true", help="accepted and ignored (the default)")
    parser.add_argument("--log-file", type=Path, default=None,
                        help=f"log file (default: {logs.default_log_file()})")
    parser.add_argument("--log-level", choices=sorted(logs.LEVELS), default="info")
    return parser.parse_args(argv)


def serve(argv: list[str]) -> int:
    """Run the server on stdin/stdout until `exit` (or the client goes away)."""
    args = parse_args(argv)
    client_log = logs.setup(args.log_file, args.log_level)
    ls = create_server()
    client_log.sink = ls.log_to_client
    log.info("semcode %s serving on stdio (pid %d)", semcode.__version__, os.getpid())
    try:
        ls.start_io(sys.stdin.buffer, sys.stdout.buffer)
    finally:
        client_log.sink = None
    rc = ls.session.exit_code()
    if not ls.session.closed:  # the client vanished without shutdown
        ls.session.exit()
    if not ls.session.close_executors(timeout_s=5.0):
        log.warning("worker threads still busy at exit; leaving without waiting")
        logging.shutdown()
        os._exit(rc)
    return rc
