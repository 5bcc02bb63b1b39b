"""The process's garbage-collected heap, settled once a long-lived index is loaded.

A server (LSP or MCP) holds an index of tens of thousands of objects for its whole life.
Every full collection walks all of them: 50 ms of CPU on a small repository, 100-200 ms
on a loaded machine, landing in whatever edit or search runs then. Imports nothing of
semcode (both adapters use it).
"""

from __future__ import annotations

import gc


def settle_heap() -> None:
    """After indexing: collect once, then exempt every object that survived (the loaded
    index: chunk refs, the vocabulary, ...) from later collections. Objects made later
    (the chunks of edits) are collected as usual; a frozen one that becomes garbage is
    freed by its reference count, and cyclic garbage among them by the collection that
    precedes the next freeze (the next index)."""
    gc.unfreeze()
    gc.collect()
    gc.freeze()
