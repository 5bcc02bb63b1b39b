"""The writer thread's buffer ops reach the engine as they name (no server needed)."""

from __future__ import annotations

import threading
from pathlib import Path
from types import SimpleNamespace
from typing import Any

from semcode.lsp.buffers import BufferOp, BufferRouting


class _Engine:
    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []

    def rename_file(self, old: str, new: str) -> None:
        self.calls.append(("rename", old, new))

    def remove_file(self, rel: str) -> None:
        self.calls.append(("remove", rel))

    def revert_file(self, rel: str) -> None:
        self.calls.append(("revert", rel))


def test_rename_remove_revert_close(tmp_path: Path) -> None:
    engine = _Engine()
    folder: Any = SimpleNamespace(engine=engine, stop=threading.Event(),
                                  writer_waiting=threading.Event(),
                                  ref=SimpleNamespace(root=tmp_path))
    BufferRouting._apply(folder, BufferOp.RENAME, "a.py", "b.py")
    BufferRouting._apply(folder, BufferOp.REMOVE, "c.py")
    BufferRouting._apply(folder, BufferOp.REVERT, "d.py")
    BufferRouting._apply(folder, BufferOp.CLOSE, "e.py")
    assert engine.calls == [("rename", "a.py", "b.py"), ("remove", "c.py"),
                            ("revert", "d.py"), ("revert", "e.py")]
