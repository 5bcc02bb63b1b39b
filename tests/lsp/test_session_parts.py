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


# The modules that may write string-keyed dicts: the one home of the answers' JSON, the
# JSON-RPC envelope and capabilities, the request reader, and a table of log levels.
SHAPERS = {"convert.py", "wire.py", "protocol.py", "params.py", "logs.py"}


def _is_wire_shape(node: ast.AST) -> bool:
    """A string-keyed dict being built: `{"key": …}`, `d["key"] = …`, `d.update(key=…)`,
    `dict(key=…)`."""
    if isinstance(node, ast.Dict):
        return any(isinstance(k, ast.Constant) and isinstance(k.value, str) for k in node.keys)
    if isinstance(node, ast.Subscript):
        return isinstance(node.ctx, ast.Store) and isinstance(node.slice, ast.Constant) \
            and isinstance(node.slice.value, str)
    if isinstance(node, ast.Call) and node.keywords:
        func = node.func
        return (isinstance(func, ast.Attribute) and func.attr == "update") or (
            isinstance(func, ast.Name) and func.id == "dict")
    return False


def _wire_shapes(tree: ast.AST) -> list[int]:
    """The lines of `tree` that build a string-keyed dict."""
    return [node.lineno for node in ast.walk(tree) if _is_wire_shape(node)]


def test_the_parts_make_no_wire_shapes() -> None:
    # The parts answer with records (records.py); convert.py alone makes their JSON.
    shaped = [f"{name}:{line}" for name, tree in _modules() if name not in SHAPERS
              for line in _wire_shapes(tree)]
    assert shaped == []


def test_the_wire_shape_check_sees_each_form() -> None:
    tree = ast.parse('a = {"searchId": 1}\nb["items"] = []\nc.update(reranked=True)\n'
                     'd = dict(mode="x")\ne = {1: 2}\nf[0] = 1\n')
    assert _wire_shapes(tree) == [1, 2, 3, 4]
