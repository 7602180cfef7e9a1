"""The ARNs the memory package reads and writes: S3 Vectors buckets and indexes, IAM roles and users.

One home for their shapes, so the tenant-scoped client (which must attribute every ARN it is handed
to exactly one bucket and index) and the IAM helpers (which validate the principals a role trusts
and write the tenant index's ARN into its policy) agree on them. Parsing is strict: an ARN that does
not have the expected shape names nothing, and whatever relies on it refuses.
"""

from __future__ import annotations

import re

__all__ = [
    "index_arn",
    "is_role_arn",
    "is_role_or_user_arn",
    "parse_bucket_arn",
    "parse_index_arn",
]

_S3VECTORS_BUCKET = r"arn:[^:]+:s3vectors:[^:]*:[^:]*:bucket/([^/]+)"
_INDEX_ARN = re.compile(_S3VECTORS_BUCKET + r"/index/([^/]+)")
_BUCKET_ARN = re.compile(_S3VECTORS_BUCKET)
#: IAM roles and users of an AWS partition (an account root ``:root`` or ``*`` is neither).
_IAM_ARN = r"arn:aws[a-z-]*:iam::\d{12}:%s/[\w+=,.@/-]{1,512}"
_ROLE_ARN = re.compile(_IAM_ARN % "role")
_ROLE_OR_USER_ARN = re.compile(_IAM_ARN % "(?:role|user)")


def parse_index_arn(arn: str) -> tuple[str, str] | None:
    """``(bucket, index)`` of an S3 Vectors index ARN, or ``None`` if ``arn`` is not one."""
    match = _INDEX_ARN.fullmatch(arn)
    return (match[1], match[2]) if match is not None else None


def parse_bucket_arn(arn: str) -> str | None:
    """The bucket of an S3 Vectors vector bucket ARN, or ``None`` if ``arn`` is not one."""
    match = _BUCKET_ARN.fullmatch(arn)
    return match[1] if match is not None else None


def index_arn(*, partition: str, region: str, account_id: str, bucket_name: str, index_name: str) -> str:
    """The ARN of an S3 Vectors index (``index_name`` may be an IAM policy variable)."""
    return f"arn:{partition}:s3vectors:{region}:{account_id}:bucket/{bucket_name}/index/{index_name}"


def is_role_arn(arn: object) -> bool:
    """Whether ``arn`` is an IAM role's ARN."""
    return isinstance(arn, str) and _ROLE_ARN.fullmatch(arn) is not None


def is_role_or_user_arn(arn: object) -> bool:
    """Whether ``arn`` is an IAM role's or user's ARN (not an account root, not ``*``)."""
    return isinstance(arn, str) and _ROLE_OR_USER_ARN.fullmatch(arn) is not None
