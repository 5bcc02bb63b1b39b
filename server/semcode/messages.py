"""One-line messages from exceptions: every adapter and layer shows a failure as one line
(never a traceback), and this is the one place that says how. Imports nothing of semcode
(any layer may use it)."""

from __future__ import annotations


def first_line(exc: BaseException, *, with_type: bool = False) -> str:
    """The first non-blank line of `exc`'s message; its type name when the message is
    empty. `with_type` prefixes the type (`OSError: disk full`), for messages that say
    nothing without it."""
    lines = str(exc).strip().splitlines()
    line = lines[0] if lines else ""
    if with_type:
        return f"{type(exc).__name__}: {line}".rstrip(": ")
    return line or type(exc).__name__


__all__ = ["first_line"]
