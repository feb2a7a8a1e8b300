"""Retrieval: chunking, embeddings, FAISS indexes and their store."""

__all__: list[str] = []  # a namespace: import the modules
