"""The training pairs as token ids: what the trainer and the validation read.

`training/` writes pairs as JSON lines (`train.jsonl.gz`, `valid.jsonl.gz`):
`{"query", "code", "negatives": [...], "language", "package", "source", ...}`, where `code`
and each negative are a chunk's `embedding_text()`. Here every distinct text is prepared
and tokenised exactly as `StaticEmbedder` does at search time (the profile's template, its
text preparation, the tokenizer, the token budget, unknown tokens dropped), once, into one
flat id array with offsets; a pair is then three integers into it (query, gold, negatives).
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from semcode.models.static import StaticEmbedder

MAX_NEGATIVES = 4


def read_pairs(path: Path, sources: Sequence[str] | None = None,
               limit: int | None = None) -> Iterator[dict[str, object]]:
    """The pairs of one JSON-lines file (gzip or plain), optionally only some sources."""
    opener = gzip.open if path.suffix == ".gz" else open
    n = 0
    with opener(path, "rt", encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            pair = json.loads(line)
            if sources is not None and pair.get("source") not in sources:
                continue
            yield pair
            n += 1
            if limit is not None and n >= limit:
                return


@dataclass
class EncodedPairs:
    """Pairs over a table of distinct tokenised texts.

    `ids[offsets[t]:offsets[t + 1]]` are text t's token ids; pair i asks `query[i]`, answered
    by `gold[i]`, with hard negatives `negatives[i]` (-1 where there are fewer). `group[i]`
    names its package (validation ranks within a package) and `language[i]` its language."""

    ids: np.ndarray
    offsets: np.ndarray
    query: np.ndarray
    gold: np.ndarray
    negatives: np.ndarray
    group: np.ndarray
    language: list[str]
    sources: list[str]

    def __len__(self) -> int:
        return len(self.query)

    def texts(self, which: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(flat ids, bag offsets) of the texts `which`, ready for an EmbeddingBag."""
        starts, ends = self.offsets[which], self.offsets[which + 1]
        lengths = ends - starts
        flat = np.concatenate([self.ids[s:e] for s, e in zip(starts, ends, strict=True)]) \
            if len(which) else np.zeros(0, dtype=self.ids.dtype)
        bag = np.zeros(len(which), dtype=np.int64)
        np.cumsum(lengths[:-1], out=bag[1:])
        return flat, bag


def encode_pairs(pairs: Sequence[dict[str, object]], embedder: StaticEmbedder) -> EncodedPairs:
    """Tokenise every distinct query and code text once, as `embedder` would at search
    time; pairs whose query or code has no known token are dropped."""
    return encode_texts(pairs, lambda texts, kinds: _tokenise(texts, kinds, embedder))


Tokenise = Callable[[list[str], list[bool]], list[list[int]]]


def encode_texts(pairs: Sequence[dict[str, object]], tokenise: Tokenise) -> EncodedPairs:
    """Pairs over their distinct texts, each tokenised once by `tokenise(texts, is_query)`
    (the embedder's tokenisation, or the cross-encoder's); pairs whose query or code has
    no token are dropped."""
    index: dict[tuple[bool, str], int] = {}
    texts: list[str] = []
    kinds: list[bool] = []  # True: a query (query template), False: a document

    def text_id(text: str, is_query: bool) -> int:
        key = (is_query, text)
        found = index.get(key)
        if found is None:
            found = index[key] = len(texts)
            texts.append(text)
            kinds.append(is_query)
        return found

    rows: list[tuple[int, int, list[int], str, str, str]] = []
    for pair in pairs:
        negs = [text_id(str(n), False) for n in list(pair.get("negatives") or [])[:MAX_NEGATIVES]]
        rows.append((text_id(str(pair["query"]), True), text_id(str(pair["code"]), False), negs,
                     str(pair.get("package", "")), str(pair.get("language", "")),
                     str(pair.get("source", ""))))
    token_lists = tokenise(texts, kinds)
    lengths = np.fromiter((len(t) for t in token_lists), dtype=np.int64, count=len(token_lists))
    offsets = np.zeros(len(token_lists) + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    ids = np.fromiter((i for t in token_lists for i in t), dtype=np.int32, count=int(offsets[-1]))
    keep = [r for r in rows if lengths[r[0]] > 0 and lengths[r[1]] > 0]
    groups: dict[str, int] = {}
    negatives = np.full((len(keep), MAX_NEGATIVES), -1, dtype=np.int64)
    for i, r in enumerate(keep):
        usable = [n for n in r[2] if lengths[n] > 0 and n != r[1]]
        negatives[i, :len(usable)] = usable
    return EncodedPairs(
        ids=ids, offsets=offsets,
        query=np.array([r[0] for r in keep], dtype=np.int64),
        gold=np.array([r[1] for r in keep], dtype=np.int64),
        negatives=negatives,
        group=np.array([groups.setdefault(r[3], len(groups)) for r in keep], dtype=np.int64),
        language=[r[4] for r in keep], sources=[r[5] for r in keep])


def _tokenise(texts: list[str], kinds: list[bool], embedder: StaticEmbedder,
              batch: int = 2048) -> list[list[int]]:
    """Token ids of each text, prepared as the embedder prepares a query or a document."""
    fmt_q, fmt_d = embedder.profile.format_query, embedder.profile.format_document
    out: list[list[int]] = []
    for start in range(0, len(texts), batch):
        chunk = [embedder.prepare_query(fmt_q(t)) if q else embedder.prepare_document(fmt_d(t))
                 for t, q in zip(texts[start:start + batch], kinds[start:start + batch],
                                 strict=True)]
        out.extend(embedder.token_ids(chunk))
    return out
