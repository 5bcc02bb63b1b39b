"""Hard negatives: for each query, the chunks of the same package that semcode's own first
stage ranks highest (BM25 with semcode's tokenizer and scoring parameters), the gold and
the other parts of the gold's definition excluded."""

from __future__ import annotations

import numpy as np

from semcode.chunks import Chunk
from semcode.index.bm25 import new_bm25
from semcode.index.tokenizer import chunk_tokens, query_tokens

MAX_NEGATIVES = 4


def hard_negatives(chunks: list[Chunk], queries: list[tuple[str, int]],
                   k: int = MAX_NEGATIVES) -> list[list[int]]:
    """For each (query, gold index), up to `k` chunk indexes ranked highest for the query
    (score > 0), best first."""
    if len(chunks) < 2 or not queries:
        return [[] for _ in queries]
    bm25 = new_bm25()
    bm25.index([chunk_tokens(c) or [""] for c in chunks], show_progress=False)
    vocab = bm25.vocab_dict
    out: list[list[int]] = []
    for query, gold in queries:
        tokens = [t for t in query_tokens(query) if t in vocab]
        if not tokens:
            out.append([])
            continue
        scores = np.asarray(bm25.get_scores(tokens))
        top = np.argsort(-scores, kind="stable")[: k + 8]
        same = (chunks[gold].path, chunks[gold].qualified_name)
        gold_text = chunks[gold].embedding_text()
        picked: list[int] = []
        for i in top.tolist():
            c = chunks[i]
            if scores[i] <= 0 or len(picked) >= k:
                break
            if i == gold or (c.path, c.qualified_name) == same or c.embedding_text() == gold_text:
                continue
            picked.append(i)
        out.append(picked)
    return out
