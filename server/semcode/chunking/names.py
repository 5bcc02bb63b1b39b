"""The other names a definition chunk answers to, besides its `name`, read back from the
chunk itself.

One idiom has them today: C's `typedef struct tag {…} name_t;` (also `union`, `enum`,
and C++ headers written in C style) defines one type under two names. The chunk is named
`name_t`, what callers write (`name_t *p`), and the tag is its second name: code in the
kernel's style, forward declarations and Universal Ctags write `struct tag`. Both must
find the definition, so the tokenizer gives the tag the weight of a name, the ranking's
definition boost takes it as an exact name, and the coverage measure counts it.

Not an other name: the own name of a JavaScript function value given to a member
(`request.onabort = function handleAbort() {`, which ctags reports as `handleAbort`). It
is visible only inside the function and in stack traces; callers write the member, and
the text already holds it for BM25. Tried as an other name: JavaScript coverage 0.985 →
0.993, but tune-split MRR −0.006 [−0.016, +0.000], because a member such as
`Layer.prototype.handle_request = function handle` then took the definition boost for
`handle` from the definition callers mean.

Why one chunk with a second name, not a chunk per name: both names stand for the same
lines, and two chunks would index the fields twice (BM25 counts them twice, the page
shows the definition twice). Why read back from the text, not stored: the tag is spelled
in the chunk's own header line (`typedef struct tag {`), so reading it back is exact for
every chunk the chunker made, and the store needs no column of its own (the index format
does not change; `CHUNKER_VERSION` re-chunks and re-tokenizes). The store's exact-name
lookup (`Store.chunks_named`, the MCP `symbol` tool) falls back to other names when no
chunk has the name itself.
"""

from __future__ import annotations

import functools
import re

from semcode.chunks import Chunk, SymbolKind

# Only chunks of these languages and kinds have other names (a store looking them up by
# another name reads only those rows).
OTHER_NAMED_LANGUAGES = frozenset({"c", "cpp"})
OTHER_NAMED_KINDS = frozenset({SymbolKind.Struct, SymbolKind.Enum, SymbolKind.Class})
# The header of a typedef'd tagged type, at the start of a line: `typedef struct tag {`,
# `typedef const struct __attribute__((packed)) tag\n{`. Comment lines never start so.
_C_TYPEDEF_TAG = re.compile(
    r"^[ \t]*typedef\s+(?:(?:const|volatile)\s+)*(?:struct|union|enum)\s+"
    r"(?:__attribute__\s*\(\([^{;]*?\)\)\s*)*([A-Za-z_]\w*)\s*(?::[^{;]*)?\{",
    re.MULTILINE,
)


def other_names(chunk: Chunk) -> tuple[str, ...]:
    """The names besides `chunk.name` that the chunk's definition answers to (the tag of
    a typedef'd C struct, union or enum); () for every other chunk."""
    if chunk.language not in OTHER_NAMED_LANGUAGES or chunk.kind not in OTHER_NAMED_KINDS:
        return ()
    return _c_tag(chunk.name, chunk.text)


@functools.lru_cache(maxsize=4096)
def _c_tag(name: str, text: str) -> tuple[str, ...]:
    # Cached: the ranking asks again for the same candidates on every query. Only the
    # chunk's own header counts (its first line after the doc comment): a C++ class
    # holding a typedef'd struct member is not named by that member's tag.
    match = _C_TYPEDEF_TAG.match(text, _header_offset(text))
    if match is None or match.group(1) == name:
        return ()
    return (match.group(1),)


def _header_offset(text: str) -> int:
    """Offset of the first line that is neither blank nor part of a comment."""
    offset, in_block = 0, False
    for line in text.splitlines(keepends=True):
        stripped = line.strip()
        if in_block:
            in_block = "*/" not in stripped
        elif stripped.startswith("/*"):
            in_block = "*/" not in stripped[2:]
        elif stripped and not stripped.startswith(("//", "*")):
            return offset
        offset += len(line)
    return offset


__all__ = ["OTHER_NAMED_KINDS", "OTHER_NAMED_LANGUAGES", "other_names"]
