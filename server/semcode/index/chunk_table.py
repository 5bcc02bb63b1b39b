"""The chunk table: every chunk's light metadata (`ChunkRef`: path, language, symbol
kind, content hash, content kind, start line, name) by chunk id, as NumPy columns
instead of one Python object per chunk (issue 19: a million `ChunkRef`s cost ~450 MB
and seconds to build at every open).

- `ChunkColumns` is one immutable set of columns sorted by chunk id: small integer codes
  into tables of the distinct paths (their UTF-8 bytes, sorted), languages and content
  kinds, the symbol kind and start line, the names as offsets into one UTF-8 blob, the
  content hashes as fixed-width bytes. Its arrays may be read-only views of a mapped
  file (`chunk_files.load_table`): opening a saved table builds no object per chunk.
- `ChunkTable` is what the `Indexer` holds as `refs`: a base `ChunkColumns` plus an
  overlay of the chunks added (`ChunkRef`s in a dict) and removed (ids) since it was
  installed, behind a dict-like API (`table[i] = ref`, `pop`, `clear`, `update`); the
  overlay is folded into new in-memory columns once it holds `FOLD_AT` changes, so
  indexing a million chunks never holds a million `ChunkRef`s either. It also answers
  the questions that scan every chunk with column operations (`select` for the search
  filters, `missing_from`/`hashes`/`pending_order` for the vectors, `path_counts`).
- `ColumnsBuilder` makes columns from rows or refs (the store's snapshot, a fold).

`ChunkRef` stays the record handed out per chunk (`get`, `table[i]`): made on demand
from the columns. Plain data over NumPy: it must not touch files (chunk_files.py) nor
the database. `ChunkTable` takes its own lock, so readers in other threads see a whole
state; the indexer's memory lock still orders it with the other structures.
"""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Iterator,
    Mapping,
    MutableMapping,
    Sequence,
    ValuesView,
)
from typing import Any

import numpy as np

from semcode.index.records import ChunkRef

ENCODING = "utf-8"
ERRORS = "surrogatepass"  # names and paths of undecodable text keep their lone surrogates
# Changes held as Python objects before they are folded into columns: bounds the overlay
# (a fold costs one pass over the columns, so this also bounds how often that happens).
FOLD_AT = 65_536
# The arrays of `ChunkColumns`, by name (what a saved table holds, in this order).
ROW_ARRAYS = ("ids", "path", "language", "content", "kind", "start_line", "hash")
ARRAY_NAMES = (*ROW_ARRAYS, "name_offsets", "name_blob", "path_offsets", "path_blob")
# The tie order of an id the table does not hold: after every held chunk.
UNKNOWN_PATH = "\U0010ffff"
EMPTY_IDS = np.zeros(0, np.int64)

OrderKey = tuple[str, int, str, int]


def _text(data: bytes) -> str:
    try:
        return data.decode(ENCODING, ERRORS)
    except UnicodeDecodeError:  # only a damaged saved file: never raise for it
        return data.decode(ENCODING, "replace")


def _smallest(values: np.ndarray) -> np.ndarray:
    """`values` (integers) in the smallest dtype that holds them."""
    if not len(values):
        return values.astype(np.uint8)
    low, high = int(values.min()), int(values.max())
    kinds = ((np.uint8, np.uint16, np.uint32) if low >= 0 else (np.int8, np.int16, np.int32))
    for dtype in kinds:
        info = np.iinfo(dtype)
        if info.min <= low and high <= info.max:
            return values.astype(dtype)
    return values.astype(np.int64)


def _offsets(lengths: np.ndarray) -> np.ndarray:
    out = np.zeros(len(lengths) + 1, np.int64)
    np.cumsum(lengths, out=out[1:])
    return out


def _gather(blob: np.ndarray, offsets: np.ndarray, rows: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """(blob, offsets) of the strings at `rows` of (`blob`, `offsets`), in that order."""
    starts = np.asarray(offsets[:-1], np.int64)[rows]
    lengths = np.asarray(offsets[1:], np.int64)[rows] - starts
    out = _offsets(lengths)
    if not len(rows) or not out[-1]:
        return np.zeros(0, np.uint8), out
    index = np.repeat(starts - out[:-1], lengths) + np.arange(int(out[-1]), dtype=np.int64)
    return np.asarray(blob)[index], out


def _member(values: np.ndarray, sorted_ids: np.ndarray) -> np.ndarray:
    """Which of `values` are in `sorted_ids` (a bisection each)."""
    if not len(sorted_ids) or not len(values):
        return np.zeros(len(values), bool)
    at = np.minimum(np.searchsorted(sorted_ids, values), len(sorted_ids) - 1)
    return np.asarray(sorted_ids[at] == values)


class ChunkColumns(Mapping[int, ChunkRef]):
    """One immutable set of chunk columns sorted by id (see the module docstring); a
    read-only `Mapping` of id -> `ChunkRef`."""

    def __init__(self, arrays: Mapping[str, np.ndarray], languages: Sequence[str],
                 contents: Sequence[str], stamp: tuple[str, int] | None = None) -> None:
        """Columns of `arrays` (every name of `ARRAY_NAMES`), `languages` and `contents`
        the strings their codes index. `stamp` is the (store id, generation) of the saved
        file they were mapped from (None: made in memory). Call `check` on arrays that
        were not made by `ColumnsBuilder`."""
        self.arrays = {name: arrays[name] for name in ARRAY_NAMES}
        self.languages = tuple(languages)
        self.contents = tuple(contents)
        self.stamp = stamp
        a = self.arrays
        self.ids: np.ndarray = a["ids"]
        self._last = int(self.ids[-1]) if len(self.ids) else -(1 << 63)
        self._path, self._language, self._content = a["path"], a["language"], a["content"]
        self._kind, self._start, self._hash = a["kind"], a["start_line"], a["hash"]
        self._name_offsets, self._name_blob = a["name_offsets"], a["name_blob"]
        self._path_offsets, self._path_blob = a["path_offsets"], a["path_blob"]

    @classmethod
    def empty(cls) -> ChunkColumns:
        """No chunks."""
        return ColumnsBuilder().build()

    def check(self) -> None:
        """ValueError unless the arrays agree with each other: lengths, ids sorted and
        unique, offsets in order and inside their blobs, codes inside their tables
        (cheap: vectorised, per chunk, never per byte)."""
        n, a = len(self.ids), self.arrays
        if any(len(a[name]) != n for name in ROW_ARRAYS):
            raise ValueError("columns of different lengths")
        if n > 1 and not bool(np.all(np.diff(self.ids) > 0)):
            raise ValueError("chunk ids not unique and sorted")
        if self._hash.dtype.kind != "S":
            raise ValueError("hashes are not fixed-width bytes")
        for offsets, blob, count in ((self._name_offsets, self._name_blob, n),
                                     (self._path_offsets, self._path_blob, None)):
            if (len(offsets) < 1 or (count is not None and len(offsets) != count + 1)
                    or int(offsets[0]) != 0 or int(offsets[-1]) != len(blob)
                    or not bool(np.all(np.diff(offsets) >= 0))):
                raise ValueError("string offsets disagree with their blob")
        for codes, size in ((self._path, len(self._path_offsets) - 1),
                            (self._language, len(self.languages)),
                            (self._content, len(self.contents))):
            if n and (codes.dtype.kind not in "ui" or int(codes.min()) < 0
                      or int(codes.max()) >= size):
                raise ValueError("a code points outside its table")

    # ------------------------------------------------------------------ rows
    def row(self, chunk_id: int) -> int | None:
        """The row of `chunk_id`, None when it is not here."""
        if chunk_id > self._last:  # a new chunk (ids only grow): the indexing path
            return None
        ids = self.ids
        at = int(np.searchsorted(ids, chunk_id))
        return at if at < len(ids) and int(ids[at]) == chunk_id else None

    def rows(self, chunk_ids: np.ndarray) -> np.ndarray:
        """The row of each of `chunk_ids` (int64), -1 where it is not here."""
        values = np.asarray(chunk_ids, np.int64)
        if not len(self.ids):
            return np.full(len(values), -1, np.int64)
        at = np.minimum(np.searchsorted(self.ids, values), len(self.ids) - 1)
        return np.where(self.ids[at] == values, at, -1).astype(np.int64)

    def path(self, code: int) -> str:
        """The path of a path code."""
        offsets = self._path_offsets
        return _text(self._path_blob[int(offsets[code]):int(offsets[code + 1])].tobytes())

    def paths(self) -> list[str]:
        """Every distinct path, by code (sorted)."""
        blob, offsets = self._path_blob.tobytes(), self._path_offsets.tolist()
        return [_text(blob[offsets[i]:offsets[i + 1]]) for i in range(len(offsets) - 1)]

    def path_code(self, path: str) -> int | None:
        """The code of `path`, None when no chunk here has it (a bisection: the path
        table is sorted by its UTF-8 bytes)."""
        key, lo, hi = path.encode(ENCODING, ERRORS), 0, len(self._path_offsets) - 1
        while lo < hi:
            mid = (lo + hi) // 2
            if self._path_bytes(mid) < key:
                lo = mid + 1
            else:
                hi = mid
        return lo if lo < len(self._path_offsets) - 1 and self._path_bytes(lo) == key else None

    def _path_bytes(self, code: int) -> bytes:
        offsets = self._path_offsets
        return self._path_blob[int(offsets[code]):int(offsets[code + 1])].tobytes()

    def name(self, row: int) -> str:
        """The name at `row`."""
        offsets = self._name_offsets
        return _text(self._name_blob[int(offsets[row]):int(offsets[row + 1])].tobytes())

    def hash(self, row: int) -> str:
        """The content hash at `row`."""
        return _text(bytes(self._hash[row]))

    def ref(self, row: int) -> ChunkRef:
        """The `ChunkRef` at `row`."""
        return ChunkRef(self.path(int(self._path[row])), self.languages[int(self._language[row])],
                        int(self._kind[row]), self.hash(row),
                        self.contents[int(self._content[row])], int(self._start[row]),
                        self.name(row))

    def order_key(self, row: int) -> OrderKey:
        """`ChunkRef.order_key` of the chunk at `row`, without making the ref."""
        return (self.path(int(self._path[row])), int(self._start[row]), self.name(row),
                int(self._kind[row]))

    # ------------------------------------------------------------------ Mapping
    def __getitem__(self, chunk_id: int) -> ChunkRef:
        row = self.row(chunk_id)
        if row is None:
            raise KeyError(chunk_id)
        return self.ref(row)

    def __contains__(self, chunk_id: object) -> bool:
        return isinstance(chunk_id, int | np.integer) and self.row(int(chunk_id)) is not None

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids.tolist())

    def __len__(self) -> int:
        return len(self.ids)

    def refs(self, rows: np.ndarray | None = None) -> Iterator[tuple[int, ChunkRef]]:
        """(id, ref) of `rows` (default: every row), in order."""
        ids = self.ids.tolist()
        for row in (range(len(ids)) if rows is None else rows.tolist()):
            yield ids[row], self.ref(row)

    # ------------------------------------------------------------------ column questions
    def mask(self, languages: Iterable[str] = (), kinds: Iterable[int] = (),
             contents: Iterable[str] = (),
             paths: Callable[[list[str]], set[str]] | None = None) -> np.ndarray:
        """Which rows pass the filters (an empty filter passes every row); `paths` is
        given the distinct paths once and answers the allowed ones."""
        keep = np.ones(len(self.ids), bool)
        for wanted, codes, table in ((set(languages), self._language, self.languages),
                                     (set(contents), self._content, self.contents)):
            if wanted:
                keep &= np.isin(codes, [i for i, s in enumerate(table) if s in wanted])
        wanted_kinds = sorted(set(kinds))
        if wanted_kinds:
            keep &= np.isin(self._kind, wanted_kinds)
        if paths is not None:
            distinct = self.paths()
            allowed = paths(distinct)
            ok = np.fromiter((p in allowed for p in distinct), bool, len(distinct))
            if len(ok):
                keep &= ok[self._path]
        return keep

    def path_codes(self, rows: np.ndarray) -> np.ndarray:
        """The path code of each row of `rows`."""
        return np.asarray(self._path[rows], np.int64)

    def path_counts(self, rows: np.ndarray | None = None) -> Counter[str]:
        """Chunks per path (of `rows`, default every row)."""
        codes = self._path if rows is None else self._path[rows]
        counts = np.bincount(np.asarray(codes, np.int64), minlength=len(self._path_offsets) - 1)
        return Counter({self.path(int(c)): int(counts[c]) for c in np.flatnonzero(counts)})

    # ------------------------------------------------------------------ new columns
    def take(self, rows: np.ndarray) -> ChunkColumns:
        """The columns of `rows` (ascending), tables kept as they are."""
        rows = np.asarray(rows, np.int64)
        arrays = {name: self.arrays[name][rows] for name in ROW_ARRAYS}
        # The names kept, by a mask per byte (a gather index would be 8 bytes a byte).
        lengths = np.asarray(np.diff(np.asarray(self._name_offsets, np.int64)), np.int64)
        keep = np.zeros(len(self.ids), bool)
        keep[rows] = True
        arrays["name_blob"] = np.asarray(self._name_blob)[np.repeat(keep, lengths)]
        arrays["name_offsets"] = _offsets(lengths[rows])
        arrays["path_blob"], arrays["path_offsets"] = self._path_blob, self._path_offsets
        return ChunkColumns(arrays, self.languages, self.contents)


def concat(parts: Sequence[ChunkColumns]) -> ChunkColumns:
    """One set of columns holding the rows of every part (their ids disjoint), sorted by
    id, with only the paths their rows use. Parts in id order (new chunks after the
    old: a fold, a delta) are joined without a permutation."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return ChunkColumns.empty()
    used = [np.unique(p.arrays["path"]) for p in parts]
    if len(parts) == 1 and len(parts[0].arrays["path_offsets"]) - 1 == len(used[0]):
        return parts[0]  # every path used: nothing to prune
    used_bytes = [[p._path_bytes(int(c)) for c in u] for p, u in zip(parts, used, strict=True)]
    paths = sorted({b for part in used_bytes for b in part})
    path_index = {b: i for i, b in enumerate(paths)}
    languages = sorted({s for p in parts for s in p.languages})
    contents = sorted({s for p in parts for s in p.contents})
    columns: dict[str, list[np.ndarray]] = {name: [] for name in ROW_ARRAYS}
    names, name_lengths = [], []
    for p, u, u_bytes in zip(parts, used, used_bytes, strict=True):
        a = p.arrays
        columns["ids"].append(np.asarray(a["ids"], np.int64))
        remap = np.zeros(len(a["path_offsets"]) - 1, np.int64)
        remap[u] = [path_index[b] for b in u_bytes]
        columns["path"].append(remap[np.asarray(a["path"], np.int64)])
        for name, table, new in (("language", p.languages, languages),
                                 ("content", p.contents, contents)):
            codes = np.asarray([new.index(s) for s in table] or [0], np.int64)
            columns[name].append(codes[np.asarray(a[name], np.int64)])
        for name in ("kind", "start_line", "hash"):
            columns[name].append(np.asarray(a[name]))
        names.append(np.asarray(a["name_blob"]))
        name_lengths.append(np.diff(np.asarray(a["name_offsets"], np.int64)))
    ids = np.concatenate(columns["ids"])
    in_order = len(ids) < 2 or bool(np.all(ids[1:] > ids[:-1]))
    order = None if in_order else np.argsort(ids, kind="stable")
    if order is not None and not bool(np.all(np.diff(ids[order]) > 0)):
        raise ValueError("the same chunk id in two parts")
    out = {name: np.concatenate(columns[name]) for name in ROW_ARRAYS}
    if order is not None:
        out = {name: column[order] for name, column in out.items()}
    for name in ("path", "language", "content", "kind", "start_line"):
        out[name] = _smallest(out[name])
    blob, offsets = np.concatenate(names), _offsets(np.concatenate(name_lengths))
    out["name_blob"], out["name_offsets"] = (
        (blob, offsets) if order is None else _gather(blob, offsets, order))
    out["path_blob"], out["path_offsets"] = _blob(paths)
    return ChunkColumns(out, languages, contents)


def _blob(items: Sequence[bytes]) -> tuple[np.ndarray, np.ndarray]:
    lengths = np.fromiter((len(b) for b in items), np.int64, len(items))
    return np.frombuffer(b"".join(items), np.uint8).copy(), _offsets(lengths)


class ColumnsBuilder:
    """Collects (id, ref) pairs, in any order, into `ChunkColumns` (`build`); every
    `FOLD_AT` of them become columns at once, so it never holds more refs than that."""

    def __init__(self) -> None:
        self._ids: list[int] = []
        self._refs: list[ChunkRef] = []
        self._parts: list[ChunkColumns] = []
        self._count = 0

    def __len__(self) -> int:
        return self._count

    def add(self, chunk_id: int, ref: ChunkRef) -> None:
        """Add the chunk `chunk_id` (each id once)."""
        self._ids.append(chunk_id)
        self._refs.append(ref)
        self._count += 1
        if len(self._refs) >= FOLD_AT:
            self._flush()

    def _flush(self) -> None:
        if self._refs:
            self._parts.append(_columns(self._ids, self._refs))
            self._ids, self._refs = [], []

    def build(self) -> ChunkColumns:
        """The columns of everything added, sorted by id."""
        self._flush()
        if len(self._parts) == 1:
            return self._parts[0]
        return concat(self._parts) if self._parts else _columns([], [])


def _columns(chunk_ids: Sequence[int], refs: Sequence[ChunkRef]) -> ChunkColumns:
    """Columns of `refs` (of ids `chunk_ids`), column by column."""
    n = len(refs)
    ids = np.fromiter(chunk_ids, np.int64, n)
    order = None if n < 2 or bool(np.all(ids[1:] > ids[:-1])) else np.argsort(ids,
                                                                            kind="stable")
    if order is not None:
        if not bool(np.all(np.diff(ids[order]) > 0)):
            raise ValueError("a chunk id added twice")
        ids, refs = ids[order], [refs[i] for i in order.tolist()]
    paths = sorted({r.path for r in refs}, key=lambda p: p.encode(ENCODING, ERRORS))
    path_code = {p: i for i, p in enumerate(paths)}
    languages = list(dict.fromkeys(r.language for r in refs))
    contents = list(dict.fromkeys(r.content for r in refs))
    language_code = {s: i for i, s in enumerate(languages)}
    content_code = {s: i for i, s in enumerate(contents)}
    arrays = {
        "ids": ids,
        "path": _smallest(np.fromiter((path_code[r.path] for r in refs), np.int64, n)),
        "language": _smallest(np.fromiter((language_code[r.language] for r in refs),
                                          np.int64, n)),
        "content": _smallest(np.fromiter((content_code[r.content] for r in refs),
                                         np.int64, n)),
        "kind": _smallest(np.fromiter((r.kind for r in refs), np.int64, n)),
        "start_line": _smallest(np.fromiter((r.start_line for r in refs), np.int64, n)),
    }
    hashes = [r.hash.encode(ENCODING, ERRORS) for r in refs]
    width = max(map(len, hashes), default=1) or 1
    arrays["hash"] = np.array(hashes, dtype=f"S{width}") if n else np.zeros(0, f"S{width}")
    arrays["name_blob"], arrays["name_offsets"] = _blob(
        [r.name.encode(ENCODING, ERRORS) for r in refs])
    arrays["path_blob"], arrays["path_offsets"] = _blob(
        [p.encode(ENCODING, ERRORS) for p in paths])
    return ChunkColumns(arrays, languages, contents)


def columns_of(refs: Mapping[int, ChunkRef]) -> ChunkColumns:
    """`refs` as columns (themselves when they are)."""
    if isinstance(refs, ChunkColumns):
        return refs
    if isinstance(refs, ChunkTable):
        return refs.columns()
    if len(refs) <= FOLD_AT:  # (an overlay being folded) at once, column by column
        return _columns(list(refs), list(refs.values()))
    builder = ColumnsBuilder()
    for chunk_id, ref in refs.items():
        builder.add(chunk_id, ref)
    return builder.build()


def chunk_ids(refs: Mapping[int, ChunkRef]) -> np.ndarray:
    """The ids of `refs`, sorted (int64), without a Python int per id for columns."""
    if isinstance(refs, ChunkColumns | ChunkTable):
        return refs.ids() if isinstance(refs, ChunkTable) else refs.ids
    return np.sort(np.fromiter(refs.keys(), np.int64, len(refs)))


def advanced(refs: Mapping[int, ChunkRef], live: np.ndarray,
             added: Mapping[int, ChunkRef]) -> ChunkColumns:
    """`refs` brought to a later state of the same database: only the ids of `live`
    (sorted) kept, `added` added (ids are never reused, so this is exact)."""
    base = columns_of(refs)
    kept = np.flatnonzero(_member(base.ids, np.asarray(live, np.int64)))
    return concat([base if len(kept) == len(base) else base.take(kept), columns_of(added)])


class IdSet:
    """A sorted array of chunk ids as a membership test (a search filter's `allow`)."""

    def __init__(self, ids: np.ndarray) -> None:
        """`ids` sorted, unique."""
        self.ids = ids

    def __contains__(self, chunk_id: object) -> bool:
        if not isinstance(chunk_id, int | np.integer) or not len(self.ids):
            return False
        at = int(np.searchsorted(self.ids, chunk_id))
        return at < len(self.ids) and int(self.ids[at]) == int(chunk_id)

    def __len__(self) -> int:
        return len(self.ids)


class ChunkTable(MutableMapping[int, ChunkRef]):
    """The indexer's chunk table: base columns plus an overlay (see the module
    docstring). `dirty` says whether it differs from the columns last installed from, or
    written to, the saved file."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._base = ChunkColumns.empty()
        self._added: dict[int, ChunkRef] = {}  # chunks not among the base's live rows
        self._gone: set[int] = set()  # base chunks removed since
        self._version = 0  # bumped by every change (a save records the one it wrote)
        self.dirty = False

    # ------------------------------------------------------------------ whole states
    def install(self, refs: Mapping[int, ChunkRef], stamp: tuple[str, int]) -> None:
        """Hold exactly `refs`, the chunks of database state `stamp` (store id,
        generation); clean when they are the saved table of that very state."""
        columns = columns_of(refs)
        with self._lock:
            self._base, self._added, self._gone = columns, {}, set()
            self._version += 1
            self.dirty = columns.stamp != stamp

    def columns(self) -> ChunkColumns:
        """Every chunk held, as columns (the overlay folded in first)."""
        with self._lock:
            self._fold()
            return self._base

    def for_save(self) -> tuple[ChunkColumns, int]:
        """(the columns to write, the version they are): pass the version to `saved`."""
        with self._lock:
            return self.columns(), self._version

    def saved(self, version: int) -> None:
        """The columns of `version` were written: clean unless it changed since."""
        with self._lock:
            if version == self._version:
                self.dirty = False

    def _fold(self) -> None:
        if not self._added and not self._gone:
            return
        base = self._base
        if self._gone:
            gone = np.fromiter(self._gone, np.int64, len(self._gone))
            base = base.take(np.flatnonzero(~np.isin(base.ids, gone)))
        added = columns_of(self._added)
        self._base, self._added, self._gone = concat([base, added]), {}, set()

    def _changed(self) -> None:
        self._version += 1
        self.dirty = True
        if len(self._added) + len(self._gone) >= FOLD_AT:
            self._fold()

    # ------------------------------------------------------------------ mapping
    def _base_row(self, chunk_id: int) -> int | None:
        row = self._base.row(chunk_id)
        return None if row is None or chunk_id in self._gone else row

    def get(self, chunk_id: int, default: Any = None) -> Any:
        """The `ChunkRef` of `chunk_id`, `default` when it is not held."""
        with self._lock:
            found = self._added.get(chunk_id)
            if found is not None:
                return found
            row = self._base_row(chunk_id) if isinstance(chunk_id, int | np.integer) else None
            return default if row is None else self._base.ref(row)

    def __getitem__(self, chunk_id: int) -> ChunkRef:
        found: ChunkRef | None = self.get(chunk_id)
        if found is None:
            raise KeyError(chunk_id)
        return found

    def __contains__(self, chunk_id: object) -> bool:
        if not isinstance(chunk_id, int | np.integer):
            return False
        with self._lock:
            return int(chunk_id) in self._added or self._base_row(int(chunk_id)) is not None

    def __len__(self) -> int:
        with self._lock:
            return len(self._base) - len(self._gone) + len(self._added)

    def __iter__(self) -> Iterator[int]:
        return iter(self.ids().tolist())

    def __setitem__(self, chunk_id: int, ref: ChunkRef) -> None:
        chunk_id = int(chunk_id)
        with self._lock:
            if self._base.row(chunk_id) is not None:
                self._gone.add(chunk_id)  # the base row is replaced (never, by the indexer)
            self._added[chunk_id] = ref
            self._changed()

    def __delitem__(self, chunk_id: int) -> None:
        if not self._remove(int(chunk_id)):
            raise KeyError(chunk_id)

    def _remove(self, chunk_id: int) -> bool:
        with self._lock:
            if self._added.pop(chunk_id, None) is None:
                if self._base_row(chunk_id) is None:
                    return False
                self._gone.add(chunk_id)
            elif self._base.row(chunk_id) is not None:
                self._gone.add(chunk_id)
            self._changed()
            return True

    def pop(self, chunk_id: int, *default: Any) -> Any:
        """Remove `chunk_id` and return its ref, or `default` when it is not held."""
        with self._lock:
            found = self.get(chunk_id)
            if found is not None and self._remove(int(chunk_id)):
                return found
        if default:
            return default[0]
        raise KeyError(chunk_id)

    def clear(self) -> None:
        """Hold nothing."""
        with self._lock:
            self._base, self._added, self._gone = ChunkColumns.empty(), {}, set()
            self._version += 1
            self.dirty = True

    def update(self, other: Any = (), /, **kwargs: ChunkRef) -> None:
        """Add every chunk of `other` (a mapping or pairs); columns of new ids (the
        delta another process wrote) are joined as columns, not ref by ref."""
        if isinstance(other, ChunkColumns) and not kwargs and len(other) >= FOLD_AT // 8:
            with self._lock:
                self._fold()
                if not bool(np.any(_member(other.ids, self._base.ids))):
                    self._base = concat([self._base, other])
                    self._version += 1
                    self.dirty = True
                    return
        super().update(other, **kwargs)

    def items(self) -> ItemsView[int, ChunkRef]:
        """(id, ref) of every chunk, read column by column."""
        return _Items(self)

    def values(self) -> ValuesView[ChunkRef]:
        """Every chunk's ref, read column by column."""
        return _Values(self)

    def _pairs(self) -> Iterator[tuple[int, ChunkRef]]:
        with self._lock:
            base, added, gone = self._base, dict(self._added), set(self._gone)
        live = (np.flatnonzero(~np.isin(base.ids, np.fromiter(gone, np.int64, len(gone))))
                if gone else None)
        yield from base.refs(live)
        yield from sorted(added.items())

    # ------------------------------------------------------------------ column questions
    def _view(self) -> tuple[ChunkColumns, np.ndarray, dict[int, ChunkRef]]:
        """(base, its live rows, the added refs) of one moment."""
        with self._lock:
            base, added = self._base, dict(self._added)
            gone = np.fromiter(self._gone, np.int64, len(self._gone))
        rows = np.arange(len(base)) if not len(gone) else np.flatnonzero(
            ~np.isin(base.ids, gone))
        return base, rows, added

    def ids(self) -> np.ndarray:
        """Every held chunk id, sorted (int64)."""
        base, rows, added = self._view()
        ids = np.asarray(base.ids[rows], np.int64)
        if not added:
            return ids
        return np.sort(np.concatenate([ids, np.fromiter(added, np.int64, len(added))]))

    def order_key(self, chunk_id: int) -> OrderKey:
        """The tie order of results: `ChunkRef.order_key`, after every held chunk for an
        id not held (then by id)."""
        with self._lock:
            found = self._added.get(chunk_id)
            if found is not None:
                return found.order_key
            row = self._base_row(chunk_id)
            if row is not None:
                return self._base.order_key(row)
        return (UNKNOWN_PATH, chunk_id, "", 0)

    def select(self, languages: Iterable[str] = (), kinds: Iterable[int] = (),
               contents: Iterable[str] = (),
               paths: Callable[[list[str]], set[str]] | None = None) -> IdSet:
        """The held chunks that pass the filters (`ChunkColumns.mask`: column masks,
        each distinct path matched once)."""
        languages, kinds, contents = set(languages), set(kinds), set(contents)
        base, rows, added = self._view()
        keep = base.mask(languages, kinds, contents, paths)[rows]
        ids = [np.asarray(base.ids[rows[keep]], np.int64)]
        allowed = paths(sorted({r.path for r in added.values()})) if paths and added else set()
        extra = [i for i, r in added.items()
                 if (not languages or r.language in languages)
                 and (not kinds or r.kind in kinds)
                 and (not contents or r.content in contents)
                 and (paths is None or r.path in allowed)]
        if extra:
            ids.append(np.asarray(extra, np.int64))
        return IdSet(np.sort(np.concatenate(ids)))

    def hashes(self, chunk_ids: Iterable[int]) -> dict[int, str]:
        """The content hash of each held chunk of `chunk_ids` (read column-wise)."""
        wanted = np.asarray(chunk_ids if isinstance(chunk_ids, np.ndarray)
                            else list(chunk_ids), np.int64)
        with self._lock:
            base, added = self._base, dict(self._added)
            gone = np.fromiter(self._gone, np.int64, len(self._gone))
        rows = base.rows(wanted)
        live = rows >= 0
        if len(gone):
            live &= ~np.isin(wanted, gone)
        out = dict(zip(wanted[live].tolist(),
                       (_text(h) for h in base.arrays["hash"][rows[live]].tolist()),
                       strict=True))
        if added:
            for chunk_id in wanted.tolist():
                if chunk_id in added:
                    out[chunk_id] = added[chunk_id].hash
        return out

    def missing_from(self, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(ids of `held` (sorted) this table does not hold, held chunk ids `held`
        lacks): what another structure keyed by chunk id must drop and add."""
        ids = self.ids()
        held = np.asarray(held, np.int64)
        return held[~_member(held, ids)], ids[~_member(ids, held)]

    def pending_order(self, chunk_ids: np.ndarray, priority: Sequence[str]) -> list[int]:
        """`chunk_ids` ordered by the first of `priority` their path is (the others
        after), then by id."""
        chunk_ids = np.sort(np.asarray(chunk_ids, np.int64))
        if not priority or not len(chunk_ids):
            return chunk_ids.tolist()
        base, _, added = self._view()
        last = len(priority)
        rank_of_path: dict[str, int] = {}
        for n, path in enumerate(priority):
            rank_of_path.setdefault(path, n)
        ranks = np.full(len(chunk_ids), last, np.int64)
        if len(base):
            rank_of_code = np.full(len(base.arrays["path_offsets"]) - 1, last, np.int64)
            for path, n in rank_of_path.items():
                code = base.path_code(path)
                if code is not None:
                    rank_of_code[code] = n
            rows = base.rows(chunk_ids)
            at = rows >= 0
            ranks[at] = rank_of_code[base.path_codes(rows[at])]
        if added:  # (an added chunk overrides a base row of its id)
            extra = np.fromiter(added, np.int64, len(added))
            where = np.searchsorted(chunk_ids, extra)
            for pos, chunk_id in zip(where.tolist(), extra.tolist(), strict=True):
                if pos < len(chunk_ids) and int(chunk_ids[pos]) == chunk_id:
                    ranks[pos] = rank_of_path.get(added[chunk_id].path, last)
        return chunk_ids[np.lexsort((chunk_ids, ranks))].tolist()

    def path_counts(self) -> Counter[str]:
        """Chunks per path."""
        base, rows, added = self._view()
        counts = base.path_counts(rows)
        counts.update(r.path for r in added.values())
        return counts


class _Items(ItemsView[int, ChunkRef]):
    def __init__(self, table: ChunkTable) -> None:
        super().__init__(table)
        self._table = table

    def __iter__(self) -> Iterator[tuple[int, ChunkRef]]:
        return self._table._pairs()


class _Values(ValuesView[ChunkRef]):
    def __init__(self, table: ChunkTable) -> None:
        super().__init__(table)
        self._table = table

    def __iter__(self) -> Iterator[ChunkRef]:
        return (ref for _, ref in self._table._pairs())
