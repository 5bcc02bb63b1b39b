"""Model backends behind two small interfaces (`base.Embedder`, `base.Reranker`).

Nothing outside this package imports a model runtime (llama.cpp, MLX, HTTP clients):
the index and the search engine see only the interfaces.
"""
