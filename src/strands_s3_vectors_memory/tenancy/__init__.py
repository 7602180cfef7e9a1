"""Tenant isolation: tenant id rules, per-tenant index names, the Token Vending Machine.

Multi-tenant memory keeps one S3 Vectors index per tenant (``memory-{tenantId}``) and reaches it
only with credentials vended for that tenant: STS ``AssumeRole`` on the TVM role with a
``TenantID`` session tag, which the role's policy (see :mod:`._iam`)
turns into access to exactly ``index/memory-${aws:PrincipalTag/TenantID}``.

Two rules keep tenants apart even when something goes wrong:

* tenant ids are validated, never normalised: two different ids can never name the same
  index, and no id can spell another resource;
* when credentials cannot be vended, :class:`~strands_s3_vectors_memory.IsolationError` is
  raised; nothing ever falls back to the process's ambient credentials.

:func:`scope_client` adds the same guarantee in code, for the local backend (which has no IAM)
and as defence in depth on AWS.
"""


from __future__ import annotations

from ._iam import TVM_POLICY_NAME, create_tvm_role, tvm_permissions_policy, tvm_trust_policy
from ._ids import (
    TENANT_ID_PATTERN,
    TENANT_ID_RULE,
    TENANT_TAG_KEY,
    tenant_id_from_context,
    tenant_index_name,
    validate_tenant_id,
)
from ._scoped import SCOPED_OPERATIONS, ScopedClient, operation_name, scope_client
from ._tvm import TenantCredentials, TokenVendingMachine

__all__ = [
    "SCOPED_OPERATIONS",
    "TENANT_ID_PATTERN",
    "TENANT_ID_RULE",
    "TENANT_TAG_KEY",
    "TVM_POLICY_NAME",
    "ScopedClient",
    "TenantCredentials",
    "TokenVendingMachine",
    "create_tvm_role",
    "operation_name",
    "scope_client",
    "tenant_id_from_context",
    "tenant_index_name",
    "tvm_permissions_policy",
    "tvm_trust_policy",
    "validate_tenant_id",
]
