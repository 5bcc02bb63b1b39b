"""How the index store fails: `StoreError` (one line for the user), `StoreCorrupt`
(the database is damaged: move it aside and rebuild), `StoreForeign` (it is another
workspace's), the translation of SQLite/OS errors and of stored values that do not
decode or parse into them, and the all-or-nothing write transaction.

It knows nothing of the schema or of the write lock's owner; it must not open
databases or touch files itself (`store.py` does, through these helpers).
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path


class StoreError(RuntimeError):
    """The index cannot be read or written (damaged, busy, read-only, disk full...);
    `str()` is one line for the user."""


class StoreCorrupt(StoreError):
    """The database file is damaged or not a semcode database: move it aside, rebuild."""


class StoreForeign(StoreCorrupt):
    """The database belongs to another workspace (copied or restored into this one's
    index directory): not this index, so it is moved aside and rebuilt like damage."""


# SQLite's and the sqlite3 module's words for a damaged file, or for stored bytes that
# no longer decode (a bit flip inside a valid page: integrity_check still says ok).
_DAMAGE_WORDS = ("malformed", "not a database", "file is encrypted", "database disk image",
                 "unsupported file format", "could not decode", "could not convert")


def damaged_value(exc: BaseException, path: Path) -> StoreCorrupt:
    """`StoreCorrupt` for a stored text or number that does not decode or parse as what
    its column holds (`exc` is the ValueError/TypeError of the conversion)."""
    return StoreCorrupt(f"index database {path} is damaged (a stored value does not "
                        f"parse: {_short(str(exc) or type(exc).__name__)})")


def _short(msg: str, limit: int = 80) -> str:
    """`msg` cut to one short line: the sqlite3 module quotes the whole undecodable
    text ("Could not decode to UTF-8 column 'tokens' with text '…'")."""
    msg = msg.split(" with text ", 1)[0].splitlines()[0] if msg else msg
    return msg if len(msg) <= limit else msg[: limit - 1] + "…"


def _describe(exc: BaseException, path: Path) -> StoreError:
    """One line for an SQLite/OS error; damage becomes `StoreCorrupt`."""
    msg = str(exc).strip() or type(exc).__name__
    low = msg.lower()
    if isinstance(exc, OSError):
        why = exc.strerror or msg
        where = exc.filename or path
        return StoreError(f"cannot use the index at {where}: {why}")
    if any(s in low for s in _DAMAGE_WORDS):
        return StoreCorrupt(f"index database {path} is damaged ({_short(msg)})")
    if "locked" in low or "busy" in low:
        return StoreError(f"index database {path} is busy (another semcode process is "
                          f"using it) and stayed busy: {msg}")
    if "full" in low:
        return StoreError(f"cannot write the index at {path.parent}: the disk is full")
    if "readonly" in low or "read-only" in low or (
            "unable to open" in low and path.parent.is_dir()
            and not os.access(path.parent, os.W_OK)):
        return StoreError(f"cannot write the index at {path.parent}: it is read-only")
    if "unable to open" in low:
        return StoreError(f"cannot open the index database {path} (is {path.parent} a "
                          "writable directory?)")
    if "disk i/o" in low:
        return StoreError(f"I/O error on the index database {path} ({msg})")
    return StoreError(f"index database {path}: {msg}")


@contextlib.contextmanager
def _errors(path: Path, values: bool = False) -> Iterator[None]:
    """SQLite/OS errors inside become `StoreError`s; with `values` (around reads that
    convert stored values), a ValueError/TypeError is damage too. Not around writes:
    there such an error is a bug, not a reason to move the database aside."""
    try:
        yield
    except StoreError:
        raise
    except (sqlite3.Error, OSError) as exc:
        raise _describe(exc, path) from exc
    except (ValueError, TypeError, OverflowError) as exc:
        if not values:
            raise
        raise damaged_value(exc, path) from exc


class _Transaction:
    """BEGIN IMMEDIATE … COMMIT, ROLLBACK on error (the connection is in autocommit mode,
    so each statement outside a transaction commits by itself). A COMMIT that fails
    (disk full, I/O error) is rolled back too, so the connection never stays inside a
    transaction that wedges every later write."""

    def __init__(self, db: sqlite3.Connection, path: Path, nested: bool = False) -> None:
        """`nested`: inside a transaction already (`Store.batch`): a savepoint, so that
        a failed write undoes itself and leaves the rest of the transaction."""
        self._db = db
        self._path = path
        self._nested = nested

    def __enter__(self) -> None:
        self._db.execute("SAVEPOINT write" if self._nested else "BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, *_: object) -> None:
        if self._nested:
            if exc_type is not None:
                with contextlib.suppress(sqlite3.Error):
                    self._db.execute("ROLLBACK TO write")
            self._db.execute("RELEASE write")
            return
        if exc_type is None:
            try:
                self._db.execute("COMMIT")
                return
            except sqlite3.Error as exc:
                self._rollback()
                raise _describe(exc, self._path) from exc
        self._rollback()

    def _rollback(self) -> None:
        if self._db.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                self._db.execute("ROLLBACK")

