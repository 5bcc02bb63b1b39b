"""Hard negatives: for each query, the chunks of the same package that semcode's own first
stage ranks highest (its `LexicalIndex`: semcode's tokenizer and BM25 scoring), the gold
and the other parts of the gold's definition excluded."""

from __future__ import annotations

from semcode.chunks import Chunk
from semcode.index.lexical import LexicalIndex
from semcode.index.tokenizer import chunk_tokens, query_tokens

MAX_NEGATIVES = 4


def hard_negatives(chunks: list[Chunk], queries: list[tuple[str, int]],
                   k: int = MAX_NEGATIVES) -> list[list[int]]:
    """For each (query, gold index), up to `k` chunk indexes ranked highest for the query
    (score > 0), best first."""
    if len(chunks) < 2 or not queries:
        return [[] for _ in queries]
    index = LexicalIndex()  # ties by chunk id, i.e. by the chunks' order here
    for i, c in enumerate(chunks):
        index.upsert(i, chunk_tokens(c) or [""])
    index.rebuild()
    out: list[list[int]] = []
    for query, gold in queries:
        ranked = index.search(query_tokens(query), k + 8)  # scores > 0 only, best first
        same = (chunks[gold].path, chunks[gold].qualified_name)
        gold_text = chunks[gold].embedding_text()
        picked: list[int] = []
        for i, _ in ranked:
            c = chunks[i]
            if len(picked) >= k:
                break
            if i == gold or (c.path, c.qualified_name) == same or c.embedding_text() == gold_text:
                continue
            picked.append(i)
        out.append(picked)
    return out
