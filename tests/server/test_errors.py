"""Errors reach boto3 as the same modeled exception, with the same HTTP status, as calling the backend."""

from __future__ import annotations

import gzip
import json
import math
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, ParamValidationError

from s3vectors_engine.server import LocalEndpoint

ClientFactory = Callable[..., Any]
Call = Callable[[Any], Any]

_QUERY = {"float32": [1.0, 0.0, 0.0]}

#: (case id, call, expected exception name, expected HTTP status). Bucket "err-bucket" with index
#: "memory-a" (dimension 3) exists before each call.
CASES: list[tuple[str, Call, str, int]] = [
    (
        "missing-index",
        lambda c: c.get_index(vectorBucketName="err-bucket", indexName="nope-idx"),
        "NotFoundException",
        404,
    ),
    (
        "missing-bucket",
        lambda c: c.get_vector_bucket(vectorBucketName="no-such-bucket"),
        "NotFoundException",
        404,
    ),
    (
        "vectors-of-missing-index",
        lambda c: c.get_vectors(vectorBucketName="err-bucket", indexName="nope-idx", keys=["k"]),
        "NotFoundException",
        404,
    ),
    (
        "duplicate-bucket",
        lambda c: c.create_vector_bucket(vectorBucketName="err-bucket"),
        "ConflictException",
        409,
    ),
    (
        "duplicate-index",
        lambda c: c.create_index(
            vectorBucketName="err-bucket",
            indexName="memory-a",
            dataType="float32",
            dimension=3,
            distanceMetric="cosine",
        ),
        "ConflictException",
        409,
    ),
    (
        "wrong-dimension",
        lambda c: c.put_vectors(
            vectorBucketName="err-bucket",
            indexName="memory-a",
            vectors=[{"key": "k", "data": {"float32": [1.0, 2.0]}}],
        ),
        "ValidationException",
        400,
    ),
]
ENGINE_ONLY_CASES: list[tuple[str, Call, str, int]] = [
    (
        "nan-in-vector",  # botocore sends NaN as the JSON string "NaN"; the server must revive it
        lambda c: c.put_vectors(
            vectorBucketName="err-bucket",
            indexName="memory-a",
            vectors=[{"key": "k", "data": {"float32": [math.nan, 1.0, 0.0]}}],
        ),
        "ValidationException",
        400,
    ),
    (
        "topk-101",
        lambda c: c.query_vectors(vectorBucketName="err-bucket", indexName="memory-a", queryVector=_QUERY, topK=101),
        "ValidationException",
        400,
    ),
    (
        "max-results-1001",
        lambda c: c.list_vectors(vectorBucketName="err-bucket", indexName="memory-a", maxResults=1001),
        "ValidationException",
        400,
    ),
    (
        "query-missing-index",
        lambda c: c.query_vectors(vectorBucketName="err-bucket", indexName="nope-idx", queryVector=_QUERY, topK=1),
        "NotFoundException",
        404,
    ),
]


def _prepare(client: Any) -> None:
    client.create_vector_bucket(vectorBucketName="err-bucket")
    client.create_index(
        vectorBucketName="err-bucket",
        indexName="memory-a",
        dataType="float32",
        dimension=3,
        distanceMetric="cosine",
    )


def _outcome(client: Any, call: Call) -> tuple[str, str, int, str]:
    with pytest.raises(ClientError) as info:
        call(client)
    response = info.value.response
    return (
        type(info.value).__name__,
        response["Error"]["Code"],
        response["ResponseMetadata"]["HTTPStatusCode"],
        response["Error"]["Message"],
    )


@pytest.fixture(scope="module")
def engine_pair(
    tmp_path_factory: pytest.TempPathFactory, engine_factory: Callable[[Path], Any], client_for: ClientFactory
) -> Iterator[tuple[Any, Any]]:
    """(engine called directly, boto3 client of a server over an identical engine)."""
    direct = engine_factory(tmp_path_factory.mktemp("direct"))
    _prepare(direct)
    with LocalEndpoint(tmp_path_factory.mktemp("served")) as endpoint:
        served = client_for(endpoint.url)
        _prepare(served)
        yield direct, served


@pytest.mark.parametrize(
    ("case", "call", "name", "status"),
    CASES + ENGINE_ONLY_CASES,
    ids=[c[0] for c in CASES + ENGINE_ONLY_CASES],
)
def test_engine_errors_arrive_unchanged(
    engine_pair: tuple[Any, Any], case: str, call: Call, name: str, status: int
) -> None:
    direct, served = engine_pair
    expected = _outcome(direct, call)
    assert expected[:3] == (name, name, status)
    got = _outcome(served, call)
    assert got == expected
    with pytest.raises(getattr(served.exceptions, name)):
        call(served)


def test_moto_errors_arrive_unchanged(moto_backend: Any, client_for: ClientFactory) -> None:
    _prepare(moto_backend)
    with LocalEndpoint(moto_backend) as endpoint:
        served = client_for(endpoint.url)
        # moto 5.2.5 silently accepts a duplicate CreateIndex, so that case is the engine's alone.
        for case, call, name, status in [c for c in CASES if c[0] != "duplicate-index"]:
            expected = _outcome(moto_backend, call)
            assert expected[:3] == (name, name, status), case
            assert _outcome(served, call) == expected, case


def test_client_side_validation_never_reaches_the_server(engine_client: Any) -> None:
    sent: list[str] = []
    engine_client.meta.events.register("before-send.s3vectors", lambda **kw: sent.append(kw["request"].url))
    with pytest.raises(ParamValidationError):
        engine_client.query_vectors(vectorBucketName="err-bucket", indexName="memory-a", queryVector=_QUERY)
    with pytest.raises(ParamValidationError):
        engine_client.get_index(vectorBucketName="ab", indexName="memory-a")
    with pytest.raises(ParamValidationError):
        engine_client.query_vectors(vectorBucketName="err-bucket", indexName="memory-a", queryVector=_QUERY, topK=0)
    assert sent == []
    engine_client.list_vector_buckets()
    assert len(sent) == 1  # the hook does see real requests


def _raw(
    url: str, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], dict[str, Any]]:
    request = urllib.request.Request(url + path, data=body or None, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return (
                response.status,
                {k.lower(): v for k, v in response.headers.items()},
                json.loads(response.read() or b"{}"),
            )
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}, json.loads(err.read())


def test_unknown_route_and_method_answer_in_the_service_format(engine_endpoint: LocalEndpoint) -> None:
    status, headers, body = _raw(engine_endpoint.url, "POST", "/NoSuchOperation", b"{}")
    assert status == 404
    assert headers["x-amzn-errortype"] == body["__type"] == "UnknownOperationException"
    assert "NoSuchOperation" in body["message"]
    status, headers, body = _raw(engine_endpoint.url, "GET", "/QueryVectors")
    assert status == 405
    assert body["__type"] == "MethodNotAllowedException"


def test_raw_requests_are_validated_server_side(engine_endpoint: LocalEndpoint) -> None:
    status, _, body = _raw(engine_endpoint.url, "POST", "/QueryVectors", b"{oops", {"Content-Type": "application/json"})
    assert (status, body["__type"]) == (400, "ValidationException")
    bad = json.dumps(
        {
            "vectorBucketName": "err-bucket",
            "indexName": "memory-a",
            "topK": "ten",
            "queryVector": {"float32": [1, 0, 0]},
        }
    ).encode()
    status, _, body = _raw(engine_endpoint.url, "POST", "/QueryVectors", bad)
    assert (status, body["__type"]) == (400, "ValidationException")
    assert "topK" in body["message"]


def test_gzip_compressed_request_body_is_accepted(engine_endpoint: LocalEndpoint) -> None:
    payload = gzip.compress(json.dumps({"vectorBucketName": "gzip-bucket"}).encode())
    status, _, _ = _raw(
        engine_endpoint.url,
        "POST",
        "/CreateVectorBucket",
        payload,
        {"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert status == 200
    status, _, body = _raw(engine_endpoint.url, "POST", "/GetVectorBucket", b'{"vectorBucketName": "gzip-bucket"}')
    assert (status, body["vectorBucket"]["vectorBucketName"]) == (200, "gzip-bucket")


class _FaultyBackend:
    """A backend obeying the client contract but failing in the ways a real one can."""

    def get_index(self, **kwargs: Any) -> dict[str, Any]:
        raise ParamValidationError(report=f"Invalid value for indexName: {kwargs.get('indexName')}")

    def list_vector_buckets(self, **kwargs: Any) -> dict[str, Any]:
        raise RuntimeError("disk on fire")


def test_backend_failures_map_to_service_errors(client_for: ClientFactory) -> None:
    with LocalEndpoint(_FaultyBackend()) as endpoint:
        client = client_for(endpoint.url)
        with pytest.raises(client.exceptions.ValidationException) as validation:
            client.get_index(vectorBucketName="bkt", indexName="memory-a")
        assert validation.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
        assert "memory-a" in validation.value.response["Error"]["Message"]
        with pytest.raises(client.exceptions.InternalServerException) as internal:
            client.list_vector_buckets()
        assert internal.value.response["ResponseMetadata"]["HTTPStatusCode"] == 500
        assert "disk on fire" in internal.value.response["Error"]["Message"]
        with pytest.raises(ClientError) as missing:
            client.list_indexes(vectorBucketName="bkt")
        assert missing.value.response["Error"]["Code"] == "NotImplementedException"
        assert missing.value.response["ResponseMetadata"]["HTTPStatusCode"] == 501
