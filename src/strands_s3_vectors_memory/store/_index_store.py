"""The shared core of the memory stores: configuration, target indexes, embeddings, writes, search.

:class:`IndexStore` is what the write path (the archiver), the read path (the plugin's retrieval)
and the lifecycle operations have in common; the stores users build (and their 0.3.0 names) are in
:mod:`._store`. What an ended conversation stores is decided in :mod:`..archive._conversation_records`; how one
search ranks is in :mod:`._search`.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

from .. import lifecycle
from ..archive import (
    DEFAULT_RELATED_FACTS,
    FactRef,
    Record,
    check_conversation,
    conversation_records,
    facts_to_write,
    find_facts,
    related_vector,
    supersede,
)
from ..client import S3VectorsClient
from ..config import (
    DEFAULT_INDEX_NAME,
    Backend,
    resolve_backend,
    resolve_bucket_name,
    resolve_data_dir,
    resolve_region,
)
from ..embeddings import Embedder, make_embedder
from ..errors import (
    ConfigurationError,
    EmbeddingError,
    InvalidInvocationStateError,
)
from ..index import (
    TYPE_MEMORY,
    WRITE_BATCH,
    IndexTarget,
    Memory,
    MemoryScope,
    build_metadata,
    delete_keys,
    make_s3vectors_client,
    new_memory_key,
    open_index,
    put_vectors,
    summary_key,
    text_key,
    utc_timestamp,
    validate_id,
)
from ..lifecycle import (
    DEFAULT_DEDUPE_THRESHOLD,
)
from ..telemetry import SPAN_PUT, SPAN_SEARCH, annotate, traced
from ..text import clean_text, fact_text
from ._search import beside, query_vector, search_facts, search_index

__all__ = [
    "DEFAULT_CANDIDATE_K",
    "DEFAULT_FACT_K",
    "DEFAULT_SIMILARITY_THRESHOLD",
    "MAX_TOP_K",
    "IndexStore",
]

logger = logging.getLogger(__name__)

#: Most results of one ``QueryVectors`` (service limit).
MAX_TOP_K = 100
#: Similarity threshold (0.3.0 scale, ``1 - distance / 2``) when the embedder suggests none.
DEFAULT_SIMILARITY_THRESHOLD = 0.5
#: Dense candidates fetched per search before client-side ranking.
DEFAULT_CANDIDATE_K = 100
#: Most current facts a first turn's memory block lists (before the size budget applies).
DEFAULT_FACT_K = 10
#: Fact candidates fetched per fact search before ranking.
_FACT_CANDIDATE_K = 30


class IndexStore:
    """Records in, ranked memories out, over one S3-Vectors-shaped index per tenant (or the only one).

    The part of the stores every operation shares: configuration, the target index of a scope (checked
    and created once per process), embeddings, writes and search. :class:`S3VectorMemory` adds the
    lifecycle operations users call; :class:`MultiTenantS3VectorMemory` changes where targets are.
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
        client: S3VectorsClient | None = None,
        embedder: Embedder | None = None,
        endpoint_url: str | None = None,
        similarity_threshold: float | None = None,
        candidate_k: int = DEFAULT_CANDIDATE_K,
        create_index: bool = True,
        dedupe_threshold: float | None = DEFAULT_DEDUPE_THRESHOLD,
        hybrid_search: bool = True,
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
        self.hybrid_search = hybrid_search  # hybrid candidates where the index has `content` full-text searchable
        self.embedder: Embedder = embedder or make_embedder(
            self.backend, embedding_model, region=self.region_name
        )
        hint = getattr(self.embedder, "similarity_threshold", None)
        chosen = similarity_threshold if similarity_threshold is not None else hint
        self.similarity_threshold = float(chosen if chosen is not None else DEFAULT_SIMILARITY_THRESHOLD)
        if not 0.0 <= self.similarity_threshold <= 1.0:
            raise ConfigurationError("similarity_threshold must be between 0 and 1")
        if dedupe_threshold is not None and not 0.0 <= dedupe_threshold <= 1.0:
            raise ConfigurationError("dedupe_threshold must be between 0 and 1, or None")
        self.dedupe_threshold = dedupe_threshold
        self._client = client
        self._client_lock = threading.Lock()
        #: Indexes checked (or created) by this process, with their full-text key (None: dense ranking).
        self._ready: dict[tuple[str, str], str | None] = {}
        self._ready_lock = threading.Lock()

    # ------------------------------------------------------------------ targets and index lifecycle

    @property
    def embedding_model(self) -> str:
        """The embedding model id (0.3.0 attribute)."""
        return self.embedder.model_id

    def _base_client(self) -> S3VectorsClient:
        with self._client_lock:
            if self._client is None:
                self._client = make_s3vectors_client(self.backend, region=self.region_name, data_dir=self.data_dir,
                                                     endpoint_url=self.endpoint_url)
            return self._client

    def _target(self, tenant_context: Mapping[str, Any] | None = None) -> IndexTarget:
        """Where the memories of ``tenant_context`` live (single-tenant: the one index)."""
        return self._tenant_target(self._tenant_id(tenant_context))

    def _tenant_target(self, tenant_id: str | None) -> IndexTarget:
        """Where the memories of an already validated tenant id live (single-tenant: ``None``)."""
        return IndexTarget(self._base_client(), self.bucket_name, self.index_name)

    def _scope_target(self, scope: MemoryScope) -> IndexTarget:
        """The index of ``scope``'s tenant, checked (and created if allowed) once per process."""
        return self._ensure_index(self._tenant_target(scope.tenant_id))

    def _ready_target(self, tenant_context: Mapping[str, Any] | None) -> IndexTarget:
        return self._ensure_index(self._target(tenant_context))

    def verify(self, tenant_context: Mapping[str, Any] | None = None) -> None:
        """Check (and create if allowed) the index now, so misconfiguration fails at start.

        Raises :class:`~..errors.DimensionMismatchError` when the index dimension differs from the embedder's.
        """
        self._ready_target(tenant_context)

    def _ensure_index(self, target: IndexTarget) -> IndexTarget:
        """``target``, checked (created if allowed) once per process, with its full-text key if it has one."""
        marker = (target.bucket_name, target.index_name)
        if marker not in self._ready:
            with self._ready_lock:
                if marker not in self._ready:
                    # offline the bucket is created too, by the unscoped (operator) client
                    bucket_client = self._base_client() if self.backend is Backend.LOCAL else None
                    index = open_index(target, self.embedder, create=self.create_index, bucket_client=bucket_client)
                    self._ready[marker] = text_key(index) if self.hybrid_search else None
        key = self._ready[marker]
        return dataclasses.replace(target, text_key=key) if key is not None else target

    # ------------------------------------------------------------------ embeddings

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Document vectors of ``texts`` (in order), shape-checked."""
        vectors = self.embedder.embed_documents(list(texts))
        if len(vectors) != len(texts) or any(len(v) != self.embedder.dimension for v in vectors):
            raise EmbeddingError(f"embedder {self.embedder.model_id!r} returned vectors of the wrong shape")
        return vectors

    def embed_missing(self, texts: Sequence[str], memo: MutableMapping[str, list[float]]) -> list[list[float]]:
        """``texts``' document vectors, read from ``memo`` (text -> vector) and the rest embedded (each
        distinct text once) and added to it, so a caller's next attempt embeds nothing twice."""
        missing = [text for text in dict.fromkeys(texts) if text not in memo]
        if missing:
            memo.update(zip(missing, self.embed_documents(missing), strict=True))
        return [memo[text] for text in texts]

    # ------------------------------------------------------------------ writes

    def put_records(
        self,
        tenant_context: Mapping[str, Any] | None,
        records: Sequence[Record],
    ) -> list[str]:
        """Embed and upsert ``(key, text_to_embed, metadata)`` records; returns their keys."""
        if not records:
            return []
        return self._put(self._ready_target(tenant_context), records)

    @traced(SPAN_PUT)
    def _put(
        self, target: IndexTarget, records: Sequence[Record], memo: MutableMapping[str, list[float]] | None = None
    ) -> list[str]:
        if not records:
            return []
        annotate(index_name=target.index_name, vector_count=len(records),
                 batch_count=-(-len(records) // WRITE_BATCH), embedding_model=self.embedder.model_id)
        vectors = self.embed_missing([text for _, text, _ in records], {} if memo is None else memo)
        placed = lifecycle.dedupe_keys(target, records, vectors, self.dedupe_threshold)  # restatements overwrite
        put_vectors(target, [
            {"key": key, "data": {"float32": vector}, "metadata": dict(metadata)}
            for (key, metadata), vector in zip(placed, vectors, strict=True)
        ])
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
        return {"status": "success", "index_name": self._target(tenant_context).index_name, "key": key}

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
        facts: Sequence[str] = (),
        stated_at: float | None = None,
        memo: MutableMapping[str, list[float]] | None = None,
        summarized_by: str | None = None,
    ) -> list[str]:
        """:meth:`store_conversation` for an already validated scope (the plugin's write path).

        ``extractive`` marks a summary that is the user's own words rather than a model's summary
        (stored when a conversation could not be summarized, see the writer's dead letters);
        ``summarized_by`` says how a model's summary was obtained (``stats`` counts them).
        ``facts`` are stored as current facts of the user (keys :func:`~..index._records.fact_key`), stated
        at ``stated_at`` (the conversation's end; default now), unless a later conversation has
        already superseded one (see :func:`~..archive._facts.facts_to_write`). ``memo``: vectors of texts already
        embedded (see :meth:`embed_missing`), reused, and filled with the ones embedded here.
        """
        check_conversation(conversation_id, summary, details, facts)
        expires_at = None if ttl_seconds is None else (stated_at or time.time()) + ttl_seconds  # same on a re-run
        target, stated = self._scope_target(scope), utc_timestamp(stated_at)
        kept = facts_to_write(target, scope, [t for t in map(fact_text, facts) if t], stated)
        return self._put(target, conversation_records(
            scope, conversation_id, summary, details=details, stated_at=stated, expires_at=expires_at,
            extractive=extractive, facts=kept, summarized_by=summarized_by), memo)

    def related_facts(
        self,
        scope: MemoryScope,
        transcript: str,
        *,
        limit: int = DEFAULT_RELATED_FACTS,
        near: Sequence[Sequence[float]] = (),
    ) -> list[FactRef]:
        """``scope``'s current facts nearest to the conversation (at most ``limit``), nearest first.

        What the summarizing model is shown, numbered, so it can say which of them the conversation
        supersedes: one bounded query, no relevance cut-off (the model judges). ``near``: the vectors
        of the conversation's detail records (see :func:`~..archive._facts.related_vector`).
        """
        vector = related_vector(self.embedder, transcript, near) if limit >= 1 else None
        if vector is None:
            return []
        found = find_facts(self._scope_target(scope), scope, vector, top_k=min(limit, MAX_TOP_K))
        return [FactRef(memory.key, memory.content) for memory in found]

    def supersede_facts(
        self, scope: MemoryScope, ended: Mapping[str, str], *, ended_at: float | None = None
    ) -> list[str]:
        """Mark ``scope``'s facts ``ended`` (key -> key of the replacing fact, ``""`` if none) superseded.

        Kept for history with ``valid_to`` (``ended_at``, default now) and ``superseded_by``, vector
        unchanged; returns the keys rewritten (see :func:`~..archive._facts.supersede`).
        """
        return supersede(self._scope_target(scope), scope, ended, utc_timestamp(ended_at))

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
        delete_keys(self._scope_target(scope), keys)

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
        fetch_summaries: bool = False,
    ) -> list[Memory]:
        """Return the user's memories most relevant to ``query``, best first.

        Only memories of ``user_id`` (and ``agent_name`` when given) in the tenant's index are ever
        considered: the scope is a server-side filter, not a post-filter. A conversation is shown by
        its summary when the query brought it, else by its best matching detail; ``fetch_summaries``
        fetches the missing summary by key instead (one more round trip after the query).
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        return self.search_scope(scope, query, top_k=top_k, similarity_threshold=similarity_threshold,
                                 fetch_summaries=fetch_summaries)

    @traced(SPAN_SEARCH)
    def search_scope(
        self,
        scope: MemoryScope,
        query: str,
        *,
        top_k: int = 5,
        similarity_threshold: float | None = None,
        fetch_summaries: bool = False,
    ) -> list[Memory]:
        """:meth:`search` for an already validated scope (the plugin's read path)."""
        if not 1 <= top_k <= MAX_TOP_K:
            raise ValueError(f"top_k must be between 1 and {MAX_TOP_K}, got {top_k}")
        query = clean_text(query) if isinstance(query, str) else query
        if not isinstance(query, str) or not query.strip():
            return []
        threshold = self.similarity_threshold if similarity_threshold is None else similarity_threshold
        return search_index(self._scope_target(scope), self.embedder, scope, query, top_k=top_k,
                            candidate_k=max(top_k, self.candidate_k), threshold=threshold,
                            fetch_summaries=fetch_summaries)

    @traced(SPAN_SEARCH)
    def search_with_facts(
        self,
        scope: MemoryScope,
        query: str,
        *,
        top_k: int = 5,
        fact_k: int = DEFAULT_FACT_K,
        similarity_threshold: float | None = None,
        include_superseded: bool = False,
        fact_threshold: float | None = None,
        fetch_summaries: bool = False,
    ) -> tuple[list[Memory], list[Memory]]:
        """``(facts, memories)``: ``scope``'s facts and memories most relevant to ``query``, best first.

        Facts are the current ones (with ``include_superseded``, those no longer true too), at most
        ``fact_k`` (0: none); memories are what :meth:`search_scope` returns (``fetch_summaries``
        likewise). The query is embedded
        once for both queries; the same relevance rule applies to both, unless ``fact_threshold``
        sets the facts' own (``-inf``: a user's profile, every fact ranked, none cut off).
        """
        if not 1 <= top_k <= MAX_TOP_K or not 0 <= fact_k <= MAX_TOP_K:
            raise ValueError(f"top_k and fact_k must be at most {MAX_TOP_K} (top_k at least 1)")
        query = clean_text(query) if isinstance(query, str) else query
        if not isinstance(query, str) or not query.strip():
            return [], []
        threshold = self.similarity_threshold if similarity_threshold is None else similarity_threshold
        target = self._scope_target(scope)
        vector = query_vector(self.embedder, query)
        facts: Callable[[], list[Memory]] = partial(
            search_facts, target, self.embedder, scope, query, top_k=fact_k, vector=vector,
            candidate_k=max(fact_k, _FACT_CANDIDATE_K), include_superseded=include_superseded,
            threshold=threshold if fact_threshold is None else fact_threshold)
        # Over the network (AWS) the two queries run side by side; the embedded engine is CPU in this
        # process, where a second thread would only contend for the GIL.
        facts = (beside(facts) if self.backend is not Backend.LOCAL else facts) if fact_k else list
        memories = search_index(target, self.embedder, scope, query, top_k=top_k,
                                candidate_k=max(top_k, self.candidate_k), threshold=threshold, vector=vector,
                                fetch_summaries=fetch_summaries)
        return facts(), memories
