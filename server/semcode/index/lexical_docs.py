"""Each chunk's BM25 token ids, for the lexical index (lexical.py): the saved chunks as
three flat arrays read in place from the saved build (`ids` sorted, `offsets`,
`tokens`: no Python object per chunk when an index opens), plus an overlay dict of the
chunks added since and the set of saved chunks removed since.

Plain data over NumPy arrays: no locks (the lexical index holds its own), no files.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

EMPTY_IDS = np.zeros(0, np.int64)


class DocTokens:
    """chunk id -> int32 token ids: saved arrays plus an overlay (see the module
    docstring)."""

    def __init__(self, ids: np.ndarray | None = None, offsets: np.ndarray | None = None,
                 tokens: np.ndarray | None = None) -> None:
        """Nothing, or the saved chunks `ids` (int64, strictly increasing) whose token
        ids are `tokens[offsets[i]:offsets[i + 1]]`."""
        self._ids = ids if ids is not None else EMPTY_IDS
        self._offsets = offsets if offsets is not None else np.zeros(1, np.int64)
        self._tokens = tokens if tokens is not None else np.zeros(0, np.int32)
        self._gone: set[int] = set()  # saved chunks removed since
        self._added: dict[int, np.ndarray] = {}  # chunks not among the saved ones
        self._count = len(self._ids)

    def _row(self, chunk_id: int) -> int | None:
        """The saved row of `chunk_id` (removed ones included), or None."""
        if not len(self._ids):
            return None
        row = int(np.searchsorted(self._ids, chunk_id))
        if row < len(self._ids) and int(self._ids[row]) == chunk_id:
            return row
        return None

    def get(self, chunk_id: int) -> np.ndarray | None:
        """The token ids of a held chunk, None when it is not held."""
        found = self._added.get(chunk_id)
        if found is not None:
            return found
        row = self._row(chunk_id)
        if row is None or chunk_id in self._gone:
            return None
        return self._tokens[self._offsets[row]:self._offsets[row + 1]]

    def __contains__(self, chunk_id: object) -> bool:
        return (isinstance(chunk_id, int | np.integer)
                and self.get(int(chunk_id)) is not None)

    def __len__(self) -> int:
        return self._count

    def put(self, chunk_id: int, token_ids: np.ndarray) -> None:
        """Hold `token_ids` for `chunk_id` (replacing what it held)."""
        if chunk_id not in self._added:
            row = self._row(chunk_id)
            if row is None or chunk_id in self._gone:
                self._count += 1
            if row is not None:
                self._gone.add(chunk_id)  # the saved row is stale now
        self._added[chunk_id] = token_ids

    def pop(self, chunk_id: int) -> bool:
        """Forget `chunk_id`; whether it was held."""
        if chunk_id not in self:
            return False
        self._added.pop(chunk_id, None)
        if self._row(chunk_id) is not None:
            self._gone.add(chunk_id)
        self._count -= 1
        return True

    def ids(self) -> np.ndarray:
        """Every held chunk id, sorted (int64)."""
        saved = self._live_saved_ids()
        added = np.fromiter(self._added, dtype=np.int64, count=len(self._added))
        return np.sort(np.concatenate([saved, added])) if len(added) else saved

    def _live_mask(self) -> np.ndarray | None:
        """Which saved rows are still held (None: all of them)."""
        if not self._gone:
            return None
        gone = np.fromiter(self._gone, dtype=np.int64, count=len(self._gone))
        return ~np.isin(self._ids, gone)

    def _live_saved_ids(self) -> np.ndarray:
        live = self._live_mask()
        return np.asarray(self._ids if live is None else self._ids[live], np.int64)

    def flat(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(ids sorted, lengths, token ids concatenated in that order) of every held
        chunk: what a build and a save read. Vectorised over the saved part."""
        lengths = np.diff(self._offsets).astype(np.int64)
        live = self._live_mask()
        ids, tokens = np.asarray(self._ids, np.int64), np.asarray(self._tokens, np.int32)
        if live is not None:
            ids, tokens, lengths = (ids[live], tokens[np.repeat(live, lengths)],
                                    lengths[live])
        if not self._added:
            return ids, lengths, tokens
        added = sorted(self._added.items())
        added_ids = np.fromiter((c for c, _ in added), np.int64, len(added))
        new_lengths = np.fromiter((len(a) for _, a in added), np.int64, len(added))
        tokens = np.concatenate([tokens, *(a for _, a in added)], dtype=np.int32)
        saved_last = int(ids[-1]) if len(ids) else -1
        ids = np.concatenate([ids, added_ids])
        lengths = np.concatenate([lengths, new_lengths])
        del added
        if added_ids[0] > saved_last:
            # Chunk ids only grow: chunks added since the save come after the saved
            # ones, so this is in id order already (a cold index: all of it), without
            # the gather below and its index arrays as long as all the tokens.
            return ids, lengths, tokens
        order = np.argsort(ids, kind="stable")
        starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
        out_starts = np.concatenate([[0], np.cumsum(lengths[order])[:-1]]).astype(np.int64)
        gather = (np.repeat(starts[order] - out_starts, lengths[order])
                  + np.arange(int(lengths.sum()), dtype=np.int64))
        return ids[order], lengths[order], tokens[gather]

    def missing(self, live: Iterable[int]) -> tuple[np.ndarray, np.ndarray]:
        """(held ids not in `live`, ids of `live` not held), both sorted."""
        want = (np.asarray(live, np.int64) if isinstance(live, np.ndarray)  # the chunk table's
                else np.fromiter(live, dtype=np.int64))
        if len(want) > 1 and not bool(np.all(want[1:] > want[:-1])):
            want = np.unique(want)  # (the store hands ids out in order: mostly sorted)
        held = self.ids()
        if len(held) == len(want) and np.array_equal(held, want):
            return EMPTY_IDS, EMPTY_IDS  # the usual open: the build of the table's state
        return held[~_member(held, want)], want[~_member(want, held)]


def _member(values: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Which of `values` are in `sorted_ids` (a bisection each, no sort of both)."""
    if not len(sorted_ids):
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return np.asarray(sorted_ids[at] == values)
