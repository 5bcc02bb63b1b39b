"""Chunking: every supported language's sample yields exactly the expected symbols, and the
edge cases (long definitions, module code, text files, failures, encodings) behave."""

from __future__ import annotations

import pathlib

import pytest
from tree_sitter_language_pack import get_language

from semcode.chunking import (
    ChunkerConfig,
    ChunkResult,
    chunk_file,
    definitions,
    detect_language,
)
from semcode.chunking.languages import EXTENSIONS, FILENAMES, INTERPRETERS, SPECS
from semcode.chunks import Chunk
from semcode.chunks import SymbolKind as K

SAMPLES = pathlib.Path(__file__).parent / "samples" / "chunking"

# (name, kind, container, start_line, end_line) of every symbol chunk, per sample.
EXPECTED: dict[str, list[tuple[str, K, str, int, int]]] = {
    "Sample.java": [
        ("InvoiceService", K.Class, "", 6, 45),
        ("InvoiceService", K.Constructor, "InvoiceService", 13, 15),
        ("InvoiceService", K.Constructor, "InvoiceService", 17, 19),
        ("add", K.Method, "InvoiceService", 21, 25),
        ("total", K.Method, "InvoiceService", 27, 29),
        ("Invoice", K.Class, "InvoiceService", 31, 35),
        ("Invoice", K.Constructor, "InvoiceService.Invoice", 32, 34),
        ("Status", K.Enum, "InvoiceService", 37, 44),
        ("OPEN", K.EnumMember, "InvoiceService.Status", 38, 38),
        ("PAID", K.EnumMember, "InvoiceService.Status", 39, 39),
        ("isDone", K.Method, "InvoiceService.Status", 41, 43),
        ("Notifier", K.Interface, "", 47, 49),
        ("send", K.Method, "Notifier", 48, 48),
        ("Audited", K.Interface, "", 51, 53),
    ],
    "sample.c": [
        ("buffer", K.Struct, "", 6, 10),
        ("point_t", K.Struct, "", 12, 14),
        ("color", K.Enum, "", 16, 16),
        ("buffer_new", K.Function, "", 20, 27),
        ("buffer_free", K.Function, "", 29, 33),
        ("main", K.Function, "", 35, 41),
    ],
    "sample.cpp": [
        ("geo", K.Namespace, "", 4, 41),
        ("Point", K.Struct, "geo", 6, 9),
        ("Polygon", K.Class, "geo", 11, 23),
        ("Polygon", K.Constructor, "geo.Polygon", 13, 13),
        ("Polygon", K.Constructor, "geo.Polygon", 14, 14),
        ("~Polygon", K.Method, "geo.Polygon", 15, 15),
        ("size", K.Method, "geo.Polygon", 19, 19),
        ("area", K.Method, "geo.Polygon", 25, 32),
        ("clamp", K.Function, "geo", 34, 37),
        ("Shape", K.Enum, "geo", 39, 39),
        ("main", K.Function, "", 43, 46),
    ],
    "sample.cs": [
        ("Shop.Orders", K.Namespace, "", 4, 41),
        ("OrderLine", K.Class, "Shop.Orders", 6, 7),
        ("IOrderRepository", K.Interface, "Shop.Orders", 9, 12),
        ("OrderState", K.Enum, "Shop.Orders", 14, 14),
        ("Money", K.Struct, "Shop.Orders", 16, 19),
        ("Order", K.Class, "Shop.Orders", 21, 40),
        ("Order", K.Constructor, "Shop.Orders.Order", 26, 29),
        ("Add", K.Method, "Shop.Orders.Order", 33, 37),
        ("Count", K.Method, "Shop.Orders.Order", 39, 39),
    ],
    "sample.ex": [
        ("Inventory.Stock", K.Namespace, "", 1, 30),
        ("add", K.Function, "Inventory.Stock", 12, 16),
        ("count", K.Function, "Inventory.Stock", 18, 18),
        ("clamp", K.Function, "Inventory.Stock", 20, 21),
        ("with_stock", K.Function, "Inventory.Stock", 23, 25),
        ("Countable", K.Interface, "Inventory.Stock", 27, 29),
        ("Inventory.Item", K.Namespace, "", 32, 34),
    ],
    "sample.go": [
        ("DefaultSize", K.Constant, "", 9, 9),
        ("ErrMissing", K.Variable, "", 11, 14),
        ("Entry", K.Struct, "", 16, 20),
        ("Store", K.Interface, "", 22, 25),
        ("LRU", K.Struct, "", 27, 31),
        ("NewLRU", K.Function, "", 33, 36),
        ("Get", K.Method, "LRU", 38, 47),
        ("Len", K.Method, "LRU", 49, 49),
        ("Swap", K.Method, "Pair", 51, 51),
        ("Pair", K.Struct, "", 53, 56),
    ],
    "sample.hs": [
        ("Shape", K.Struct, "", 8, 12),
        ("Name", K.Struct, "", 14, 14),
        ("Area", K.TypeParameter, "", 16, 16),
        ("HasArea", K.Interface, "", 18, 19),
        ("areaOf", K.Method, "Shape", 22, 22),
        ("area", K.Function, "", 24, 27),
        ("largest", K.Function, "", 29, 31),
        ("main", K.Function, "", 33, 34),
    ],
    "sample.js": [
        ("TAX_RATE", K.Constant, "", 4, 4),
        ("Cart", K.Class, "", 6, 27),
        ("constructor", K.Constructor, "Cart", 10, 13),
        ("add", K.Method, "Cart", 15, 18),
        ("total", K.Method, "Cart", 20, 22),
        ("empty", K.Method, "Cart", 24, 26),
        ("withTax", K.Function, "", 29, 32),
        ("describeCart", K.Function, "", 34, 36),
        ("sum", K.Function, "", 38, 40),
        ("countdown", K.Function, "", 42, 44),
    ],
    "sample.kt": [
        ("UNIT", K.Constant, "", 5, 5),
        ("Shape", K.Interface, "", 7, 10),
        ("Circle", K.Class, "", 12, 20),
        ("constructor", K.Constructor, "Circle", 13, 13),
        ("area", K.Method, "Circle", 15, 15),
        ("Companion", K.Class, "Circle", 17, 19),
        ("unit", K.Method, "Circle.Companion", 18, 18),
        ("Color", K.Enum, "", 22, 22),
        ("Registry", K.Class, "", 24, 30),
        ("register", K.Method, "Registry", 27, 29),
        ("totalArea", K.Function, "", 32, 35),
        ("Shapes", K.TypeParameter, "", 37, 37),
    ],
    "sample.lua": [
        ("new", K.Function, "Stack", 7, 10),
        ("push", K.Method, "Stack", 12, 14),
        ("pop", K.Method, "Stack", 16, 18),
        ("helper", K.Function, "", 20, 22),
        ("trim", K.Function, "", 24, 26),
        ("global_fn", K.Function, "", 28, 30),
    ],
    "sample.php": [
        ("MAX_RECIPIENTS", K.Constant, "", 7, 7),
        ("Mailer", K.Interface, "", 9, 12),
        ("send", K.Method, "Mailer", 11, 11),
        ("Logs", K.Class, "", 14, 20),
        ("log", K.Method, "Logs", 16, 19),
        ("SmtpMailer", K.Class, "", 22, 41),
        ("__construct", K.Constructor, "SmtpMailer", 31, 34),
        ("send", K.Method, "SmtpMailer", 36, 40),
        ("Priority", K.Enum, "", 43, 47),
        ("welcome", K.Function, "", 49, 52),
    ],
    "sample.py": [
        ("MAX_RETRIES", K.Constant, "", 6, 6),
        ("Token", K.Class, "", 10, 18),
        ("expired", K.Method, "Token", 17, 18),
        ("AccountClient", K.Class, "", 21, 38),
        ("__init__", K.Constructor, "AccountClient", 22, 25),
        ("token", K.Method, "AccountClient", 27, 29),
        ("refresh_token", K.Method, "AccountClient", 31, 35),
        ("Error", K.Class, "AccountClient", 37, 38),
        ("get_user_account", K.Function, "", 41, 46),
        ("_headers", K.Function, "get_user_account", 43, 44),
    ],
    "sample.rb": [
        ("Billing", K.Namespace, "", 5, 34),
        ("RATE", K.Constant, "Billing", 6, 6),
        ("Invoice", K.Class, "Billing", 8, 29),
        ("initialize", K.Constructor, "Billing.Invoice", 12, 14),
        ("total", K.Method, "Billing.Invoice", 16, 18),
        ("parse", K.Method, "Billing.Invoice", 20, 22),
        ("validate!", K.Method, "Billing.Invoice", 26, 28),
        ("version", K.Function, "Billing", 31, 33),
        ("main", K.Function, "", 36, 38),
    ],
    "sample.rs": [
        ("MAX_ITEMS", K.Constant, "", 5, 5),
        ("GREETING", K.Constant, "", 6, 6),
        ("Item", K.Struct, "", 8, 13),
        ("Category", K.Enum, "", 15, 18),
        ("Priced", K.Interface, "", 20, 25),
        ("price", K.Method, "Priced", 21, 21),
        ("discounted", K.Method, "Priced", 22, 24),
        ("new", K.Method, "Item", 28, 31),
        ("UNIT", K.Constant, "Item", 33, 33),
        ("price", K.Method, "Item", 37, 39),
        ("store", K.Namespace, "", 42, 48),
        ("restock", K.Function, "store", 45, 47),
        ("Index", K.TypeParameter, "", 50, 50),
        ("item", K.Function, "", 52, 56),
        ("main", K.Function, "", 58, 60),
    ],
    "sample.scala": [
        ("Job", K.Class, "", 5, 6),
        ("Runner", K.Interface, "", 8, 10),
        ("LocalRunner", K.Class, "", 12, 21),
        ("run", K.Method, "LocalRunner", 15, 18),
        ("finished", K.Method, "LocalRunner", 20, 20),
        ("Queue", K.Class, "", 23, 27),
        ("apply", K.Method, "Queue", 26, 26),
        ("Queue", K.Class, "", 29, 31),
        ("next", K.Method, "Queue", 30, 30),
        ("Level", K.Enum, "", 33, 34),
        ("main", K.Function, "", 36, 37),
    ],
    "sample.sh": [
        ("log", K.Function, "", 7, 10),
        ("build", K.Function, "", 12, 15),
        ("deploy", K.Function, "", 17, 20),
    ],
    "sample.swift": [
        ("Drawable", K.Interface, "", 5, 8),
        ("Point", K.Struct, "", 10, 13),
        ("Canvas", K.Class, "", 15, 29),
        ("init", K.Constructor, "Canvas", 18, 20),
        ("draw", K.Method, "Canvas", 22, 24),
        ("deinit", K.Method, "Canvas", 26, 28),
        ("Direction", K.Enum, "", 31, 37),
        ("flipped", K.Method, "Direction", 34, 36),
        ("length", K.Method, "Point", 40, 42),
        ("render", K.Function, "", 45, 47),
    ],
    "sample.ts": [
        ("User", K.Interface, "", 3, 6),
        ("UserId", K.TypeParameter, "", 8, 8),
        ("Role", K.Enum, "", 10, 13),
        ("Registry", K.Namespace, "", 15, 19),
        ("lookup", K.Function, "Registry", 16, 18),
        ("UserStore", K.Class, "", 21, 35),
        ("constructor", K.Constructor, "UserStore", 25, 27),
        ("add", K.Method, "UserStore", 29, 32),
        ("persist", K.Method, "UserStore", 34, 34),
        ("findUser", K.Function, "", 37, 39),
        ("isAdmin", K.Function, "", 41, 43),
    ],
    "sample.tsx": [
        ("ButtonProps", K.Interface, "", 3, 6),
        ("Button", K.Function, "", 8, 10),
        ("Counter", K.Function, "", 12, 19),
        ("Panel", K.Class, "", 21, 25),
        ("render", K.Method, "Panel", 22, 24),
    ],
    "sample.zig": [
        ("max_len", K.Constant, "", 3, 3),
        ("Ring", K.Struct, "", 5, 18),
        ("init", K.Method, "Ring", 10, 12),
        ("push", K.Method, "Ring", 14, 17),
        ("Color", K.Enum, "", 20, 20),
        ("Value", K.Struct, "", 22, 25),
        ("add", K.Function, "", 27, 29),
        ("add", K.Function, "", 31, 33),
        ("main", K.Function, "", 35, 37),
    ],
}

LANGUAGE_OF_SAMPLE = {
    "Sample.java": "java", "sample.c": "c", "sample.cpp": "cpp", "sample.cs": "csharp",
    "sample.ex": "elixir", "sample.go": "go", "sample.hs": "haskell", "sample.js": "javascript",
    "sample.kt": "kotlin", "sample.lua": "lua", "sample.php": "php", "sample.py": "python",
    "sample.rb": "ruby", "sample.rs": "rust", "sample.scala": "scala", "sample.sh": "bash",
    "sample.swift": "swift", "sample.ts": "typescript", "sample.tsx": "tsx", "sample.zig": "zig",
}  # fmt: skip


def chunk_sample(file_name: str) -> tuple[ChunkResult, str]:
    text = (SAMPLES / file_name).read_text(encoding="utf-8")
    return chunk_file(file_name, text), text


def symbols(chunks: list[Chunk]) -> list[tuple[str, K, str, int, int]]:
    return [(c.name, c.kind, c.container, c.start_line, c.end_line) for c in chunks if c.is_symbol]


def test_every_required_language_has_a_sample() -> None:
    assert set(LANGUAGE_OF_SAMPLE.values()) == set(SPECS)
    assert set(EXPECTED) == set(LANGUAGE_OF_SAMPLE)


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_sample_symbols(file_name: str) -> None:
    result, _ = chunk_sample(file_name)
    assert result.warning is None
    assert result.language == LANGUAGE_OF_SAMPLE[file_name]
    assert sorted(symbols(result.chunks)) == sorted(EXPECTED[file_name])
    assert all(c.language == result.language and c.path == file_name for c in result.chunks)


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_sample_name_positions_point_at_the_name(file_name: str) -> None:
    result, text = chunk_sample(file_name)
    lines = text.split("\n")
    for chunk in result.chunks:
        if not chunk.is_symbol:
            assert chunk.name == file_name and chunk.name_line == 0
            continue
        assert chunk.start_line <= chunk.name_line <= chunk.end_line
        spelled = lines[chunk.name_line - 1][chunk.name_start_col : chunk.name_end_col]
        # Names the syntax spells differently: Kotlin's unnamed companion, Zig test labels.
        assert spelled.strip('"') == chunk.name or (chunk.name, spelled) == ("Companion", "")


@pytest.mark.parametrize("file_name", sorted(EXPECTED))
def test_sample_loses_no_line(file_name: str) -> None:
    """Every non-blank line is in some chunk's range (definitions or module code)."""
    result, text = chunk_sample(file_name)
    covered = set()
    for chunk in result.chunks:
        covered.update(range(chunk.start_line, chunk.end_line + 1))
    for number, line in enumerate(text.split("\n"), start=1):
        if line.strip() and any(ch.isalnum() for ch in line):
            assert number in covered, f"{file_name}:{number} {line!r}"


def test_python_module_code_is_kept() -> None:
    result, _ = chunk_sample("sample.py")
    modules = [c for c in result.chunks if c.kind == K.Module]
    assert len(modules) == 1
    module = modules[0]
    assert module.name == "sample.py"
    assert (module.start_line, module.end_line) == (1, 50)
    assert "import time" in module.text
    assert 'if __name__ == "__main__":' in module.text
    assert "default_timeout = 10" in module.text
    assert "def get_user_account" not in module.text  # definitions are cut out...
    assert "\n\n\n" not in module.text  # ...without leaving gaps of blank lines


def test_class_chunk_is_an_outline_of_its_members() -> None:
    result, _ = chunk_sample("sample.py")
    (client,) = [c for c in result.chunks if c.name == "AccountClient"]
    assert "def refresh_token(self) -> Token:" in client.text
    assert "@property" in client.text
    assert "for _ in range(MAX_RETRIES)" not in client.text  # that is refresh_token's chunk
    assert "        ..." in client.text

    result, _ = chunk_sample("sample.js")
    (cart,) = [c for c in result.chunks if c.name == "Cart"]
    assert cart.text.splitlines()[4:6] == ["  constructor(owner) { ... }", ""]
    assert "A cart of line items." in cart.text  # the doc comment belongs to the class


def test_functions_keep_nested_functions_verbatim() -> None:
    result, _ = chunk_sample("sample.py")
    (outer,) = [c for c in result.chunks if c.name == "get_user_account"]
    assert 'return {"Authorization": client.token.value}' in outer.text


def test_long_definition_is_split_into_overlapping_parts() -> None:
    body = "\n".join(f"    total += {i}" for i in range(300))
    text = f"import os\n\n\ndef long_function(total):\n{body}\n    return total\n"
    config = ChunkerConfig(max_chunk_lines=100, chunk_overlap_lines=10)
    result = chunk_file("pkg/long.py", text, config)
    parts = [c for c in result.chunks if c.name == "long_function"]
    assert [p.part for p in parts] == [1, 2, 3, 4]
    assert [(p.start_line, p.end_line) for p in parts] == [
        (4, 103),
        (94, 193),
        (184, 283),
        (274, 305),
    ]
    for part in parts:
        assert part.kind == K.Function and part.container == ""
        assert (part.name_line, part.name_start_col, part.name_end_col) == (4, 4, 17)
        assert len(part.text.splitlines()) == part.end_line - part.start_line + 1
    assert parts[2].text.startswith("    total += 179")  # line 184 is body line 179


def test_long_class_outline_is_split_with_exact_ranges() -> None:
    fields = "\n".join(f"    field_{i} = {i}" for i in range(150))
    text = f"class Big:\n{fields}\n\n    def method(self):\n        return 1\n"
    result = chunk_file("big.py", text, ChunkerConfig(max_chunk_lines=100))
    parts = [c for c in result.chunks if c.name == "Big"]
    assert [(p.part, p.start_line, p.end_line) for p in parts] == [(1, 1, 100), (2, 89, 154)]
    assert parts[-1].text.endswith("    def method(self):\n        ...")


def test_markdown_sections_are_named_after_headings() -> None:
    text = (
        "Intro line.\n\n# Install\n\nRun `pip install`.\n\n```sh\n# not a heading\n```\n\n"
        "## Usage ##\n\nCall it.\n"
    )
    result = chunk_file("docs/README.md", text)
    assert result.language == "markdown"
    assert [(c.name, c.kind, c.start_line, c.end_line) for c in result.chunks] == [
        ("README.md", K.File, 1, 1),
        ("Install", K.File, 3, 9),
        ("Usage", K.File, 11, 13),
    ]
    usage = result.chunks[2]
    assert (usage.name_line, usage.name_start_col, usage.name_end_col) == (11, 3, 8)


def test_yaml_gets_overlapping_windows() -> None:
    text = "\n".join(f"key_{i}: {i}" for i in range(150)) + "\n"
    result = chunk_file("conf/app.yaml", text)
    assert result.language == "yaml"
    assert [(c.kind, c.name, c.start_line, c.end_line) for c in result.chunks] == [
        (K.File, "app.yaml", 1, 60),
        (K.File, "app.yaml", 49, 108),
        (K.File, "app.yaml", 97, 150),
    ]


def test_unknown_text_is_labelled_text_and_blank_windows_are_skipped() -> None:
    text = "notes\n" + "\n" * 200 + "more notes\n"
    result = chunk_file("NOTES", text, ChunkerConfig(window_lines=50, chunk_overlap_lines=0))
    assert result.language == "text"
    assert [(c.start_line, c.end_line, c.text) for c in result.chunks] == [
        (1, 1, "notes"),
        (202, 202, "more notes"),
    ]


@pytest.mark.parametrize("text", ["", "\n\n", "   \r\n\t\n"])
def test_empty_file_has_no_chunks(text: str) -> None:
    for path in ("empty.py", "empty.md", "empty.txt"):
        result = chunk_file(path, text)
        assert result.chunks == [] and result.warning is None


def test_parser_failure_falls_back_to_windows(monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_grammar: object) -> object:
        raise RuntimeError("grammar exploded")

    monkeypatch.setattr(definitions, "thread_parser", broken)
    result = chunk_file("app.py", "import os\n\ndef f():\n    return os.sep\n")
    assert result.warning is not None and "grammar exploded" in result.warning
    assert [(c.kind, c.start_line, c.end_line) for c in result.chunks] == [(K.File, 1, 4)]


def test_syntax_errors_keep_the_definitions_that_parsed() -> None:
    text = (
        "def good_one():\n    return 1\n\n"
        "def broken(:\n    return (\n\n"
        "class StillHere:\n    def method(self):\n        return 2\n"
    )
    result = chunk_file("partial.py", text)
    assert result.warning is not None and "syntax errors" in result.warning
    names = {c.name for c in result.chunks if c.is_symbol}
    assert {"good_one", "StillHere", "method"} <= names


def test_crlf_gives_the_same_chunks_without_carriage_returns() -> None:
    _, text = chunk_sample("sample.go")
    lf = chunk_file("sample.go", text)
    crlf = chunk_file("sample.go", text.replace("\n", "\r\n"))
    assert symbols(crlf.chunks) == symbols(lf.chunks)
    assert [c.text for c in crlf.chunks] == [c.text for c in lf.chunks]
    assert not any("\r" in c.text for c in crlf.chunks)


def test_non_ascii_name_columns_are_code_points() -> None:
    text = (
        "# café ☕ module\n"
        "class Ünïcode:\n"
        "    def grüße(self, wert='é'): return 1\n"
        "\n"
        "déjà = 1; ÉTAT_MAX = 2\n"
    )
    result = chunk_file("u.py", text)
    by_name = {c.name: c for c in result.chunks}
    assert (by_name["Ünïcode"].name_start_col, by_name["Ünïcode"].name_end_col) == (6, 13)
    assert (by_name["grüße"].name_start_col, by_name["grüße"].name_end_col) == (8, 13)

    js = "const s = 'ééé'; /* ☕ */ function naïve() { return s; }\n"
    (fn,) = [c for c in chunk_file("u.js", js).chunks if c.name == "naïve"]
    assert js[fn.name_start_col : fn.name_end_col] == "naïve"


def test_replacement_chars_surrogates_and_huge_lines_do_not_break_chunking() -> None:
    raw = b"def ok():\n    return '\xff\xfe'\n"
    for decoded in (raw.decode("utf-8", "replace"), raw.decode("utf-8", "surrogateescape")):
        result = chunk_file("bad.py", decoded)
        assert [c.name for c in result.chunks if c.is_symbol] == ["ok"]

    huge = "x = [" + "1, " * 100_000 + "]\n\ndef after():\n    pass\n"
    result = chunk_file("huge.py", huge)
    assert [c.name for c in result.chunks if c.is_symbol] == ["after"]
    assert max(len(line) for c in result.chunks for line in c.text.split("\n")) <= 2002


@pytest.mark.parametrize(
    ("path", "first_line", "expected"),
    [
        ("src/app.py", "", "python"),
        ("web/App.tsx", "", "tsx"),
        ("web/index.mjs", "", "javascript"),
        ("lib/x.hpp", "", "cpp"),
        ("Program.cs", "", "csharp"),
        ("build/Makefile", "", "make"),
        ("Gemfile", "", "ruby"),
        ("docs/Guide.MD", "", "markdown"),
        ("bin/tool", "#!/usr/bin/env python3", "python"),
        ("bin/tool", "#!/usr/bin/python3.11 -u", "python"),
        ("bin/run", "#!/bin/sh", "bash"),
        ("bin/serve", "#!/usr/bin/env -S node --no-warnings", "javascript"),
        ("bin/tool", "#!/usr/bin/env", None),
        ("LICENSE", "MIT License", None),
        ("notes.txt", "", None),
    ],
)
def test_detect_language(path: str, first_line: str, expected: str | None) -> None:
    assert detect_language(path, first_line) == expected


def test_shebang_file_is_chunked_with_its_grammar() -> None:
    result = chunk_file("bin/deploy", "#!/bin/bash\nmain() {\n  echo hi\n}\nmain\n")
    assert result.language == "bash"
    assert symbols(result.chunks) == [("main", K.Function, "", 2, 4)]


def test_every_named_grammar_is_bundled() -> None:
    names = set(EXTENSIONS.values()) | set(FILENAMES.values()) | set(INTERPRETERS.values())
    for name in sorted(names):
        get_language(name)  # type: ignore[arg-type]
    for name in SPECS:
        definitions.compiled_grammar(name)  # the definition query compiles
