"""Each class declares its own attributes in its own module. A part split off a big class
as a mixin re-declares its host's attributes and methods for the type checker (`if
TYPE_CHECKING:` inside the class body) — state it uses but another module owns, which a
reader cannot see. A part that needs another's state is an object handed it instead."""

from __future__ import annotations

import ast
import os
from pathlib import Path

import package_source
from package_source import modules

# SEMCODE_PACKAGE_DIR points the check at another checkout (to see it fail on old code).
PACKAGE = Path(os.environ.get("SEMCODE_PACKAGE_DIR", package_source.PACKAGE))


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _borrowed_declarations(tree: ast.Module) -> list[tuple[str, int, str]]:
    """(class, line, name) of what a class body declares under `if TYPE_CHECKING:`."""
    found = []
    for cls in (n for n in ast.walk(tree) if isinstance(n, ast.ClassDef)):
        for stmt in cls.body:
            if not (isinstance(stmt, ast.If) and _is_type_checking(stmt.test)):
                continue
            for inner in ast.walk(stmt):
                if isinstance(inner, ast.AnnAssign) and isinstance(inner.target, ast.Name):
                    found.append((cls.name, inner.lineno, inner.target.id))
                elif isinstance(inner, ast.FunctionDef | ast.AsyncFunctionDef):
                    found.append((cls.name, inner.lineno, f"{inner.name}()"))
    return found


def test_no_class_declares_attributes_it_does_not_own() -> None:
    offenders = []
    for module in modules(PACKAGE):
        offenders += [f"{module.rel}:{line} {cls}.{name}"
                      for cls, line, name in _borrowed_declarations(module.tree)]
    assert not offenders, ("declared for the type checker, owned elsewhere (make the part "
                           "an object that is handed what it needs):\n" + "\n".join(offenders))


def test_the_check_sees_a_mixin() -> None:
    """The check itself: a mixin in the shape the index used to have is caught."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "class Saving:\n"
        "    if TYPE_CHECKING:\n"
        "        lock: object\n"
        "        def _writing(self) -> None: ...\n"
        "    def flush(self) -> None:\n"
        "        self.lock\n")
    assert _borrowed_declarations(tree) == [("Saving", 4, "lock"), ("Saving", 5, "_writing()")]
