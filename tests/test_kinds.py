"""The closed sets of names (semcode/kinds.py) have one home: no other module of the package
writes a mode, content kind, role, query intent or answer kind out as a string literal, so
adding a member or renaming one is one edit, and the CLI, LSP and MCP cannot drift apart."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

from package_source import PACKAGE, modules
from semcode.chunking.content import CONTENT_KINDS as CHUNKING_CONTENT_KINDS
from semcode.kinds import (
    AnswerKind,
    BlendMethod,
    ContentKind,
    QueryIntent,
    RerankRecipe,
    Role,
    SearchMode,
)
from semcode.lsp import params as lsp_params
from semcode.search.engine import CONTENT_KINDS, MODES, SearchRequest

HOME = PACKAGE / "kinds.py"
CHECKED = (SearchMode, ContentKind, Role, QueryIntent, AnswerKind, RerankRecipe,
           BlendMethod)

# (module, literal): the same word meaning something else, each with why.
ALLOWED = {
    ("index/layout.py", "lexical"),  # the lexical index's folder name on disk
    ("lsp/wire.py", "code"),  # the JSON-RPC error object's `code` field
    ("mcp/service.py", "code"),  # an MCP hit's `code` field (the chunk's text)
    ("mcp/service.py", "symbol"),  # an MCP hit's `symbol` field (the qualified name)
    ("models/profiles.py", "code"),  # a word looked for in a model's label
    ("evaluation/protocols.py", "docs"),  # a counter of documented cases
    ("evaluation/styles.py", "symbol"),  # the word a query template says for a symbol
    ("cli.py", "config"),  # the `--config FILE` argument's attribute
    ("config.py", "rrf"),  # a value of the `rank_base` setting (what ranking starts from)
    ("workspace/checks.py", "generated"),  # SkipReason.GENERATED, a reason to skip a file
    ("chunking/languages.py", "test"),  # a tree-sitter node type
    ("chunking/languages.py", "identifier"),  # a tree-sitter node type
}
ALLOWED |= {("chunking/content.py", word) for word in ("test", "docs", "example", "generated")}
# ^ directory names that mark a file's kind (tests/, docs/, examples/, generated/)


def literal_uses(values: set[str], root: Path = PACKAGE) -> list[tuple[str, int, str]]:
    """Every string constant under `root` (outside kinds.py) equal to one of `values`."""
    found = []
    for module in modules(root):
        if module.path == HOME:
            continue
        for node in ast.walk(module.tree):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) \
                    and node.value in values and (module.rel, node.value) not in ALLOWED:
                found.append((module.rel, node.lineno, node.value))
    return found


def test_closed_set_literals_live_in_kinds_only() -> None:
    values = {member.value for enum in CHECKED for member in enum}
    assert literal_uses(values) == []


def test_the_scan_finds_a_literal_written_again(tmp_path: Path) -> None:
    # The check itself can fail: a module writing "hybrid" again is caught.
    (tmp_path / "cli.py").write_text('MODE = "hybrid"\nARG = "config"\n', encoding="utf-8")
    assert literal_uses({"hybrid", "config"}, tmp_path) == [("cli.py", 1, "hybrid")]


def test_derived_sets_follow_the_enums() -> None:
    assert [str(m) for m in MODES] == ["hybrid", "lexical", "dense"]
    assert set(CONTENT_KINDS) == set(CHUNKING_CONTENT_KINDS) == {k.value for k in ContentKind}
    assert {k.value for k in AnswerKind} == {m.value for m in SearchMode} | {"symbol"}


def test_lsp_params_accept_every_mode_and_content_kind() -> None:
    for mode in SearchMode:
        req = lsp_params.search_request({"query": "q", "mode": mode.value,
                                          "contents": [k.value for k in ContentKind]})
        assert req.mode == mode
        req.validate()
    bad = SearchRequest(query="q", mode="symbol")  # an answer kind, not a search mode
    try:
        bad.validate()
    except ValueError as exc:
        assert "mode must be one of hybrid, lexical, dense" in str(exc)
    else:
        raise AssertionError("'symbol' was accepted as a search mode")


def test_cli_mode_choices_are_the_enum() -> None:
    out = subprocess.run([sys.executable, "-m", "semcode", "search", "--mode", "symbol", "q"],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 2
    assert "(choose from 'hybrid', 'lexical', 'dense')" in out.stderr
    assert json.dumps(SearchMode.HYBRID) == '"hybrid"'
