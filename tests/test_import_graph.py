"""The import graph of `semcode`, read from the source with `ast` (nothing is imported).

Two promises of ARCHITECTURE.md are checked here:

- no import cycle among `semcode.*` modules, counting imports inside functions and under
  `if TYPE_CHECKING:` (a deferred import between two modules still ties them together);
- the layering: lower layers never import higher ones, not even inside a function.

Every function-level import between `semcode` modules must be listed in `DEFERRED_IMPORTS`
with the reason it is deferred (start-up speed, an optional runtime), so a new one is a
deliberate choice; none may close a cycle.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass

from package_source import PACKAGE, SourceModule, modules

SERVER = PACKAGE.parent

# Top-level rooms (first component after `semcode.`) and what each may never import.
_BASE = ("chunks", "config", "workspace", "chunking", "states", "heap", "kinds", "messages")
_FORBIDDEN: dict[str, tuple[str, ...]] = {
    **{room: ("index", "models", "search", "lsp", "mcp", "cli", "cli_commands", "evaluation")
       for room in _BASE},
    "index": ("models", "search", "lsp", "mcp", "cli", "cli_commands", "evaluation"),
    "models": ("index", "search", "lsp", "mcp", "cli", "cli_commands", "evaluation"),
    "search": ("lsp", "mcp", "cli", "cli_commands", "evaluation"),
    "evaluation": ("cli", "cli_commands", "lsp", "mcp"),
}

# (importer, imported) pairs allowed as function-level imports, with why they are deferred.
_LAZY_CLI = "the CLI imports a subcommand's heavy rooms only when that subcommand runs"
_LAZY_BACKEND = ("a model backend's module (and its runtime: llama.cpp, MLX, httpx, "
                 "model2vec) is imported only when that backend is used")
DEFERRED_IMPORTS: dict[tuple[str, str], str] = {
    ("semcode.cli", "semcode.models.registry"): _LAZY_CLI,
    ("semcode.cli_commands", "semcode.models.builtin"): _LAZY_CLI,
    ("semcode.cli_commands", "semcode.models.auto"): _LAZY_CLI,
    ("semcode.cli_commands", "semcode.models.costs"): _LAZY_CLI,
    ("semcode.cli_commands", "semcode.models.base"): _LAZY_CLI,
    ("semcode.cli_commands", "semcode.models.hub"): _LAZY_CLI,
    ("semcode.cli_commands", "semcode.evaluation"): _LAZY_CLI,
    ("semcode.cli_commands", "semcode.search.estimate"): _LAZY_CLI,
    ("semcode.cli", "semcode.mcp.configs"): _LAZY_CLI,
    ("semcode.cli", "semcode.mcp.server"): _LAZY_CLI,
    ("semcode.cli", "semcode.lsp.server"): _LAZY_CLI,
    ("semcode.models.backends", "semcode.models.static"): _LAZY_BACKEND,
    ("semcode.models.backends", "semcode.models.mlx"): _LAZY_BACKEND,
    ("semcode.models.costs", "semcode.models.static"): _LAZY_BACKEND,
    ("semcode.models.factory", "semcode.models.static"): _LAZY_BACKEND,
    ("semcode.models.factory", "semcode.models.mlx"): _LAZY_BACKEND,
    ("semcode.models.factory", "semcode.models.remote"): _LAZY_BACKEND,
    ("semcode.models.factory", "semcode.models.llama_cpp"): _LAZY_BACKEND,
    ("semcode.models.hub", "semcode.models.static"): _LAZY_BACKEND,
}


@dataclass(frozen=True)
class Edge:
    importer: str
    imported: str
    line: int
    deferred: bool  # inside a function or `if TYPE_CHECKING:`


def _modules() -> dict[str, tuple[SourceModule, bool]]:
    """{dotted name: (module, is package)} for every module under server/semcode."""
    found: dict[str, tuple[SourceModule, bool]] = {}
    for module in modules():
        parts = list(module.path.relative_to(SERVER).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        if is_pkg:
            parts = parts[:-1]
        found[".".join(parts)] = (module, is_pkg)
    return found


def _targets(node: ast.Import | ast.ImportFrom, package: str, known: set[str]) -> list[str]:
    """The semcode modules an import statement loads (`from x import y` counts x.y when
    y is a module)."""
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            parts = package.split(".")
            base = ".".join(parts[: len(parts) - (node.level - 1)])
            base = f"{base}.{node.module}" if node.module else base
        else:
            base = node.module or ""
        submodules = [f"{base}.{alias.name}" for alias in node.names
                      if f"{base}.{alias.name}" in known]
        # `from . import mod` loads mod (its package is already loading): name only mod.
        names = submodules if len(submodules) == len(node.names) else [base, *submodules]
    return [name for name in names if name == "semcode" or name.startswith("semcode.")]


def _edges() -> list[Edge]:
    modules = _modules()
    known = set(modules)
    edges: list[Edge] = []
    for name, (module, is_pkg) in modules.items():
        package = name if is_pkg else name.rpartition(".")[0]

        def walk(node: ast.AST, deferred: bool, name: str = name, package: str = package) -> None:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, (ast.Import, ast.ImportFrom)):
                    for target in _targets(child, package, known):
                        if target != name:
                            edges.append(Edge(name, target, child.lineno, deferred))
                inner = deferred or isinstance(
                    child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)) or (
                    isinstance(child, ast.If) and "TYPE_CHECKING" in ast.unparse(child.test))
                walk(child, inner)

        walk(module.tree, False)
    return edges


def _room(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else ""


def test_the_graph_is_read() -> None:
    edges = _edges()
    assert len(_modules()) > 40
    assert any(e.importer == "semcode.cli" and e.imported == "semcode.search.engine"
               for e in edges)
    assert any(e.deferred for e in edges)


def test_no_import_cycle() -> None:
    # Every import counts, at module level, inside a function or under TYPE_CHECKING: a
    # cycle through a deferred import is still two modules that need each other.
    graph: dict[str, set[str]] = {}
    for edge in _edges():
        graph.setdefault(edge.importer, set()).add(edge.imported)
    # Importing `semcode.a.b` first runs `semcode.a/__init__`; a package's own
    # __init__ importing its submodules is not a cycle, so packages are not implied.
    state: dict[str, int] = {}  # 1 = on the stack, 2 = done
    stack: list[str] = []
    cycles: list[list[str]] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert not cycles, "import cycles: " + "; ".join(" -> ".join(c) for c in cycles)


def test_layering() -> None:
    broken = [
        f"{e.importer}:{e.line} imports {e.imported}"
        for e in _edges()
        if _room(e.imported) in _FORBIDDEN.get(_room(e.importer), ())
    ]
    assert not broken, "layering broken (see ARCHITECTURE.md):\n" + "\n".join(broken)


def test_every_function_level_import_is_deliberate() -> None:
    undocumented = sorted(
        f"{e.importer}:{e.line} imports {e.imported}"
        for e in _edges()
        if e.deferred and not _is_type_only(e) and (e.importer, e.imported) not in DEFERRED_IMPORTS
    )
    assert not undocumented, (
        "function-level imports must be listed in DEFERRED_IMPORTS with a reason:\n"
        + "\n".join(undocumented))


def test_the_deferred_list_has_no_stale_entries() -> None:
    used = {(e.importer, e.imported) for e in _edges() if e.deferred}
    assert set(DEFERRED_IMPORTS) <= used, set(DEFERRED_IMPORTS) - used


def _is_type_only(edge: Edge) -> bool:
    """An import under `if TYPE_CHECKING:` (never run) need not be listed."""
    module, _ = _modules()[edge.importer]
    for node in ast.walk(module.tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            end = node.end_lineno or node.lineno
            if node.lineno <= edge.line <= end:
                return True
    return False
