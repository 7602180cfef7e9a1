"""Text embedders: Amazon Bedrock (Nova 2, Titan v2), the bundled offline model, a query cache.

Everything above this package sees only the :class:`Embedder` protocol; :func:`make_embedder`
chooses the implementation from the backend and ``EMBEDDING_MODEL``. Stores call their embedder
directly: a remote model (Bedrock) needs no scheduling, and the bundled one keeps users' queries
ahead of background documents itself (:mod:`._local`).
"""

from __future__ import annotations

from ._base import BackgroundQueryEmbedder, Embedder, embed_background_query, mean_direction
from ._bedrock import BedrockEmbedder
from ._cache import CachedEmbedder
from ._factory import make_embedder
from ._local import LOCAL_DIMENSION, LOCAL_SIMILARITY_THRESHOLD, LocalEmbedder

__all__ = [
    "LOCAL_DIMENSION",
    "LOCAL_SIMILARITY_THRESHOLD",
    "BackgroundQueryEmbedder",
    "BedrockEmbedder",
    "CachedEmbedder",
    "Embedder",
    "LocalEmbedder",
    "embed_background_query",
    "make_embedder",
    "mean_direction",
]
