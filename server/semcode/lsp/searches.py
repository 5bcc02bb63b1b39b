"""Two-phase search bookkeeping, and merging the answers of several workspace folders.

Every `semcode/search` gets an id ("s17") and a cancel event. A new search supersedes
all earlier ones: their events are set, so a rerank still running stops and its
`semcode/searchRefined` says `cancelled: true`.

Merging (multi-root): each folder's engine answers on its own; the lists are merged by
`score` when every folder with hits answered with the same kind of score (all
cross-encoder P(yes), or all fused RRF scores: RRF scores are comparable across folders
because every folder uses the same `rrfK` and weights from the one server-wide
settings). When the kinds differ (one folder reranked, another not), the merge falls
back to the fused score that every hit carries in `stages["fused"]`.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from semcode.kinds import SearchMode, Stage
from semcode.search.engine import Hit, SearchResponse

F = TypeVar("F")


class SearchBook:
    """The live searches by id: a new search cancels the older ones;
    a client may cancel one by id."""

    def __init__(self) -> None:
        self._ids = itertools.count(1)
        self._live: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def start(self) -> tuple[str, threading.Event]:
        """A new search: supersedes (cancels) every earlier one still live."""
        with self._lock:
            for event in self._live.values():
                event.set()
            self._live.clear()
            sid = f"s{next(self._ids)}"
            event = threading.Event()
            self._live[sid] = event
            return sid, event

    def cancel(self, sid: str) -> bool:
        """Cancel the search `sid`; False when it is no longer live."""
        with self._lock:
            event = self._live.pop(sid, None)
        if event is not None:
            event.set()
        return event is not None

    def finish(self, sid: str) -> None:
        """Forget a search that ended."""
        with self._lock:
            self._live.pop(sid, None)

    def cancel_all(self) -> None:
        """Cancel every live search (shutdown)."""
        with self._lock:
            events = list(self._live.values())
            self._live.clear()
        for event in events:
            event.set()


@dataclass
class Merged(Generic[F]):
    """The folders' responses merged into one list, with their notices and the slowest timing of
    each stage."""

    hits: list[tuple[F, Hit]]
    reranked: bool
    mode: str
    notices: list[str] = field(default_factory=list)
    timings_ms: dict[str, float] = field(default_factory=dict)


def merge(answers: Sequence[tuple[F, SearchResponse]], limit: int) -> Merged[F]:
    """One list, best first, from the folders' responses (see the module docstring)."""
    with_hits = [(f, r) for f, r in answers if r.hits]
    kinds = {r.reranked for _, r in with_hits}
    uniform = len(kinds) <= 1
    reranked = bool(with_hits) and kinds == {True}
    scored: list[tuple[float, int, int, F, Hit]] = []
    for order, (folder, response) in enumerate(answers):
        for rank, hit in enumerate(response.hits):
            score = hit.score if uniform else _fused(hit)
            scored.append((-score, rank, order, folder, hit))
    scored.sort(key=lambda t: (t[0], t[1], t[2]))
    notices: list[str] = []
    timings: dict[str, float] = {}
    for _, response in answers:
        notices.extend(n for n in response.notices if n not in notices)
        for key, ms in response.timings_ms.items():
            timings[key] = max(timings.get(key, 0.0), float(ms))
    mode = answers[0][1].mode if answers else SearchMode.HYBRID
    return Merged([(f, h) for *_, f, h in scored[:limit]], reranked, mode, notices, timings)


def _fused(hit: Hit) -> float:
    stage = hit.stages.get(Stage.FUSED)
    return float(stage.score) if stage is not None else float(hit.score)
