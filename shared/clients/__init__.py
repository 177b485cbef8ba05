"""HTTP clients for polyhead's internal services."""

from shared.clients.embedder import AsyncEmbedderClient, EmbedderClient, Embeddings

__all__ = ["AsyncEmbedderClient", "EmbedderClient", "Embeddings"]
