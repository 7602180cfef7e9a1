"""IAM for the Token Vending Machine role (replaces the original ``setup_tvm_role.sh``).

The original script trusted the whole account, so any principal in it could assume the role
with any ``TenantID`` tag and read every tenant's memories. Here the trust policy names the
principals allowed to vend credentials, and the role's only permission is S3 Vectors access to
``bucket/{bucket}/index/memory-${aws:PrincipalTag/TenantID}``: a session can reach exactly the
index of the tenant it was tagged with.
"""

from __future__ import annotations

import json
import re
import string
from collections.abc import Sequence
from typing import Any

import botocore.session
from botocore.exceptions import ClientError, UnknownRegionError

from ..config import TENANT_INDEX_PREFIX
from ..errors import ConfigurationError
from ._arns import index_arn, is_role_or_user_arn
from ._ids import TENANT_TAG_KEY
from ._scoped import SCOPED_OPERATIONS, operation_name

#: Name of the inline policy :func:`create_tvm_role` puts on the role.
TVM_POLICY_NAME = "S3VectorsTenantIndexAccess"
#: What the memory store does on its tenant's index, and nothing more: the IAM actions of the
#: operations a tenant-scoped client allows (one list, so the policy and the client cannot drift).
TENANT_INDEX_ACTIONS: tuple[str, ...] = tuple(f"s3vectors:{operation_name(op)}" for op in sorted(SCOPED_OPERATIONS))

_POLICY_VERSION = "2012-10-17"
_REQUEST_TAG = f"aws:RequestTag/{TENANT_TAG_KEY}"
_PRINCIPAL_TAG = f"aws:PrincipalTag/{TENANT_TAG_KEY}"
#: The vector bucket name rule from the S3 Vectors service model.
_BUCKET_NAME = re.compile(r"[a-z0-9][a-z0-9-.]{1,61}[a-z0-9]")
_ACCOUNT_ID = re.compile(r"\d{12}")
_ROLE_NAME = re.compile(r"[\w+=,.@-]{1,64}")
#: Longest tenant id (see :data:`strands_s3_vectors_memory.tenancy.TENANT_ID_PATTERN`).
_MAX_TENANT_ID_LENGTH = 56
#: ASCII characters IAM accepts in tag values that tenant ids may not contain.
_FORBIDDEN_TAG_CHARACTERS = string.ascii_uppercase + "_.:/=+@ "


def _tenant_tag_denylist() -> list[str]:
    """``StringNotLike`` patterns matching every ASCII tag value that is not a valid tenant id.

    IAM patterns have only ``*`` and ``?``, so the tenant id rule is spelt negatively: a
    leading or trailing hyphen, an over-long value, or any forbidden character. (Non-ASCII
    letters, which IAM also allows in tag values, cannot be listed; the TVM rejects them before
    calling STS.)
    """
    patterns = ["-*", "*-", "?" * (_MAX_TENANT_ID_LENGTH + 1) + "*"]
    patterns.extend(f"*{character}*" for character in _FORBIDDEN_TAG_CHARACTERS)
    return patterns


def _validated_principals(principal_arns: Sequence[str]) -> list[str]:
    if isinstance(principal_arns, str):
        raise ConfigurationError("principal_arns must be a list of ARNs, not a single string")
    principals = list(dict.fromkeys(principal_arns))
    if not principals:
        raise ConfigurationError("the TVM role must trust at least one principal ARN (the service vending credentials)")
    for arn in principals:
        if not is_role_or_user_arn(arn):  # an account root (:root) or * would trust every principal
            raise ConfigurationError(
                f"invalid trusted principal {arn!r}: use the ARN of an IAM role or user, "
                "e.g. arn:aws:iam::123456789012:role/my-agent-service (not an account root or '*')"
            )
    return principals


def tvm_trust_policy(principal_arns: Sequence[str]) -> dict[str, Any]:
    """Trust policy: only ``principal_arns`` may assume the role, and only with a ``TenantID`` tag.

    The session must carry exactly one tag, ``TenantID``, whose value looks like a tenant id, so
    no other tag can be smuggled in to widen what the session's policies match.
    """
    return {
        "Version": _POLICY_VERSION,
        "Statement": [
            {
                "Sid": "TrustedServiceAssumesWithTenantTag",
                "Effect": "Allow",
                "Principal": {"AWS": _validated_principals(principal_arns)},
                "Action": ["sts:AssumeRole", "sts:TagSession"],
                "Condition": {
                    "Null": {_REQUEST_TAG: "false"},
                    "StringLike": {_REQUEST_TAG: "?*"},
                    "StringNotLike": {_REQUEST_TAG: _tenant_tag_denylist()},
                    "ForAllValues:StringEquals": {"aws:TagKeys": [TENANT_TAG_KEY]},
                },
            }
        ],
    }


def _partition(region: str) -> str:
    try:
        return str(botocore.session.get_session().get_partition_for_region(region))
    except UnknownRegionError:
        raise ConfigurationError(f"unknown AWS region {region!r}") from None


def tenant_index_arn_pattern(bucket_name: str, *, region: str, account_id: str) -> str:
    """The ARN of "this session's tenant index", resolved by IAM from the session tag."""
    if _BUCKET_NAME.fullmatch(bucket_name) is None:
        raise ConfigurationError(
            f"invalid vector bucket name {bucket_name!r}: 3-63 lower-case letters, digits, hyphens and dots"
        )
    if _ACCOUNT_ID.fullmatch(account_id) is None:
        raise ConfigurationError(f"invalid AWS account id {account_id!r}: 12 digits")
    return index_arn(
        partition=_partition(region), region=region, account_id=account_id, bucket_name=bucket_name,
        index_name=f"{TENANT_INDEX_PREFIX}${{{_PRINCIPAL_TAG}}}",
    )


def tvm_permissions_policy(bucket_name: str, *, region: str, account_id: str) -> dict[str, Any]:
    """Permissions policy: the memory store's S3 Vectors actions on the session's tenant index only."""
    return {
        "Version": _POLICY_VERSION,
        "Statement": [
            {
                "Sid": "OwnTenantIndexOnly",
                "Effect": "Allow",
                "Action": list(TENANT_INDEX_ACTIONS),
                "Resource": tenant_index_arn_pattern(bucket_name, region=region, account_id=account_id),
                "Condition": {"Null": {_PRINCIPAL_TAG: "false"}},
            }
        ],
    }


def create_tvm_role(
    iam_client: Any,
    *,
    role_name: str,
    bucket_name: str,
    principal_arns: Sequence[str],
    region: str,
    account_id: str,
) -> str:
    """Create the TVM role (or bring an existing one up to date) and return its ARN.

    Idempotent: on an existing role the trust policy and the inline permissions policy are
    replaced with the ones computed here. Errors from IAM propagate as ``ClientError``.
    """
    if _ROLE_NAME.fullmatch(role_name) is None:
        raise ConfigurationError(f"invalid IAM role name {role_name!r}: 1-64 letters, digits and +=,.@_-")
    trust = json.dumps(tvm_trust_policy(principal_arns))
    permissions = json.dumps(tvm_permissions_policy(bucket_name, region=region, account_id=account_id))
    try:
        response = iam_client.create_role(
            RoleName=role_name,
            AssumeRolePolicyDocument=trust,
            Description=f"strands-s3-vectors-memory Token Vending Machine: per-tenant access to {bucket_name}",
        )
        role_arn = str(response["Role"]["Arn"])
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") != "EntityAlreadyExists":
            raise
        iam_client.update_assume_role_policy(RoleName=role_name, PolicyDocument=trust)
        role_arn = str(iam_client.get_role(RoleName=role_name)["Role"]["Arn"])
    iam_client.put_role_policy(RoleName=role_name, PolicyName=TVM_POLICY_NAME, PolicyDocument=permissions)
    return role_arn
