"""Tenant ids: validated, never normalised, so no two ids share an index and none spells another resource."""

from __future__ import annotations

import re
from collections.abc import Mapping

from ..config import TENANT_INDEX_PREFIX
from ..errors import InvalidIdentityError

#: 1-56 characters so that ``memory-{tenantId}`` fits the 63-character index name limit.
TENANT_ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,54}[a-z0-9])?")
TENANT_ID_RULE = (
    "a tenant id must be 1-56 characters of lower-case letters a-z, digits 0-9 and hyphens, "
    "starting and ending with a letter or digit"
)
#: Key of the STS session tag carrying the tenant id (the IAM policies refer to it).
TENANT_TAG_KEY = "TenantID"


def _shorten(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` unchanged if it follows :data:`TENANT_ID_RULE`, else raise.

    Nothing is lower-cased or trimmed on purpose: ``"Acme"`` and ``"acme"`` must not silently
    share one index.
    """
    if not isinstance(tenant_id, str) or TENANT_ID_PATTERN.fullmatch(tenant_id) is None:
        raise InvalidIdentityError(f"invalid tenant id {_shorten(tenant_id)}: {TENANT_ID_RULE}")
    return tenant_id


def tenant_index_name(tenant_id: object) -> str:
    """The S3 Vectors index holding one tenant's memories: ``memory-{tenantId}``."""
    return f"{TENANT_INDEX_PREFIX}{validate_tenant_id(tenant_id)}"


def tenant_id_from_context(tenant_context: object) -> str:
    """Extract and validate the tenant id from ``invocation_state["tenant_context"]``.

    The spec's shape is ``{"tenantId": "tenant-001"}``.
    """
    if not isinstance(tenant_context, Mapping):
        raise InvalidIdentityError(
            "invocation_state['tenant_context'] must be a dict with a 'tenantId' key, "
            f"got {type(tenant_context).__name__}"
        )
    if "tenantId" not in tenant_context:
        raise InvalidIdentityError("invocation_state['tenant_context'] has no 'tenantId' key")
    return validate_tenant_id(tenant_context["tenantId"])
