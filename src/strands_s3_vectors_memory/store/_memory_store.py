"""S3 Vectors as a strands-native ``MemoryStore``, for agents built on the SDK's ``MemoryManager``.

The plugin (:mod:`..plugin._plugin`) is the batteries-included path; this adapter is for applications that
already use ``strands.memory.MemoryManager`` and want its injection, ``search_memory`` /
``add_memory`` tools and background extraction to land in the same S3 Vectors index, with the same
scoping, ranking and tenant isolation::

    memory = S3VectorMemory()
    store = MemoryManagerStore(memory, user_id="alice", agent_name="assistant")
    agent = Agent(model=model, memory_manager=MemoryManager(stores=[store]))

The protocol passes no invocation context to a store, so whose memories are meant is the store's own
state: a fixed ``user_id`` (one agent per user, the SDK's usual shape), or, for an agent shared by
many users, a per-call binding that ``with store.bind(user_id=...): agent(...)`` sets for the code
running inside the block (a ``ContextVar``: it follows the SDK into its worker thread and event loop,
and concurrent calls never see each other's binding).

Writes are idempotent. ``add`` keys a memory by a hash of its scope and text, so the at-least-once
retries of extraction never duplicate it; ``add_messages`` keys each message by this store's run id,
the message's sequence number from ``AddMessagesContext`` and a hash of its text, so a retried batch
overwrites itself, and two agents sharing one store (each numbering from 0) never overwrite each
other's different messages.
"""

from __future__ import annotations

import asyncio
import logging
import re
import time
import uuid
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, replace
from typing import Any

from strands import tool
from strands.memory import AddMessagesContext, ExtractionConfig, MemoryEntry, MemoryStore, SearchOptions
from strands.memory.types import Metadata
from strands.types.content import Message
from strands.types.tools import AgentTool

from ..errors import ConfigurationError, InvalidIdentityError
from ..index import (
    DEFAULT_AGENT_NAME,
    TYPE_DETAIL,
    TYPE_MEMORY,
    Memory,
    MemoryScope,
    build_metadata,
    content_memory_key,
    message_key,
    validate_id,
)
from ..tenancy import tenant_id_from_context
from ..text import clean_text, message_text
from ._store import MAX_TOP_K, MultiTenantS3VectorMemory, S3VectorMemory

__all__ = [
    "DEFAULT_DESCRIPTION",
    "DEFAULT_MAX_SEARCH_RESULTS",
    "DEFAULT_MESSAGE_ROLES",
    "DEFAULT_STORE_NAME",
    "MemoryManagerStore",
    "Record",
]

logger = logging.getLogger(__name__)

DEFAULT_STORE_NAME = "s3-vectors"
DEFAULT_DESCRIPTION = "Long-term memories of the current user from earlier conversations (semantic search)."
#: Results per search when neither the caller nor the store configuration says.
DEFAULT_MAX_SEARCH_RESULTS = 5
#: Roles whose messages ``add_messages`` stores. Assistant turns are left out by default: they mostly
#: restate what was injected from memory, and storing them would feed memories back into memory.
DEFAULT_MESSAGE_ROLES: tuple[str, ...] = ("user",)

Record = tuple[str, str, Mapping[str, Any]]


@dataclass(frozen=True)
class _Binding:
    """Whose memories a call concerns; ``None`` fields fall back to the store's defaults."""

    user_id: str | None = None
    agent_name: str | None = None
    tenant_context: Mapping[str, Any] | None = None
    conversation_id: str | None = None


#: Per-call bindings of every store, keyed by each store's private binding key.
_BINDINGS: ContextVar[Mapping[str, _Binding] | None] = ContextVar("s3_vectors_memory_store_bindings", default=None)


def _normalise(text: str) -> str:
    return " ".join(clean_text(text).split())


def _entry(memory: Memory) -> MemoryEntry:
    metadata: Metadata = {
        "key": memory.key,
        "type": memory.type,
        "stored_at": memory.stored_at,
        "conversation_id": memory.conversation_id,
        "similarity": memory.similarity,
        "score": memory.score,
    }
    return MemoryEntry(content=memory.content, metadata={k: v for k, v in metadata.items() if v is not None})


class MemoryManagerStore(MemoryStore):
    """A ``strands.memory.MemoryStore`` over :class:`S3VectorMemory` / :class:`MultiTenantS3VectorMemory`.

    Args:
        memory: The store holding the vectors (single- or multi-tenant).
        user_id: Whose memories, unless a :meth:`bind` block says otherwise.
        agent_name: Agent namespace. Writes go to it; searches see only it. ``None`` searches every
            agent's memories of the user and writes to ``"default"``.
        tenant_context: ``{"tenantId": ...}`` for a :class:`MultiTenantS3VectorMemory`.
        conversation_id: Recorded on stored messages; default: this store's run id.
        name: Unique store name within a ``MemoryManager`` (tools target stores by it).
        description: Shown to the model in the memory tools' descriptions.
        max_search_results: Default results per search (1-100).
        writable: Whether ``add`` / ``add_messages`` (and so extraction) may write.
        extraction: The SDK's extraction setting; ``True`` hands raw messages to :meth:`add_messages`.
        similarity_threshold: Override of the memory store's relevance threshold.
        fetch_summaries: A conversation found by one of its details is shown by that detail unless its
            summary was found too; ``True`` fetches the summary by key (one more S3 Vectors round trip),
            as ``RetrievalSettings.fetch_summaries`` does for the plugin.
        message_roles: Roles whose messages :meth:`add_messages` stores.
        ttl_seconds: Expire written memories after this many seconds (``None``: never).
    """

    def __init__(
        self,
        memory: S3VectorMemory,
        *,
        user_id: str | None = None,
        agent_name: str | None = DEFAULT_AGENT_NAME,
        tenant_context: Mapping[str, Any] | None = None,
        conversation_id: str | None = None,
        name: str = DEFAULT_STORE_NAME,
        description: str | None = DEFAULT_DESCRIPTION,
        max_search_results: int | None = None,
        writable: bool = True,
        extraction: ExtractionConfig | bool | None = None,
        similarity_threshold: float | None = None,
        fetch_summaries: bool = False,
        message_roles: Collection[str] = DEFAULT_MESSAGE_ROLES,
        ttl_seconds: float | None = None,
    ) -> None:
        if not isinstance(memory, S3VectorMemory):
            raise ConfigurationError("memory must be an S3VectorMemory or MultiTenantS3VectorMemory")
        if not isinstance(name, str) or not name.strip():
            raise ConfigurationError("name must be a non-empty string")
        if max_search_results is not None and not 1 <= max_search_results <= MAX_TOP_K:
            raise ConfigurationError(f"max_search_results must be between 1 and {MAX_TOP_K}")
        if ttl_seconds is not None and ttl_seconds <= 0:
            raise ConfigurationError("ttl_seconds must be positive")
        self.memory = memory
        self.name = name
        self.description = description
        self.max_search_results = max_search_results
        self.writable = writable
        self.extraction = extraction
        self.similarity_threshold = similarity_threshold
        self.fetch_summaries = fetch_summaries
        self.message_roles = frozenset(message_roles)
        self.ttl_seconds = ttl_seconds
        #: Unique per store instance: with a message's sequence number it makes an idempotency key.
        self.run_id = uuid.uuid4().hex
        self._binding_key = self.run_id
        self._default = _Binding(
            user_id=None if user_id is None else validate_id(user_id, "user_id"),
            agent_name=None if agent_name is None else validate_id(agent_name, "agent_name"),
            tenant_context=dict(tenant_context) if tenant_context is not None else None,
            conversation_id=None if conversation_id is None else validate_id(conversation_id, "conversation_id"),
        )
        if tenant_context is not None and isinstance(memory, MultiTenantS3VectorMemory):
            tenant_id_from_context(tenant_context)  # a bad tenant id fails here, not on the first reply

    # ------------------------------------------------------------------ scope

    @contextmanager
    def bind(
        self,
        user_id: str | None = None,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
        conversation_id: str | None = None,
    ) -> Iterator[None]:
        """Scope every call made inside the block (and the tasks and threads it starts) to this identity.

        Given values override the constructor's; the identity is validated on entry. With an agent
        shared across users, keep extraction inside the block: the synchronous ``agent(...)`` flushes
        it before returning; with ``invoke_async`` use ``InvocationTrigger`` and ``await
        manager.flush()`` inside the block, or a later batch may be written under another binding.
        """
        current = self._resolve()
        binding = _Binding(
            user_id=user_id if user_id is not None else current.user_id,
            agent_name=agent_name if agent_name is not None else current.agent_name,
            tenant_context=dict(tenant_context) if tenant_context is not None else current.tenant_context,
            conversation_id=conversation_id if conversation_id is not None else current.conversation_id,
        )
        if binding.user_id is None:
            raise InvalidIdentityError("bind() needs a user_id when the store has none")
        self.memory.scope(binding.user_id, binding.agent_name, binding.tenant_context)
        if binding.conversation_id is not None:
            validate_id(binding.conversation_id, "conversation_id")
        token = _BINDINGS.set({**(_BINDINGS.get() or {}), self._binding_key: binding})
        try:
            yield
        finally:
            _BINDINGS.reset(token)

    def _resolve(self) -> _Binding:
        return (_BINDINGS.get() or {}).get(self._binding_key, self._default)

    def _read_scope(self) -> tuple[_Binding, str]:
        binding = self._resolve()
        if binding.user_id is None:
            raise InvalidIdentityError(
                f"memory store {self.name!r} has no user: pass user_id= or call it inside store.bind(user_id=...)"
            )
        return binding, binding.user_id

    def _write_scope(self) -> tuple[_Binding, MemoryScope]:
        binding, user_id = self._read_scope()
        binding = replace(binding, agent_name=binding.agent_name or DEFAULT_AGENT_NAME)
        return binding, self.memory.scope(user_id, binding.agent_name, binding.tenant_context)

    def _check_writable(self) -> None:
        if not self.writable:
            raise ValueError(f"memory store {self.name!r} is not writable")

    def _expires_at(self) -> float | None:
        return time.time() + self.ttl_seconds if self.ttl_seconds is not None else None

    # ------------------------------------------------------------------ MemoryStore protocol

    async def initialize(self) -> None:
        """Check (or create) the index when the agent is built, so a wrong setup fails there, not mid-reply."""
        tenant_context = self._default.tenant_context
        if isinstance(self.memory, MultiTenantS3VectorMemory) and tenant_context is None:
            return  # the tenant is only known per call
        await asyncio.to_thread(self.memory.verify, tenant_context)

    async def search(self, query: str, options: SearchOptions | None = None) -> list[MemoryEntry]:
        """The bound user's memories most relevant to ``query``, best first (content plus key, type, scores)."""
        requested = options.get("max_search_results") if options is not None else None
        if requested is not None and requested < 1:
            raise ValueError("max_search_results must be at least 1")
        limit = min(requested or self.max_search_results or DEFAULT_MAX_SEARCH_RESULTS, MAX_TOP_K)
        binding, user_id = self._read_scope()
        memories = await asyncio.to_thread(
            self.memory.search,
            user_id,
            query,
            top_k=limit,
            tenant_context=binding.tenant_context,
            agent_name=binding.agent_name,
            similarity_threshold=self.similarity_threshold,
            fetch_summaries=self.fetch_summaries,
        )
        return [_entry(memory) for memory in memories]

    async def add(self, content: str, metadata: Metadata | None = None) -> str:
        """Store ``content`` as a memory of the bound user; the same text again overwrites, never duplicates.

        ``metadata["conversation_id"]`` is recorded when it is a valid id; other metadata keys are not
        stored (the index schema is fixed). Returns the vector key.
        """
        self._check_writable()
        if not isinstance(content, str) or not _normalise(content):
            raise ValueError("content must be a non-empty string")
        binding, scope = self._write_scope()
        conversation_id = (metadata or {}).get("conversation_id", binding.conversation_id)
        if conversation_id is not None:
            conversation_id = validate_id(conversation_id, "conversation_id")
        key = content_memory_key(scope, _normalise(content))
        meta = build_metadata(
            scope, content.strip(), memory_type=TYPE_MEMORY, conversation_id=conversation_id,
            expires_at=self._expires_at(),
        )
        keys = await asyncio.to_thread(self.memory.put_records, binding.tenant_context, [(key, meta["content"], meta)])
        return keys[0]  # the memory store may fold a near-identical memory into an existing key

    async def add_messages(self, messages: list[Message], context: AddMessagesContext | None = None) -> list[str]:
        """Store the text of each message of ``message_roles``; returns the keys written.

        A retried batch (same sequence numbers, same text) maps to the same keys and overwrites itself.
        """
        self._check_writable()
        binding, scope = self._write_scope()
        conversation_id = binding.conversation_id or f"run-{self.run_id}"
        sequence = self._sequence_numbers(messages, context)
        expires_at = self._expires_at()
        records: list[Record] = []
        for position, message in enumerate(messages):
            role = str(message.get("role", ""))
            text = message_text(message) if role in self.message_roles else ""
            if not text:
                continue
            identity = "" if sequence is None else str(sequence[position])
            key = message_key(scope, self.run_id, identity, role, text)
            meta = build_metadata(
                scope, text, memory_type=TYPE_DETAIL, conversation_id=conversation_id, expires_at=expires_at
            )
            records.append((key, meta["content"], meta))
        if not records:
            return []
        return await asyncio.to_thread(self.memory.put_records, binding.tenant_context, records)

    @staticmethod
    def _sequence_numbers(messages: Sequence[Message], context: AddMessagesContext | None) -> list[int] | None:
        numbers = context.sequence_numbers if context is not None else None
        if numbers is not None and len(numbers) != len(messages):
            logger.warning(
                "add_messages got %d sequence numbers for %d messages; keying messages by content only",
                len(numbers), len(messages),
            )
            return None
        return numbers

    def get_tools(self) -> list[AgentTool]:
        """Tools for the model: list and delete the *bound user's own* memories, one at a time.

        The identity always comes from the store's binding (never from tool arguments), another
        user's key reads as absent, and there is no bulk delete: forgetting a whole user is an
        operator action (``forget_user``, ``s3-vectors-memory forget``), not a model's.
        """
        prefix = "" if self.name == DEFAULT_STORE_NAME else f"{re.sub(r'[^A-Za-z0-9_-]+', '_', self.name)}_"

        @tool(name=f"{prefix}list_memories")
        async def list_memories(page_token: str | None = None) -> dict[str, Any]:
            """List the current user's stored memories (20 per page), newest first within the page.

            Args:
                page_token: The next_page_token of a previous call, to see the next page.
            """
            binding, user_id = self._read_scope()
            page = await asyncio.to_thread(
                self.memory.list_memories, user_id, agent_name=binding.agent_name,
                tenant_context=binding.tenant_context, page_size=20, next_token=page_token,
            )
            memories = sorted(page.memories, key=lambda m: m.stored_at, reverse=True)
            return {
                "memories": [{"key": m.key, "type": m.type, "stored_at": m.stored_at, "content": m.content}
                             for m in memories],
                "next_page_token": page.next_token,
            }

        @tool(name=f"{prefix}delete_memory")
        async def delete_memory(key: str) -> str:
            """Delete one of the current user's memories, by the key list_memories showed.

            Args:
                key: The memory's key.
            """
            self._check_writable()
            binding, user_id = self._read_scope()
            deleted = await asyncio.to_thread(
                self.memory.delete_memory, str(key), user_id, agent_name=binding.agent_name,
                tenant_context=binding.tenant_context,
            )
            return "Deleted." if deleted else "No memory of this user has that key."

        return [list_memories, delete_memory]

    def __repr__(self) -> str:
        return f"MemoryManagerStore(name={self.name!r}, index={self.memory.index_name!r})"
