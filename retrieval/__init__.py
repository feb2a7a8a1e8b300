"""Retrieval: chunking, embeddings, FAISS indexes and their store."""
