"""Every public function, method and class in `server/semcode` has a docstring (issue 13).

Public: the name does not start with `_`, and it is defined at module level or in a class
body (also under `if`/`try` there), not inside a function: a closure is an implementation
detail of the function around it. Pure `ast`: nothing is imported (the parsed source is
shared with the other structural tests: package_source.py).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

from package_source import SourceModule, modules

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def _checked_modules() -> tuple[SourceModule, ...]:
    """Every module of the package (no exceptions)."""
    return modules()


def _public_definitions(tree: ast.Module) -> Iterator[Definition]:
    """Public defs at module level and in class bodies, at any depth of classes and of
    `if`/`try`/`with` blocks, but never inside a function."""
    def walk(node: ast.AST) -> Iterator[Definition]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                if not child.name.startswith("_"):
                    yield child
                if isinstance(child, ast.ClassDef):
                    yield from walk(child)
            elif isinstance(child, ast.stmt):
                yield from walk(child)
    yield from walk(tree)


def test_every_public_definition_has_a_docstring() -> None:
    missing = []
    for module in _checked_modules():
        for node in _public_definitions(module.tree):
            if ast.get_docstring(node) is None:
                missing.append(f"server/semcode/{module.rel}:{node.lineno} {node.name}")
    assert not missing, (
        "public definitions without a docstring (say what it does, and why where that "
        "is not obvious):\n" + "\n".join(missing))


def test_the_walk_sees_methods_and_skips_closures() -> None:
    tree = ast.parse(
        "def f():\n    def inner(): pass\n"
        "class C:\n    def m(self): pass\n    def _p(self): pass\n"
        "    if True:\n        def g(self): pass\n"
        "class _Private:\n    def shown(self): pass\n")
    names = [n.name for n in _public_definitions(tree)]
    assert names == ["f", "C", "m", "g", "shown"]


def test_the_checked_set_is_not_empty() -> None:
    # A wrong PACKAGE path or an exclusion that swallows everything must not pass quietly.
    assert len(_checked_modules()) > 30
