"""Helpers shared by the engine tests (kept out of conftest so they can be imported)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from botocore.exceptions import ClientError

BUCKET = "test-bucket"
INDEX = "test-index"


def make_index(
    client: Any,
    *,
    dimension: int = 4,
    metric: str = "cosine",
    non_filterable: list[str] | None = None,
    bucket: str = BUCKET,
    index: str = INDEX,
) -> dict[str, str]:
    """Create a bucket (if needed) and an index; return the name addressing kwargs."""
    try:
        client.create_vector_bucket(vectorBucketName=bucket)
    except ClientError as exc:
        if exc.response["Error"]["Code"] != "ConflictException":
            raise
    kwargs: dict[str, Any] = {
        "vectorBucketName": bucket,
        "indexName": index,
        "dataType": "float32",
        "dimension": dimension,
        "distanceMetric": metric,
    }
    if non_filterable:
        kwargs["metadataConfiguration"] = {"nonFilterableMetadataKeys": non_filterable}
    client.create_index(**kwargs)
    return {"vectorBucketName": bucket, "indexName": index}


def vec(seed: int, dimension: int = 4) -> list[float]:
    """A deterministic non-zero float32-exact vector."""
    rng = np.random.default_rng(seed)
    out = rng.standard_normal(dimension).astype(np.float32)
    out[0] = abs(out[0]) + 0.1
    return [float(x) for x in out]


def expect_error(code: str, status: int, fn: Any, /, **kwargs: Any) -> ClientError:
    """Call ``fn(**kwargs)`` and assert it raised a ClientError with that code and HTTP status."""
    with pytest.raises(ClientError) as info:
        fn(**kwargs)
    error = info.value
    assert error.response["Error"]["Code"] == code, error.response
    assert error.response["ResponseMetadata"]["HTTPStatusCode"] == status
    return error


def assert_conforms(operation: str, response: dict[str, Any]) -> None:
    """Assert ``response`` fits the operation's output shape in the s3vectors model.

    Every required member is present, no member outside the model appears, and each value has the
    Python type botocore's parser would produce (str, int, float, bool, datetime, dict, list).
    """
    import datetime

    import botocore.session

    model = botocore.session.get_session().get_service_model("s3vectors")
    shape = model.operation_model(operation).output_shape
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 200
    body = {k: v for k, v in response.items() if k != "ResponseMetadata"}
    if shape is None:
        assert body == {}
        return
    _check(shape, body, operation, datetime.datetime)


def _check(shape: Any, value: Any, path: str, dt: type) -> None:
    kind = shape.type_name
    if kind == "structure":
        if shape.metadata.get("document"):
            return
        assert isinstance(value, dict), path
        assert set(value) <= set(shape.members), (path, set(value) - set(shape.members))
        for name in shape.required_members:
            assert name in value, f"{path}.{name} is required"
        for name, item in value.items():
            _check(shape.members[name], item, f"{path}.{name}", dt)
    elif kind == "list":
        assert isinstance(value, list), path
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}[{i}]", dt)
    elif kind == "string":
        assert isinstance(value, str), path
        if "enum" in shape.metadata:
            assert value in shape.metadata["enum"], path
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), path
    elif kind == "float":
        assert isinstance(value, float), path
    elif kind == "boolean":
        assert isinstance(value, bool), path
    elif kind == "timestamp":
        assert isinstance(value, dt) and value.tzinfo is not None, path
    elif kind == "map":
        assert isinstance(value, dict), path
