"""Memory lifecycle: list, get, delete, forget, export/import, TTL pruning, stats and dedupe.

S3 Vectors can filter metadata in ``QueryVectors`` only; ``ListVectors`` returns an index in
storage order with no filter. So everything here that must see *all* of a user's memories (not the
nearest few) is a scan: ``ListVectors`` pages with metadata, matched client-side on ``user_id`` /
``agent_name``. Long scans run ``segmentCount`` segments in parallel, as the S3 Vectors
documentation recommends for full-index reads.

Three rules keep these operations safe to use on a shared index:

* a memory belongs to a user only if its metadata says so: a key alone never reveals or removes
  another user's vector (:func:`get_memory` answers "not found");
* destructive scans are idempotent: an interrupted :func:`forget_user` is finished by running it
  again, and its result is verified by a fresh scan;
* reads never need the embedder, so an index written with another model can still be listed,
  exported or forgotten (only import and dedupe embed).

Facts (``type: "fact"``) are memories like the others here: listed, exported and imported with their
history (``fact_status``, ``valid_to``, ``superseded_by`` travel in the metadata), deleted by a
forget, counted by status in the statistics; :func:`prune_superseded_facts` trims the history.

The operations are functions of where the index is (an :data:`IndexLocator`, see :mod:`._target`)
and whose memories are meant (a :class:`~strands_s3_vectors_memory.index._records.MemoryScope`), plus what
each needs besides (the data directory to cancel pending writes in, an embedder to import with). The
stores expose them as methods (:meth:`~strands_s3_vectors_memory.S3VectorMemory.forget_user`...),
which is how applications call them. Rooms: ``_memories`` (list, get, delete), ``_forget``,
``_maintenance`` (pruning, stats), ``_export`` / ``_import`` with ``_transfer`` (the JSON Lines
format), ``_dedupe`` (dedupe on write), ``_scan`` (parallel segment scans), ``_cursor`` (list page
tokens), ``_setup`` (bucket and index creation).
"""

from __future__ import annotations

from ..index import LIST_PAGE_SIZE, WRITE_BATCH
from ._dedupe import DEFAULT_DEDUPE_THRESHOLD, dedupe_keys
from ._export import export_memories
from ._forget import FORGET_VERIFY_SCANS, forget_tenant, forget_user
from ._import import EmbedDocuments, import_memories
from ._maintenance import index_stats, prune_expired, prune_superseded_facts
from ._memories import delete_memory, get_memory, iter_memories, list_memories
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
from ._setup import setup_index, upgrade_index
from ._target import IndexLocator, existing_target

__all__ = [
    "DEFAULT_DEDUPE_THRESHOLD",
    "FORGET_VERIFY_SCANS",
    "LIST_PAGE_SIZE",
    "MAX_SEGMENTS",
    "WRITE_BATCH",
    "EmbedDocuments",
    "ForgetIncompleteError",
    "ForgetReport",
    "ImportReport",
    "IndexLocator",
    "IndexStats",
    "MemoryPage",
    "ProgressCallback",
    "SetupResult",
    "TenantForgetReport",
    "dedupe_keys",
    "delete_memory",
    "existing_target",
    "export_memories",
    "forget_tenant",
    "forget_user",
    "get_memory",
    "import_memories",
    "index_stats",
    "iter_memories",
    "list_memories",
    "prune_expired",
    "prune_superseded_facts",
    "setup_index",
    "upgrade_index",
]
