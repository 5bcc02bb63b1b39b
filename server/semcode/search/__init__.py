"""The read side: first-stage retrieval, fusion, reranking (engine.py is the facade)."""
