"""AccessPolicy: a tenant's key reaches its own index and gets AccessDeniedException (403) elsewhere."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from s3vectors_engine.server import AccessPolicy, LocalEndpoint
from s3vectors_engine.server._access import access_key_id, resource_of

ClientFactory = Callable[..., Any]
BUCKET = "tenant-bucket"
_VECTOR = {"float32": [1.0, 0.0, 0.0]}

POLICY = AccessPolicy(
    indexes={"AKIA_TENANT_A": ["memory-a"], "AKIA_TENANT_B": ["memory-b"], "AKIA_ADMIN": ["*"]},
    bucket_operations={"AKIA_ADMIN": ["*"], "AKIA_TENANT_A": ["GetVectorBucket"]},
)


@pytest.fixture(scope="module")
def guarded(tmp_path_factory: pytest.TempPathFactory, client_for: ClientFactory) -> Iterator[str]:
    """A policy-enforcing server whose bucket holds memory-a and memory-b, set up by the admin key."""
    with LocalEndpoint(tmp_path_factory.mktemp("guarded"), access_policy=POLICY) as endpoint:
        admin = client_for(endpoint.url, "AKIA_ADMIN")
        admin.create_vector_bucket(vectorBucketName=BUCKET)
        for index in ("memory-a", "memory-b"):
            admin.create_index(
                vectorBucketName=BUCKET,
                indexName=index,
                dataType="float32",
                dimension=3,
                distanceMetric="cosine",
            )
            admin.put_vectors(
                vectorBucketName=BUCKET,
                indexName=index,
                vectors=[{"key": f"{index}-secret", "data": _VECTOR, "metadata": {"owner": index}}],
            )
        yield endpoint.url


def _denied(call: Callable[[], Any], client: Any) -> str:
    with pytest.raises(client.exceptions.AccessDeniedException) as info:
        call()
    assert info.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403
    return str(info.value.response["Error"]["Message"])


def test_tenant_reaches_its_own_index(guarded: str, client_for: ClientFactory) -> None:
    tenant_a = client_for(guarded, "AKIA_TENANT_A")
    hits = tenant_a.query_vectors(
        vectorBucketName=BUCKET, indexName="memory-a", queryVector=_VECTOR, topK=5, returnMetadata=True
    )
    assert [v["key"] for v in hits["vectors"]] == ["memory-a-secret"]
    tenant_a.put_vectors(vectorBucketName=BUCKET, indexName="memory-a", vectors=[{"key": "mine", "data": _VECTOR}])
    assert tenant_a.get_index(vectorBucketName=BUCKET, indexName="memory-a")["index"]["indexName"] == "memory-a"
    assert tenant_a.get_vector_bucket(vectorBucketName=BUCKET)["vectorBucket"]["vectorBucketName"] == BUCKET


def test_tenant_b_querying_tenant_a_index_is_denied(guarded: str, client_for: ClientFactory) -> None:
    tenant_b = client_for(guarded, "AKIA_TENANT_B")
    message = _denied(
        lambda: tenant_b.query_vectors(vectorBucketName=BUCKET, indexName="memory-a", queryVector=_VECTOR, topK=5),
        tenant_b,
    )
    assert "AKIA_TENANT_B" in message and "s3vectors:QueryVectors" in message and "memory-a" in message
    arn = client_for(guarded, "AKIA_ADMIN").get_index(vectorBucketName=BUCKET, indexName="memory-a")["index"][
        "indexArn"
    ]
    _denied(lambda: tenant_b.get_vectors(indexArn=arn, keys=["memory-a-secret"]), tenant_b)
    _denied(lambda: tenant_b.list_vectors(vectorBucketName=BUCKET, indexName="memory-a"), tenant_b)
    _denied(lambda: tenant_b.delete_index(vectorBucketName=BUCKET, indexName="memory-a"), tenant_b)
    _denied(lambda: tenant_b.list_tags_for_resource(resourceArn=arn), tenant_b)
    # Bucket-level operations are not granted to tenant B at all.
    _denied(lambda: tenant_b.list_indexes(vectorBucketName=BUCKET), tenant_b)
    _denied(lambda: tenant_b.delete_vector_bucket(vectorBucketName=BUCKET), tenant_b)
    # Nothing was touched: A's data is still there.
    admin = client_for(guarded, "AKIA_ADMIN")
    keys = {v["key"] for v in admin.list_vectors(vectorBucketName=BUCKET, indexName="memory-a")["vectors"]}
    assert "memory-a-secret" in keys


def test_unknown_keys_are_denied_unless_allowed(guarded: str, client_for: ClientFactory) -> None:
    stranger = client_for(guarded, "AKIA_STRANGER")
    _denied(lambda: stranger.list_vector_buckets(), stranger)
    _denied(lambda: stranger.get_index(vectorBucketName=BUCKET, indexName="memory-b"), stranger)


def test_policy_decisions() -> None:
    open_policy = AccessPolicy(indexes={"K": ["memory-k"]}, allow_unknown_keys=True)
    assert open_policy.denial_reason("OTHER", "QueryVectors", {"indexName": "memory-x"}) is None
    assert open_policy.denial_reason(None, "ListVectorBuckets", {}) is None
    assert open_policy.denial_reason("K", "QueryVectors", {"indexName": "memory-x"}) is not None
    glob = AccessPolicy(indexes={"K": ["memory-tenant-*"]})
    assert glob.denial_reason("K", "PutVectors", {"indexName": "memory-tenant-42"}) is None
    assert glob.denial_reason("K", "PutVectors", {"indexName": "memory-other"}) is not None
    assert glob.denial_reason(None, "PutVectors", {"indexName": "memory-tenant-42"}) is not None
    assert glob.denial_reason("K", "ListIndexes", {"vectorBucketName": "b"}) is not None


def test_credentials_and_resources_are_read_like_iam_would() -> None:
    header = (
        "AWS4-HMAC-SHA256 Credential=AKIA123/20250715/us-east-1/s3vectors/aws4_request, "
        "SignedHeaders=host;x-amz-date, Signature=abc"
    )
    assert access_key_id(header) == "AKIA123"
    assert access_key_id(None, "AKIA999/20250715/us-east-1/s3vectors/aws4_request") == "AKIA999"
    assert access_key_id("Bearer token") is None
    index_arn = "arn:aws:s3vectors:us-east-1:123456789012:bucket/bkt/index/memory-a"
    assert resource_of({"indexArn": index_arn}).index == "memory-a"
    assert resource_of({"resourceArn": index_arn}).bucket == "bkt"
    bucket_arn = "arn:aws:s3vectors:us-east-1:123456789012:bucket/bkt"
    assert (
        resource_of({"resourceArn": bucket_arn}).bucket,
        resource_of({"resourceArn": bucket_arn}).index,
    ) == ("bkt", None)
    assert resource_of({"vectorBucketName": "bkt", "indexName": "memory-b"}).index == "memory-b"
