"""The memory stores: records in, ranked memories out, over any S3-Vectors-shaped client.

* :mod:`._store`: :class:`S3VectorMemory` and :class:`MultiTenantS3VectorMemory`, the stores users build.
* :mod:`._index_store`: what they share: configuration, target indexes, embeddings, writes, search.
* :mod:`._search`, :mod:`._ranking`: one search of one scope, and how its candidates are ranked.
* :mod:`._memory_store`: the same store as a strands ``MemoryStore`` (:class:`MemoryManagerStore`).
"""

from __future__ import annotations

from ._index_store import DEFAULT_FACT_K, MAX_TOP_K
from ._memory_store import MemoryManagerStore
from ._store import MultiTenantS3VectorMemory, S3VectorMemory

__all__ = [
    "DEFAULT_FACT_K",
    "MAX_TOP_K",
    "MemoryManagerStore",
    "MultiTenantS3VectorMemory",
    "S3VectorMemory",
]
