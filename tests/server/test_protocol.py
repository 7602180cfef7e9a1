"""The wire codec against botocore itself: what botocore writes we read, what we write botocore parses."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import numpy as np
import pytest
from botocore.parsers import create_parser
from botocore.serialize import create_serializer

from s3vectors_engine._model import error_status, service_model
from s3vectors_engine.server._protocol import (
    WireError,
    decode_request,
    encode_error,
    encode_result,
    routes,
)


def _parse(op_name: str, status: int, headers: dict[str, str], body: bytes) -> dict[str, Any]:
    """Parse a response exactly as a boto3 client would (error shapes included)."""
    op = service_model().operation_model(op_name)
    parser = create_parser("rest-json")
    lowered = {k.lower(): v for k, v in headers.items()}
    parsed: dict[str, Any] = parser.parse({"status_code": status, "headers": lowered, "body": body}, op.output_shape)
    return parsed


def _serialize(op_name: str, params: dict[str, Any]) -> dict[str, Any]:
    op = service_model().operation_model(op_name)
    request: dict[str, Any] = create_serializer("rest-json").serialize_to_request(params, op)
    return request


def test_every_model_operation_gets_a_route_with_its_method() -> None:
    model = service_model()
    table = {r.operation.name: r for r in routes()}
    assert set(table) == set(model.operation_names)
    assert "QueryVectors" in table
    assert (table["QueryVectors"].method, table["QueryVectors"].path) == ("POST", "/QueryVectors")
    # An ARN label contains '/' once the server has percent-decoded the path.
    assert table["UntagResource"].method == "DELETE"
    assert table["UntagResource"].path == "/tags/{resourceArn:path}"


def test_body_written_by_botocore_decodes_to_the_same_arguments() -> None:
    params = {
        "vectorBucketName": "bucket-a",
        "indexName": "memory-a",
        "vectors": [
            {
                "key": "k1",
                "data": {"float32": [0.5, -1.25, 3.0]},
                "metadata": {"user": "u", "n": 3, "tags": ["x"]},
            },
        ],
    }
    request = _serialize("PutVectors", params)
    op = service_model().operation_model("PutVectors")
    decoded = decode_request(op, path_params={}, query=[], headers=request["headers"], body=request["body"])
    assert decoded == params


def test_query_string_list_and_uri_label_decode() -> None:
    op = service_model().operation_model("UntagResource")
    arn = "arn:aws:s3vectors:us-east-1:123456789012:bucket/b1/index/memory-a"
    decoded = decode_request(
        op, path_params={"resourceArn": arn}, query=[("tagKeys", "a"), ("tagKeys", "b")], headers={}, body=b""
    )
    assert decoded == {"resourceArn": arn, "tagKeys": ["a", "b"]}


def test_malformed_body_is_a_validation_error() -> None:
    op = service_model().operation_model("QueryVectors")
    with pytest.raises(WireError) as info:
        decode_request(op, path_params={}, query=[], headers={}, body=b"{not json")
    assert (info.value.status, info.value.code) == (400, "ValidationException")
    with pytest.raises(WireError):
        decode_request(op, path_params={}, query=[], headers={}, body=b"[1, 2]")


def test_result_parses_back_with_timestamps_as_epoch_and_numpy_values() -> None:
    created = dt.datetime(2025, 7, 15, 12, 30, 45, 250000, tzinfo=dt.timezone.utc)
    naive = dt.datetime(2025, 1, 2, 3, 4, 5)
    result = {
        "indexes": [
            {"vectorBucketName": "bkt", "indexName": "idx", "indexArn": "arn:x", "creationTime": created},
            {"vectorBucketName": "bkt", "indexName": "idy", "indexArn": "arn:y", "creationTime": naive},
        ],
        "ResponseMetadata": {"HTTPStatusCode": 200},
        "notInModel": 1,
    }
    wire = encode_result(service_model().operation_model("ListIndexes"), result)
    body = json.loads(wire.body)
    assert isinstance(body["indexes"][0]["creationTime"], float)  # epoch seconds, the rest-json default
    assert "notInModel" not in body and "ResponseMetadata" not in body
    parsed = _parse("ListIndexes", wire.status, wire.headers, wire.body)
    assert parsed["indexes"][0]["creationTime"] == created
    assert parsed["indexes"][1]["creationTime"] == naive.replace(tzinfo=dt.timezone.utc)

    query_result = {
        "vectors": [{"key": "k", "distance": np.float32(0.25), "metadata": {"score": np.float64(1.5)}}],
        "distanceMetric": "cosine",
    }
    wire = encode_result(service_model().operation_model("QueryVectors"), query_result)
    parsed = _parse("QueryVectors", wire.status, wire.headers, wire.body)
    assert parsed["vectors"] == [{"key": "k", "distance": 0.25, "metadata": {"score": 1.5}}]

    get_result = {"vectors": [{"key": "k", "data": {"float32": np.array([0.5, 1.0], dtype=np.float32)}}]}
    wire = encode_result(service_model().operation_model("GetVectors"), get_result)
    assert _parse("GetVectors", wire.status, wire.headers, wire.body)["vectors"][0]["data"] == {"float32": [0.5, 1.0]}


@pytest.mark.parametrize(
    ("code", "status"),
    [("NotFoundException", 404), ("ConflictException", 409), ("AccessDeniedException", 403)],
)
def test_error_parses_to_the_modeled_code_and_status(code: str, status: int) -> None:
    assert error_status(code) == status
    wire = encode_error(WireError(status, code, "boom"))
    parsed = _parse("GetIndex", wire.status, wire.headers, wire.body)
    assert parsed["Error"] == {"Code": code, "Message": "boom"}
    assert parsed["ResponseMetadata"]["HTTPStatusCode"] == status


def test_validation_error_carries_its_field_list() -> None:
    fields = [{"path": "topK", "message": "must be <= 100"}]
    wire = encode_error(WireError(400, "ValidationException", "bad", {"fieldList": fields, "other": 1}))
    body = json.loads(wire.body)
    assert body == {"__type": "ValidationException", "message": "bad", "fieldList": fields}
    assert wire.headers["x-amzn-ErrorType"] == "ValidationException"
    assert error_status("ValidationException") == 400
    assert error_status("SomethingUnmodeled", 418) == 418
