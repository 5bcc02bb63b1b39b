"""Chunking: turn a file's text into `Chunk`s (tree-sitter definitions, line windows).

Knows nothing of indexes, models or editors. `languages` describes each language;
`chunker` applies those descriptions (`chunk_file`, and the chunking policy in its
docstring) through `source` (the text as rows), `definitions` (parse, find the
definitions), `symbols` (definitions to chunks) and `windows` (line windows, Markdown).
`content` gives each chunk its content kind; `names` the other names a chunk answers to
(the tag of a typedef'd C struct), for the tokenizer and the ranking. The indexer calls
`chunk_file` and stores `CHUNKER_VERSION` to know when to re-chunk.
"""

from semcode.chunking.chunker import CHUNKER_VERSION, ChunkerConfig, ChunkResult, chunk_file
from semcode.chunking.languages import detect_language

__all__ = ["CHUNKER_VERSION", "ChunkResult", "ChunkerConfig", "chunk_file", "detect_language"]
