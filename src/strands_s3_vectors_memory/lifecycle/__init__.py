"""Memory lifecycle: list, get, delete, forget, export/import, TTL pruning, stats and dedupe.

S3 Vectors can filter metadata in ``QueryVectors`` only; ``ListVectors`` returns an index in
storage order with no filter. So everything here that must see *all* of a user's memories (not the
nearest few) is a scan: ``ListVectors`` pages with metadata, matched client-side on ``user_id`` /
``agent_name``. Long scans run ``segmentCount`` segments in parallel, as the S3 Vectors
documentation recommends for full-index reads.

Three rules keep these operations safe to use on a shared index:

* a memory belongs to a user only if its metadata says so: a key alone never reveals or removes
  another user's vector (:meth:`MemoryLifecycleMixin.get_memory` answers "not found");
* destructive scans are idempotent: an interrupted :meth:`~MemoryLifecycleMixin.forget_user` is
  finished by running it again, and its result is verified by a fresh scan;
* reads never need the embedder, so an index written with another model can still be listed,
  exported or forgotten (only import and dedupe embed).

:class:`MemoryLifecycleMixin` is mixed into :class:`~strands_s3_vectors_memory.S3VectorMemory`;
:class:`TenantLifecycleMixin` adds :meth:`~TenantLifecycleMixin.forget_tenant` to the multi-tenant
store. Rooms: ``_scan`` (parallel segment scans), ``_cursor`` (list page tokens), ``_transfer``
(the JSON Lines format), ``_dedupe`` (dedupe on write), ``_setup`` (bucket and index creation).
"""

from __future__ import annotations

from ..index import LIST_PAGE_SIZE, WRITE_BATCH
from ._dedupe import DEFAULT_DEDUPE_THRESHOLD
from ._mixins import FORGET_VERIFY_SCANS, MemoryLifecycleMixin, TenantLifecycleMixin
from ._results import (
    ForgetIncompleteError,
    ForgetReport,
    ImportReport,
    IndexStats,
    MemoryPage,
    SetupResult,
    TenantForgetReport,
)
from ._scan import MAX_SEGMENTS, ProgressCallback
from ._setup import setup_index

__all__ = [
    "DEFAULT_DEDUPE_THRESHOLD",
    "FORGET_VERIFY_SCANS",
    "LIST_PAGE_SIZE",
    "MAX_SEGMENTS",
    "WRITE_BATCH",
    "ForgetIncompleteError",
    "ForgetReport",
    "ImportReport",
    "IndexStats",
    "MemoryLifecycleMixin",
    "MemoryPage",
    "ProgressCallback",
    "SetupResult",
    "TenantForgetReport",
    "TenantLifecycleMixin",
    "setup_index",
]
