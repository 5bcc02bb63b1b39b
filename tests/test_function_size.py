"""No function of the package is longer than MAX_LINES (read with `ast`, nothing imported),
except declarations that read best as one table; a long function is split by job."""

from __future__ import annotations

import ast
from pathlib import Path

from package_source import PACKAGE, modules

MAX_LINES = 60

# Declarations: one entry per option or tool, read top to bottom; splitting them would
# only scatter the table.
DECLARATIONS = {
    "cli.py::build_parser",  # the argparse declaration of every subcommand and option
    "mcp/server.py::build_server",  # the MCP tools and their argument schemas
}
# Temporary: split on other branches of issue 23 / issue 20 (the lead removes each entry
# when that branch is merged).
ELSEWHERE = {
}


def long_functions(root: Path = PACKAGE, limit: int = MAX_LINES) -> dict[str, int]:
    """{"module.py::name": lines} for every function under `root` longer than `limit`."""
    found = {}
    for module in modules(root):
        for node in ast.walk(module.tree):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                lines = (node.end_lineno or node.lineno) - node.lineno + 1
                if lines > limit:
                    found[f"{module.rel}::{node.name}"] = lines
    return found


def test_no_function_is_longer_than_the_limit() -> None:
    allowed = DECLARATIONS | set(ELSEWHERE)
    over = {name: n for name, n in long_functions().items() if name not in allowed}
    assert not over, f"functions over {MAX_LINES} lines (split them by job): {over}"


def test_the_allow_lists_hold_only_long_functions() -> None:
    # An entry whose function was split (or renamed) must leave the list.
    stale = (DECLARATIONS | set(ELSEWHERE)) - set(long_functions())
    assert not stale, f"no longer over {MAX_LINES} lines: {sorted(stale)}"


def test_the_scan_counts_a_long_function(tmp_path: Path) -> None:
    body = "".join(f"    x{n} = {n}\n" for n in range(MAX_LINES))
    (tmp_path / "m.py").write_text(f"def long():\n{body}\n\ndef short():\n    pass\n",
                                   encoding="utf-8")
    assert long_functions(tmp_path) == {"m.py::long": MAX_LINES + 1}
