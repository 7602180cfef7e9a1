"""The lifecycle methods of the memory stores, mixed into :class:`~strands_s3_vectors_memory.S3VectorMemory`.

Reads (list, get, export, stats) never need the embedder, so an index written with another model can
still be listed, exported or forgotten; only import and dedupe embed.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..errors import ConfigurationError
from ..index import WRITE_BATCH, IndexTarget, delete_keys, error_code, list_page
from ..pending import cancel_pending
from ..records import Memory, MemoryScope
from ..tenancy import tenant_id_from_context, tenant_index_name
from ._cursor import ListCursor
from ._dedupe import DEFAULT_DEDUPE_THRESHOLD, dedupe_keys
from ._results import (
    MAX_REPORTED_REJECTIONS,
    ForgetIncompleteError,
    ForgetReport,
    ImportRejection,
    ImportReport,
    IndexStats,
    MemoryPage,
    TenantForgetReport,
)
from ._scan import (
    ProgressCallback,
    Tally,
    Vector,
    belongs,
    is_expired,
    parallel_scan,
    sweep,
)
from ._transfer import MAX_KEY_BYTES, ImportRecord, export_record, foreign_key_reason, parse_import_line

if TYPE_CHECKING:
    from ..embeddings import Embedder

logger = logging.getLogger(__name__)

#: Full scans :meth:`MemoryLifecycleMixin.forget_user` makes to verify (and finish) a deletion.
FORGET_VERIFY_SCANS = 3


class MemoryLifecycleMixin:
    """Lifecycle operations of a memory store (mixed into :class:`~strands_s3_vectors_memory.S3VectorMemory`).

    Every operation takes the same ``tenant_context`` as the rest of the store: on the multi-tenant
    store it selects the tenant's index and credentials.
    """

    #: See :data:`DEFAULT_DEDUPE_THRESHOLD`; ``None`` disables dedupe-on-write.
    dedupe_threshold: float | None = DEFAULT_DEDUPE_THRESHOLD

    if TYPE_CHECKING:
        embedder: Embedder
        bucket_name: str
        data_dir: Path

        def _target(self, tenant_context: Mapping[str, Any] | None = None) -> IndexTarget: ...

        def _ready_target(self, tenant_context: Mapping[str, Any] | None) -> IndexTarget: ...

        def _embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

        def scope(
            self, user_id: str, agent_name: str | None = None, tenant_context: Mapping[str, Any] | None = None
        ) -> MemoryScope: ...

    # ------------------------------------------------------------------ helpers

    def _existing_target(self, tenant_context: Mapping[str, Any] | None) -> IndexTarget | None:
        """The target if its index exists, else ``None`` (reads of a missing index find nothing).

        Unlike writes, reads do not check the index dimension against the embedder, so an index
        written with another model can still be listed, exported and forgotten.
        """
        target = self._target(tenant_context)
        try:
            target.client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return None
            raise
        return target

    # ------------------------------------------------------------------ list / get / delete

    def list_memories(
        self,
        user_id: str,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
        page_size: int = 100,
        next_token: str | None = None,
        include_expired: bool = False,
    ) -> MemoryPage:
        """One page of ``user_id``'s memories (of ``agent_name`` only, if given), in storage order.

        Pass the returned ``next_token`` back to get the next page; ``None`` means there is none.
        Expired memories (still stored until :meth:`prune_expired`) are skipped unless
        ``include_expired``.
        """
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be between 1 and 1000, got {page_size}")
        scope = self.scope(user_id, agent_name, tenant_context)
        cursor = ListCursor.decode(next_token) if next_token else ListCursor(None)
        target = self._existing_target(tenant_context)
        if target is None:
            return MemoryPage([], None)
        now = time.time()

        def wanted(vector: Vector) -> bool:
            metadata = vector.get("metadata") or {}
            return belongs(metadata, scope) and (include_expired or not is_expired(metadata, now))

        memories: list[Memory] = []
        while True:
            response = list_page(target, cursor.token)
            vectors = list(response.get("vectors") or [])
            keys = [str(v["key"]) for v in vectors]
            following = response.get("nextToken") or None
            for position in range(cursor.resume_position(keys), len(vectors)):
                if not wanted(vectors[position]):
                    continue
                memories.append(Memory.from_vector(vectors[position]))
                if len(memories) < page_size:
                    continue
                rest = vectors[position + 1 :]
                if any(wanted(v) for v in rest):
                    resume = ListCursor(cursor.token, keys[position + 1], position + 1)
                    return MemoryPage(memories, resume.encode())
                return MemoryPage(memories, ListCursor(following).encode() if following else None)
            if following is None:
                return MemoryPage(memories, None)
            cursor = ListCursor(following)

    def iter_memories(
        self,
        user_id: str,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
        page_size: int = 100,
        include_expired: bool = False,
    ) -> Iterator[Memory]:
        """Every memory of ``user_id`` (lazily, page by page); see :meth:`list_memories`."""
        token: str | None = None
        while True:
            page = self.list_memories(
                user_id, agent_name=agent_name, tenant_context=tenant_context, page_size=page_size,
                next_token=token, include_expired=include_expired,
            )
            yield from page.memories
            if page.next_token is None:
                return
            token = page.next_token

    def _owned_vector(
        self, key: str, scope: MemoryScope, tenant_context: Mapping[str, Any] | None
    ) -> tuple[IndexTarget, Vector] | None:
        if not isinstance(key, str) or not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
            raise ValueError(f"key must be a non-empty string of at most {MAX_KEY_BYTES} bytes")
        target = self._existing_target(tenant_context)
        if target is None:
            return None
        response = target.client.get_vectors(
            vectorBucketName=target.bucket_name, indexName=target.index_name, keys=[key], returnMetadata=True
        )
        for vector in response.get("vectors") or []:
            if vector.get("key") == key and belongs(vector.get("metadata") or {}, scope):
                return target, vector
        return None

    def get_memory(
        self,
        key: str,
        user_id: str,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
    ) -> Memory | None:
        """The memory stored under ``key`` if it belongs to ``user_id`` and has not expired, else ``None``.

        Another user's key is indistinguishable from a missing one.
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        found = self._owned_vector(key, scope, tenant_context)
        if found is None:
            return None
        memory = Memory.from_vector(found[1])
        return None if memory.is_expired() else memory

    def delete_memory(
        self,
        key: str,
        user_id: str,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
    ) -> bool:
        """Delete the memory under ``key`` if it belongs to ``user_id``; ``False`` if there was none.

        Expired memories can be deleted too. Another user's key is left alone and reported as absent.
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        found = self._owned_vector(key, scope, tenant_context)
        if found is None:
            return False
        delete_keys(found[0], [key])
        return True

    # ------------------------------------------------------------------ forget

    def forget_user(
        self,
        user_id: str,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
        segments: int = 4,
        progress: ProgressCallback | None = None,
    ) -> ForgetReport:
        """Delete every vector of ``user_id`` (of ``agent_name`` only, if given) in the index.

        The index is scanned in ``segments`` parallel ``ListVectors`` segments and the user's keys
        are deleted in batches of 500 as they are found; then fresh scans verify that none is left
        (deleting stragglers, e.g. memories written during the scan). Safe to re-run: if it is
        interrupted, running it again finishes the job. Vectors of other users are never deleted:
        a key is deleted only after its own metadata named this user.

        Raises :class:`ForgetIncompleteError` if memories remain after :data:`FORGET_VERIFY_SCANS`
        verification scans.
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        started = time.monotonic()
        # First stop what is still on its way (a tombstone, this process's writers, dead processes'
        # spool files), then delete what is stored: a write racing the scan deletes itself again.
        cancelled = cancel_pending(self.data_dir, tenant_id=scope.tenant_id, user_id=user_id, agent_name=agent_name)
        target = self._existing_target(tenant_context)
        index_name = target.index_name if target is not None else self._target(tenant_context).index_name
        tenant_id = scope.tenant_id

        def report(found: int, deleted: int, remaining: int, scans: int, scanned: int) -> ForgetReport:
            return ForgetReport(
                user_id=user_id, agent_name=agent_name, index_name=index_name, tenant_id=tenant_id, found=found,
                deleted=deleted, remaining=remaining, scans=scans, scanned=scanned,
                seconds=round(time.monotonic() - started, 3), pending_cancelled=cancelled,
            )

        if target is None:
            return report(0, 0, 0, 0, 0)
        tally = Tally(progress)

        def matches(metadata: Mapping[str, Any]) -> bool:
            return belongs(metadata, scope)

        deleted = sweep(target, matches, segments=segments, delete=True, tally=tally)
        found = len(deleted)
        scans = 1
        remaining: set[str] = set()
        for attempt in range(FORGET_VERIFY_SCANS):
            remaining = sweep(target, matches, segments=segments, delete=False, tally=Tally(None))
            scans += 1
            if not remaining or attempt == FORGET_VERIFY_SCANS - 1:
                break
            logger.info("forget_user: %d memories appeared during the scan; deleting them", len(remaining))
            delete_keys(target, sorted(remaining))
            deleted |= remaining
        result = report(found, len(deleted - remaining), len(remaining), scans, tally.scanned)
        if remaining:
            raise ForgetIncompleteError(
                f"{len(remaining)} memories of the user remain in index {index_name!r} after {scans} scans "
                "(memories are being written concurrently?); run forget again",
                result,
            )
        return result

    # ------------------------------------------------------------------ TTL, stats

    def prune_expired(
        self,
        *,
        tenant_context: Mapping[str, Any] | None = None,
        now: float | None = None,
        segments: int = 4,
        progress: ProgressCallback | None = None,
    ) -> int:
        """Delete every memory whose ``expires_at`` has passed (any user); returns how many.

        Searches already ignore expired memories; pruning reclaims their storage. Idempotent.
        """
        target = self._existing_target(tenant_context)
        if target is None:
            return 0
        moment = time.time() if now is None else now
        pruned = sweep(
            target, lambda metadata: is_expired(metadata, moment), segments=segments, delete=True,
            tally=Tally(progress),
        )
        return len(pruned)

    def stats(
        self,
        *,
        tenant_context: Mapping[str, Any] | None = None,
        segments: int = 4,
        progress: ProgressCallback | None = None,
    ) -> IndexStats:
        """Count the index's vectors by type, user and agent (a full scan) and report its configuration."""
        target = self._existing_target(tenant_context)
        if target is None:
            missing = self._target(tenant_context)
            raise ConfigurationError(
                f"index {missing.index_name!r} does not exist in bucket {missing.bucket_name!r}"
            )
        index = target.client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)["index"]
        by_type: Counter[str] = Counter()
        by_user: Counter[str] = Counter()
        by_agent: Counter[str] = Counter()
        expired = 0
        lock = threading.Lock()
        tally = Tally(progress)
        now = time.time()

        def visit(page: list[Vector]) -> None:
            nonlocal expired
            metas = [v.get("metadata") or {} for v in page]
            with lock:
                for metadata in metas:
                    by_type[str(metadata.get("type", "unknown"))] += 1
                    by_user[str(metadata.get("user_id", "unknown"))] += 1
                    by_agent[str(metadata.get("agent_name", "unknown"))] += 1
                    expired += is_expired(metadata, now)
            tally.add(len(page), len(page))

        parallel_scan(target, segments, visit)
        return IndexStats(
            bucket_name=target.bucket_name,
            index_name=target.index_name,
            tenant_id=target.tenant_id,
            dimension=int(index.get("dimension", 0)),
            distance_metric=str(index.get("distanceMetric", "")),
            data_type=str(index.get("dataType", "")),
            non_filterable_metadata_keys=list(
                (index.get("metadataConfiguration") or {}).get("nonFilterableMetadataKeys") or []
            ),
            total=sum(by_type.values()),
            expired=expired,
            by_type=dict(by_type.most_common()),
            by_user=dict(by_user.most_common()),
            by_agent=dict(by_agent.most_common()),
        )

    # ------------------------------------------------------------------ export / import

    def export_memories(
        self,
        user_id: str,
        fp: IO[str],
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
        include_vectors: bool = False,
        include_expired: bool = False,
        progress: ProgressCallback | None = None,
    ) -> int:
        """Write ``user_id``'s memories to ``fp`` as JSON Lines; returns how many.

        Each line is ``{"key", "content", "metadata"}`` (metadata without the content), plus
        ``"vector"`` and ``"embedding_model"`` with ``include_vectors``: the format
        :meth:`import_memories` reads, and a portable copy of what the store holds about the user.
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        target = self._existing_target(tenant_context)
        if target is None:
            return 0
        tally = Tally(progress)
        now = time.time()
        written = 0
        token: str | None = None
        while True:
            response = list_page(target, token, return_data=include_vectors)
            page = list(response.get("vectors") or [])
            chosen = [
                v for v in page
                if belongs(v.get("metadata") or {}, scope)
                and (include_expired or not is_expired(v.get("metadata") or {}, now))
            ]
            for vector in chosen:
                fp.write(json.dumps(export_record(vector, self.embedder), ensure_ascii=False) + "\n")
            written += len(chosen)
            tally.add(len(page), len(chosen))
            token = response.get("nextToken") or None
            if token is None:
                return written

    def import_memories(
        self,
        fp: Iterable[str],
        *,
        tenant_context: Mapping[str, Any] | None = None,
        keep_vectors: bool = False,
        verify_keys: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ImportReport:
        """Write the memories of a JSON Lines export into this store's index, keys and metadata kept.

        Content is re-embedded with this store's embedder, unless ``keep_vectors`` and the record
        carries a vector of this embedder's dimension (and, when recorded, of the same model).
        Records are validated and written in batches of 500; re-running an import is idempotent,
        since keys are preserved. Raises ``ValueError`` naming the line of a malformed record.

        With ``verify_keys`` (for files from elsewhere: the CLI always sets it), a record whose key is
        not one the store makes for the user, agent and conversation of its own metadata (in this
        tenant) is never written, so a crafted line cannot overwrite another user's record: it is
        counted in ``rejected`` and the rest still imports. Without it any key is kept, as
        :meth:`put_records` accepts any key.
        """
        target = self._ready_target(tenant_context)
        tally = Tally(progress)
        totals = {"imported": 0, "re_embedded": 0, "kept": 0}
        rejections: list[ImportRejection] = []
        rejected = 0
        batch: list[ImportRecord] = []
        for number, line in enumerate(fp, start=1):
            if not line.strip():
                continue
            record = parse_import_line(line, number)
            reason = foreign_key_reason(record, target.tenant_id) if verify_keys else None
            if reason is not None:
                rejected += 1
                if len(rejections) < MAX_REPORTED_REJECTIONS:
                    rejections.append(ImportRejection(number, record.key, reason))
                continue
            batch.append(record)
            if len(batch) >= WRITE_BATCH:
                self._import_batch(target, batch, keep_vectors, totals, tally)
                batch = []
        if batch:
            self._import_batch(target, batch, keep_vectors, totals, tally)
        return ImportReport(
            imported=totals["imported"], re_embedded=totals["re_embedded"], kept_vectors=totals["kept"],
            rejected=rejected, rejections=tuple(rejections),
        )

    def _reusable(self, record: ImportRecord) -> bool:
        return (
            record.vector is not None
            and len(record.vector) == self.embedder.dimension
            and record.model in (None, self.embedder.model_id)
        )

    def _import_batch(
        self,
        target: IndexTarget,
        batch: Sequence[ImportRecord],
        keep_vectors: bool,
        totals: dict[str, int],
        tally: Tally,
    ) -> None:
        keep = [keep_vectors and self._reusable(r) for r in batch]
        fresh = iter(self._embed_documents([r.content for r, k in zip(batch, keep, strict=True) if not k]))
        vectors = [r.vector if k and r.vector is not None else next(fresh) for r, k in zip(batch, keep, strict=True)]
        unique = {r.key: (r, v) for r, v in zip(batch, vectors, strict=True)}  # a repeated key: last one wins
        target.client.put_vectors(
            vectorBucketName=target.bucket_name,
            indexName=target.index_name,
            vectors=[{"key": k, "data": {"float32": v}, "metadata": r.metadata} for k, (r, v) in unique.items()],
        )
        kept = sum(keep)
        totals["imported"] += len(batch)
        totals["kept"] += kept
        totals["re_embedded"] += len(batch) - kept
        tally.add(len(batch), len(batch))

    # ------------------------------------------------------------------ dedupe on write

    def _dedupe_keys(
        self,
        target: IndexTarget,
        records: Sequence[tuple[str, str, Mapping[str, Any]]],
        vectors: Sequence[Sequence[float]],
    ) -> list[tuple[str, Mapping[str, Any]]]:
        """The key and metadata each record is written under: its own, or a near-duplicate's (see :mod:`._dedupe`)."""
        return dedupe_keys(target, records, vectors, self.dedupe_threshold)


class TenantLifecycleMixin:
    """Operations on a whole tenant (mixed into :class:`~strands_s3_vectors_memory.MultiTenantS3VectorMemory`)."""

    if TYPE_CHECKING:
        bucket_name: str
        data_dir: Path
        _ready: set[tuple[str, str]]
        _ready_lock: threading.Lock
        _tenant_lock: threading.Lock
        _tenant_clients: Any

        def _base_client(self) -> Any: ...

    def forget_tenant(self, tenant_context: Mapping[str, Any]) -> TenantForgetReport:
        """Delete the tenant's whole index (``memory-{tenantId}``) and every memory in it.

        The report is false if the index did not exist; it counts the tenant's pending writes that
        were cancelled (as :meth:`forget_user` does). Deleting an index is an operator action, not a
        tenant one: it uses the store's own client (ambient credentials on AWS, which need
        ``s3vectors:DeleteIndex``), never the tenant's vended credentials, which cannot do it.
        """
        tenant_id = tenant_id_from_context(tenant_context)
        index_name = tenant_index_name(tenant_id)
        cancelled = cancel_pending(self.data_dir, tenant_id=tenant_id, user_id=None, agent_name=None)
        client = self._base_client()
        try:
            client.get_index(vectorBucketName=self.bucket_name, indexName=index_name)
            client.delete_index(vectorBucketName=self.bucket_name, indexName=index_name)
        except ClientError as exc:
            if error_code(exc) == "NotFoundException":
                return TenantForgetReport(tenant_id, index_name, False, cancelled)
            raise
        finally:
            with self._ready_lock:
                self._ready.discard((self.bucket_name, index_name))
            with self._tenant_lock:
                self._tenant_clients.pop(tenant_id, None)
        logger.info("deleted index %s/%s of tenant %s", self.bucket_name, index_name, tenant_id)
        return TenantForgetReport(tenant_id, index_name, True, cancelled)
