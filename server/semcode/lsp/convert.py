"""The one place that makes the language server's JSON (docs/protocol.md): the parts
answer with typed records (`records.py`: `SearchAnswer`, `Refinement`, `ServerStatus`;
the engine's `Hit`, `IndexStatus`, `Progress`), and the handlers (`server.py`) and the
two notifications the session sends (`semcode/status`, `semcode/searchRefined`) turn
them into camelCase dicts here.

Chunk lines are 1-based and columns are code points; LSP positions are 0-based and
columns are counted in the negotiated position encoding (UTF-16 unless the client
offered another). The text of the line comes from the open buffer when there is one
(the index follows the buffer), else from the chunk's own text.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pygls.uris import from_fs_path

from semcode.chunks import Chunk
from semcode.index.indexer import IndexStatus
from semcode.kinds import Stage
from semcode.lsp import PROTOCOL_VERSION
from semcode.lsp.progress import progress_text
from semcode.lsp.records import FolderRef, FolderStatus, Refinement, SearchAnswer, ServerStatus
from semcode.lsp.searches import Merged
from semcode.search.engine import Hit, Progress, StageScore
from semcode.shapes import models_json

PREVIEW_CHARS = 200

# (absolute path, 0-based line) -> that line of the open buffer, or None
LineLookup = Callable[[Path, int], "str | None"]


@dataclass(frozen=True)
class Positions:
    """How hits become LSP positions: the negotiated position encoding and the open
    buffers' lines (`BufferRouting.buffer_line`)."""

    encoding: str  # "utf-16" unless the client offered another
    lookup: LineLookup


def file_uri(folder: FolderRef, rel_path: str) -> str:
    """The file URI of a path relative to the folder."""
    return from_fs_path(str(folder.root / rel_path)) or (folder.root / rel_path).as_uri()


def column(line: str, code_points: int, encoding: str) -> int:
    """A code-point column of `line` in the units of `encoding`."""
    prefix = line[:code_points]
    if encoding == "utf-8":
        return len(prefix.encode("utf-8"))
    if encoding == "utf-32":
        return len(prefix)
    return len(prefix.encode("utf-16-le")) // 2


def _chunk_line(chunk: Chunk, line: int) -> str | None:
    lines = chunk.text.splitlines()
    i = line - chunk.start_line
    return lines[i] if 0 <= i < len(lines) else None


def _pos(line: int, character: int) -> dict[str, int]:
    return {"line": max(line, 0), "character": max(character, 0)}


def ranges(chunk: Chunk, root: Path, lookup: LineLookup, encoding: str) -> tuple[dict, dict]:
    """(range, selectionRange): the whole symbol (end = start of the next line), and its
    name (or its first line when it has none)."""
    full = {"start": _pos(chunk.start_line - 1, 0), "end": _pos(chunk.end_line, 0)}
    line_no = chunk.name_line if chunk.name_line > 0 else chunk.start_line
    text = lookup(root / chunk.path, line_no - 1)
    if text is None:
        text = _chunk_line(chunk, line_no) or ""
    if chunk.name_line > 0:
        start, end = chunk.name_start_col, chunk.name_end_col
    else:
        start, end = 0, len(text)
    sel = {"start": _pos(line_no - 1, column(text, start, encoding)),
           "end": _pos(line_no - 1, column(text, end, encoding))}
    return full, sel


def preview(chunk: Chunk) -> str:
    """The most telling line: the one with the name, else the first non-blank one."""
    line = _chunk_line(chunk, chunk.name_line) if chunk.name_line > 0 else None
    if not line or not line.strip():
        line = next((ln for ln in chunk.text.splitlines() if ln.strip()), "")
    line = line.strip()
    return line if len(line) <= PREVIEW_CHARS else line[: PREVIEW_CHARS - 1] + "…"


def search_item(hit: Hit, folder: FolderRef, positions: Positions) -> dict[str, Any]:
    """One hit as a `semcode/search` item (uri, ranges in the client's position encoding, name,
    kind, content, score, stages)."""
    chunk = hit.chunk
    full, sel = ranges(chunk, folder.root, positions.lookup, positions.encoding)
    return {
        "uri": file_uri(folder, chunk.path),
        "path": chunk.path,
        "workspaceFolder": folder.uri,
        "range": full,
        "selectionRange": sel,
        "name": chunk.name,
        "kind": int(chunk.kind),
        "containerName": chunk.container,
        "language": chunk.language,
        "content": chunk.content,
        "preview": preview(chunk),
        "score": float(hit.score),
        "stages": {name: _stage(s) for name, s in hit.stages.items()},
    }


def _stage(s: StageScore) -> dict[str, Any]:
    out: dict[str, Any] = {"rank": int(s.rank), "score": float(s.score)}
    if s.factors is not None:  # the ranking stage: the priors and boosts that moved the item
        out["factors"] = dict(s.factors)
    return out


def search_items(merged: Merged[FolderRef], positions: Positions) -> list[dict[str, Any]]:
    """The merged hits as `SearchItem`s, best first."""
    return [search_item(hit, folder, positions) for folder, hit in merged.hits]


def search_result(answer: SearchAnswer, positions: Positions) -> dict[str, Any]:
    """A `SearchResult` (`semcode/search`, the `semcode.search` command, `semcode/related`)."""
    merged = answer.merged
    return {"searchId": answer.search_id, "items": search_items(merged, positions),
            "reranked": merged.reranked, "rerankPending": answer.rerank_pending,
            "mode": merged.mode, "notices": merged.notices,
            "timingsMs": {k: round(v, 2) for k, v in merged.timings_ms.items()}}


def refinement(refined: Refinement, positions: Positions) -> dict[str, Any]:
    """The `semcode/searchRefined` params: the reranked items, or the first phase's items
    with `cancelled` or `error`."""
    out: dict[str, Any] = {"searchId": refined.search_id,
                           "items": search_items(refined.merged, positions),
                           "reranked": refined.reranked}
    if refined.cancelled:
        out["cancelled"] = True
    elif refined.error is not None:
        out["error"] = refined.error
    out["timingsMs"] = {Stage.RERANK: round(refined.rerank_ms, 1)}
    return out


def workspace_symbols(merged: Merged[FolderRef], positions: Positions) -> list[dict[str, Any]]:
    """`workspace/symbol`: the merged hits as `WorkspaceSymbol`s."""
    return [_workspace_symbol(item) for item in search_items(merged, positions)]


def index_status(status: IndexStatus | None, root: Path) -> dict[str, Any]:
    """The index part of a `WorkspaceStatus` (docs/protocol.md): the counts of `status`,
    or zeros and an empty `indexDir` for a folder with no engine (yet, or any more)."""
    if status is None:
        return {"root": str(root), "indexDir": "", "files": 0, "chunks": 0, "embedded": 0,
                "pendingEmbeddings": 0, "skippedFiles": 0}
    return {"root": str(status.root), "indexDir": str(status.index_dir),
            "files": status.files, "chunks": status.chunks, "embedded": status.embedded,
            "pendingEmbeddings": status.pending_embeddings,
            "skippedFiles": status.skipped_files, "indexBytes": status.index_bytes}


def _workspace_symbol(item: dict[str, Any]) -> dict[str, Any]:
    """A `WorkspaceSymbol` from a `SearchItem`."""
    return {
        "name": item["name"],
        "kind": item["kind"],
        "containerName": item["containerName"],
        "location": {"uri": item["uri"], "range": item["range"]},
    }


def _progress(p: Progress | None) -> dict[str, Any] | None:
    if p is None:
        return None
    return {"stage": p.stage, "done": p.done, "total": p.total, "message": progress_text(p)[0]}


def folder_status(status: FolderStatus) -> dict[str, Any]:
    """A `WorkspaceStatus`: the index's counts, then the folder's progress and state."""
    out = index_status(status.index, status.ref.root)
    out["progress"] = _progress(status.progress)
    out.update(workspaceFolder=status.ref.uri, state=status.state.value, error=status.error,
               embeddedThisSession=status.embedded_this_session)
    return out


def server_status(status: ServerStatus) -> dict[str, Any]:
    """The `semcode/status` params (and the `semcode.status` command's result)."""
    return {"version": status.version, "protocolVersion": PROTOCOL_VERSION,
            "state": status.state.value, "degraded": [n.line() for n in status.degraded],
            "models": models_json(status.models),
            "workspaces": [folder_status(f) for f in status.workspaces]}



def reindex_started() -> dict[str, Any]:
    """The `semcode.reindex` command's result (the work runs in the background)."""
    return {"started": True}
