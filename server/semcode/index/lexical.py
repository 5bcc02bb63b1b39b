"""BM25 over code-aware tokens (bm25s), kept fresh between rebuilds.

bm25s builds an immutable sparse matrix and has no incremental add/delete (DESIGN §3).
This index keeps two layers:

- the **built** layer: a bm25s matrix over a snapshot of all chunks, plus the statistics
  it was built with (N, document frequencies, average length);
- the **pending** layer: chunks added or changed since that build. They are scored by
  brute force with the same BM25 formula and the *built* layer's statistics (a few edited
  files: cheap), while their stale rows in the matrix, and the rows of removed chunks,
  are hidden with bm25s' `weight_mask`.

`upsert`/`remove` are visible to the next `search` at once. `rebuild()` (run it in a
worker thread when `pending` grows) snapshots the token ids under the lock, builds the
matrix outside it, and swaps it in under the lock; searches keep using the old layer
meanwhile. Changes made during the build stay pending after the swap. `building()` is
the same in two steps, so that the indexer can swap a build in and save it under its
write lock in one step: every process on an index then scores with a saved build
(`build_id` names it; see index/lexical_upkeep.py).

What holds (tested against a brute-force BM25):
- right after `rebuild()` (nothing pending) scores equal a fresh bm25s build of the live
  chunks (float32 precision);
- with pending changes, built chunks keep their built scores exactly, and pending chunks
  are scored with the built N/df/avgdl, so they differ from a fresh full build only by
  how far those statistics drifted (small while few files are pending). A term that is
  new since the build has df 0 there (the highest IDF). With nothing built yet, the
  pending chunks' own statistics are used, which *is* a fresh build.

Scoring is bm25s `method="lucene"`, `k1=1.2`, `b=0.75`: Lucene's (and Elasticsearch's)
defaults. Lucene's IDF, log(1 + (N - df + 0.5) / (df + 0.5)), is never negative, so a
term present in most chunks (`self`-like words the stopword list missed) cannot push a
matching chunk below a non-matching one, as Robertson's IDF can; b=0.75 normalises the
very uneven lengths of code chunks the standard amount. Query terms count with their
multiplicity (as bm25s does).

Tokens are mapped to ids in a vocabulary that only grows (ids are never reused, so a
rebuild never re-tokenises and never remaps); terms of deleted chunks stay in it until
the index is rebuilt from scratch by its owner.

Nothing in proportion to the index becomes Python objects when a saved index opens
(issue 19): the saved build is one file of flat arrays (the score matrix, every chunk's
token ids, the vocabulary) mapped read-only into memory (`lexical_files.map_arrays`),
so that opening costs the same at a thousand chunks as at a million and every process
on the index shares the OS page cache; what changes afterwards lives in small overlays
(`lexical_docs.DocTokens`, `vocabulary.Vocabulary`). A load compares each file's size
and modification time with the manifest and checks the arrays' shapes (cheap); the
checksums, and every value being in range, are checked when asked (`verify=True`:
`semcode index --full` does) and before the saved token ids are built from. A save
never writes into a file a reader may have mapped: it renames a new directory in.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from itertools import repeat
from pathlib import Path
from typing import Any

import numpy as np

from semcode.index.bm25 import K1, METHOD, B, ScoreMatrix, score_pending
from semcode.index.bm25 import Built as _Built
from semcode.index.bm25 import PendingCache as _PendingCache
from semcode.index.bm25 import build_flat as _build_flat
from semcode.index.bm25 import fields_of as _fields
from semcode.index.bm25 import top_k as _top_k
from semcode.index.lexical_docs import DocTokens
from semcode.index.lexical_files import (
    ARRAYS_FILE,
    META_FILE,
    OLD_FILES,
    digest,
    file_signature,
    fsync,
    map_arrays,
    write_arrays,
)
from semcode.index.tokenizer import FIELD_WEIGHTS
from semcode.index.vocabulary import Vocabulary

# 2: one file of flat arrays, mapped in place (1: .npz files and a JSON vocabulary).
FORMAT_VERSION = 2



class LexicalIndexError(Exception):
    """A saved lexical index is missing, corrupt or of another format; rebuild it."""



class LexicalIndex:
    """BM25 over chunk token lists, keyed by chunk id (see the module docstring)."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._rebuild_lock = threading.Lock()  # one rebuild at a time
        self._vocab = Vocabulary()
        self._docs = DocTokens()  # chunk id -> int32 token ids (current)
        self._docs_checked = True  # the token ids are known to be in range
        self._built = _Built.empty()
        self._mask = np.zeros(0, np.float32)  # 1 = row live, 0 = hidden
        self._hidden: set[int] = set()  # chunk ids whose built row is hidden
        self._pending: set[int] = set()  # chunk ids whose current tokens are not built
        self._changed_during_build: set[int] | None = None
        self._version = 0
        self._cache = _PendingCache(version=-1)
        # Orders equal scores (chunk id -> sortable key); None: by chunk id. The indexer
        # sets a key that does not depend on id history (path, line, name).
        self.order_key: Callable[[int], Any] | None = None
        self.stamp: dict[str, Any] = {}  # what `save` was given / `load` found
        # Names the built layer (a new one per build, kept by save/load): processes that
        # share an index compare it to know whether they score with the same statistics.
        self.build_id = ""

    # ------------------------------------------------------------------ writing
    def _ids_for(self, tokens: list[str]) -> np.ndarray:
        # The hot path of indexing (every token of every chunk): one dict look-up per
        # token in C (`map`), the few new terms added one by one.
        out = np.fromiter(map(self._vocab.known.get, tokens, repeat(-1)), np.int32,
                          len(tokens))
        new = np.flatnonzero(out < 0)
        if len(new):
            add = self._vocab.add
            for i in new.tolist():
                out[i] = add(tokens[i])
        return out

    def _hide(self, chunk_id: int) -> None:
        row = self._built.row(chunk_id)
        if row is not None and chunk_id not in self._hidden:
            self._mask[row] = 0.0
            self._hidden.add(chunk_id)

    def upsert(self, chunk_id: int, tokens: list[str]) -> None:
        """Add or replace a chunk's tokens; visible to the next search."""
        chunk_id = int(chunk_id)
        with self._lock:
            ids = self._ids_for(tokens)
            old = self._docs.get(chunk_id)
            if (old is not None and chunk_id not in self._pending
                    and chunk_id not in self._hidden and np.array_equal(old, ids)):
                return  # unchanged and already built: nothing to do
            self._docs.put(chunk_id, ids)
            self._hide(chunk_id)
            self._pending.add(chunk_id)
            if self._changed_during_build is not None:
                self._changed_during_build.add(chunk_id)
            self._version += 1

    def remove(self, chunk_id: int) -> None:
        """Forget a chunk; missing ids are ignored."""
        chunk_id = int(chunk_id)
        with self._lock:
            if not self._docs.pop(chunk_id):
                return
            self._pending.discard(chunk_id)
            self._hide(chunk_id)
            if self._changed_during_build is not None:
                self._changed_during_build.add(chunk_id)
            self._version += 1

    def atomically(self) -> contextlib.AbstractContextManager[object]:
        """Hold the index's lock across several `upsert`/`remove` calls, so that a search
        in another thread sees all of them or none (a file's old chunks gone and its new
        ones not yet there would be a wrong answer)."""
        return self._lock

    def __len__(self) -> int:
        return len(self._docs)

    def __contains__(self, chunk_id: object) -> bool:
        return chunk_id in self._docs

    def chunk_ids(self) -> set[int]:
        """The ids of every chunk held (built or pending)."""
        with self._lock:
            return set(self._docs.ids().tolist())

    def tokens(self, chunk_id: int) -> list[str]:
        """The tokens a chunk was given (KeyError when it is not held)."""
        with self._lock:
            ids = self._docs.get(int(chunk_id))
            if ids is None:
                raise KeyError(chunk_id)
            term = self._vocab.term
            return [term(i) for i in ids.tolist()]

    def reconcile(self, live: Iterable[int], tokens_of: Callable[[int], list[str]]) -> int:
        """Make the held chunks exactly `live`: drop the others, add the missing ones
        with `tokens_of(id)` (pending: scored with this build's statistics). Chunk ids
        are never reused with other content, so ids alone tell what differs. Returns how
        many chunks were dropped or added."""
        with self._lock:
            gone, new = self._docs.missing(live)
            for chunk_id in gone.tolist():
                self.remove(chunk_id)
            for chunk_id in new.tolist():
                self.upsert(chunk_id, tokens_of(chunk_id))
        return len(gone) + len(new)

    def missing(self, live: Iterable[int]) -> list[int]:
        """The ids of `live` this index does not hold (what `reconcile` would add)."""
        with self._lock:
            return self._docs.missing(live)[1].tolist()

    @property
    def pending(self) -> int:
        """Chunks added, changed or removed since the last build."""
        with self._lock:
            return len(self._pending | self._hidden)

    @property
    def vocabulary_size(self) -> int:
        """Distinct terms ever seen (terms of deleted chunks stay until a fresh index)."""
        return len(self._vocab)

    # ------------------------------------------------------------------ rebuild
    def rebuild(self) -> None:
        """Rebuild the matrix from the stored token ids and swap it in. Safe to call from
        a worker thread while another thread searches and writes."""
        with self.building() as install:
            install()

    @contextlib.contextmanager
    def building(self) -> Iterator[Callable[[], None]]:
        """Build a new matrix from a snapshot of the current chunks (outside the index
        lock: searches and writes go on), then yield a function that swaps it in. Not
        calling it drops the build. The caller can take other locks between the two,
        e.g. to save the build in the same step as it becomes visible (the indexer does,
        so that every process scores with a build that is on disk). One build at a time."""
        with self._rebuild_lock:
            with self._lock:
                ids, lengths, flat = self._docs.flat()
                n_vocab = len(self._vocab)
                checked = self._docs_checked
                self._changed_during_build = set()
                markers = self._markers()
            try:
                if not checked and len(flat) and (int(flat.min()) < 0
                                                  or int(flat.max()) >= n_vocab):
                    raise LexicalIndexError("the saved lexical index holds token ids "
                                            "out of range (damaged); rebuild it")
                built = _build_flat(ids, lengths, flat, n_vocab, markers)

                def install() -> None:
                    with self._lock:
                        changed = self._changed_during_build or set()
                        self._changed_during_build = None
                        self._install(built, changed)

                yield install
            finally:
                with self._lock:
                    self._changed_during_build = None

    def _install(self, built: _Built, changed: set[int]) -> None:
        self.build_id = uuid.uuid4().hex
        self._built = built
        self._mask = np.ones(built.n_docs, np.float32)
        self._hidden = set()
        self._pending = {cid for cid in changed if cid in self._docs}
        self._docs_checked = True
        for cid in changed:
            self._hide(cid)
        self._version += 1

    def _markers(self) -> dict[int, float]:
        """Term ids of the BM25F field markers in this vocabulary, with their weights."""
        found = {m: self._vocab.get(m) for m in FIELD_WEIGHTS}
        return {tid: FIELD_WEIGHTS[m] for m, tid in found.items() if tid is not None}

    # ------------------------------------------------------------------ search
    def search(self, query_tokens: list[str], k: int,
               allow: Callable[[int], bool] | None = None) -> list[tuple[int, float]]:
        """The `k` best (chunk_id, score) pairs, best first; ties by `order_key`. Chunks
        scoring 0 (no query term) are never returned. `allow` filters chunk ids."""
        if k <= 0 or not query_tokens:
            return []
        with self._lock:
            found = [self._vocab.get(t) for t in query_tokens]
            qids = [q for q in found if q is not None]
            if not qids:
                return []
            built = self._built
            mask = self._mask.copy() if self._hidden else None
            cache = self._pending_cache()
        cand_ids: list[np.ndarray] = []
        cand_scores: list[np.ndarray] = []
        if built.bm25 is not None:
            in_matrix = [q for q in qids if q < built.n_vocab]
            if in_matrix:
                _check_postings(built, in_matrix)
                scores = built.bm25.get_scores_from_ids(in_matrix, weight_mask=mask)
                rows = np.flatnonzero(scores > 0)
                cand_ids.append(built.row_ids[rows])
                cand_scores.append(scores[rows].astype(np.float64))
        if len(cache.chunk_ids):
            pscores = score_pending(cache, qids, built)
            hit = np.flatnonzero(pscores > 0)
            cand_ids.append(cache.chunk_ids[hit])
            cand_scores.append(pscores[hit])
        if not cand_ids:
            return []
        return _top_k(np.concatenate(cand_ids), np.concatenate(cand_scores), k, allow,
                      self.order_key)

    def _pending_cache(self) -> _PendingCache:
        """Concatenated token ids of the pending chunks (rebuilt when they change)."""
        if self._cache.version == self._version:
            return self._cache
        cids = np.array(sorted(self._pending), dtype=np.int64)
        arrays = [self._docs_of(int(c)) for c in cids]
        lengths = np.fromiter((len(a) for a in arrays), dtype=np.int64, count=len(arrays))
        tokens = np.concatenate(arrays) if arrays else np.zeros(0, np.int32)
        tokens, weights, lengths = _fields(tokens, lengths, self._markers())
        cache = _PendingCache(
            version=self._version, chunk_ids=cids, tokens=tokens,
            owner=np.repeat(np.arange(len(cids), dtype=np.int64), lengths), lengths=lengths,
            weights=weights)
        self._cache = cache
        return cache

    def _docs_of(self, chunk_id: int) -> np.ndarray:
        ids = self._docs.get(chunk_id)
        if ids is None:
            raise KeyError(chunk_id)
        return ids

    # ------------------------------------------------------------------ persistence
    def save(self, directory: Path, stamp: dict[str, Any] | None = None) -> None:
        """Write the index to `directory` atomically: a temp dir beside it is filled,
        then renamed into place (a previous copy is moved aside first and removed after;
        `load` falls back to it if a crash hit between the two renames). A process that
        mapped the previous files keeps reading them as they were (they are unlinked,
        never rewritten). `stamp` (JSON values: the database identity and generation)
        goes into the manifest beside each file's size, time and checksum; `load` gives
        it back as `.stamp`."""
        directory = Path(directory)
        stamp = dict(stamp or {})
        with self._lock:
            chunk_ids, lengths, tokens = self._docs.flat()
            blob, term_offsets, term_order = self._vocab.arrays()
            built = self._built
            mask = self._mask.copy()
            pending = np.array(sorted(self._pending), dtype=np.int64)
            hidden = np.array(sorted(self._hidden), dtype=np.int64)
            build_id = self.build_id
        scores = built.bm25.scores if built.bm25 is not None else None
        arrays = {
            "chunk_ids": chunk_ids, "doc_offsets": _offsets(lengths),
            "tokens": tokens.astype(np.int32),
            "terms": blob, "term_offsets": term_offsets, "term_order": term_order,
            "data": scores["data"] if scores else np.zeros(0, np.float32),
            "indices": scores["indices"] if scores else np.zeros(0, np.int32),
            "indptr": scores["indptr"] if scores else np.zeros(1, np.int64),
            "row_ids": built.row_ids, "df": built.df, "mask": mask, "pending": pending,
            "hidden": hidden}
        directory.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
        try:
            layout = write_arrays(tmp / ARRAYS_FILE, arrays)
            meta = {
                "format": FORMAT_VERSION, "method": METHOD, "k1": K1, "b": B,
                "n_vocab_built": built.n_vocab, "n_docs_built": built.n_docs,
                "avgdl": built.avgdl, "stamp": stamp, "build_id": build_id,
                "arrays": layout,
                "files": {ARRAYS_FILE: {"signature": file_signature(tmp / ARRAYS_FILE),
                                        "digest": digest(tmp / ARRAYS_FILE)}},
            }
            (tmp / META_FILE).write_text(json.dumps(meta), encoding="utf-8")
            fsync(tmp / META_FILE)
            _swap_in(tmp, directory)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise

    @classmethod
    def load(cls, directory: Path, verify: bool = False) -> LexicalIndex:
        """Load what `save` wrote, mapped in place (see the module docstring); `verify`
        also compares checksums and checks every value. Raises `LexicalIndexError` (one
        line) when it is missing, damaged or of another format: the caller then
        rebuilds from its store."""
        directory = Path(directory)
        if not (directory / META_FILE).is_file():
            backup = directory.with_name(directory.name + ".old")
            if (backup / META_FILE).is_file():
                directory = backup
        try:
            return cls._load(directory, verify)
        except LexicalIndexError:
            raise
        except Exception as exc:  # any decoding/shape problem means "corrupt"
            raise LexicalIndexError(f"lexical index at {directory} is unreadable "
                                    f"({type(exc).__name__}: {exc}); rebuild it") from exc

    @classmethod
    def _load(cls, directory: Path, verify: bool) -> LexicalIndex:
        meta = _checked_meta(directory, verify)
        a = map_arrays(directory / ARRAYS_FILE, meta["arrays"])
        _check_arrays(directory, meta, a, verify)
        n_vocab, n_docs = int(meta["n_vocab_built"]), int(meta["n_docs_built"])
        index = cls()
        index._vocab = Vocabulary(a["terms"], a["term_offsets"], a["term_order"])
        index._docs = DocTokens(a["chunk_ids"], a["doc_offsets"], a["tokens"])
        index._docs_checked = verify
        if n_docs:
            bm25: ScoreMatrix | None = None
            if n_docs > 0 and float(meta["avgdl"]) > 0:
                bm25 = ScoreMatrix({"data": a["data"], "indices": a["indices"],
                                    "indptr": a["indptr"], "num_docs": n_docs})
            index._built = _Built(bm25, a["row_ids"], n_vocab, a["df"], n_docs,
                                  float(meta["avgdl"]))
        index._mask = np.array(a["mask"], np.float32)  # a copy: hiding writes to it
        index._pending = set(a["pending"].tolist())
        index._hidden = set(a["hidden"].tolist())
        stamp = meta.get("stamp", {})
        index.stamp = stamp if isinstance(stamp, dict) else {}
        index.build_id = str(meta.get("build_id", ""))
        if not all(c in index._docs for c in index._pending):
            raise _corrupt(directory, "pending chunk ids unknown")
        if not all(index._built.row(c) is not None for c in index._hidden):
            raise _corrupt(directory, "hidden chunk ids unknown")
        return index



__all__ = ["LexicalIndex", "LexicalIndexError", "FORMAT_VERSION", "METHOD", "K1", "B"]


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _swap_in(tmp: Path, directory: Path) -> None:
    """Rename the filled `tmp` to `directory`, the previous copy moved aside first."""
    backup = directory.with_name(directory.name + ".old")
    if backup.exists():
        shutil.rmtree(backup)
    if directory.exists():
        os.replace(directory, backup)
    os.replace(tmp, directory)
    shutil.rmtree(backup, ignore_errors=True)


def _corrupt(directory: Path, why: str) -> LexicalIndexError:
    return LexicalIndexError(f"lexical index at {directory} is corrupt ({why}); rebuild it")


def _checked_meta(directory: Path, verify: bool) -> dict[str, Any]:
    """The saved build's meta.json, once its format, BM25 parameters and every file's
    size and time (with `verify`, checksum) are what this code wrote."""
    meta_path = directory / META_FILE
    if not meta_path.is_file():
        raise LexicalIndexError(f"no lexical index at {directory}")
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    if meta.get("format") != FORMAT_VERSION:
        old = any((directory / name).is_file() for name in OLD_FILES)
        raise LexicalIndexError(f"lexical index at {directory} has format "
                                f"{meta.get('format')!r}, expected {FORMAT_VERSION}"
                                f"{' (saved by an older semcode)' if old else ''}; "
                                "rebuild it")
    if (meta.get("method"), meta.get("k1"), meta.get("b")) != (METHOD, K1, B):
        raise LexicalIndexError(f"lexical index at {directory} was built with other "
                                "BM25 parameters; rebuild it")
    for name, recorded in meta["files"].items():
        path = directory / name
        if not path.is_file():
            raise _corrupt(directory, f"{name} missing")
        if file_signature(path) != recorded["signature"]:
            raise _corrupt(directory, f"{name} was changed after it was saved")
        if verify and digest(path) != recorded["digest"]:
            raise _corrupt(directory, f"{name} checksum mismatch")
    return dict(meta)


def _check_arrays(directory: Path, meta: dict[str, Any], a: dict[str, np.ndarray],
                  verify: bool) -> None:
    """Raise `LexicalIndexError` unless the saved arrays agree with each other and the
    vocabulary: their lengths and order always (cheap: per chunk and per term, never per
    token), every value in range with `verify` (the token ids are also checked before a
    build reads them)."""
    n_vocab, n_docs = int(meta["n_vocab_built"]), int(meta["n_docs_built"])
    ids, offsets, tokens = a["chunk_ids"], a["doc_offsets"], a["tokens"]
    n_terms = len(a["term_offsets"]) - 1
    if (len(offsets) != len(ids) + 1 or n_terms < 0 or len(a["term_order"]) != n_terms
            or int(offsets[0]) != 0 or int(offsets[-1]) != len(tokens)
            or (len(ids) and not bool(np.all(np.diff(offsets) >= 0)))):
        raise _corrupt(directory, "document arrays disagree")
    t_off = a["term_offsets"]
    if (int(t_off[0]) != 0 or int(t_off[-1]) != len(a["terms"])
            or (n_terms and not bool(np.all(np.diff(t_off) >= 0)))
            or (n_terms and not bool(np.all(np.bincount(a["term_order"],
                                                        minlength=n_terms) == 1)))):
        raise _corrupt(directory, "vocabulary arrays disagree")
    if len(ids) > 1 and not bool(np.all(np.diff(ids) > 0)):
        raise _corrupt(directory, "chunk ids not unique and sorted")
    row_ids = a["row_ids"]
    if (len(row_ids) != n_docs or len(a["mask"]) != n_docs
            or len(a["df"]) != n_vocab or n_vocab > n_terms
            or (n_docs > 1 and not bool(np.all(np.diff(row_ids) > 0)))):
        raise _corrupt(directory, "built arrays disagree")
    has_matrix = n_docs > 0 and float(meta["avgdl"]) > 0
    indptr = a["indptr"]
    if has_matrix and (len(indptr) != n_vocab + 1 or len(a["indices"]) != len(a["data"])
                       or int(indptr[0]) != 0 or int(indptr[-1]) != len(a["data"])
                       or not bool(np.all(np.diff(indptr) >= 0))):
        raise _corrupt(directory, "score matrix is malformed")
    if verify:
        if len(tokens) and (int(tokens.min()) < 0 or int(tokens.max()) >= n_terms):
            raise _corrupt(directory, "token id out of range")
        if has_matrix and len(a["indices"]) and (int(a["indices"].min()) < 0 or
                                                int(a["indices"].max()) >= n_docs):
            raise _corrupt(directory, "score matrix is malformed")


def _check_postings(built: _Built, term_ids: list[int]) -> None:
    """The matrix columns a query reads point at rows that exist (a saved build is
    checked in full only when asked: a damaged one fails here, never answers)."""
    if built.bm25 is None:
        return
    scores = built.bm25.scores
    indptr, indices = scores["indptr"], scores["indices"]
    for q in term_ids:
        part = indices[int(indptr[q]):int(indptr[q + 1])]
        if len(part) and (int(part.min()) < 0 or int(part.max()) >= built.n_docs):
            raise LexicalIndexError("the saved lexical index is damaged (a score column "
                                    "points outside the matrix); rebuild it")
