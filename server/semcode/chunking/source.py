"""A file's text as the chunker sees it: rows counted the way tree-sitter counts them,
byte columns turned into code-point columns, and overlong lines cut in chunk text.

Separate from the chunker because every way of cutting a file (definitions, module
windows, line windows, Markdown sections) reads the same rows; this is their one view
of the text. Pure; knows no grammar.
"""

from __future__ import annotations

from tree_sitter import Node

# Lines longer than this are cut in chunk text: minified code would blow the tokenizer's
# and embedder's budgets and carries no meaning a search could use.
MAX_LINE_CHARS = 2000


class Source:
    """The file's text split the way tree-sitter counts rows (on '\\n' only)."""

    def __init__(self, path: str, text: str, language: str) -> None:
        self.path = path
        self.file_name = path.rsplit("/", 1)[-1]
        self.language = language
        # CRLF: rows are the same, the '\r' is dropped from chunk text.
        self.lines = [line.rstrip("\r") for line in text.split("\n")]
        if len(self.lines) > 1 and self.lines[-1] == "":
            self.lines.pop()  # the final newline does not start a line
        # What chunk text is made of: the lines, with overlong ones cut (once per file).
        long_lines = any(len(line) > MAX_LINE_CHARS for line in self.lines)
        self.capped = [_cap(line) for line in self.lines] if long_lines else self.lines
        # Surrogates (text decoded with surrogateescape) must survive the round trip.
        self.data = text.encode("utf-8", "surrogatepass")

    def column(self, row: int, byte_col: int) -> int:
        """Tree-sitter's byte column -> code-point column of the same position."""
        line = self.lines[row] if row < len(self.lines) else ""
        if line.isascii():
            return min(byte_col, len(line))
        prefix = line.encode("utf-8", "surrogatepass")[:byte_col]
        return len(prefix.decode("utf-8", "surrogatepass"))

    def starts_line(self, node: Node) -> bool:
        """Whether only whitespace precedes `node` on its first line."""
        start = node.start_byte
        return not self.data[start - node.start_point.column : start].strip()

    def text(self, first_row: int, last_row: int) -> str:
        """Chunk text of rows `first_row`..`last_row` (0-based, inclusive), lines capped."""
        return "\n".join(self.capped[first_row : last_row + 1])


def _cap(line: str) -> str:
    return line if len(line) <= MAX_LINE_CHARS else line[:MAX_LINE_CHARS] + " …"


def last_row(node: Node) -> int:
    """A node's last row; one that ends at column 0 (it swallowed a newline) ends on the
    row before."""
    end_row, end_col = node.end_point
    return end_row - 1 if end_col == 0 and end_row > node.start_point.row else end_row


def end_row(node: Node, source: Source) -> int:
    """Last non-blank row of a definition (indentation grammars swallow blank lines)."""
    row, first = last_row(node), node.start_point.row
    while row > first and not source.lines[row].strip():
        row -= 1
    return row
