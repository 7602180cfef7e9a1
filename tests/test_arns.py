"""ARN shapes: what the scoped client attributes to a bucket and index, and which principals IAM may trust."""

from __future__ import annotations

import pytest

from strands_s3_vectors_memory.tenancy._arns import (
    index_arn,
    is_role_arn,
    is_role_or_user_arn,
    parse_bucket_arn,
    parse_index_arn,
)

BUCKET_ARN = "arn:aws:s3vectors:us-east-1:123456789012:bucket/memories"


def test_index_and_bucket_arns_round_trip() -> None:
    arn = index_arn(partition="aws", region="us-east-1", account_id="123456789012", bucket_name="memories",
                    index_name="memory-acme")
    assert arn == f"{BUCKET_ARN}/index/memory-acme"
    assert parse_index_arn(arn) == ("memories", "memory-acme")
    assert parse_bucket_arn(BUCKET_ARN) == "memories"


@pytest.mark.parametrize(
    "arn",
    [f"{BUCKET_ARN}/index/a/extra", BUCKET_ARN, "memory-acme", "arn::s3vectors:r:1:bucket/b/index/i",
     f" {BUCKET_ARN}/index/i", "arn:aws:s3:us-east-1:123456789012:bucket/memories/index/i"],
)
def test_anything_else_names_no_index(arn: str) -> None:
    assert parse_index_arn(arn) is None


def test_a_bucket_arn_names_only_a_bucket() -> None:
    assert parse_bucket_arn(f"{BUCKET_ARN}/index/i") is None
    assert parse_bucket_arn("memories") is None


def test_iam_principals() -> None:
    role, user = "arn:aws:iam::123456789012:role/tvm", "arn:aws-cn:iam::123456789012:user/ops"
    assert is_role_arn(role) and not is_role_arn(user)
    assert is_role_or_user_arn(role) and is_role_or_user_arn(user)
    for wrong in ("arn:aws:iam::123456789012:root", "*", None, 42, "arn:aws:iam::12345:role/x"):
        assert not is_role_arn(wrong) and not is_role_or_user_arn(wrong)
