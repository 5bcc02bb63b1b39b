"""BM25 scoring, vectorised: the bm25s score matrix of a snapshot of documents
(`build`, `score_matrix`), BM25F field weighting (`fields_of`), brute-force scoring of
the documents changed since that build with the build's statistics (`score_pending`),
and the top-k cut with deterministic ties (`top_k`).

Pure functions of NumPy arrays of token ids: it must not hold state, take locks,
know chunk tokens as strings, or touch files (`lexical.py` does all that).

Scoring is bm25s `method="lucene"`, `k1=1.2`, `b=0.75` (see lexical.py). The matrix is
bm25s' (same layout, dtypes and arithmetic, checked against bm25s in
tests/test_lexical.py), held and queried by `ScoreMatrix` here: importing bm25s pulls in
SciPy, a third of a second of every process's start for two NumPy lines.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from _typeshed import SupportsRichComparison

METHOD = "lucene"
K1 = 1.2
B = 0.75


class ScoreMatrix:
    """bm25s' CSC matrix of BM25 term scores (`scores`: data, indices, indptr, num_docs;
    columns are term ids) and its query, `get_scores_from_ids`, computed exactly as
    bm25s 0.2's NumPy backend does (float32, one `np.add.at` per query term in query
    order, then the weight mask)."""

    def __init__(self, scores: dict[str, Any]) -> None:
        self.scores = scores

    def get_scores_from_ids(self, term_ids: list[int],
                            weight_mask: np.ndarray | None = None) -> np.ndarray:
        """Each document's score for the query term ids (with multiplicity), times
        `weight_mask` when given (0 hides a row)."""
        s = self.scores
        data, indices, indptr = s["data"], s["indices"], s["indptr"]
        ids = np.asarray(term_ids, dtype=np.int32)
        if int(ids.max(initial=0)) >= len(indptr) - 1:
            raise ValueError("a query term id is beyond the matrix's columns")
        scores = np.zeros(int(s["num_docs"]), dtype=np.float32)
        for start, end in zip(indptr[ids].tolist(), indptr[ids + 1].tolist(), strict=True):
            np.add.at(scores, indices[start:end], data[start:end])
        if weight_mask is not None:
            scores *= weight_mask
        return scores


@dataclass(frozen=True)
class Built:
    """An immutable built layer. `bm25` is None when the snapshot was empty."""

    bm25: ScoreMatrix | None
    row_ids: np.ndarray  # int64 chunk id of each matrix row, strictly increasing
    n_vocab: int  # vocabulary size at build time (matrix columns)
    df: np.ndarray  # int64 document frequency per term id < n_vocab
    n_docs: int
    avgdl: float

    @classmethod
    def empty(cls) -> Built:
        """The layer of an empty snapshot: no matrix, no rows, every query scores nothing."""
        return cls(None, np.zeros(0, np.int64), 0, np.zeros(0, np.int64), 0, 0.0)

    def row(self, chunk_id: int) -> int | None:
        """The matrix row of `chunk_id`, None when it was not built (a bisection of the
        sorted row ids: no dict of every row)."""
        if not self.n_docs:
            return None
        row = int(np.searchsorted(self.row_ids, chunk_id))
        if row < len(self.row_ids) and int(self.row_ids[row]) == chunk_id:
            return row
        return None


@dataclass
class PendingCache:
    """The chunks added since the last build, as flat arrays for `score_pending` (token ids, the
    document each token belongs to, lengths, BM25F weights); `version` says which set of pending
    chunks it was made from, so the lexical index rebuilds it only when that set changes."""
    version: int
    chunk_ids: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    tokens: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int32))
    owner: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))  # doc index per token
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    weights: np.ndarray | None = None  # BM25F field weight per token (None: all 1)




def fields_of(flat: np.ndarray, lengths: np.ndarray, markers: dict[int, float]
            ) -> tuple[np.ndarray, np.ndarray | None, np.ndarray]:
    """BM25F: each token's weight is the weight of the field marker before it in its
    document (1.0 before any marker). Returns (tokens without markers, their weights or
    None when there are no markers, document lengths without markers)."""
    if not markers or not len(flat):
        return flat, None, lengths
    ids = np.fromiter(markers, dtype=np.int64, count=len(markers))
    is_marker = np.isin(flat, ids)
    if not is_marker.any():
        return flat, None, lengths
    n = len(flat)
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    starts = np.zeros(n, bool)
    starts[offsets[(lengths > 0)]] = True
    idx = np.arange(n)
    anchor = np.maximum.accumulate(np.where(is_marker | starts, idx, 0))
    lookup = np.ones(int(max(flat.max(), ids.max())) + 1, np.float64)
    lookup[ids] = np.fromiter(markers.values(), dtype=np.float64, count=len(markers))
    at = np.where(is_marker, lookup[flat], 1.0)
    weights = at[anchor]
    keep = ~is_marker
    owner = np.repeat(np.arange(len(lengths), dtype=np.int64), lengths)
    new_lengths = np.bincount(owner[keep], minlength=len(lengths)).astype(np.int64)
    return flat[keep], weights[keep], new_lengths


def build(docs: list[tuple[int, np.ndarray]], n_vocab: int,
          markers: dict[int, float] | None = None) -> Built:
    """`build_flat` of (chunk id, token ids) pairs sorted by id."""
    ids = np.fromiter((cid for cid, _ in docs), dtype=np.int64, count=len(docs))
    lengths = np.fromiter((len(t) for _, t in docs), dtype=np.int64, count=len(docs))
    flat = (np.concatenate([t for _, t in docs]).astype(np.int32) if lengths.sum()
            else np.zeros(0, np.int32))
    return build_flat(ids, lengths, flat, n_vocab, markers)


def build_flat(row_ids: np.ndarray, lengths: np.ndarray, flat: np.ndarray, n_vocab: int,
               markers: dict[int, float] | None = None) -> Built:
    """The heavy part of a rebuild (touches no shared state): the bm25s score matrix of
    the documents `row_ids` (sorted) whose token ids are `flat`, `lengths` each,
    computed with vectorised NumPy (see `score_matrix`). `markers` maps the term ids of
    BM25F field markers to their weights."""
    if not len(row_ids):
        return Built.empty()
    flat, weights, lengths = fields_of(flat, lengths, markers or {})
    if not lengths.sum():  # only empty documents: nothing can ever match them
        return Built(None, row_ids, n_vocab, np.zeros(n_vocab, np.int64), len(row_ids), 0.0)
    scores, df = score_matrix(flat, lengths, n_vocab, weights)
    return Built(bm25=ScoreMatrix(scores), row_ids=row_ids, n_vocab=n_vocab, df=df,
                 n_docs=len(row_ids), avgdl=float(lengths.mean()))


# Tokens a block of `score_matrix` handles at once: its temporaries (a few int64 arrays
# of this length) stay ~100 MB however large the index (at the Linux kernel's 171M
# tokens, one block of everything peaked above 6 GB).
BLOCK_TOKENS = 1 << 22


def _doc_blocks(lengths: np.ndarray) -> list[tuple[int, int, int, int]]:
    """Consecutive (first doc, end doc, first token, end token) ranges of about
    `BLOCK_TOKENS` tokens each (a longer document is a block of its own)."""
    offsets = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=offsets[1:])
    out, d0 = [], 0
    while d0 < len(lengths):
        d1 = int(np.searchsorted(offsets, offsets[d0] + BLOCK_TOKENS, side="right")) - 1
        d1 = min(max(d1, d0 + 1), len(lengths))
        out.append((d0, d1, int(offsets[d0]), int(offsets[d1])))
        d0 = d1
    return out


def _block_pairs(flat: np.ndarray, lengths: np.ndarray, weights: np.ndarray | None,
                 n_vocab: int, block: tuple[int, int, int, int]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(doc, term, tf) of every distinct (document, term) pair of one block, sorted by
    (doc, term); tf is the count, or the sum of the occurrences' field weights."""
    d0, d1, t0, t1 = block
    owner = np.repeat(np.arange(d1 - d0, dtype=np.int64), lengths[d0:d1])
    keys = owner * n_vocab + flat[t0:t1].astype(np.int64)
    del owner
    if weights is None:
        keys, tf = np.unique(keys, return_counts=True)
    else:
        keys, inverse = np.unique(keys, return_inverse=True)
        tf = np.bincount(inverse.ravel(), weights=weights[t0:t1], minlength=len(keys))
    doc = keys // n_vocab
    term = keys - doc * n_vocab
    return doc + d0, term, tf


def score_matrix(flat: np.ndarray, lengths: np.ndarray, n_vocab: int,
                 weights: np.ndarray | None = None) -> tuple[dict[str, object], np.ndarray]:
    """The CSC score matrix `bm25s.BM25.build_index_from_ids` builds for method="lucene"
    (same dtypes, same layout, same float32 arithmetic; a test checks they agree), but
    vectorised: bm25s loops over documents in Python (17 s at 100k chunks here, holding
    the GIL the LSP event loop needs), this takes a fraction of that in NumPy.
    With `weights` (BM25F), a term's frequency is the sum of its occurrences' field
    weights; the length normalisation stays the plain token count.

    Built in blocks of documents, in two passes (document frequencies first, then each
    block's scores scattered into their columns), so that memory beyond the result is a
    block's worth (`BLOCK_TOKENS`), not several arrays as long as the whole corpus."""
    n_docs = len(lengths)
    blocks = _doc_blocks(lengths)
    df = np.zeros(n_vocab, np.int64)
    n_pairs = 0
    for block in blocks:
        _, term, _ = _block_pairs(flat, lengths, weights, n_vocab, block)
        df += np.bincount(term, minlength=n_vocab)
        n_pairs += len(term)
    idf = np.log(1.0 + (n_docs - df + 0.5) / (df + 0.5)).astype(np.float32)
    avgdl = lengths.mean()
    norm = (K1 * ((1 - B) + B * lengths / avgdl)).astype(np.float32)
    indptr = np.zeros(n_vocab + 1, dtype=np.int64)
    np.cumsum(df, out=indptr[1:])
    data = np.empty(n_pairs, np.float32)
    indices = np.empty(n_pairs, np.int32)
    fill = indptr[:-1].copy()  # the next free slot of each term's column
    for block in blocks:
        doc, term, tf = _block_pairs(flat, lengths, weights, n_vocab, block)
        if not len(term):  # empty documents only
            continue
        tf32 = tf.astype(np.float32)
        scores = idf[term] * (tf32 / (norm[doc] + tf32))
        # Stable by term: each column keeps the documents in order, as one global
        # sort of (term, doc) would; blocks come in document order.
        order = np.argsort(term, kind="stable")
        sorted_terms = term[order]
        starts = np.flatnonzero(np.concatenate(
            [[True], sorted_terms[1:] != sorted_terms[:-1]]))
        runs = np.diff(np.append(starts, len(sorted_terms)))
        rank = np.arange(len(sorted_terms)) - np.repeat(starts, runs)
        dest = fill[sorted_terms] + rank
        data[dest] = scores[order]
        indices[dest] = doc[order]
        fill[sorted_terms[starts]] += runs
    return {"data": data, "indices": indices, "indptr": indptr, "num_docs": n_docs}, df


def score_pending(cache: PendingCache, qids: list[int], built: Built) -> np.ndarray:
    """BM25 of the pending documents in `cache` for query term ids `qids`, with the
    statistics of the built layer (its own when nothing is built)."""
    n = len(cache.chunk_ids)
    scores = np.zeros(n, np.float64)
    own_stats = built.n_docs == 0 or built.avgdl <= 0
    if own_stats:
        n_docs, avgdl = n, float(cache.lengths.mean()) if n else 0.0
    else:
        n_docs, avgdl = built.n_docs, built.avgdl
    if avgdl <= 0:
        return scores
    norm = K1 * (1.0 - B + B * cache.lengths / avgdl)
    uniq, mult = np.unique(np.asarray(qids, dtype=np.int64), return_counts=True)
    for q, m in zip(uniq.tolist(), mult.tolist(), strict=True):
        sel = cache.tokens == q
        if not sel.any():
            continue
        tf = np.bincount(cache.owner[sel], minlength=n,
                         weights=None if cache.weights is None else cache.weights[sel]
                         ).astype(np.float64)
        if own_stats:
            df = int(np.count_nonzero(tf))
        else:
            df = int(built.df[q]) if q < built.n_vocab else 0
        idf = math.log(1.0 + (n_docs - df + 0.5) / (df + 0.5))  # = bm25s lucene IDF
        scores += m * idf * tf / (tf + norm)
    # float32 like the built matrix, so equal documents tie across the two layers
    return scores.astype(np.float32).astype(np.float64)


def top_k(ids: np.ndarray, scores: np.ndarray, k: int,
           allow: Callable[[int], bool] | None,
           order_key: Callable[[int], SupportsRichComparison] | None = None,
           ) -> list[tuple[int, float]]:
    """Best `k` by score (desc), ties by `order_key` (else id, asc), keeping only ids
    `allow` accepts."""
    n = len(ids)
    take = k if allow is None else k * 4
    while True:
        if take < n:
            # Everything scoring at least the take-th best score (so ties are not cut).
            threshold = np.partition(scores, n - take)[n - take]
            sel = np.flatnonzero(scores >= threshold)
        else:
            sel = np.arange(n)
        if order_key is None:
            order = sel[np.lexsort((ids[sel], -scores[sel]))].tolist()
        else:
            order = sorted(sel.tolist(), key=lambda i: (-scores[i], order_key(int(ids[i]))))
        out: list[tuple[int, float]] = []
        for i in order:
            cid = int(ids[i])
            if allow is None or allow(cid):
                out.append((cid, float(scores[i])))
                if len(out) == k:
                    return out
        if take >= n:
            return out
        take *= 4
