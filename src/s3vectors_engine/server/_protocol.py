"""The S3 Vectors REST-JSON wire format, driven entirely by botocore's own service model.

Nothing about S3 Vectors is hard-coded here: the routes (HTTP method and ``requestUri`` of every
operation), where each input member travels (URI label, query string, header or JSON body), how
timestamps and blobs are written, and the HTTP status of each modeled error all come from
botocore's s3vectors service model (loaded once, for the engine and the server, by
:mod:`s3vectors_engine._model`). The server therefore speaks exactly the dialect that the installed
botocore expects to parse, and follows the model when AWS adds an operation.

This module is the mirror image of botocore's ``RestJSONSerializer`` (for requests) and
``RestJSONParser`` (for responses): it *reads* what the serializer writes and *writes* what the
parser reads.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.model import OperationModel, ServiceModel, Shape, StructureShape
from botocore.utils import parse_timestamp

from .._model import error_shape, service_model

#: How botocore (and Smithy) write non-finite floats in JSON.
_NON_FINITE = frozenset({"NaN", "Infinity", "-Infinity"})
#: Scalar shapes whose JSON form is already the Python value, so lists of them are passed through.
_PASSTHROUGH_TYPES = frozenset({"string", "integer", "long", "float", "double", "boolean"})


class WireError(Exception):
    """A request that must be answered with an S3-Vectors-style error instead of reaching the backend.

    Carries what botocore's rest-json error parser reads: the HTTP status, the error code (the
    modeled exception name) and the message, plus any extra members of the error shape.
    """

    def __init__(self, status: int, code: str, message: str, extra: Mapping[str, Any] | None = None) -> None:
        super().__init__(f"{code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.extra: dict[str, Any] = dict(extra or {})


@dataclass(frozen=True)
class Route:
    """Where one operation lives on the wire: method plus a Starlette path template."""

    operation: OperationModel
    method: str
    path: str


def routes(model: ServiceModel | None = None) -> list[Route]:
    """One route per operation of the model, in a form Starlette's router accepts.

    botocore URI labels are ``{name}`` or greedy ``{name+}``. botocore percent-encodes a plain label
    completely (``/`` becomes ``%2F``), but the ASGI server decodes the path before routing, so an
    ARN label such as ``/tags/{resourceArn}`` arrives containing slashes. A label that ends the
    template, or a greedy one, therefore uses Starlette's ``path`` converter (which accepts ``/``).
    """
    model = model or service_model()
    result = []
    for name in model.operation_names:
        op = model.operation_model(name)
        uri = str(op.http["requestUri"]).split("?", 1)[0]
        result.append(Route(operation=op, method=str(op.http["method"]).upper(), path=_starlette_path(uri)))
    return result


def _starlette_path(uri: str) -> str:
    parts = uri.split("/")
    out = []
    for i, part in enumerate(parts):
        if part.startswith("{") and part.endswith("}"):
            label = part[1:-1]
            greedy = label.endswith("+")
            label = label.rstrip("+")
            last = i == len(parts) - 1
            out.append(f"{{{label}:path}}" if greedy or last else f"{{{label}}}")
        else:
            out.append(part)
    return "/".join(out)


def decode_request(
    op: OperationModel,
    *,
    path_params: Mapping[str, str],
    query: Iterable[tuple[str, str]],
    headers: Mapping[str, str],
    body: bytes,
) -> dict[str, Any]:
    """Rebuild the boto3-style keyword arguments of a call from its HTTP request.

    Raises:
        WireError: the body is not a JSON object (400 ValidationException, as AWS answers).
    """
    shape = op.input_shape
    if shape is None:
        return {}
    query_items = list(query)
    headers = {k.lower(): v for k, v in headers.items()}  # HTTP header names are case-insensitive
    params: dict[str, Any] = {}
    body_json = _parse_json_body(body) if _has_body_members(shape) else {}
    for member_name, member in shape.members.items():
        location = member.serialization.get("location")
        wire_name = member.serialization.get("name", member_name)
        if location == "uri":
            if wire_name in path_params:
                params[member_name] = _from_text(member, path_params[wire_name])
        elif location == "querystring":
            values = [v for k, v in query_items if k == wire_name]
            if values:
                params[member_name] = (
                    [_from_text(member.member, v) for v in values]  # type: ignore[attr-defined]
                    if member.type_name == "list"
                    else _from_text(member, values[-1])
                )
        elif location == "header":
            if wire_name.lower() in headers:
                params[member_name] = _from_text(member, headers[wire_name.lower()])
        elif location == "headers":
            prefix = str(wire_name).lower()
            found = {k[len(prefix) :]: v for k, v in headers.items() if k.lower().startswith(prefix)}
            if found:
                params[member_name] = found
        elif location is None and wire_name in body_json and body_json[wire_name] is not None:
            params[member_name] = _from_json(member, body_json[wire_name])
    return params


def _has_body_members(shape: StructureShape) -> bool:
    return any(m.serialization.get("location") is None for m in shape.members.values())


def _parse_json_body(body: bytes) -> dict[str, Any]:
    if not body.strip():
        return {}
    try:
        parsed = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise WireError(400, "ValidationException", f"request body is not valid JSON: {exc}") from None
    except RecursionError:
        raise WireError(400, "ValidationException", "request body is nested too deeply") from None
    if not isinstance(parsed, dict):
        raise WireError(400, "ValidationException", "request body must be a JSON object")
    return parsed


def _from_text(shape: Shape, text: str) -> Any:
    """Convert a URI label, query value or header back to its modeled type."""
    kind = shape.type_name
    if kind in ("integer", "long"):
        return int(text)
    if kind in ("float", "double"):
        return float(text)
    if kind == "boolean":
        return text.lower() == "true"
    if kind == "timestamp":
        return parse_timestamp(text)
    return text


def _from_json(shape: Shape, value: Any) -> Any:
    """Walk a JSON value with its shape, reviving the types JSON cannot carry (timestamps, blobs)."""
    kind = shape.type_name
    if getattr(shape, "is_document_type", False):
        return value
    if kind == "structure" and isinstance(value, dict):
        members = shape.members  # type: ignore[attr-defined]
        out = {}
        for key, item in value.items():
            if item is None:
                continue
            out[key] = _from_json(members[key], item) if key in members else item
        return out
    if kind == "list" and isinstance(value, list):
        member = shape.member  # type: ignore[attr-defined]
        if member.type_name in ("float", "double") and any(isinstance(item, str) for item in value):
            return [_from_json(member, item) for item in value]
        if member.type_name in _PASSTHROUGH_TYPES:
            return value
        return [_from_json(member, item) for item in value]
    if kind == "map" and isinstance(value, dict):
        value_shape = shape.value  # type: ignore[attr-defined]
        return {k: _from_json(value_shape, v) for k, v in value.items()}
    if kind in ("float", "double") and isinstance(value, str) and value in _NON_FINITE:
        return float(value)  # botocore writes NaN/Infinity as JSON strings
    if kind == "timestamp" and isinstance(value, (int, float, str)):
        return parse_timestamp(value)
    if kind == "blob" and isinstance(value, str):
        try:
            return base64.b64decode(value, validate=True)
        except ValueError:
            raise WireError(400, "ValidationException", "blob member is not valid base64") from None
    return value


@dataclass(frozen=True)
class WireResponse:
    """An HTTP response ready to send: status, extra headers and the JSON body bytes."""

    status: int
    headers: dict[str, str]
    body: bytes


def encode_result(op: OperationModel, result: Mapping[str, Any]) -> WireResponse:
    """Serialise a boto3-style result dict the way the real service answers.

    Keys that are not members of the output shape (``ResponseMetadata`` from a boto3-backed
    backend, engine extras) are dropped, exactly as they would be absent on the wire.
    """
    status = int(op.http.get("responseCode", 200))
    headers: dict[str, str] = {}
    body: dict[str, Any] = {}
    shape = op.output_shape
    if shape is not None:
        for member_name, member in shape.members.items():
            if member_name not in result or result[member_name] is None:
                continue
            value = result[member_name]
            location = member.serialization.get("location")
            wire_name = member.serialization.get("name", member_name)
            if location == "statusCode":
                status = int(value)
            elif location == "header":
                headers[wire_name] = _to_text(member, value)
            elif location == "headers":
                headers.update({f"{wire_name}{k}": str(v) for k, v in value.items()})
            else:
                body[wire_name] = _to_json(member, value)
    return WireResponse(status=status, headers=headers, body=_dumps(body))


def encode_error(error: WireError) -> WireResponse:
    """Serialise an error so botocore's rest-json parser raises the matching modeled exception.

    botocore reads the code from the ``x-amzn-ErrorType`` header (falling back to ``__type`` in the
    body) and the message from ``message``; members of the error shape (``fieldList`` of
    ValidationException) go in the body so they reach ``ClientError.response`` too.
    """
    body = {"__type": error.code, "message": error.message}
    shape = error_shape(error.code)
    if shape is not None:
        for name, value in error.extra.items():
            if name in shape.members and name != "message" and value is not None:
                body[name] = _to_json(shape.members[name], value)
    return WireResponse(status=error.status, headers={"x-amzn-ErrorType": error.code}, body=_dumps(body))


def _to_text(shape: Shape, value: Any) -> str:
    if shape.type_name == "timestamp" and isinstance(value, dt.datetime):
        return _aware(value).strftime("%a, %d %b %Y %H:%M:%S GMT")
    if shape.type_name == "boolean":
        return "true" if value else "false"
    return str(value)


def _to_json(shape: Shape, value: Any) -> Any:
    """Walk a Python value with its shape into the JSON form botocore's parser expects.

    Timestamps become epoch seconds (the rest-json default, read by ``botocore.utils.parse_timestamp``),
    blobs become base64, and numeric members are coerced so numpy scalars serialise.
    """
    kind = shape.type_name
    if getattr(shape, "is_document_type", False):
        return value
    if kind == "structure" and isinstance(value, Mapping):
        members = shape.members  # type: ignore[attr-defined]
        return {
            members[k].serialization.get("name", k): _to_json(members[k], v)
            for k, v in value.items()
            if k in members and v is not None
        }
    if kind == "list":
        member = shape.member  # type: ignore[attr-defined]
        if hasattr(value, "tolist"):  # numpy array: one C-level conversion, no per-item walk
            value = value.tolist()
        if member.type_name in ("float", "double"):
            return [float(item) for item in value]
        return [_to_json(member, item) for item in value]
    if kind == "map" and isinstance(value, Mapping):
        value_shape = shape.value  # type: ignore[attr-defined]
        return {str(k): _to_json(value_shape, v) for k, v in value.items()}
    if kind == "timestamp":
        if isinstance(value, dt.datetime):
            return _aware(value).timestamp()
        if isinstance(value, (int, float)):
            return value
        return parse_timestamp(value).timestamp()
    if kind == "blob":
        raw = value.encode("utf-8") if isinstance(value, str) else bytes(value)
        return base64.b64encode(raw).decode("ascii")
    if kind in ("float", "double"):
        return float(value)
    if kind in ("integer", "long"):
        return int(value)
    if kind == "boolean":
        return bool(value)
    return value


def _aware(value: dt.datetime) -> dt.datetime:
    """Treat naive datetimes as UTC (boto3 always returns aware ones; engines may not)."""
    return value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc)


def _dumps(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, separators=(",", ":"), default=_json_default).encode("utf-8")


def _json_default(value: Any) -> Any:
    """Serialise numpy scalars/arrays inside documents (metadata) without importing numpy."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if isinstance(value, dt.datetime):
        return _aware(value).isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")
