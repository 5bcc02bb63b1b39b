"""Indexes: code-aware tokens, BM25 (bm25s), vectors (usearch), the SQLite store and the indexer."""
