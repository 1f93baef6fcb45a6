"""Embedding: the sentence-transformers model (loaded lazily) and the embedding cache.

Importing this package imports neither torch nor sentence_transformers: the Dagster code server
and the CLI load it at startup, and torch costs seconds and hundreds of MB.
"""

from mail_pipeline.indexing.cache import embed_with_cache
from mail_pipeline.indexing.embedder import DEFAULT_MODEL, Embedder, TokenizerCounter

__all__ = ["DEFAULT_MODEL", "Embedder", "TokenizerCounter", "embed_with_cache"]
