"""Files in, chunks out: one chunk per definition, line windows for everything else.

Policies (each chosen for retrieval, where a chunk is what a search hit points at):

- **Line ranges** are 1-based and inclusive. A definition's range starts at its
  decorators / annotations / `export` / `template <>` (the grammar's wrapper node) and
  at the doc comments directly above it: comment lines (and Rust `#[...]`, Elixir
  `@doc`/`@spec`) that start their line and end on the line right before the definition,
  chained upwards with no blank line in between. The doc text is the best natural-language
  description of the code, so it belongs in the chunk.
- **Containers and summaries.** A class-like chunk (class, struct, interface, enum,
  namespace) whose members have chunks of their own does not repeat them: each member is
  reduced to its signature (its decorators and header; its doc comment is left out, it
  is in the member's chunk) and its body to `...`: on the header's line when the body is
  braced (`void f() { ... }`), else one indented `...` line. The chunk still spans the
  whole class, and its text is the class's outline: its own doc comment, fields,
  constants, member signatures; a class too long even then is split over that outline. Repeating the
  bodies would double-count every method in BM25 and spend the embedder's budget on text
  that already has its own vector. Functions keep nested functions verbatim (a closure
  is part of what its function does), and the nested ones get their own chunks too.
- **What is a definition in JavaScript/TypeScript.** Named things: declarations,
  `const f = () =>`, named function values wherever they are, prototype / `exports` /
  `this` assignments, members of module-level object literals. Inside a named function's
  body, anonymous function values that only a local name or a local object holds
  (`options.onDone = function () {}`, `{ visit() {} }` passed on) stay that function's
  code: as chunks of their own they outrank it with its own words. Overload signatures
  fold into the chunk of the definition they precede (one chunk per function).
- **C and C++ names.** A specialisation is named after its template (`template <>
  struct formatter<bytes>` is `formatter`, `fputs<wchar_t>` is `fputs`), as its callers,
  the primary template and ctags write it; the arguments stay in the signature line. A
  conversion operator is `operator T` as written (`operator const Char*`). A typedef'd
  tagged type (`typedef struct tag {…} name_t;`) is one chunk named `name_t` that also
  answers to `tag` (`names.py` says why and how).
- **C and C++ with macros.** A parse with errors is redone with object-like macro names
  (`FMT_CONSTEXPR`, `PUGI__FN`, `FMT_BEGIN_NAMESPACE`) blanked to spaces of the same
  length, so every offset still points into the real text; the tree with fewer errors
  wins. A `.h` file that parses with fewer errors as C++ than as C is C++.
- **Long definitions** (more lines than `max_chunk_lines`) are split into overlapping
  parts, `part=1, 2, ...`, that all keep the symbol's name, kind, container and name
  position, so a hit in any part still names the symbol.
- **Code between definitions** (imports, module constants, top-level statements) is
  gathered into `Module` chunks named after the file, `window_lines` lines of such code
  each. A window skips the definitions in between, so its range (first to last line)
  may enclose definitions that have their own chunks. Windows without a letter or digit
  (a lone `}`) are dropped.
- **Files without a grammar** (or whose grammar has no definition rules: YAML, JSON...)
  are cut into `window_lines` windows overlapping by `chunk_overlap_lines`, kind `File`.
  Markdown is cut at headings first and each section is named after its heading.
- **Failures** never lose a file: if the parser raises, the file gets line windows and a
  `warning`. Syntax errors only add a warning; the definitions that parsed are kept.
- Lines longer than `MAX_LINE_CHARS` are cut in chunk text (minified code would blow the
  tokenizer's and embedder's budgets and carries no meaning a search could use).

This module is the entry point (`chunk_file`) and the policy; the work is done by
`source.py` (the text as rows), `definitions.py` (parse, find definitions),
`symbols.py` (definitions and module code to chunks) and `windows.py` (line windows,
Markdown sections).
"""

from __future__ import annotations

from dataclasses import dataclass

from semcode.chunking.config import ChunkerConfig
from semcode.chunking.content import classify_chunks
from semcode.chunking.languages import SPECS, detect_language
from semcode.chunking.source import Source
from semcode.chunking.symbols import symbol_chunks
from semcode.chunking.windows import markdown_chunks, text_windows
from semcode.chunks import Chunk

# Bump whenever the chunks produced for the same input change (the index stores it and
# re-chunks everything when it differs).
CHUNKER_VERSION = "6"  # 2: content kinds; 3: flat tokens by default; 4: more definitions
# (JS prototype/exports/object-literal methods, accessors, bodyless declarations, enum constants);
# 5: C++ specialisations named after their template, conversion operators, a typedef'd C
# struct's tag among its name tokens (chunking/names.py); 6: a container's members reduced
# to their signature line (no doc comments; `void f() { ... }` on one line)


@dataclass
class ChunkResult:
    """What `chunk_file` found: the chunks, the detected language, and one line for the
    user when part of the file could not be parsed."""

    chunks: list[Chunk]
    language: str
    warning: str | None = None


_DEFAULT_SIZES = ChunkerConfig()


def chunk_file(path: str, text: str, config: ChunkerConfig = _DEFAULT_SIZES) -> ChunkResult:
    """Chunk one file. `path` is workspace-relative with '/' separators. Every chunk
    carries its content kind (chunking/content.py)."""
    result = _chunk_file(path, text, config)
    result.chunks = classify_chunks(path, result.language, text, result.chunks)
    return result


def _chunk_file(path: str, text: str, config: ChunkerConfig) -> ChunkResult:
    first_line = text[: text.find("\n")] if "\n" in text else text
    language = detect_language(path, first_line) or "text"
    if not text.strip():
        return ChunkResult([], language)
    source = Source(path, text, language)
    if language == "markdown":
        return ChunkResult(markdown_chunks(source, config), language)
    spec = SPECS.get(language)
    if spec is None:
        return ChunkResult(text_windows(source, config), language)
    try:
        chunks, errors = symbol_chunks(spec, source, config)
    except Exception as exc:  # a grammar bug must never lose a file: fall back to windows
        failure = f"{language} parser failed ({type(exc).__name__}: {exc}); chunked as text"
        return ChunkResult(text_windows(source, config), language, failure)
    if errors and language == "c" and path.endswith(".h"):
        # A `.h` file is C or C++; a C++ header (classes, templates) is full of C errors.
        try:
            as_cpp = symbol_chunks(SPECS["cpp"], Source(path, text, "cpp"), config)
        except Exception:  # noqa: BLE001 - the C chunks stand then
            as_cpp = None
        if as_cpp is not None and as_cpp[1] < errors:
            language, (chunks, errors) = "cpp", as_cpp
    warning = f"{language} syntax errors; some definitions may be missing" if errors else None
    return ChunkResult(chunks, language, warning)
