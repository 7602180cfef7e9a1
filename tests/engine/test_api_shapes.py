"""Response shapes, addressing and errors: the engine against moto and the service model.

Tests taking ``any_client`` run against both the engine and moto 5.2.5 (real boto3 + botocore
parsing), so the engine is held to what a boto3 caller actually receives. Responses of the engine
are additionally checked against the s3vectors output shapes (moto omits some required members,
such as ``creationTime``, so that check is engine-only).
"""

from __future__ import annotations

from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError, ParamValidationError
from engine_support import BUCKET, INDEX, assert_conforms, expect_error, make_index, vec

from s3vectors_engine import LocalS3VectorsClient

ARN_PREFIX = "arn:aws:s3vectors:us-east-1:123456789012:bucket/"


def test_bucket_lifecycle(any_client: Any, backend: str) -> None:
    created = any_client.create_vector_bucket(vectorBucketName=BUCKET)
    assert created["ResponseMetadata"]["HTTPStatusCode"] == 200
    got = any_client.get_vector_bucket(vectorBucketName=BUCKET)["vectorBucket"]
    assert got["vectorBucketName"] == BUCKET
    assert got["vectorBucketArn"] == ARN_PREFIX + BUCKET
    assert got["encryptionConfiguration"] == {"sseType": "AES256"}
    by_arn = any_client.get_vector_bucket(vectorBucketArn=ARN_PREFIX + BUCKET)["vectorBucket"]
    assert by_arn["vectorBucketName"] == BUCKET
    names = [b["vectorBucketName"] for b in any_client.list_vector_buckets()["vectorBuckets"]]
    assert names == [BUCKET]
    assert any_client.delete_vector_bucket(vectorBucketName=BUCKET)["ResponseMetadata"]["HTTPStatusCode"] == 200
    expect_error("NotFoundException", 404, any_client.get_vector_bucket, vectorBucketName=BUCKET)
    if backend == "engine":
        assert created["vectorBucketArn"] == ARN_PREFIX + BUCKET
        assert_conforms("CreateVectorBucket", created)


def test_engine_bucket_responses_fit_the_model(engine: LocalS3VectorsClient) -> None:
    assert_conforms("CreateVectorBucket", engine.create_vector_bucket(vectorBucketName=BUCKET))
    assert_conforms("GetVectorBucket", engine.get_vector_bucket(vectorBucketName=BUCKET))
    assert_conforms("ListVectorBuckets", engine.list_vector_buckets())
    assert_conforms("DeleteVectorBucket", engine.delete_vector_bucket(vectorBucketName=BUCKET))


def test_duplicate_bucket_conflicts(any_client: Any) -> None:
    any_client.create_vector_bucket(vectorBucketName=BUCKET)
    error = expect_error("ConflictException", 409, any_client.create_vector_bucket, vectorBucketName=BUCKET)
    assert "already exists" in error.response["Error"]["Message"]


def test_missing_bucket_is_not_found_everywhere(any_client: Any) -> None:
    expect_error("NotFoundException", 404, any_client.get_vector_bucket, vectorBucketName="nope-bucket")
    expect_error("NotFoundException", 404, any_client.delete_vector_bucket, vectorBucketName="nope-bucket")
    expect_error(
        "NotFoundException",
        404,
        any_client.create_index,
        vectorBucketName="nope-bucket",
        indexName=INDEX,
        dataType="float32",
        dimension=4,
        distanceMetric="cosine",
    )
    expect_error(
        "NotFoundException", 404, any_client.get_vectors, vectorBucketName="nope-bucket", indexName=INDEX, keys=["a"]
    )


def test_non_empty_bucket_cannot_be_deleted(any_client: Any) -> None:
    make_index(any_client)
    expect_error("ConflictException", 409, any_client.delete_vector_bucket, vectorBucketName=BUCKET)
    any_client.delete_index(vectorBucketName=BUCKET, indexName=INDEX)
    any_client.delete_vector_bucket(vectorBucketName=BUCKET)


def test_index_lifecycle(any_client: Any, backend: str) -> None:
    make_index(any_client, dimension=8, metric="euclidean", non_filterable=["content"])
    index = any_client.get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]
    assert index["vectorBucketName"] == BUCKET
    assert index["indexName"] == INDEX
    assert index["indexArn"] == f"{ARN_PREFIX}{BUCKET}/index/{INDEX}"
    assert (index["dataType"], index["dimension"], index["distanceMetric"]) == ("float32", 8, "euclidean")
    by_arn = any_client.get_index(indexArn=index["indexArn"])["index"]
    assert by_arn["indexName"] == INDEX
    listed = any_client.list_indexes(vectorBucketName=BUCKET)["indexes"]
    assert [(i["indexName"], i["indexArn"]) for i in listed] == [(INDEX, index["indexArn"])]
    listed_by_arn = any_client.list_indexes(vectorBucketArn=ARN_PREFIX + BUCKET)["indexes"]
    assert [i["indexName"] for i in listed_by_arn] == [INDEX]
    any_client.delete_index(indexArn=index["indexArn"])
    expect_error("NotFoundException", 404, any_client.get_index, vectorBucketName=BUCKET, indexName=INDEX)
    if backend == "engine":  # moto drops metadataConfiguration and creationTime
        assert index["metadataConfiguration"] == {"nonFilterableMetadataKeys": ["content"]}


def test_engine_index_responses_fit_the_model(engine: LocalS3VectorsClient) -> None:
    engine.create_vector_bucket(vectorBucketName=BUCKET)
    created = engine.create_index(
        vectorBucketName=BUCKET, indexName=INDEX, dataType="float32", dimension=3, distanceMetric="cosine"
    )
    assert_conforms("CreateIndex", created)
    assert_conforms("GetIndex", engine.get_index(indexArn=created["indexArn"]))
    assert_conforms("ListIndexes", engine.list_indexes(vectorBucketName=BUCKET))
    assert_conforms("DeleteIndex", engine.delete_index(vectorBucketName=BUCKET, indexName=INDEX))


def test_duplicate_index_conflicts(engine: LocalS3VectorsClient) -> None:
    # moto 5.2.5 silently replaces an existing index, so this is engine-only.
    make_index(engine)
    expect_error(
        "ConflictException",
        409,
        engine.create_index,
        vectorBucketName=BUCKET,
        indexName=INDEX,
        dataType="float32",
        dimension=4,
        distanceMetric="cosine",
    )


@pytest.mark.parametrize(
    "extra",
    [
        {"indexArn": f"{ARN_PREFIX}{BUCKET}/index/{INDEX}"},  # name and ARN together
        {"vectorBucketName": None},  # neither complete
    ],
    ids=["both", "neither"],
)
def test_index_addressing_must_be_name_xor_arn(any_client: Any, backend: str, extra: dict[str, Any]) -> None:
    make_index(any_client)
    kwargs: dict[str, Any] = {"vectorBucketName": BUCKET, "indexName": INDEX, **extra}
    kwargs = {k: v for k, v in kwargs.items() if v is not None}
    # moto's GetIndex only rejects "both" (it answers NotFound for an incomplete address).
    if backend == "engine" or "indexArn" in kwargs:
        error = expect_error("ValidationException", 400, any_client.get_index, **kwargs)
        assert "indexArn" in error.response["Error"]["Message"]
    expect_error(
        "ValidationException",
        400,
        any_client.put_vectors,
        vectors=[{"key": "a", "data": {"float32": vec(1)}}],
        **kwargs,
    )


def test_vectors_round_trip(any_client: Any, backend: str) -> None:
    names = make_index(any_client)
    vectors = [
        {"key": "a", "data": {"float32": vec(1)}, "metadata": {"user_id": "u1", "n": 3}},
        {"key": "b", "data": {"float32": vec(2)}},
    ]
    put = any_client.put_vectors(vectors=vectors, **names)
    assert put["ResponseMetadata"]["HTTPStatusCode"] == 200
    bare = any_client.get_vectors(keys=["a", "missing"], **names)["vectors"]
    assert bare == [{"key": "a"}]
    full = any_client.get_vectors(keys=["a", "b"], returnData=True, returnMetadata=True, **names)["vectors"]
    by_key = {v["key"]: v for v in full}
    assert by_key["a"]["data"] == {"float32": vec(1)}
    assert by_key["a"]["metadata"] == {"user_id": "u1", "n": 3}
    assert by_key["b"]["metadata"] == {}
    listed = any_client.list_vectors(returnMetadata=True, **names)["vectors"]
    assert sorted(v["key"] for v in listed) == ["a", "b"]
    assert all("data" not in v for v in listed)
    any_client.delete_vectors(keys=["a", "never-existed"], **names)
    assert any_client.get_vectors(keys=["a", "b"], **names)["vectors"] == [{"key": "b"}]
    if backend == "engine":
        assert_conforms("PutVectors", put)


def test_put_overwrites_existing_key(any_client: Any) -> None:
    names = make_index(any_client)
    any_client.put_vectors(vectors=[{"key": "a", "data": {"float32": vec(1)}, "metadata": {"v": 1}}], **names)
    any_client.put_vectors(vectors=[{"key": "a", "data": {"float32": vec(2)}, "metadata": {"v": 2}}], **names)
    got = any_client.get_vectors(keys=["a"], returnData=True, returnMetadata=True, **names)["vectors"]
    assert got == [{"key": "a", "data": {"float32": vec(2)}, "metadata": {"v": 2}}]
    assert len(any_client.list_vectors(**names)["vectors"]) == 1


def test_dimension_mismatch_is_rejected(any_client: Any) -> None:
    names = make_index(any_client, dimension=4)
    error = expect_error(
        "ValidationException",
        400,
        any_client.put_vectors,
        vectors=[{"key": "k1", "data": {"float32": [1.0, 2.0, 3.0]}}],
        **names,
    )
    assert (
        error.response["Error"]["Message"] == "Invalid record for key 'k1': vector must have length 4, but has length 3"
    )


def test_engine_vector_responses_fit_the_model(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine)
    engine.put_vectors(vectors=[{"key": "a", "data": {"float32": vec(1)}, "metadata": {"x": [1, 2]}}], **names)
    full = {"returnData": True, "returnMetadata": True}
    assert_conforms("GetVectors", engine.get_vectors(keys=["a"], **full, **names))
    assert_conforms("ListVectors", engine.list_vectors(**full, **names))
    query = {"topK": 3, "queryVector": {"float32": vec(2)}, "returnMetadata": True, "returnDistance": True}
    assert_conforms("QueryVectors", engine.query_vectors(**query, **names))
    assert_conforms("DeleteVectors", engine.delete_vectors(keys=["a"], **names))


@pytest.mark.parametrize(
    ("method", "kwargs"),
    [
        ("create_index", {"vectorBucketName": BUCKET, "indexName": INDEX, "dataType": "float32"}),
        ("create_vector_bucket", {"vectorBucketName": BUCKET, "bogus": 1}),
        ("get_vectors", {"vectorBucketName": BUCKET, "indexName": INDEX, "keys": "a"}),
        ("list_vectors", {"vectorBucketName": BUCKET, "indexName": INDEX, "maxResults": 0}),
        ("create_vector_bucket", {"vectorBucketName": "ab"}),
        ("put_vectors", {"vectorBucketName": BUCKET, "indexName": INDEX, "vectors": []}),
        ("put_vectors", {"vectorBucketName": BUCKET, "indexName": INDEX, "vectors": [{"key": "a", "data": {}}]}),
        (
            "put_vectors",
            {"vectorBucketName": BUCKET, "indexName": INDEX, "vectors": [{"key": "", "data": {"float32": [1.0]}}]},
        ),
        (
            "put_vectors",
            {"vectorBucketName": BUCKET, "indexName": INDEX, "vectors": [{"key": "a", "data": {"float32": ["x"]}}]},
        ),
        ("delete_vectors", {"vectorBucketName": BUCKET, "indexName": INDEX, "keys": []}),
    ],
)
def test_client_side_validation_is_botocores(any_client: Any, method: str, kwargs: dict[str, Any]) -> None:
    """Both raise botocore's ParamValidationError with the very same report, before any request."""
    with pytest.raises(ParamValidationError) as info:
        getattr(any_client, method)(**kwargs)
    reference = boto3.client("s3vectors", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    with pytest.raises(ParamValidationError) as expected:
        getattr(reference, method)(**kwargs)
    assert str(info.value) == str(expected.value)


def test_positional_arguments_are_refused(any_client: Any) -> None:
    with pytest.raises(TypeError):
        any_client.create_vector_bucket(BUCKET)


def test_exceptions_are_botocores_modeled_classes(engine: LocalS3VectorsClient) -> None:
    with pytest.raises(engine.exceptions.NotFoundException) as info:
        engine.get_vector_bucket(vectorBucketName="nope-bucket")
    assert isinstance(info.value, ClientError)
    assert info.value.operation_name == "GetVectorBucket"
    assert str(info.value) == (
        "An error occurred (NotFoundException) when calling the GetVectorBucket operation: "
        "The specified vector bucket could not be found"
    )
    # The classes are the ones a default-session boto3 client exposes, so either spelling catches.
    real = boto3.client("s3vectors", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="x")
    assert engine.exceptions.NotFoundException is real.exceptions.NotFoundException
    assert engine.exceptions.from_code("ConflictException") is real.exceptions.ConflictException


@pytest.mark.parametrize(
    ("code", "status"),
    [
        ("ValidationException", 400),
        ("NotFoundException", 404),
        ("ConflictException", 409),
        ("ServiceQuotaExceededException", 402),
    ],
)
def test_error_statuses_follow_the_service_model(code: str, status: int) -> None:
    from s3vectors_engine._errors import make_error

    error = make_error(code, "boom", "PutVectors")
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert error.response["Error"] == {"Code": code, "Message": "boom"}


def test_arn_of_another_account_addresses_nothing(engine: LocalS3VectorsClient) -> None:
    make_index(engine)
    foreign = f"arn:aws:s3vectors:us-east-1:999999999999:bucket/{BUCKET}/index/{INDEX}"
    expect_error("NotFoundException", 404, engine.get_index, indexArn=foreign)
    expect_error("ValidationException", 400, engine.get_index, indexArn="arn:aws:s3vectors:nope")


def test_paginators_walk_every_page(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine)
    engine.put_vectors(vectors=[{"key": f"k{i}", "data": {"float32": vec(i)}} for i in range(25)], **names)
    assert engine.can_paginate("list_vectors")
    pages = list(engine.get_paginator("list_vectors").paginate(PaginationConfig={"PageSize": 10}, **names))
    assert [len(p["vectors"]) for p in pages] == [10, 10, 5]
    assert sorted(v["key"] for p in pages for v in p["vectors"]) == sorted(f"k{i}" for i in range(25))


def test_tags_and_bucket_policy(any_client: Any, backend: str) -> None:
    make_index(any_client)
    bucket_arn = ARN_PREFIX + BUCKET
    index_arn = f"{bucket_arn}/index/{INDEX}"
    for arn in (bucket_arn, index_arn):
        any_client.tag_resource(resourceArn=arn, tags={"team": "memory", "env": "dev"})
        any_client.untag_resource(resourceArn=arn, tagKeys=["env"])
        assert any_client.list_tags_for_resource(resourceArn=arn)["tags"] == {"team": "memory"}
    expect_error("NotFoundException", 404, any_client.list_tags_for_resource, resourceArn=f"{bucket_arn}/index/nope")
    expect_error("NotFoundException", 404, any_client.get_vector_bucket_policy, vectorBucketName=BUCKET)
    policy = '{"Version": "2012-10-17", "Statement": []}'
    any_client.put_vector_bucket_policy(vectorBucketName=BUCKET, policy=policy)
    assert any_client.get_vector_bucket_policy(vectorBucketArn=bucket_arn)["policy"] == policy
    any_client.delete_vector_bucket_policy(vectorBucketName=BUCKET)
    expect_error("NotFoundException", 404, any_client.get_vector_bucket_policy, vectorBucketName=BUCKET)
    if backend == "engine":
        expect_error(
            "ValidationException", 400, any_client.put_vector_bucket_policy, vectorBucketName=BUCKET, policy="not json"
        )
