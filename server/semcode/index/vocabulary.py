"""The BM25 vocabulary: term <-> term id, ids handed out in order of first sight and never
reused (lexical.py). A saved vocabulary is read in place from the saved arrays (no
dict of every term is built when an index opens: at a million chunks that is millions
of strings): the terms' UTF-8 bytes in id order (`blob`, `offsets`) and the ids in term
order (`order`), searched by bisection. Terms added since, and saved terms looked up
once, live in a small dict.

Plain data over NumPy arrays: it must not touch files (lexical.py maps them) nor know
chunks.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

import numpy as np

ENCODING = "utf-8"
ERRORS = "surrogatepass"  # tokens of undecodable text keep their lone surrogates


class Vocabulary:
    """Term ids: a saved part read in place plus the terms added since (see the module
    docstring)."""

    def __init__(self, blob: np.ndarray | None = None, offsets: np.ndarray | None = None,
                 order: np.ndarray | None = None) -> None:
        """An empty vocabulary, or the saved one of `blob` (uint8: the terms' bytes in id
        order), `offsets` (int64, one more than the terms) and `order` (the ids sorted
        by their terms' bytes)."""
        self._blob = blob if blob is not None else np.zeros(0, np.uint8)
        self._offsets = offsets if offsets is not None else np.zeros(1, np.int64)
        self._order = order if order is not None else np.zeros(0, np.int64)
        self._saved = len(self._offsets) - 1
        self._known: dict[str, int] = {}  # added terms, and saved ones looked up
        self._added: list[str] = []  # terms of ids >= _saved, in id order

    @property
    def known(self) -> dict[str, int]:
        """The terms looked up or added so far (a subset: `get` finds the others)."""
        return self._known

    def __len__(self) -> int:
        return self._saved + len(self._added)

    def _saved_bytes(self, term_id: int) -> bytes:
        start, end = self._offsets[term_id], self._offsets[term_id + 1]
        return self._blob[start:end].tobytes()

    def get(self, term: str) -> int | None:
        """The id of `term`, None when it was never seen."""
        tid = self._known.get(term)
        if tid is not None or not self._saved:
            return tid
        key = term.encode(ENCODING, ERRORS)
        order = self._order
        at = bisect.bisect_left(range(self._saved), key,
                                key=lambda i: self._saved_bytes(int(order[i])))
        if at < self._saved and self._saved_bytes(int(order[at])) == key:
            tid = int(order[at])
            self._known[term] = tid
        return tid

    def __contains__(self, term: object) -> bool:
        return isinstance(term, str) and self.get(term) is not None

    def add(self, term: str) -> int:
        """The id of `term`, handing out the next one when it is new."""
        tid = self.get(term)
        if tid is None:
            tid = self._known[term] = len(self)
            self._added.append(term)
        return tid

    def term(self, term_id: int) -> str:
        """The term of an id (IndexError when there is none)."""
        if term_id < 0:
            raise IndexError(term_id)
        if term_id < self._saved:
            return self._saved_bytes(term_id).decode(ENCODING, ERRORS)
        return self._added[term_id - self._saved]

    def terms(self) -> Iterator[str]:
        """Every term, in id order."""
        for i in range(len(self)):
            yield self.term(i)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(blob, offsets, order) of every term, as `Vocabulary(...)` reads them back."""
        if not self._added:
            return self._blob, self._offsets, self._order
        new = [t.encode(ENCODING, ERRORS) for t in self._added]
        lengths = np.fromiter((len(b) for b in new), dtype=np.int64, count=len(new))
        blob = np.concatenate([self._blob, np.frombuffer(b"".join(new), np.uint8)])
        offsets = np.concatenate([self._offsets, self._offsets[-1] + np.cumsum(lengths)])
        # Sort the added terms and merge them into the saved order (code point order is
        # UTF-8 byte order, surrogates included).
        added = sorted(range(len(new)), key=new.__getitem__)
        saved_keys = [self._saved_bytes(int(i)) for i in self._order]
        where = [bisect.bisect_left(saved_keys, new[i]) for i in added]
        order = np.insert(self._order, np.asarray(where, np.int64),
                          np.asarray(added, np.int64) + self._saved)
        return blob, offsets, order.astype(np.int64)
