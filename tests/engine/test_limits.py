"""Every documented S3 Vectors limit: just under passes, just over fails with the service's code.

botocore checks only minima client-side (ParamValidationError); maxima and the service rules are
``ValidationException`` (HTTP 400) from the service. Cases moto 5.2.5 also enforces run against
moto too; the rest are engine-only because moto does not implement them.
"""

from __future__ import annotations

import json
import math
from typing import Any

import pytest
from botocore.exceptions import ParamValidationError
from engine_support import BUCKET, INDEX, expect_error, make_index, vec

from s3vectors_engine import LocalS3VectorsClient


def _put(client: Any, names: dict[str, str], vectors: list[dict[str, Any]]) -> Any:
    return client.put_vectors(vectors=vectors, **names)


def _entry(key: str, seed: int = 1, dim: int = 4, **metadata: Any) -> dict[str, Any]:
    item: dict[str, Any] = {"key": key, "data": {"float32": vec(seed, dim)}}
    if metadata:
        item["metadata"] = metadata
    return item


def _rejects(client: Any, fn: Any, /, **kwargs: Any) -> str:
    return str(expect_error("ValidationException", 400, fn, **kwargs).response["Error"]["Message"])


def _rejects_put(client: Any, names: dict[str, str], vectors: list[dict[str, Any]]) -> str:
    return _rejects(client, client.put_vectors, vectors=vectors, **names)


# -- names and dimensions (moto enforces some of these too) --------------------------------------


def test_bucket_name_length(any_client: Any) -> None:
    any_client.create_vector_bucket(vectorBucketName="a" * 63)
    message = _rejects(any_client, any_client.create_vector_bucket, vectorBucketName="a" * 64)
    assert message == (
        "1 validation error detected. Value with length 64 at '/vectorBucketName' failed to satisfy "
        "constraint: Member must have length between 3 and 63, inclusive"
    )
    any_client.create_vector_bucket(vectorBucketName="abc")
    with pytest.raises(ParamValidationError):
        any_client.create_vector_bucket(vectorBucketName="ab")


@pytest.mark.parametrize("name", ["my_bucket", "bucket&x"])
def test_bucket_name_characters_moto_also_rejects(any_client: Any, name: str) -> None:
    _rejects(any_client, any_client.create_vector_bucket, vectorBucketName=name)


@pytest.mark.parametrize("name", ["MyBucket", "-bucket", "bucket-", "my.bucket", "bücket"])
def test_bucket_name_characters(engine: LocalS3VectorsClient, name: str) -> None:
    assert _rejects(engine, engine.create_vector_bucket, vectorBucketName=name) == "Invalid vector bucket name"


def test_bucket_name_valid_characters(engine: LocalS3VectorsClient) -> None:
    engine.create_vector_bucket(vectorBucketName="a-0-b")


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("idx.v1-a", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("Idx", False),
        (".idx", False),
        ("idx-", False),
        ("id_x", False),
    ],
)
def test_index_names(engine: LocalS3VectorsClient, name: str, ok: bool) -> None:
    engine.create_vector_bucket(vectorBucketName=BUCKET)
    kwargs = {
        "vectorBucketName": BUCKET,
        "indexName": name,
        "dataType": "float32",
        "dimension": 2,
        "distanceMetric": "cosine",
    }
    if ok:
        engine.create_index(**kwargs)
    else:
        _rejects(engine, engine.create_index, **kwargs)


def test_dimension_upper_bound(any_client: Any, backend: str) -> None:
    any_client.create_vector_bucket(vectorBucketName=BUCKET)
    base = {"vectorBucketName": BUCKET, "dataType": "float32", "distanceMetric": "cosine"}
    _rejects(any_client, any_client.create_index, indexName="too-big", dimension=4097, **base)
    if backend == "moto":
        pytest.skip("moto 5.2.5 wrongly rejects dimension=4096 (it checks `>= 4096`)")
    any_client.create_index(indexName="largest", dimension=4096, **base)
    any_client.create_index(indexName="smallest", dimension=1, **base)
    with pytest.raises(ParamValidationError):
        any_client.create_index(indexName="zero", dimension=0, **base)


# -- batch sizes, top-k, keys ---------------------------------------------------------------------


def test_put_batch_size(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, dimension=2)
    _put(engine, names, [_entry(f"k{i}", i, 2) for i in range(500)])
    message = _rejects_put(engine, names, [_entry(f"x{i}", i, 2) for i in range(501)])
    assert "'/vectors'" in message and "between 1 and 500" in message
    assert len(engine.get_vectors(keys=["x0"], **names)["vectors"]) == 0


def test_delete_batch_size(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, dimension=2)
    engine.delete_vectors(keys=[f"k{i}" for i in range(500)], **names)
    _rejects(engine, engine.delete_vectors, keys=[f"k{i}" for i in range(501)], **names)


def test_get_batch_size(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, dimension=2)
    engine.get_vectors(keys=[f"k{i}" for i in range(100)], **names)
    _rejects(engine, engine.get_vectors, keys=[f"k{i}" for i in range(101)], **names)


def test_top_k_bounds(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine)
    query = {"queryVector": {"float32": vec(1)}, **names}
    engine.query_vectors(topK=100, **query)
    message = _rejects(engine, engine.query_vectors, topK=101, **query)
    assert "'/topK'" in message
    with pytest.raises(ParamValidationError):
        engine.query_vectors(topK=0, **query)


def test_key_length(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine)
    _put(engine, names, [_entry("k" * 1024)])
    message = _rejects_put(engine, names, [_entry("k" * 1025)])
    assert "'/vectors/0/key'" in message


def test_unicode_keys_count_characters(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine)
    key = "é" * 1024  # 2048 UTF-8 bytes, 1024 characters: allowed
    _put(engine, names, [_entry(key)])
    assert engine.get_vectors(keys=[key], **names)["vectors"] == [{"key": key}]


def test_duplicate_keys_in_one_put(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine)
    message = _rejects_put(engine, names, [_entry("same", 1), _entry("same", 2)])
    assert "same" in message
    assert engine.list_vectors(**names)["vectors"] == []


def test_list_max_results(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine)
    engine.list_vectors(maxResults=1000, **names)
    _rejects(engine, engine.list_vectors, maxResults=1001, **names)


def test_segment_bounds(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine)
    engine.list_vectors(segmentCount=16, segmentIndex=15, **names)
    _rejects(engine, engine.list_vectors, segmentCount=17, segmentIndex=0, **names)
    _rejects(engine, engine.list_vectors, segmentCount=4, segmentIndex=4, **names)
    _rejects(engine, engine.list_vectors, segmentCount=4, **names)


# -- vector values --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf, 1e39])
def test_non_finite_values_are_rejected(engine: LocalS3VectorsClient, bad: float) -> None:
    names = make_index(engine, metric="euclidean")
    _rejects_put(engine, names, [{"key": "k", "data": {"float32": [1.0, bad, 0.0, 0.0]}}])
    _rejects(engine, engine.query_vectors, topK=1, queryVector={"float32": [bad, 0.0, 0.0, 0.0]}, **names)


def test_zero_vector_only_rejected_for_cosine(engine: LocalS3VectorsClient) -> None:
    cos = make_index(engine, metric="cosine", index="cos-index")
    euc = make_index(engine, metric="euclidean", index="euc-index")
    zero = [{"key": "z", "data": {"float32": [0.0, 0.0, 0.0, 0.0]}}]
    _rejects_put(engine, cos, zero)
    _rejects(engine, engine.query_vectors, topK=1, queryVector={"float32": [0.0] * 4}, **cos)
    _put(engine, euc, zero)
    hits = engine.query_vectors(topK=1, queryVector={"float32": [0.0] * 4}, returnDistance=True, **euc)
    assert hits["vectors"] == [{"key": "z", "distance": 0.0}]


def test_query_dimension_must_match(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, dimension=4)
    _rejects(engine, engine.query_vectors, topK=1, queryVector={"float32": [1.0, 2.0]}, **names)


# -- metadata -------------------------------------------------------------------------------------


def _sized(total: int, key: str = "blob") -> dict[str, Any]:
    """Metadata whose compact JSON is exactly ``total`` bytes."""
    overhead = len(json.dumps({key: ""}, separators=(",", ":")))
    return {key: "x" * (total - overhead)}


def test_total_metadata_size(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, non_filterable=["blob"])
    _put(engine, names, [_entry("ok", **_sized(40 * 1024))])
    message = _rejects_put(engine, names, [_entry("big", **_sized(40 * 1024 + 1))])
    assert message.startswith("Invalid record for key 'big'")


def test_filterable_metadata_size(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, non_filterable=["content"])
    _put(engine, names, [_entry("ok", **_sized(2048, "tag"))])
    message = _rejects_put(engine, names, [_entry("big", **_sized(2049, "tag"))])
    assert message == "Invalid record for key 'big': Filterable metadata must have at most 2048 bytes"
    # The same bytes under a non-filterable key are fine.
    _put(engine, names, [_entry("nf", **_sized(2049, "content"))])


def test_metadata_key_count(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine)
    _put(engine, names, [_entry("ok", **{f"m{i}": i for i in range(50)})])
    _rejects_put(engine, names, [_entry("many", **{f"m{i}": i for i in range(51)})])


@pytest.mark.parametrize("value", [None, {"nested": 1}, [1, None], math.nan, [{"a": 1}]])
def test_metadata_value_types(engine: LocalS3VectorsClient, value: Any) -> None:
    names = make_index(engine)
    _put(engine, names, [_entry("ok", s="x", n=1.5, b=True, lst=["a", "b"], nums=[1, 2])])
    _rejects_put(engine, names, [_entry("bad", v=value)])


def test_non_filterable_key_count(engine: LocalS3VectorsClient) -> None:
    engine.create_vector_bucket(vectorBucketName=BUCKET)
    base = {"vectorBucketName": BUCKET, "dataType": "float32", "dimension": 2, "distanceMetric": "cosine"}
    engine.create_index(
        indexName="ten", metadataConfiguration={"nonFilterableMetadataKeys": [f"k{i}" for i in range(10)]}, **base
    )
    _rejects(
        engine,
        engine.create_index,
        indexName="eleven",
        metadataConfiguration={"nonFilterableMetadataKeys": [f"k{i}" for i in range(11)]},
        **base,
    )


def test_a_rejected_batch_writes_nothing(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine)
    batch = [_entry(f"k{i}", i) for i in range(10)] + [{"key": "bad", "data": {"float32": [1.0]}}]
    _rejects_put(engine, names, batch)
    assert engine.list_vectors(**names)["vectors"] == []
    assert INDEX in {i["indexName"] for i in engine.list_indexes(vectorBucketName=BUCKET)["indexes"]}
