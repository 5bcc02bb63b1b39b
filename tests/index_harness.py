"""Shared helpers for the index robustness tests: a deterministic fake embedder, the
comparable state of an index, and a from-scratch rebuild to compare against."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from semcode.config import Settings
from semcode.index.indexer import Indexer
from semcode.index.tokenizer import query_tokens

FAKE_MODEL = "fake-embedder-v1"
FAKE_DIMS = 8
QUERIES = ("alpha", "fetch user", "parse config value", "beta gamma", "retry request",
           "delta", "token cache lookup", "compute total")


def settings(index_dir: Path, **extra: object) -> Settings:
    return Settings.from_mapping({"embedding_model": "off", "reranker_model": "off",
                                  "index_dir": str(index_dir), **extra})


def fake_vector(content_hash: str) -> np.ndarray:
    """A unit vector that depends only on the chunk content (like a real embedder)."""
    seed = int.from_bytes(hashlib.blake2b(content_hash.encode(), digest_size=8).digest(),
                          "little")
    v = np.random.default_rng(seed).standard_normal(FAKE_DIMS).astype(np.float32)
    return v / np.linalg.norm(v)


def embed_all(ix: Indexer) -> int:
    """What `Engine.embed_pending` does, with the fake embedder."""
    ix.attach_model(FAKE_MODEL, FAKE_DIMS)
    ids = ix.pending_embeddings()
    chunks = ix.chunks(ids)
    ids = [i for i in ids if i in chunks]
    if ids:
        hashes = [chunks[i].content_hash() for i in ids]
        ix.add_vectors(FAKE_MODEL, ids, hashes, np.stack([fake_vector(h) for h in hashes]))
    return len(ids)


def state(ix: Indexer, vectors: bool = True) -> dict[str, object]:
    """Everything a user can observe, in terms that do not depend on chunk ids."""
    ix.refresh()
    ix.rebuild_lexical()  # exact: compared with a from-scratch build
    key = ix.order_key
    chunks = ix.chunks(list(ix.refs))
    out: dict[str, object] = {
        "chunks": sorted((c.path, c.start_line, c.end_line, c.name, int(c.kind), c.text)
                         for c in chunks.values()),
        "lexical": {q: [(key(i), round(s, 4)) for i, s in
                        ix.lexical.search(query_tokens(q), 8)] for q in QUERIES},
    }
    if vectors and ix.vectors is not None:
        out["vector_ids"] = sorted(key(i) for i in ix.vectors.ids())
        rng = np.random.default_rng(7)
        out["dense"] = [[(key(i), round(s, 3)) for i, s in
                         ix.vectors.search(rng.standard_normal(FAKE_DIMS), 5)]
                        for _ in range(3)]
    return out


def rebuild_state(root: Path, index_dir: Path, buffers: dict[str, str] | None = None,
                  vectors: bool = True) -> dict[str, object]:
    """The state of an index built from scratch (disk, then open editor buffers)."""
    ix = Indexer(root, settings(index_dir))
    try:
        ix.sync()
        for path, text in sorted((buffers or {}).items()):
            ix.update_text(path, text)
        if vectors:
            embed_all(ix)
        return state(ix, vectors)
    finally:
        ix.close()


def diff(got: dict[str, object], want: dict[str, object]) -> str:
    lines = []
    for k in want:
        if got.get(k) != want[k]:
            g, w = got.get(k), want[k]
            if isinstance(g, list) and isinstance(w, list):
                gs, ws = set(map(repr, g)), set(map(repr, w))
                lines.append(f"{k}: extra {sorted(gs - ws)[:3]} missing {sorted(ws - gs)[:3]}"
                             if gs != ws else f"{k}: order differs {g[:4]} vs {w[:4]}")
            else:
                lines.append(f"{k}: {str(g)[:400]} != {str(w)[:400]}")
    return "\n".join(lines)
