"""The language server's Session is a host that wires parts owning their own state
(issue 23): no mixin stack, no placeholder methods between parts."""

from __future__ import annotations

import ast
from pathlib import Path

import semcode.lsp
from package_source import modules
from semcode.lsp.session import Session

LSP_DIR = Path(semcode.lsp.__file__).parent


def _modules() -> list[tuple[str, ast.Module]]:
    return [(m.path.name, m.tree) for m in modules(LSP_DIR)]


def test_session_is_not_assembled_from_mixins() -> None:
    assert Session.__mro__ == (Session, object)


def test_no_lsp_class_extends_another_lsp_class() -> None:
    lsp_classes = {node.name for _, tree in _modules() for node in ast.walk(tree)
                   if isinstance(node, ast.ClassDef)}
    extending = [f"{name}: {node.name}({ast.unparse(base)})" for name, tree in _modules()
                 for node in ast.walk(tree) if isinstance(node, ast.ClassDef)
                 for base in node.bases if ast.unparse(base) in lsp_classes]
    assert extending == []


def test_no_not_implemented_placeholders() -> None:
    placeholders = [f"{name}:{node.lineno}" for name, tree in _modules()
                    for node in ast.walk(tree) if isinstance(node, ast.Raise)
                    and node.exc is not None and "NotImplementedError" in ast.unparse(node.exc)]
    assert placeholders == []
