"""Request validation, in the order and with the errors of the real service.

Two layers, as with a real client talking to the real service:

1. client side: botocore's own :class:`~botocore.validate.ParamValidator` against the s3vectors
   model, raising :class:`~botocore.exceptions.ParamValidationError` exactly like a boto3 client
   (botocore only checks types, required members and *minimum* lengths/values);
2. server side: everything botocore leaves to the service (maximum lengths, ARN patterns, the
   documented limits, name rules, metadata sizes, NaN/Inf), raised as ``ValidationException``.
"""

from __future__ import annotations

import functools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
from botocore.exceptions import ParamValidationError
from botocore.model import Shape
from botocore.validate import ParamValidator

from ._errors import validation_error
from ._model import service_model

#: Documented S3 Vectors limits (https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-limitations.html).
MAX_TOP_K = 100
MAX_PUT_VECTORS = 500
MAX_DELETE_VECTORS = 500
MAX_GET_VECTORS = 100
MAX_KEY_LENGTH = 1024
MAX_DIMENSION = 4096
MAX_METADATA_BYTES = 40 * 1024
MAX_FILTERABLE_METADATA_BYTES = 2 * 1024
MAX_METADATA_KEYS = 50
MAX_NON_FILTERABLE_KEYS = 10
DEFAULT_LIST_MAX_RESULTS = 500
MAX_TAGS = 50
MAX_TEXT_SEARCH_KEYS = 10
#: Vector buckets created from this instant on default to ENHANCED indexes and cannot use CLASSIC
#: (https://docs.aws.amazon.com/AmazonS3/latest/userguide/s3-vectors-index-mode.html).
ENHANCED_ONLY_FROM = datetime(2026, 9, 30, tzinfo=timezone.utc).timestamp()
CLASSIC = "CLASSIC"
ENHANCED = "ENHANCED"
#: Deepest nesting of objects/lists accepted in a filter or metadata document. The service documents
#: no figure; this is far beyond any real filter and keeps every recursive check (botocore's included)
#: well inside Python's recursion limit, so a hostile document is a ValidationException, not a crash.
MAX_DOCUMENT_DEPTH = 64

_BUCKET_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9-]*[a-z0-9]$")
_INDEX_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9.-]*[a-z0-9]$")
_BUCKET_ARN_RE = re.compile(
    r"^arn:(aws[-a-z0-9]*):s3vectors:([a-z0-9-]+):([0-9]{12}):bucket/([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])$"
)
_INDEX_ARN_RE = re.compile(
    r"^arn:(aws[-a-z0-9]*):s3vectors:([a-z0-9-]+):([0-9]{12}):bucket/([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])"
    r"/index/([a-z0-9][a-z0-9-.]{1,61}[a-z0-9])$"
)

_VALIDATOR = ParamValidator()
#: Leaves of a JSON-like document, skipped by type before the (much slower) ``Mapping`` ABC check:
#: a vector's data is hundreds of floats.
_SCALARS = frozenset({float, int, str, bool, type(None)})
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@functools.cache
def _input_shape(operation: str) -> Shape | None:
    shape: Shape | None = service_model().operation_model(operation).input_shape
    return shape


def validate_client_side(operation: str, params: Mapping[str, Any]) -> None:
    """Raise ``ParamValidationError`` for what a boto3 client would reject before sending.

    Float vectors are checked with numpy instead of element by element (same verdict, a fraction
    of the cost); anything numpy cannot vouch for goes through botocore in full, so the error
    report is always botocore's own.
    """
    shape = _input_shape(operation)
    if shape is None:  # pragma: no cover - every s3vectors operation has an input
        return
    light, floats = _without_floats(operation, params)
    if floats is not None and all(_plain_numbers(f) for f in floats):
        params = light  # a flat list of numbers nests no deeper emptied: its floats need no walk
    for member in ("filter", "vectors"):
        if member in params and _depth_exceeds(params[member], MAX_DOCUMENT_DEPTH + 2):
            raise validation_error(
                f"{member} is nested more than {MAX_DOCUMENT_DEPTH} levels deep", operation
            )
    report = _VALIDATOR.validate(params, shape)
    if report.has_errors():
        raise ParamValidationError(report=report.generate_report())


def _depth_exceeds(document: Any, limit: int) -> bool:
    """True when ``document`` nests dicts/lists deeper than ``limit`` (checked without recursion)."""
    stack: list[tuple[Any, int]] = [(document, 1)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, Mapping | list | tuple):
            if depth > limit:
                return True
            children = node.values() if isinstance(node, Mapping) else node
            stack.extend((child, depth + 1) for child in children
                         if type(child) not in _SCALARS and isinstance(child, Mapping | list | tuple))
    return False


def _plain_numbers(values: Any) -> bool:
    """True when ``values`` is a flat list of ints/floats/bools (what botocore accepts as floats)."""
    if not isinstance(values, list):
        return False
    if not values:
        return True
    try:
        arr = np.array(values)
    except (ValueError, TypeError):
        return False
    return arr.ndim == 1 and arr.dtype.kind in "biuf"


def _swap_data(item: Any) -> tuple[Any, Any]:
    """(``item`` with its ``float32`` list emptied, that list) for a ``VectorData`` union."""
    if isinstance(item, Mapping) and "float32" in item:
        return {**item, "float32": []}, item["float32"]
    return item, []


def _without_floats(operation: str, params: Mapping[str, Any]) -> tuple[Mapping[str, Any], list[Any] | None]:
    """A shallow copy of ``params`` with every float vector emptied, and the vectors taken out."""
    if operation == "QueryVectors" and "queryVector" in params:
        data, floats = _swap_data(params["queryVector"])
        return {**params, "queryVector": data}, [floats]
    if operation == "PutVectors" and isinstance(params.get("vectors"), list):
        items: list[Any] = []
        taken: list[Any] = []
        for item in params["vectors"]:
            if isinstance(item, Mapping) and "data" in item:
                data, floats = _swap_data(item["data"])
                items.append({**item, "data": data})
                taken.append(floats)
            else:
                items.append(item)
        return {**params, "vectors": items}, taken
    return params, None


def _too_many(errors: list[str]) -> str:
    count = len(errors)
    noun = "error" if count == 1 else "errors"
    return f"{count} validation {noun} detected. " + "; ".join(errors)


def check_model_constraints(operation: str, params: Mapping[str, Any]) -> None:
    """Enforce the model's maxima and patterns, which botocore leaves to the service.

    Float vectors are skipped: they carry no constraint and walking them would be slow.
    """
    shape = _input_shape(operation)
    if shape is None:  # pragma: no cover
        return
    errors: list[str] = []
    first_path: list[str] = []
    _walk(params, shape, "", errors, first_path)
    if errors:
        raise validation_error(_too_many(errors), operation, path=first_path[0] if first_path else None)


def _walk(value: Any, shape: Shape, path: str, errors: list[str], paths: list[str]) -> None:
    meta = shape.metadata
    kind = shape.type_name
    if kind == "structure":
        if meta.get("document") or not isinstance(value, Mapping):
            return
        members = shape.members  # type: ignore[attr-defined]
        for name, member in members.items():
            if name in value and value[name] is not None:
                _walk(value[name], member, f"{path}/{name}", errors, paths)
    elif kind == "list":
        if not isinstance(value, Sequence) or isinstance(value, str):
            return
        if (too_long := _too_long(value, meta, path)) is not None:
            paths.append(path)
            errors.append(too_long)
        member = shape.member  # type: ignore[attr-defined]
        if member.type_name in ("structure", "string", "list"):
            for i, item in enumerate(value):
                _walk(item, member, f"{path}/{i}", errors, paths)
    elif kind == "string" and isinstance(value, str):
        if (too_long := _too_long(value, meta, path)) is not None:
            paths.append(path)
            errors.append(too_long)
        elif "pattern" in meta and (rx := _pattern(meta["pattern"])) is not None and not rx.fullmatch(value):
            paths.append(path)
            errors.append(
                f"Value at '{path}' failed to satisfy constraint: "
                f"Member must satisfy regular expression pattern: {meta['pattern']}"
            )
    elif kind == "integer" and isinstance(value, int) and "max" in meta and value > meta["max"]:
        paths.append(path)
        errors.append(
            f"Value at '{path}' failed to satisfy constraint: "
            f"Member must be between {meta.get('min', 0)} and {meta['max']}, inclusive"
        )


def _too_long(value: Sequence[Any] | str, meta: Mapping[str, Any], path: str) -> str | None:
    """The service's message for a list or string over the model's ``max`` length, else ``None``."""
    if "max" not in meta or len(value) <= meta["max"]:
        return None
    return (
        f"Value with length {len(value)} at '{path}' failed to satisfy constraint: "
        f"Member must have length between {meta.get('min', 0)} and {meta['max']}, inclusive"
    )


@functools.cache
def _pattern(source: str) -> re.Pattern[str] | None:
    """The model's regex, or None when it uses syntax Python lacks (e.g. ``\\p{L}`` in tag keys)."""
    try:
        return re.compile(source)
    except re.error:
        return None


def check_bucket_name(name: str, operation: str) -> None:
    """Vector bucket naming rules: 3-63 chars of ``a-z0-9-``, starting and ending alphanumeric."""
    if not _BUCKET_NAME_RE.match(name):
        raise validation_error("Invalid vector bucket name", operation, path="/vectorBucketName")


def check_index_name(name: str, operation: str) -> None:
    """Vector index naming rules: 3-63 chars of ``a-z0-9-.``, starting and ending alphanumeric."""
    if not _INDEX_NAME_RE.match(name):
        raise validation_error("Invalid index name", operation, path="/indexName")


@dataclass(frozen=True)
class IndexRef:
    """Which index a request addresses, and the account/region its ARN named (if any)."""

    bucket: str
    index: str
    region: str | None = None
    account: str | None = None


@dataclass(frozen=True)
class BucketRef:
    """Which vector bucket a request addresses, and the account/region its ARN named (if any)."""

    bucket: str
    region: str | None = None
    account: str | None = None


def bucket_ref(params: Mapping[str, Any], operation: str) -> BucketRef:
    """Resolve ``vectorBucketName`` xor ``vectorBucketArn`` (the real API accepts exactly one)."""
    name = params.get("vectorBucketName")
    arn = params.get("vectorBucketArn")
    if (name is None) == (arn is None):
        raise validation_error("Must specify either vectorBucketName or vectorBucketArn but not both", operation)
    if name is not None:
        return BucketRef(str(name))
    match = _BUCKET_ARN_RE.match(str(arn))
    if match is None:  # the model pattern check usually catches this first
        raise validation_error("Invalid vector bucket ARN", operation, path="/vectorBucketArn")
    return BucketRef(match.group(4), match.group(2), match.group(3))


def index_ref(params: Mapping[str, Any], operation: str) -> IndexRef:
    """Resolve ``indexArn`` xor (``vectorBucketName`` and ``indexName``)."""
    bucket = params.get("vectorBucketName")
    index = params.get("indexName")
    arn = params.get("indexArn")
    by_name = bucket is not None and index is not None and arn is None
    by_arn = arn is not None and bucket is None and index is None
    if not (by_name or by_arn):
        raise validation_error("Must specify either indexArn or both vectorBucketName and indexName", operation)
    if by_name:
        return IndexRef(str(bucket), str(index))
    match = _INDEX_ARN_RE.match(str(arn))
    if match is None:  # the model pattern check usually catches this first
        raise validation_error("Invalid index ARN", operation, path="/indexArn")
    return IndexRef(match.group(4), match.group(5), match.group(2), match.group(3))


def check_count(items: Sequence[Any], limit: int, field: str, operation: str) -> None:
    """Reject batches above the documented per-call limit."""
    if len(items) > limit:
        raise validation_error(
            f"1 validation error detected. Value with length {len(items)} at '/{field}' failed to "
            f"satisfy constraint: Member must have length between 1 and {limit}, inclusive",
            operation,
            path=f"/{field}",
        )


def check_top_k(top_k: int, operation: str) -> None:
    """``topK`` is 1..100 on the service (botocore only checks the minimum)."""
    if top_k > MAX_TOP_K:
        raise validation_error(
            f"1 validation error detected. Value at '/topK' failed to satisfy constraint: "
            f"Member must be between 1 and {MAX_TOP_K}, inclusive",
            operation,
            path="/topK",
        )


def as_float32(values: Sequence[Any], dimension: int, key: str | None, operation: str) -> np.ndarray:
    """Convert one vector to float32, rejecting wrong length and NaN/Inf like the service."""
    label = f"Invalid record for key '{key}'" if key is not None else "Invalid query vector"
    if len(values) != dimension:
        raise validation_error(f"{label}: vector must have length {dimension}, but has length {len(values)}", operation)
    try:
        arr = np.asarray(values, dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        raise validation_error(f"{label}: vector must contain only numbers", operation) from None
    if not np.isfinite(arr).all():
        raise validation_error(f"{label}: vector must not contain NaN or infinite values", operation)
    if arr.size and float(np.abs(arr).max()) > _FLOAT32_MAX:
        raise validation_error(f"{label}: vector values must fit in float32", operation)
    return arr.astype(np.float32)


def check_not_zero(vec: np.ndarray, key: str | None, operation: str) -> None:
    """Cosine distance is undefined for the zero vector; the service rejects it."""
    if not vec.any():
        label = f"Invalid record for key '{key}'" if key is not None else "Invalid query vector"
        raise validation_error(f"{label}: zero vector is not supported with the cosine distance metric", operation)


def _json_bytes(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode("utf-8"))


def _check_metadata_value(value: Any) -> bool:
    """Metadata values are strings, numbers, booleans or lists of those (no nulls, NaN or objects)."""
    if isinstance(value, bool | str | int):
        return True
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, list):
        return all(isinstance(v, bool | str | int) or (isinstance(v, float) and math.isfinite(v)) for v in value)
    return False


def split_metadata(key: str, metadata: Any, non_filterable: frozenset[str], operation: str) -> tuple[str, str]:
    """Validate one vector's metadata; return (full JSON, filterable-part JSON).

    Sizes are measured as compact UTF-8 JSON, the closest public proxy for the service's accounting.
    """
    label = f"Invalid record for key '{key}'"
    if metadata is None:
        return "{}", "{}"
    if not isinstance(metadata, dict):
        raise validation_error(f"{label}: metadata must be a JSON object", operation)
    if len(metadata) > MAX_METADATA_KEYS:
        raise validation_error(
            f"{label}: Metadata must have at most {MAX_METADATA_KEYS} keys, but has {len(metadata)}",
            operation,
        )
    for name, value in metadata.items():
        if not name:
            raise validation_error(f"{label}: metadata keys must not be empty", operation)
        if not _check_metadata_value(value):
            raise validation_error(
                f"{label}: metadata value for '{name}' must be a string, number, boolean or a list of those",
                operation,
            )
    full = json.dumps(metadata, separators=(",", ":"), ensure_ascii=False)
    try:
        full_size = len(full.encode("utf-8"))
    except UnicodeEncodeError:
        raise validation_error(f"{label}: metadata is not valid UTF-8 (lone surrogate characters)", operation) from None
    if full_size > MAX_METADATA_BYTES:
        raise validation_error(f"{label}: Metadata must have at most {MAX_METADATA_BYTES} bytes", operation)
    filterable = {k: v for k, v in metadata.items() if k not in non_filterable}
    if _json_bytes(filterable) > MAX_FILTERABLE_METADATA_BYTES:
        raise validation_error(
            f"{label}: Filterable metadata must have at most {MAX_FILTERABLE_METADATA_BYTES} bytes", operation
        )
    return full, json.dumps(filterable, separators=(",", ":"), ensure_ascii=False)


def _duplicate(keys: Sequence[str]) -> str | None:
    """The first key named a second time in ``keys`` (None when all are distinct)."""
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return None


def check_unique_keys(keys: Sequence[str], operation: str) -> None:
    """The service rejects a PutVectors batch that names the same key twice."""
    if (key := _duplicate(keys)) is not None:
        raise validation_error(f"Duplicate key in request: '{key}'", operation, path="/vectors")


def check_tags(tags: Mapping[str, Any], operation: str) -> None:
    """A resource holds at most 50 tags (checked on the tags a request would leave it with)."""
    if len(tags) > MAX_TAGS:
        raise validation_error(
            f"A resource can have at most {MAX_TAGS} tags, but this request would leave it with {len(tags)}",
            operation,
            path="/tags",
        )


def check_encryption(config: Mapping[str, Any] | None, operation: str) -> None:
    """``aws:kms`` needs a ``kmsKeyArn``; ``AES256`` must not name one."""
    if not config:
        return
    sse = config.get("sseType", "AES256")
    if sse == "aws:kms" and not config.get("kmsKeyArn"):
        raise validation_error(
            "kmsKeyArn is required when sseType is aws:kms", operation, path="/encryptionConfiguration/kmsKeyArn"
        )
    if sse == "AES256" and config.get("kmsKeyArn"):
        raise validation_error(
            "kmsKeyArn can only be specified when sseType is aws:kms",
            operation,
            path="/encryptionConfiguration/kmsKeyArn",
        )


def distinct_keys(keys: Sequence[str], what: str, path: str, operation: str) -> None:
    """Reject a list naming one metadata key twice."""
    if (key := _duplicate(keys)) is not None:
        raise validation_error(f"{what} names the metadata key '{key}' more than once", operation, path=path)
