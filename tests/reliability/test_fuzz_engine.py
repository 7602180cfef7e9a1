"""Fuzzing the embedded engine's filter parser/evaluator and metadata validator.

Whatever JSON-ish value a caller passes as a ``filter`` or as ``metadata``, the engine must answer
the way the service does: success, or ``ValidationException`` (HTTP 400), or botocore's
``ParamValidationError`` for what a boto3 client rejects before sending. Any other exception type
(``KeyError``, ``TypeError``, ``RecursionError``, ...) is a crash a caller cannot handle. Metadata
that is accepted must come back exactly as it was stored.

Bounded ``max_examples`` keep this inside the CI budget; raise them locally to fuzz longer.
"""

from __future__ import annotations

import json
import math
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3vectors_engine import LocalS3VectorsClient
from s3vectors_engine.server import LocalEndpoint

BUCKET, INDEX, DIMENSION = "fuzz", "fuzz-index", 4
FUZZ = settings(max_examples=300, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])

OPERATORS = ["$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists", "$and", "$or", "$not", "$nor",
             "$regex", "$"]
FIELDS = ["user_id", "agent_name", "n", "tags", "flag", "content", "missing", ""]
KEYS = st.one_of(st.sampled_from(OPERATORS + FIELDS), st.text(max_size=6))
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=True, allow_infinity=True),
    st.sampled_from(["u1", "u2", "a", "", "$eq", "\ud800", "x" * 3000]),
    st.text(max_size=10),
)
JSONISH = st.recursive(
    SCALARS,
    lambda children: st.one_of(
        st.lists(children, max_size=4),
        st.dictionaries(KEYS, children, max_size=4),
        st.tuples(children, children),  # not JSON, but what a Python caller might pass
    ),
    max_leaves=24,
)
#: Mostly well-shaped filters (field -> operator -> operand) so the evaluator is reached too.
SHAPED = st.recursive(
    st.dictionaries(st.sampled_from(FIELDS), st.one_of(SCALARS, st.dictionaries(st.sampled_from(OPERATORS), JSONISH,
                                                                                  min_size=1, max_size=2)),
                    min_size=1, max_size=3),
    lambda children: st.dictionaries(st.sampled_from(["$and", "$or"]), st.lists(children, min_size=1, max_size=3),
                                     min_size=1, max_size=2),
    max_leaves=8,
)
FILTERS = st.one_of(SHAPED, JSONISH, st.dictionaries(KEYS, JSONISH, max_size=4))
METADATA = st.one_of(st.dictionaries(KEYS, JSONISH, max_size=6), JSONISH)

SEED_METADATA: list[dict[str, Any]] = [
    {"user_id": "u1", "agent_name": "a", "n": 1, "tags": ["x", "y"], "flag": True, "content": "one"},
    {"user_id": "u2", "agent_name": "a", "n": 2.5, "tags": [], "flag": False, "content": "two"},
    {"user_id": "u1", "n": -3, "tags": ["y", 1, True], "content": "three"},
    {},
]


def _vector(i: int) -> dict[str, list[float]]:
    return {"float32": [1.0 if j == i % DIMENSION else 0.1 for j in range(DIMENSION)]}


@pytest.fixture(scope="module")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalS3VectorsClient]:
    client = LocalS3VectorsClient(tmp_path_factory.mktemp("fuzz") / "engine")
    client.create_vector_bucket(vectorBucketName=BUCKET)
    client.create_index(vectorBucketName=BUCKET, indexName=INDEX, dataType="float32", dimension=DIMENSION,
                        distanceMetric="cosine", metadataConfiguration={"nonFilterableMetadataKeys": ["content"]})
    client.put_vectors(vectorBucketName=BUCKET, indexName=INDEX, vectors=[
        {"key": f"seed-{i}", "data": _vector(i), "metadata": meta} for i, meta in enumerate(SEED_METADATA)
    ])
    yield client
    client.close()


def _expected_failure(exc: Exception) -> bool:
    if isinstance(exc, ParamValidationError):
        return True
    return isinstance(exc, ClientError) and exc.response["Error"]["Code"] == "ValidationException" and (
        exc.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    )


@FUZZ
@given(query_filter=FILTERS)
def test_any_filter_is_answered_or_rejected_with_a_validation_error(
    query_filter: Any, seeded: LocalS3VectorsClient
) -> None:
    try:
        response = seeded.query_vectors(vectorBucketName=BUCKET, indexName=INDEX, queryVector=_vector(0), topK=10,
                                        filter=query_filter, returnMetadata=True, returnDistance=True)
    except Exception as exc:  # the property: only these two failure types are acceptable
        assert _expected_failure(exc), f"{type(exc).__name__}: {exc}"
        return
    keys = [v["key"] for v in response["vectors"]]
    assert len(keys) == len(set(keys)) and set(keys) <= {f"seed-{i}" for i in range(len(SEED_METADATA))}
    assert all(0.0 <= v["distance"] <= 2.0 + 1e-6 for v in response["vectors"])


def _same(a: Any, b: Any) -> bool:
    """Equality for round-tripped JSON: tuples come back as lists, numbers as equal numbers."""
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a):
        return math.isnan(b)
    return type(a) is type(b) and a == b


@FUZZ
@given(metadata=METADATA, key=st.text(min_size=1, max_size=12))
def test_any_metadata_is_stored_faithfully_or_rejected_with_a_validation_error(
    metadata: Any, key: str, seeded: LocalS3VectorsClient
) -> None:
    try:
        seeded.put_vectors(vectorBucketName=BUCKET, indexName=INDEX,
                           vectors=[{"key": f"fz-{key}", "data": _vector(1), "metadata": metadata}])
    except Exception as exc:
        assert _expected_failure(exc), f"{type(exc).__name__}: {exc}"
        return
    (stored,) = seeded.get_vectors(vectorBucketName=BUCKET, indexName=INDEX, keys=[f"fz-{key}"],
                                   returnMetadata=True)["vectors"]
    assert _same(metadata or {}, stored.get("metadata", {})), f"stored {metadata!r}, got {stored.get('metadata')!r}"
    seeded.delete_vectors(vectorBucketName=BUCKET, indexName=INDEX, keys=[f"fz-{key}"])


def test_deeply_nested_filters_are_rejected_not_crashing(seeded: LocalS3VectorsClient) -> None:
    deep: Any = {"user_id": "u1"}
    for _ in range(1000):
        deep = {"$and": [deep]}
    with pytest.raises((ClientError, ParamValidationError)) as info:
        seeded.query_vectors(vectorBucketName=BUCKET, indexName=INDEX, queryVector=_vector(0), topK=3, filter=deep)
    assert _expected_failure(info.value)


def test_endpoint_refuses_deeply_nested_json_with_a_400(tmp_path: Path) -> None:
    depth = 1000
    body = ('{"vectorBucketName":"fuzz","indexName":"fuzz-index","topK":3,"queryVector":{"float32":[1,0,0,0]},'
            '"filter":' + '{"$and":[' * depth + '{"user_id":"u1"}' + "]}" * depth + "}")
    with LocalEndpoint(tmp_path / "endpoint") as endpoint:
        request = urllib.request.Request(f"{endpoint.url}/QueryVectors", data=body.encode(), method="POST",
                                         headers={"content-type": "application/json"})
        with pytest.raises(urllib.error.HTTPError) as info:
            urllib.request.urlopen(request, timeout=10)
        assert info.value.code == 400
        assert info.value.headers.get("x-amzn-errortype")
        assert "message" in json.loads(info.value.read())


@pytest.mark.parametrize("metadata", [{"user_id": "u\ud800"}, {"k\udfff": 1}, {"tags": ["ok", "\ud83d"]}],
                         ids=["value", "key", "list item"])
def test_lone_surrogates_in_metadata_are_a_validation_error(metadata: dict[str, Any],
                                                            seeded: LocalS3VectorsClient) -> None:
    with pytest.raises((ClientError, ParamValidationError)) as info:
        seeded.put_vectors(vectorBucketName=BUCKET, indexName=INDEX,
                           vectors=[{"key": "surrogate", "data": _vector(1), "metadata": metadata}])
    assert _expected_failure(info.value)
