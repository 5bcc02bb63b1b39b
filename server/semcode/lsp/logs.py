"""Logging: a file (default `<cache dir>/logs/server.log`) and `window/logMessage`.

Only semcode's own records go to the client (pygls logs every message it sends, which
would loop); pygls' records go to the file, at WARNING unless the level is debug.
"""

from __future__ import annotations

import contextlib
import logging
import logging.handlers
from collections.abc import Callable
from pathlib import Path

from semcode.config import cache_dir

LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING,
          "error": logging.ERROR}
FORMAT = "%(asctime)s %(levelname)s %(threadName)s %(name)s: %(message)s"


def default_log_file() -> Path:
    """The server's log file when none is given (in the user's cache folder)."""
    return cache_dir() / "logs" / "server.log"


class ClientLogHandler(logging.Handler):
    """Forwards records to a sink (set once the server runs) as window/logMessage."""

    def __init__(self) -> None:
        super().__init__()
        self.sink: Callable[[int, str], None] | None = None

    def emit(self, record: logging.LogRecord) -> None:
        """Send the record to the client as one line (no traceback); never raises."""
        sink = self.sink
        if sink is None:
            return
        with contextlib.suppress(Exception):  # never let logging break the server
            # One line: a traceback is for the log file, not for the editor's log view.
            text = f"{record.levelname} {record.name}: {record.getMessage()}"
            if record.exc_info and record.exc_info[1] is not None:
                exc = record.exc_info[1]
                first = str(exc).strip().splitlines()
                text += f" ({type(exc).__name__}{': ' + first[0] if first else ''})"
            sink(record.levelno, text)


def setup(log_file: Path | None, level: str) -> ClientLogHandler:
    """Log at `level` to a rotating file (stderr if it cannot be made) and semcode's own
    records, info and up, to the client (`window/logMessage`); returns the client handler."""
    lvl = LEVELS[level]
    root = logging.getLogger()
    root.setLevel(logging.DEBUG)
    path = log_file or default_log_file()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        file_handler: logging.Handler = logging.handlers.RotatingFileHandler(
            path, maxBytes=5_000_000, backupCount=2, encoding="utf-8")
    except OSError:
        file_handler = logging.StreamHandler()  # stderr: never stdout, that is the channel
    file_handler.setLevel(lvl)
    file_handler.setFormatter(logging.Formatter(FORMAT))
    root.addHandler(file_handler)
    client = ClientLogHandler()
    client.setLevel(max(lvl, logging.INFO))
    client.addFilter(logging.Filter("semcode"))
    root.addHandler(client)
    logging.getLogger("pygls").setLevel(logging.DEBUG if lvl == logging.DEBUG else logging.WARNING)
    return client
