"""The package's source, parsed once per test session, for the structural tests
(test_docstrings, test_owned_state, test_function_size, test_kinds, test_import_graph,
lsp/test_session_parts): every module under a root, read and `ast.parse`d the first time
one of them asks, then shared. Pure `ast`: nothing of the package is imported. The trees
are shared, so a test must read them, never change them.
"""

from __future__ import annotations

import ast
import functools
from dataclasses import dataclass
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "server" / "semcode"


@dataclass(frozen=True)
class SourceModule:
    """One module: its file, its path relative to the root (POSIX), its syntax tree."""

    path: Path
    rel: str
    tree: ast.Module


@functools.cache
def modules(root: Path = PACKAGE) -> tuple[SourceModule, ...]:
    """Every `*.py` under `root` (recursively, sorted by path), parsed; cached per root."""
    return tuple(SourceModule(path, path.relative_to(root).as_posix(),
                              ast.parse(path.read_text(encoding="utf-8"), str(path)))
                 for path in sorted(root.rglob("*.py")))
