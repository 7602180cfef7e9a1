"""Text embedders: Amazon Bedrock (Nova 2, Titan v2), the bundled offline model, a query cache.

Everything above this package sees only the :class:`Embedder` protocol; :func:`make_embedder`
chooses the implementation from the backend and ``EMBEDDING_MODEL``, and every store puts an
:class:`EmbeddingScheduler` in front of its embedder (queries before background documents).
"""

from __future__ import annotations

from .base import BackgroundQueryEmbedder, Embedder, embed_background_query, mean_direction
from .bedrock import BedrockEmbedder
from .cache import CachedEmbedder
from .factory import make_embedder
from .local import LOCAL_DIMENSION, LOCAL_SIMILARITY_THRESHOLD, LocalEmbedder
from .scheduler import EmbeddingScheduler, SchedulerStats, scheduled

__all__ = [
    "LOCAL_DIMENSION",
    "LOCAL_SIMILARITY_THRESHOLD",
    "BackgroundQueryEmbedder",
    "BedrockEmbedder",
    "CachedEmbedder",
    "Embedder",
    "EmbeddingScheduler",
    "LocalEmbedder",
    "SchedulerStats",
    "embed_background_query",
    "make_embedder",
    "mean_direction",
    "scheduled",
]
