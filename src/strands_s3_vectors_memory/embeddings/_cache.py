"""An LRU cache for query embeddings.

The plugin embeds the same query text repeatedly (the first turn of every conversation with a
similar opener, the recall tool asked twice); on Bedrock each of those is a paid network round
trip. Documents are not cached: each summary is embedded once, when it is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence

from cachetools import LRUCache, cached

from ..errors import ConfigurationError
from ..telemetry import SPAN_EMBED, annotate, traced
from ._base import Embedder, EmbedderWrapper


class CachedEmbedder(EmbedderWrapper):
    """Wraps an :class:`Embedder`, caching ``embed_query`` results (thread-safe LRU).

    ``hits`` and ``misses`` count cache lookups, for metrics and tests.
    """

    def __init__(self, inner: Embedder, maxsize: int = 1024) -> None:
        if maxsize < 1:
            raise ConfigurationError(f"maxsize must be at least 1, got {maxsize}")
        super().__init__(inner)
        cache: LRUCache[object, tuple[float, ...]] = LRUCache(maxsize=maxsize)
        # Tuples are cached so that a caller mutating the list it got back cannot poison the cache.
        self._query = cached(cache, lock=threading.Lock(), info=True)(self._embed_query_uncached)

    def _embed_query_uncached(self, text: str) -> tuple[float, ...]:
        annotate(cache_hit=False)  # runs inside embed_query's span, only on a miss
        return tuple(self._inner.embed_query(text))

    @property
    def hits(self) -> int:
        return int(self._query.cache_info().hits)

    @property
    def misses(self) -> int:
        return int(self._query.cache_info().misses)

    @traced(SPAN_EMBED, purpose="query", text_count=1)
    def embed_query(self, text: str) -> list[float]:
        annotate(embedding_model=self.model_id, cache_hit=True)
        return list(self._query(text))

    @traced(SPAN_EMBED, purpose="document")
    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        annotate(embedding_model=self.model_id, text_count=len(texts))
        return self._inner.embed_documents(texts)

    def clear(self) -> None:
        """Forget every cached query (and reset nothing else)."""
        self._query.cache_clear()

    def __repr__(self) -> str:
        return f"CachedEmbedder({self._inner!r})"
