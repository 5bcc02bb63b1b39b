"""What the session's parts answer, as typed records: `convert.py` is the one module that
turns them (and the engine's `Hit`, `IndexStatus`, `Progress`, the models' `ModelNotice`)
into the camelCase JSON of docs/protocol.md. Nothing here knows a wire key.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from semcode.index.indexer import IndexStatus
from semcode.kinds import Role
from semcode.lsp.searches import Merged
from semcode.models.registry import ModelNotice, ModelStatus
from semcode.search.engine import Progress
from semcode.states import ServeState


@dataclass(frozen=True)
class FolderRef:
    """A workspace folder as the client named it (`uri`) and as a local path (`root`)."""

    uri: str  # as the client spelled it
    root: Path


@dataclass(frozen=True)
class SearchAnswer:
    """A `semcode/search` (or `semcode.search`, `semcode/related`) answer: its id, the
    folders' hits merged into one list, and whether a reranked list follows."""

    search_id: str
    merged: Merged[FolderRef]
    rerank_pending: bool


@dataclass(frozen=True)
class Refinement:
    """A search's second phase (`semcode/searchRefined`): the reranked list, or the first
    phase's list again with why it was not reranked (`cancelled`, `error`)."""

    search_id: str
    merged: Merged[FolderRef]
    reranked: bool
    rerank_ms: float
    cancelled: bool = False
    error: str | None = None  # why there is no reranked list (when not cancelled)


@dataclass(frozen=True)
class FolderStatus:
    """One folder's part of the status: its index's counts (None: no engine, yet or any
    more), the job in progress and the folder's state."""

    ref: FolderRef
    index: IndexStatus | None
    progress: Progress | None
    state: ServeState
    error: str
    embedded_this_session: int


@dataclass(frozen=True)
class ServerStatus:
    """The session's status (`semcode/status`, `semcode.status`): the overall state, the
    stages that are off and why, the models and each folder."""

    version: str
    state: ServeState
    degraded: list[ModelNotice]
    models: dict[Role, ModelStatus]
    workspaces: list[FolderStatus]
