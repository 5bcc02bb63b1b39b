"""What a chunk *is*, beyond its language and symbol kind: its content kind.

A question about what code does is answered by implementation code; tests, examples,
documentation prose, configuration and vendored copies that mention the same words
should not outrank it (and should win when the question asks for them). The kind is
decided here, once, at index time, from the path, the language, the chunk's symbol kind
and its text; the index stores it and the ranking step (search/ranking.py) and the
`contents` filter read it.

Kinds (the shared vocabulary; published in `--json`, LSP items and MCP hits):

- `code`: implementation (the default);
- `test`: tests, per-language conventions (`tests/`, `test_*.py`, `*_test.go`,
  `*.spec.ts`, `__tests__/`, `src/test/java/`, `spec/`, `*_spec.rb`, `FooTest.java`,
  Rust `tests.rs` and `mod tests` blocks ...);
- `example`: examples, samples, demos, benchmarks, tutorials;
- `docs`: documentation prose (Markdown, reStructuredText, plain text, `docs/` trees);
- `config`: configuration and data files (YAML, TOML, JSON, INI, XML, lock files ...);
- `generated`: generated or vendored code (`vendor/`, `third_party/`, `node_modules/`,
  `*_pb2.py`, a "generated ... do not edit" marker near the top);
- `declaration`: declarations without bodies (`.d.ts`, `.pyi`, C/C++ function prototypes
  in headers);
- `reexport`: barrel chunks (`__init__.py`, `index.ts`, `mod.rs` ...) that only import and
  re-export.

The rules look at directory and file names first (cheap, and how projects say what a
file is), then at the text for the few kinds that need it. This module imports only the
chunk vocabulary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import replace

from semcode.chunks import Chunk, SymbolKind
from semcode.kinds import ContentKind

CONTENT_KINDS: tuple[ContentKind, ...] = tuple(ContentKind)

_TEST_DIRS = frozenset({"test", "tests", "testing", "__tests__", "spec", "specs", "testdata",
                        "test_data", "fixtures", "__mocks__", "e2e", "integration_tests",
                        "unittests", "unit_tests", "testsuite", "t"})
_EXAMPLE_DIRS = frozenset({"example", "examples", "sample", "samples", "demo", "demos",
                           "benchmark", "benchmarks", "bench", "benches", "tutorial",
                           "tutorials", "cookbook", "playground", "showcase", "_examples",
                           "docs_src", "doc_src"})
_DOC_DIRS = frozenset({"doc", "docs", "documentation", "man", "site", "website", "wiki",
                       "_docs", "guide", "guides"})
_VENDOR_DIRS = frozenset({"vendor", "vendored", "_vendor", "third_party", "thirdparty",
                          "third-party", "node_modules",
                          "bower_components", "site-packages", "dist", "_build",
                          "generated", "__generated__"})

_DOC_LANGUAGES = frozenset({"markdown", "rst", "latex"})
_DOC_EXTENSIONS = frozenset({".md", ".markdown", ".mdx", ".rst", ".txt", ".adoc", ".asciidoc",
                             ".tex", ".org", ".rdoc", ".pod", ".textile"})
_DOC_FILES = frozenset({"readme", "changelog", "changes", "history", "news", "license",
                        "licence", "copying", "authors", "contributors", "contributing",
                        "code_of_conduct", "security", "notice", "faq", "todo"})
_CONFIG_LANGUAGES = frozenset({"yaml", "toml", "json", "ini", "xml", "hcl", "dockerfile",
                               "make", "cmake", "starlark", "proto", "nix", "properties",
                               "csv"})
_CONFIG_EXTENSIONS = frozenset({".yaml", ".yml", ".toml", ".json", ".jsonc", ".json5", ".ini",
                                ".cfg", ".conf", ".config", ".properties", ".xml", ".plist",
                                ".lock", ".csv", ".tsv", ".env", ".editorconfig", ".gradle",
                                ".sbt", ".tf", ".hcl", ".nix", ".mod", ".sum", ".in"})
_CONFIG_FILES = frozenset({"makefile", "dockerfile", "cmakelists.txt", "setup.cfg",
                           "pipfile", "gemfile", "rakefile", "podfile", "vagrantfile",
                           "build", "build.bazel", "workspace", "meson.build", "go.mod",
                           "go.sum", "package.json", "tsconfig.json", "cargo.toml",
                           "pyproject.toml", "requirements.txt", "manifest.in", "tox.ini",
                           "gemfile.lock", "package-lock.json", "yarn.lock"})
_HEADER_EXTENSIONS = frozenset({".h", ".hh", ".hpp", ".hxx", ".h++", ".inl"})
_BARREL_FILES = frozenset({"__init__.py", "index.ts", "index.js", "index.mjs", "index.tsx",
                           "index.jsx", "mod.rs", "lib.rs", "index.d.ts", "package-info.java",
                           "all.h", "exports.ts", "public_api.ts"})

# File-name patterns that mark a test, per language convention.
_TEST_FILE = re.compile(
    r"""^(?:
        test_.+\.py | .+_tests?\.py | conftest\.py                  # pytest / unittest
      | .+_test\.go                                                # go
      | .+\.(?:spec|test|e2e|cy)\.[cm]?[jt]sx?                     # jest, mocha, cypress
      | .+_(?:spec|test)\.rb | test_.+\.rb                          # rspec, minitest
      | .+(?:Test|Tests|IT|Spec)\.(?:java|kt|scala|groovy|cs)      # JUnit, xUnit, Spock
      | Test.+\.(?:java|kt|cs)                                     # TestFoo.java
      | .+Test\.php | .+Tests?\.swift
      | tests?\.rs | .+_tests?\.rs                                 # rust test modules
      | .+_test\.(?:c|cc|cpp|cxx|exs|ex|dart|lua|zig|hs)
      | test_.+\.(?:c|cc|cpp|cxx|lua|sh)
      | .+_spec\.(?:lua|exs)
    )$""", re.VERBOSE)
_EXAMPLE_FILE = re.compile(r"^(?:examples?|demo|sample|bench(?:mark)?s?)[_.-]|"
                           r"[_.-](?:examples?|demo|sample|bench(?:mark)?)\.[^.]+$", re.I)
_GENERATED_FILE = re.compile(r"(?:_pb2(?:_grpc)?\.pyi?|\.pb\.(?:go|cc|h)|\.pb\.gw\.go|"
                             r"_generated\.\w+|\.generated\.\w+|\.g\.dart|\.min\.js|"
                             r"\.designer\.cs|_string\.go|zz_generated\..+)$", re.I)
_GENERATED_MARK = re.compile(r"(?:generated\s+(?:by|from|automatically|file|code)|"
                             r"auto-?generated|do\s+not\s+edit|@generated|"
                             r"code\s+generated\s+.*\s+do\s+not\s+edit)", re.I)
_RUST_TEST_ATTR = re.compile(r"^\s*#\[(?:cfg\(test\)|test|tokio::test|bench)\]", re.M)

# A line that only imports or re-exports (barrels), per language family.
_REEXPORT_LINE = re.compile(
    r"""^\s*(?:
        $ | [#/*] .* | \*/ | \"\"\".* | '''.*                     # blank, comments, docstrings
      | from\s+\S+\s+import\b.* | import\b.* | __all__\b.* | \)|\]|[\w\s,"']+,?\s*  # python
      | export\s+(?:\*|\{|type\s+\{|default\s+from|\w+\s+from).* | export\s*\{.*
      | (?:pub\s+)?(?:mod|use)\s+.* | pub\s*\(crate\)\s*(?:mod|use)\s+.*         # rust
      | package\s+[\w.]+;? | \#include\s+.* | \#pragma\s+once
      | module\.exports\s*=\s*require\(.*\);? | (?:const|var|let)\s+\w+\s*=\s*require\(.*
      | \}\s*(?:from\s+.*)?;?
    )$""", re.VERBOSE)
_IMPORTISH = re.compile(r"^\s*(?:from\s|import\s|export\s|(?:pub\s+)?(?:use|mod)\s|#include|"
                        r"module\.exports|(?:const|var|let)\s+\w+\s*=\s*require\()")
_HAS_BODY = re.compile(r"\{")


def _split(path: str) -> tuple[list[str], str, str]:
    """(lowercased directories, file name, lowercased extension incl. the dot)."""
    parts = path.split("/")
    base = parts[-1]
    dot = base.rfind(".")
    ext = base[dot:].lower() if dot > 0 else ""
    return [p.lower() for p in parts[:-1]], base, ext


def file_content(path: str, language: str, head: str = "") -> ContentKind:
    """The content kind every chunk of a file gets by default, from its path, language
    and (for the generated marker) the first lines of its text, `head`."""
    dirs, base, ext = _split(path)
    lower = base.lower()
    dirset = set(dirs)
    if dirset & _VENDOR_DIRS or _GENERATED_FILE.search(base):
        return ContentKind.GENERATED
    if head and _GENERATED_MARK.search(head):
        return ContentKind.GENERATED
    if lower.endswith(".d.ts") or lower.endswith(".d.mts") or lower.endswith(".d.cts") \
            or ext == ".pyi":
        return ContentKind.DECLARATION
    is_test_path = bool(dirset & _TEST_DIRS) or "/src/test/" in "/" + path.lower()
    is_prose = language in _DOC_LANGUAGES or ext in _DOC_EXTENSIONS or (
        language == "text" and lower.split(".")[0] in _DOC_FILES)
    if _TEST_FILE.match(base) or (is_test_path and not is_prose):
        return ContentKind.TEST
    if is_prose:
        return ContentKind.DOCS
    if language in _CONFIG_LANGUAGES or ext in _CONFIG_EXTENSIONS or lower in _CONFIG_FILES:
        return ContentKind.CONFIG
    if dirset & _EXAMPLE_DIRS or _EXAMPLE_FILE.search(base):
        return ContentKind.EXAMPLE
    if dirset & _DOC_DIRS:
        # Code under docs/ is almost always example code shown by the documentation.
        return ContentKind.EXAMPLE
    return ContentKind.CODE


def chunk_content(chunk: Chunk, default: ContentKind, base: str) -> ContentKind:
    """Refine a file's kind for one chunk (test modules inside code files, prototypes
    in headers, import-only barrels)."""
    if default != ContentKind.CODE:
        return default
    if chunk.language == "rust" and (chunk.container.split(".")[0] in ("tests", "test")
                                     or _RUST_TEST_ATTR.search(chunk.text[:300])):
        return ContentKind.TEST
    if chunk.language in ("c", "cpp"):
        ext = base[base.rfind("."):].lower() if "." in base else ""
        if ext in _HEADER_EXTENSIONS and chunk.kind in (
                SymbolKind.Function, SymbolKind.Method, SymbolKind.Module) \
                and not _HAS_BODY.search(chunk.text):
            return ContentKind.DECLARATION
    if chunk.kind == SymbolKind.Module and _is_barrel(chunk, base):
        return ContentKind.REEXPORT
    return ContentKind.CODE


def _is_barrel(chunk: Chunk, base: str) -> bool:
    lines = chunk.text.splitlines()
    if base not in _BARREL_FILES and base.lower() not in _BARREL_FILES:
        # Any module chunk made only of import/export lines is a re-export block too,
        # but only barrel files are penalised for it as a whole.
        return False
    if not any(_IMPORTISH.match(line) for line in lines):
        return False
    return all(_REEXPORT_LINE.match(line) for line in lines)


def classify_chunks(path: str, language: str, text: str, chunks: Sequence[Chunk]) -> list[Chunk]:
    """`chunks` of one file with their `content` set."""
    head = text[:600]
    default = file_content(path, language, head)
    base = path.rsplit("/", 1)[-1]
    out: list[Chunk] = []
    for chunk in chunks:
        kind = chunk_content(chunk, default, base)
        out.append(chunk if kind == chunk.content else replace(chunk, content=kind))
    return out


__all__ = ["CONTENT_KINDS", "file_content", "chunk_content", "classify_chunks"]
