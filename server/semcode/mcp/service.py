"""What the MCP tools do, without the SDK: one workspace's `Engine`, kept in step with the
disk, and answers shaped for a coding agent (ranked hits with their code, trimmed to a
token budget).

Threads: tool calls run on the SDK's worker threads; one background thread indexes the
workspace at start and then embeds pending chunks in slices (like the language server).
Writes to the index (`sync`, `flush`) are serialised by `_write_lock`; embedding runs
beside them, as it does in the language server.

Before a tool call answers, the index is brought up to the disk (`_catch_up`): by a full
check (a walk of the workspace and a stat per file) where that is cheap, else by updating
just the files the OS reported changed (`watching.ChangeWatcher`; on the Linux kernel a
full check takes seconds). On an existing index, calls made while the first full check
runs answer from the index as saved, and say so.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import semcode
from semcode.chunks import Chunk, SymbolKind
from semcode.config import Settings
from semcode.heap import settle_heap
from semcode.index.indexer import IndexStatus, SyncReport
from semcode.kinds import AnswerKind, Role, SearchMode, Stage
from semcode.mcp.watching import ChangeWatcher
from semcode.messages import first_line
from semcode.search.engine import (
    CONTENT_KINDS,
    EMBED_SLICE_S,
    Engine,
    Hit,
    SearchError,
    SearchRequest,
    SearchResponse,
    StageScore,
)
from semcode.shapes import models_json
from semcode.states import ModelState, ServeState

log = logging.getLogger(__name__)

CHARS_PER_TOKEN = 4  # the usual estimate for code and English
DEFAULT_MAX_TOKENS = 600
MIN_MAX_TOKENS = 100
MAX_MAX_TOKENS = 20_000
# A full check of the disk that found nothing to do in more than this is not repeated
# before every tool call where the OS reports changes (a 1,000-file project: ~50 ms; the
# Linux kernel: ~5 s); below it, every call checks everything (no reporting delay).
FULL_CHECK_BUDGET_S = 0.25
STALE_NOTICE = ("the index is being checked for changes made since it was saved: this "
                "answer may miss them")


class ToolFailure(Exception):
    """A tool call that cannot be answered; the message is one line for the agent."""


def estimate_tokens(text: str) -> int:
    """A rough token count of `text` (four characters a token), for the answer budget."""
    return (len(text) + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN


@dataclass
class _Item:
    """One hit being rendered: its header line and (part of) its code."""

    header: str
    meta: dict[str, Any]
    code_lines: list[str]
    shown: int = 0  # code lines kept


class McpService:
    """The MCP tools over one workspace's Engine: indexing in a background thread, and search,
    related, symbol and status answers sized to a token budget."""

    def __init__(self, root: Path, settings: Settings, engine: Engine | None = None,
                 full_check_budget_s: float = FULL_CHECK_BUDGET_S) -> None:
        self.root = root
        self.settings = settings
        self.engine = engine or Engine.open(root, settings)
        self._write_lock = threading.Lock()
        self._stop = threading.Event()
        self._wake = threading.Event()
        self._worker: threading.Thread | None = None
        self.state = ServeState.STARTING
        self.error = ""
        self.last_sync: SyncReport | None = None
        self.last_embed_error = ""
        self._dirty = False
        self._first_sync = threading.Event()  # the start's full check ended (or failed)
        self._full_check_budget_s = full_check_budget_s
        # What the last full check that found nothing to do took (None: none yet).
        self._check_s: float | None = None
        self.watcher = ChangeWatcher(root)

    # ================================================================ lifecycle
    def start(self) -> None:
        """Watch the workspace, index (and then embed) in the background; on a new index
        tool calls wait for its first scan, on an existing one they answer from it
        meanwhile (`_catch_up`)."""
        if self._worker is None:  # (a restart after a failed start keeps its watcher)
            self.watcher.start()  # before the first check: see `ChangeWatcher.start`
        self._worker = threading.Thread(target=self._work, name="semcode-mcp-index",
                                        daemon=True)
        self._worker.start()

    def close(self, timeout_s: float = 10.0) -> None:
        """Stop the background indexing thread and close the engine."""
        self._stop.set()
        self._wake.set()
        self.watcher.close()
        if self._worker is not None:
            self._worker.join(timeout_s)
        with self._write_lock:
            try:
                self.engine.close()
            finally:
                self.engine.models.close()

    def _warm_models(self) -> None:
        """Load (and, when allowed, download) the reranker and the query embedder in the
        background, so that no tool call waits for a model: until then searches answer
        without them and say so."""
        models = self.engine.models
        for load in ((models.reranker,) if self.settings.rerank else ()) + (models.query_embedder,):
            if self._stop.is_set():
                return
            try:
                load()
            except Exception as exc:  # ModelSet records why; status() shows it
                log.warning("loading a model failed: %s", first_line(exc))

    def _model_ready(self, role: str) -> bool:
        """False while the model is still to be loaded; a model that is off, missing or
        broken counts as ready (the engine degrades and says why)."""
        status = self.engine.models.status().get(Role(role))
        return status is None or status.state not in (ModelState.NOT_LOADED,
                                                      ModelState.LOADING)

    def _work(self) -> None:
        threading.Thread(target=self._warm_models, name="semcode-mcp-models",
                         daemon=True).start()
        try:
            self.state = ServeState.INDEXING
            self.sync()
            settle_heap()  # no full collection over the loaded index during a tool call
        except Exception as exc:  # reported by status() and by the next tool call
            self.state, self.error = ServeState.ERROR, first_line(exc)
            log.warning("indexing %s failed: %s", self.root, self.error)
            return
        finally:
            self._first_sync.set()
        while not self._stop.is_set():
            self.state = ServeState.EMBEDDING
            try:
                report = self.engine.embed_pending(cancel=self._stop, budget_s=EMBED_SLICE_S)
            except Exception as exc:
                report = None
                self.last_embed_error = first_line(exc)
                log.warning("embedding stopped: %s", self.last_embed_error)
            if report is not None:
                self.last_embed_error = report.error
                self._dirty = self._dirty or report.embedded > 0
            if report is None or report.embedded == 0 or report.pending == 0 or \
                    report.cancelled or report.error:
                self.state = ServeState.READY
                self._flush_if_dirty()
                self._wake.wait()
                self._wake.clear()

    def _flush_if_dirty(self) -> None:
        if not self._dirty or self._stop.is_set():
            return
        with self._write_lock:
            self._dirty = False
            try:
                self.engine.flush()
            except Exception as exc:
                log.warning("saving the index failed: %s", first_line(exc))

    def sync(self) -> SyncReport:
        """Pick up changes on disk (cheap when nothing changed: one stat per file)."""
        with self._write_lock:
            report = self.engine.sync(cancel=self._stop)
        self.last_sync = report
        if report.files_indexed or report.files_removed:
            self._dirty = True
            self._wake.set()  # embed the new chunks, then save
        elif not report.cancelled:
            self._check_s = report.seconds
        if self.state == ServeState.ERROR:  # indexing failed at start and works now: resume
            self.state, self.error = ServeState.READY, ""
            if self._worker is not None and not self._worker.is_alive() and \
                    not self._stop.is_set():
                self.start()
        return report

    def _catch_up(self) -> list[str]:
        """Bring the index up to the disk before a tool call answers (see the module
        docstring); returns the notices the answer carries."""
        if not self._first_sync.is_set():
            checking = self._worker is not None and self._worker.is_alive()
            if checking and len(self.engine.indexer.refs):
                return [STALE_NOTICE]  # answer from the saved index meanwhile
            self.sync()  # a new index (nothing to answer from yet), or not started
            self._first_sync.set()
            return []
        changed = self.watcher.take()
        if changed is None or self._check_s is None or \
                self._check_s <= self._full_check_budget_s:
            self.sync()
            return []
        if changed:
            with self._write_lock:
                for rel in changed:
                    self.engine.revert_file(rel)  # changed, new, deleted or now ignored
            self._dirty = True
            self._wake.set()
        return []

    # ================================================================ tools
    def search(self, query: str, limit: int, mode: str, languages: list[str],
               paths: list[str], contents: list[str], max_tokens: int) -> dict[str, Any]:
        """The `search` tool: catch up, search, and the hits with their code within
        `max_tokens`."""
        notices = self._catch_up()
        fields: dict[str, Any] = {"query": query, "limit": limit, "mode": mode,
                                  "languages": tuple(languages), "paths": tuple(paths)}
        if contents:
            unknown = sorted(set(contents) - set(CONTENT_KINDS))
            if unknown:
                raise ToolFailure(f"unknown content kind {unknown[0]!r}; use one of "
                                  f"{', '.join(CONTENT_KINDS)}")
            fields["contents"] = tuple(contents)
        if mode != SearchMode.LEXICAL and not self._model_ready(Role.EMBEDDER):
            fields["mode"] = SearchMode.LEXICAL
            notices.append("semantic search is still loading its model (see `status`): "
                           "this answer is lexical")
        if self.settings.rerank and not self._model_ready(Role.RERANKER):
            fields["rerank"] = False
            notices.append("the reranker is still loading (see `status`): this answer is "
                           "not reranked")
        req = SearchRequest(**fields)
        try:
            response = self.engine.search(req)
            response = self.engine.rerank(req, response)
        except SearchError as exc:
            raise ToolFailure(str(exc)) from None
        return self._answer(response, max_tokens, notices, query=query)

    def related(self, path: str, line: int, limit: int, max_tokens: int) -> dict[str, Any]:
        """The `related` tool: code similar to the chunk at `path`:`line` (semantic
        search only)."""
        notices = self._catch_up()
        rel = self._rel_path(path)
        if line < 1:
            raise ToolFailure("line must be 1 or more (lines are 1-based)")
        response = self.engine.related(rel, line, limit)
        if not response.hits and not self.engine.indexer.store.chunks_of_file(rel):
            raise ToolFailure(f"{rel} is not indexed (not a file of the workspace, or "
                              "ignored)")
        if not response.hits and response.notices:  # semantic search is off, not embedded...
            raise ToolFailure(f"related needs semantic search: {response.notices[0]}")
        return self._answer(response, max_tokens, notices)

    def symbol(self, name: str, limit: int, max_tokens: int) -> dict[str, Any]:
        """The `symbol` tool: definitions named `name` (or a qualified name's tail),
        exact case first, else case-insensitive matches."""
        name = name.strip()
        if not name:
            raise ToolFailure("name is empty")
        stale = self._catch_up()
        own = name.rsplit(".", 1)[-1].rsplit("::", 1)[-1]
        found = self.engine.indexer.store.chunks_named(own)
        defs = [(i, c) for i, c in found.items() if c.kind not in (SymbolKind.File,
                                                                   SymbolKind.Module)]
        wanted = name.replace("::", ".")
        if wanted != own:  # a qualified name: the containers must match its tail
            defs = [(i, c) for i, c in defs
                    if c.qualified_name == wanted or c.qualified_name.endswith("." + wanted)]
        exact = [(i, c) for i, c in defs if c.name == own]
        defs = exact or defs  # exact case first; otherwise case-insensitive matches
        merged = _merge_pieces(defs)
        notices = stale + ([] if merged else [f"no definition named {name!r} in the index"])
        hits = [Hit(i, c, 1.0, {Stage.SYMBOL: StageScore(n, 1.0)})
                for n, (i, c) in enumerate(merged[:limit], start=1)]
        # Found by name, not searched: the answer says so (AnswerKind.SYMBOL), whatever the
        # response's mode (the name index is the lexical side).
        response = SearchResponse(hits, False, SearchMode.LEXICAL, notices)
        answer = self._answer(response, max_tokens, [], kind=AnswerKind.SYMBOL)
        if len(merged) > limit:
            answer["notices"].append(f"{len(merged) - limit} more definitions named "
                                     f"{name!r} were left out (raise `limit`)")
        return answer

    def status(self) -> dict[str, Any]:
        """The `status` tool: the serving state, the index and the models."""
        index = self.engine.status()
        models = models_json(self.engine.models.status())
        degraded = [n.line() for n in self.engine.models.notices()]
        if pending := index.pending_embeddings:
            degraded.append(f"semantic search covers {index.embedded} of "
                            f"{index.chunks} chunks ({pending} still being embedded)")
        if self.last_embed_error:
            degraded.append(f"embedding stopped: {self.last_embed_error}")
        if self.error:
            degraded.append(f"indexing failed: {self.error}")
        if self.watcher.error and self._check_s is not None and \
                self._check_s > self._full_check_budget_s:
            degraded.append(f"{self.watcher.error}: every tool call checks the whole "
                            f"workspace ({self._check_s:.1f} s)")
        out: dict[str, Any] = {"version": semcode.__version__, "state": self.state.value,
                               "workspace": str(self.root), "index": index_json(index),
                               "models": models,
                               "degraded": degraded}
        if self.last_sync is not None:
            s = self.last_sync
            out["lastSync"] = {"files": s.files_seen, "changed": s.files_indexed,
                               "removed": s.files_removed, "skipped": s.files_skipped,
                               "seconds": round(s.seconds, 3), "warnings": len(s.warnings)}
        return out

    # ================================================================ helpers
    def _rel_path(self, path: str) -> str:
        path = path.strip()
        if not path:
            raise ToolFailure("path is empty")
        rel = self.engine.rel_path(path)
        if rel is None:
            raise ToolFailure(f"{path} is not inside the workspace {self.root}")
        return rel

    def _answer(self, response: SearchResponse, max_tokens: int, notices: list[str],
                query: str | None = None, kind: AnswerKind | None = None) -> dict[str, Any]:
        """The tool answer; its `mode` is `kind` (a symbol lookup) or the mode the search used."""
        all_notices = [*notices, *response.notices]
        reserved = sum(len(n) + 10 for n in all_notices) + 80  # notices + the "left out" one
        hits, text, omitted = render_hits(response, max_tokens, reserved)
        if omitted:
            all_notices.append(f"{omitted} more hits did not fit in max_tokens={max_tokens}")
        out: dict[str, Any] = {"mode": kind or AnswerKind(response.mode),
                               "reranked": response.reranked, "hits": hits, "notices": all_notices}
        if query is not None:
            out = {"query": query, **out}
        lines = [f"semcode: {n}" for n in all_notices]
        if not hits:
            lines.append("no results")
        out["text"] = "\n".join([*lines, text]).strip()
        return out


def _merge_pieces(defs: list[tuple[int, Chunk]]) -> list[tuple[int, Chunk]]:
    """Pieces of one long definition become one definition (whole range, first piece's
    text: the code is trimmed to the budget anyway)."""
    groups: dict[tuple[str, str, str, int], list[tuple[int, Chunk]]] = {}
    for i, c in defs:
        key = (c.path, c.container, c.name, int(c.kind)) if c.part else (c.path, c.container,
                                                                         c.name, -i)
        groups.setdefault(key, []).append((i, c))
    out = []
    for pieces in groups.values():
        pieces.sort(key=lambda p: p[1].start_line)
        i, first = pieces[0]
        if len(pieces) > 1:
            text = "\n".join(p[1].text for p in pieces)
            first = dataclasses.replace(first, end_line=max(p[1].end_line for p in pieces),
                                        text=text, part=0)
        out.append((i, first))
    out.sort(key=lambda p: (p[1].path, p[1].start_line))
    return out


def index_json(status: IndexStatus) -> dict[str, Any]:
    """The `index` part of the `status` tool's answer (published keys)."""
    return {"root": str(status.root), "indexDir": str(status.index_dir),
            "files": status.files, "chunks": status.chunks, "embedded": status.embedded,
            "pendingEmbeddings": status.pending_embeddings,
            "skippedFiles": status.skipped_files, "indexBytes": status.index_bytes}



def hit_meta(rank: int, score: float, chunk: Chunk) -> dict[str, Any]:
    """The metadata of one hit in an MCP answer (rank, score, path, lines, name, kind, content)."""
    meta: dict[str, Any] = {
        "rank": rank,
        "path": chunk.path,
        "start_line": chunk.start_line,
        "end_line": chunk.end_line,
        "symbol": chunk.qualified_name,
        "kind": chunk.kind.name.lower(),
        "language": chunk.language,
    }
    if chunk.content:
        meta["content"] = chunk.content
    meta["score"] = round(score, 4)
    return meta


def _header(meta: Mapping[str, object]) -> str:
    kind = f"{meta['kind']}" + (f", {meta['content']}" if meta.get("content") else "")
    return (f"{meta['rank']}. {meta['path']}:{meta['start_line']}-{meta['end_line']} "
            f"{meta['symbol']} ({kind}) score {meta['score']}")


def render_hits(response: SearchResponse, max_tokens: int,
                reserved_chars: int = 0) -> tuple[list[dict[str, Any]], str, int]:
    """Hits with their code, trimmed so the whole text fits `max_tokens` (estimated at
    4 characters a token). Bodies are trimmed before hits are dropped: every hit keeps
    its header and first line when it can, the best hits get their whole code first, and
    a trimmed body ends with a line saying how much is left out. Returns (hits as
    dicts, the text an agent reads, hits left out)."""
    budget = max(max_tokens, 1) * CHARS_PER_TOKEN - reserved_chars
    items, used = _headers_that_fit(response, budget)
    _fill_bodies(items, used, budget)
    hits, text = _shape(items)
    return hits, text, len(response.hits) - len(items)


def _headers_that_fit(response: SearchResponse, budget: int) -> tuple[list[_Item], int]:
    """The hits whose headers fit `budget`, best first (the best hit's first code line
    too), and the characters they use."""
    items: list[_Item] = []
    used = 0
    for rank, hit in enumerate(response.hits, start=1):
        meta = hit_meta(rank, hit.score, hit.chunk)
        header = _header(meta)
        cost = len(header) + 1 + 8  # header line + code fence lines
        if used + cost > budget and items:
            break
        items.append(_Item(header, meta, hit.chunk.text.rstrip("\n").split("\n")))
        used += cost
        if len(items) == 1 and items[0].code_lines and \
                _first_line_cost(items[0]) <= budget - used:
            items[0].shown = 1  # the best hit's signature comes before other hits' headers
            used += _first_line_cost(items[0])
    return items, used


def _fill_bodies(items: list[_Item], used: int, budget: int) -> None:
    """Show as much of each body as fits (`_Item.shown`): first every body's first line
    (usually the signature), best first, then the rest, best hit first, line by line."""
    for item in items:
        if not item.code_lines or item.shown:
            continue
        cost = _first_line_cost(item)
        if used + cost <= budget:
            item.shown = 1
            used += cost
    for item in items:
        while item.shown and item.shown < len(item.code_lines):
            cost = len(item.code_lines[item.shown]) + 1  # the line and its newline
            if item.shown + 1 == len(item.code_lines):
                cost -= _MARKER_COST + len(item.meta["path"])  # no marker when all is shown
            if used + cost > budget:
                break
            item.shown += 1
            used += cost


def _shape(items: list[_Item]) -> tuple[list[dict[str, Any]], str]:
    """The hits as dicts (with the code shown) and the text an agent reads."""
    blocks = []
    hits = []
    for item in items:
        code = "\n".join(item.code_lines[:item.shown])
        left = len(item.code_lines) - item.shown
        meta = dict(item.meta)
        meta["code"] = code
        if left:
            meta["code_truncated_lines"] = left
            start = min(item.meta["start_line"] + item.shown, item.meta["end_line"])
            code += f"\n… (trimmed: read {item.meta['path']}:{start}-{item.meta['end_line']})"
        hits.append(meta)
        block = item.header
        if item.shown:
            block += f"\n```{_fence_lang(item.meta['language'])}\n{code}\n```"
        blocks.append(block)
    return hits, "\n".join(blocks)


_MARKER_COST = 40  # "… (trimmed: read path:a-b)", beyond the path


def _first_line_cost(item: _Item) -> int:
    marker = _MARKER_COST + len(item.meta["path"]) if len(item.code_lines) > 1 else 0
    return len(item.code_lines[0]) + 1 + marker


def _fence_lang(language: str) -> str:
    return {"text": "", "c_sharp": "csharp", "tsx": "tsx"}.get(language, language)

