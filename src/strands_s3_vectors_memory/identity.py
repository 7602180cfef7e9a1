"""Who is calling: one value read from ``invocation_state``, validated once and passed down.

The plugin reads ``user_id``, ``conversation_id``, ``end_session`` and ``tenant_context`` once per
``agent()`` call into an :class:`Invocation`; its :class:`~strands_s3_vectors_memory.MemoryScope`
is the scope that retrieval, the write job and the keys use from then on, never rebuilt.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from .errors import InvalidIdentityError, InvalidInvocationStateError
from .index import MemoryScope, validate_id
from .tenancy import tenant_id_from_context

__all__ = ["ConversationKey", "Invocation", "ScopeKey", "read_invocation", "scope_key"]

#: ``(tenant id or "", user id, agent name, conversation id)``: one conversation, everywhere.
ConversationKey = tuple[str, str, str, str]
#: ``(tenant id or "", user id, agent name)``: one user's memories of one agent.
ScopeKey = tuple[str, str, str]


def scope_key(scope: MemoryScope) -> ScopeKey:
    """The hashable identity of a scope (read-your-writes waits and cancellations use it)."""
    return (scope.tenant_id or "", scope.user_id, scope.agent_name or "")


@dataclass(frozen=True)
class Invocation:
    """One ``agent()`` call's identity: whose memories (``scope``) and which conversation."""

    scope: MemoryScope
    conversation_id: str
    end_session: bool = False

    @property
    def key(self) -> ConversationKey:
        return (*scope_key(self.scope), self.conversation_id)

    @property
    def user_id(self) -> str:
        return self.scope.user_id

    @property
    def tenant_id(self) -> str | None:
        return self.scope.tenant_id

    @property
    def tenant_context(self) -> dict[str, str] | None:
        """The 0.3.0 shape of the tenant (``{"tenantId": ...}``), for APIs that still take it."""
        return {"tenantId": self.scope.tenant_id} if self.scope.tenant_id is not None else None


def read_invocation(state: Mapping[str, Any], agent_name: str, *, multi_tenant: bool) -> Invocation | None:
    """Validate ``invocation_state``; ``None`` when it names no user and no conversation at all.

    A multi-tenant store needs ``tenant_context`` and a single-tenant store refuses one
    (:class:`~strands_s3_vectors_memory.InvalidInvocationStateError` either way): a tenant silently
    ignored would let two tenants' users with the same id share memories. Only the validated tenant
    id is kept; the caller's dict (which the SDK may mutate, and which may hold anything) is not.
    """
    if "user_id" not in state and "conversation_id" not in state:
        return None
    conversation_id = validate_id(state.get("conversation_id"), "conversation_id")
    end_session = state.get("end_session", False)
    if end_session is None:
        end_session = False
    if not isinstance(end_session, bool):
        raise InvalidInvocationStateError(f"end_session must be a bool, got {type(end_session).__name__}")
    raw_tenant = state.get("tenant_context")
    tenant_id: str | None = None
    if multi_tenant:
        if raw_tenant is None:
            raise InvalidIdentityError(
                "a multi-tenant store needs invocation_state['tenant_context'] = {'tenantId': ...}"
            )
        tenant_id = tenant_id_from_context(raw_tenant)
    elif raw_tenant is not None:
        raise InvalidInvocationStateError(
            "invocation_state has a tenant_context but the store is single-tenant (S3VectorMemory), which "
            "would mix tenants' memories; use MultiTenantS3VectorMemory for multi-tenant applications"
        )
    user_id: Any = state.get("user_id")  # MemoryScope validates it (the scope's own invariant)
    return Invocation(MemoryScope(user_id, agent_name, tenant_id), conversation_id, end_session)
