"""An IAM-like access rule for the local endpoint, so tenant-isolation tests run offline.

On AWS, each tenant gets credentials (from the Token Vending Machine) whose session policy allows
only its own index; touching another tenant's index fails with ``AccessDeniedException`` (HTTP 403).
:class:`AccessPolicy` reproduces that outcome locally, keyed by the access key id a boto3 client
signs with.

The access key id is read from the ``Authorization`` header (``Credential=AKID/...``) or a
presigned URL's ``X-Amz-Credential``. **By default it is trusted as is** (a development/test
endpoint: anyone who can reach the port can claim any key, which is why it binds to loopback).
Register the keys' secrets (``secret_keys``) and requests naming those keys must carry a valid SigV4
signature (:mod:`._sigv4`), so knowing another tenant's key id is not enough.
"""

from __future__ import annotations

import fnmatch
import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from ._sigv4 import SignatureProblem, SignedRequest, check_signature

_CREDENTIAL_RE = re.compile(r"Credential=([^/,\s]+)/")
_INDEX_ARN_RE = re.compile(r"^arn:[^:]*:s3vectors:[^:]*:[^:]*:bucket/([^/]+)/index/([^/]+)$")
_BUCKET_ARN_RE = re.compile(r"^arn:[^:]*:s3vectors:[^:]*:[^:]*:bucket/([^/]+)$")


def access_key_id(authorization: str | None, query_credential: str | None = None) -> str | None:
    """The access key id a request claims to be signed with (unverified), or None when unsigned."""
    if authorization:
        match = _CREDENTIAL_RE.search(authorization)
        if match:
            return match.group(1)
    if query_credential:
        return query_credential.split("/", 1)[0] or None
    return None


@dataclass(frozen=True)
class Resource:
    """What a request touches: the bucket (when named) and the index (when the call is about one)."""

    bucket: str | None
    index: str | None

    def describe(self) -> str:
        if self.index is not None:
            return f"bucket/{self.bucket or '*'}/index/{self.index}"
        return f"bucket/{self.bucket}" if self.bucket else "*"


def resource_of(params: Mapping[str, Any]) -> Resource:
    """Find the index/bucket a call names, from ``indexName``/``indexArn``/``resourceArn``/bucket."""
    bucket = params.get("vectorBucketName")
    for key in ("indexArn", "resourceArn"):
        arn = params.get(key)
        if isinstance(arn, str):
            index_match = _INDEX_ARN_RE.match(arn)
            if index_match:
                return Resource(bucket=index_match.group(1), index=index_match.group(2))
            bucket_match = _BUCKET_ARN_RE.match(arn)
            if bucket_match:
                return Resource(bucket=bucket_match.group(1), index=None)
    arn = params.get("vectorBucketArn")
    if isinstance(arn, str) and bucket is None:
        bucket_match = _BUCKET_ARN_RE.match(arn)
        bucket = bucket_match.group(1) if bucket_match else arn
    index = params.get("indexName")
    return Resource(
        bucket=bucket if isinstance(bucket, str) else None,
        index=index if isinstance(index, str) else None,
    )


@dataclass(frozen=True)
class AccessPolicy:
    """Which access key may touch which index: a stand-in for per-tenant IAM session policies.

    **Signatures are not verified** (dev/test endpoint): the key id in the request's SigV4
    ``Credential`` is trusted as is.

    Args:
        indexes: access key id -> index names it may use (shell-style globs, e.g. ``"memory-a"``
            or ``"memory-*"``). Applies to every operation that names one index (``indexName``,
            ``indexArn``, or an index ``resourceArn``): CreateIndex, GetIndex, Put/Get/List/Query/
            DeleteVectors, DeleteIndex, tagging an index.
        bucket_operations: access key id -> operation names it may call that do not name an index
            (``ListIndexes``, ``GetVectorBucket``, ``CreateVectorBucket``, ...), or ``"*"`` for all.
            None by default, as a tenant-scoped role cannot administer the bucket.
        allow_unknown_keys: what happens to keys absent from both maps (and unsigned requests):
            denied by default, allowed everything when True.
        secret_keys: access key id -> secret access key. A request naming one of these keys is
            refused (403 ``InvalidSignatureException``) unless its SigV4 signature verifies.

    Example:
        ``AccessPolicy({"AKIA_TENANT_A": ["memory-a"], "AKIA_ADMIN": ["*"]},
        bucket_operations={"AKIA_ADMIN": ["*"]})``
    """

    indexes: Mapping[str, Collection[str]] = field(default_factory=dict)
    bucket_operations: Mapping[str, Collection[str]] = field(default_factory=dict)
    allow_unknown_keys: bool = False
    secret_keys: Mapping[str, str] = field(default_factory=dict)

    def signature_problem(self, key_id: str | None, request: SignedRequest) -> SignatureProblem | None:
        """Why the request's signature is refused, or None (verified, or no secret registered for the key)."""
        secret = self.secret_keys.get(key_id or "")
        if secret is None or key_id is None:
            return None
        return check_signature(request, key_id, secret)

    def denial_reason(self, key_id: str | None, operation: str, params: Mapping[str, Any]) -> str | None:
        """Return why the call is refused (an AWS-like message), or None when it is allowed."""
        if key_id not in self.indexes and key_id not in self.bucket_operations:
            if self.allow_unknown_keys:
                return None
            return _message(key_id, operation, resource_of(params))
        resource = resource_of(params)
        if resource.index is not None:
            patterns = self.indexes.get(key_id or "", ())
            allowed = any(fnmatch.fnmatchcase(resource.index, pattern) for pattern in patterns)
        else:
            ops = self.bucket_operations.get(key_id or "", ())
            allowed = "*" in ops or operation in ops
        return None if allowed else _message(key_id, operation, resource)


def _message(key_id: str | None, operation: str, resource: Resource) -> str:
    who = key_id or "anonymous"
    return (
        f"User: {who} is not authorized to perform: s3vectors:{operation} on resource: "
        f"{resource.describe()} because no identity-based policy allows the s3vectors:{operation} action"
    )
