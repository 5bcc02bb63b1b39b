"""The unit everything else passes around: a `Chunk` of one file.

A chunk is either a symbol (a function, class, method... found by tree-sitter) or a
window of lines (for text without a grammar, or code between definitions). This module
is the vocabulary shared by every layer, so it imports nothing of semcode but the
leaf `semcode.kinds`.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from enum import IntEnum

from semcode.kinds import ContentKind


class SymbolKind(IntEnum):
    """LSP `SymbolKind` values (LSP 3.17 §SymbolKind), mirrored so that the core needs
    no LSP library. The LSP adapter passes these numbers through unchanged."""

    File = 1
    Module = 2
    Namespace = 3
    Package = 4
    Class = 5
    Method = 6
    Property = 7
    Field = 8
    Constructor = 9
    Enum = 10
    Interface = 11
    Function = 12
    Variable = 13
    Constant = 14
    String = 15
    Number = 16
    Boolean = 17
    Array = 18
    Object = 19
    Key = 20
    Null = 21
    EnumMember = 22
    Struct = 23
    Event = 24
    Operator = 25
    TypeParameter = 26


@dataclass(frozen=True, slots=True)
class Chunk:
    """One retrievable piece of a file.

    Lines are 1-based and inclusive (what a human and `path:line` expect). Columns of
    the name (`name_*`) are 0-based code-point offsets, so that an adapter can build an
    LSP `selectionRange` without re-parsing.
    """

    path: str  # workspace-relative, '/'-separated
    language: str  # tree-sitter language name, or "text" for the line-window fallback
    # File for a line window of a non-code file, Module for code between definitions.
    kind: SymbolKind
    name: str  # the symbol's own name; for windows, the file name
    container: str  # enclosing symbols joined by '.', e.g. "Outer.Inner" ("" at top level)
    start_line: int
    end_line: int
    text: str
    name_line: int = 0  # 1-based line of the name; 0 when the chunk has no name node
    name_start_col: int = 0
    name_end_col: int = 0
    part: int = 0  # 0 for a whole definition, 1.. for the pieces of a split long one
    # Content kind (a `ContentKind`, decided by chunking/content.py). Not part of
    # embedding_text/content_hash.
    content: str = ContentKind.CODE

    @property
    def qualified_name(self) -> str:
        """The name with its container (`Parser.parse`), as shown to users."""
        return f"{self.container}.{self.name}" if self.container else self.name

    @property
    def is_symbol(self) -> bool:
        """Whether the chunk is a named definition (not a whole file or module-level code)."""
        return self.kind not in (SymbolKind.File, SymbolKind.Module)

    def preview(self, width: int = 160) -> str:
        """The one line that best tells what the chunk is: the line naming the symbol,
        else the first non-blank line."""
        lines = self.text.splitlines()
        if self.name_line and 0 <= self.name_line - self.start_line < len(lines):
            line = lines[self.name_line - self.start_line]
        else:
            line = next((ln for ln in lines if ln.strip()), "")
        line = line.strip()
        return line if len(line) <= width else line[: width - 1] + "…"

    def embedding_text(self) -> str:
        """What the embedder sees. It deliberately omits the path so that a renamed or
        moved file hits the embedding cache (DESIGN: never embed twice)."""
        header = f"{self.kind.name.lower()} {self.qualified_name}".strip()
        return f"{header}\n{self.text}" if self.is_symbol else self.text

    def content_hash(self) -> str:
        """Key of the embedding cache, together with the model's identity."""
        return hashlib.blake2b(self.embedding_text().encode("utf-8"), digest_size=16).hexdigest()
