"""The Starlette application: any boto3-shaped S3 Vectors client, served over REST-JSON.

Each request is decoded with the operation's input shape, checked by botocore's own parameter
validator and the optional :class:`AccessPolicy`, handed to ``backend.<snake_case_operation>(**kwargs)``
in a worker thread (backends are synchronous and may block on disk), and the result or error is
encoded so a stock boto3 client sees what AWS would send.
"""

from __future__ import annotations

import gzip
import logging
import uuid
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore import xform_name
from botocore.exceptions import ClientError, ParamValidationError
from botocore.model import OperationModel
from botocore.validate import ParamValidator
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .._model import error_status
from ._access import AccessPolicy, access_key_id
from ._protocol import (
    WireError,
    WireResponse,
    decode_request,
    encode_error,
    encode_result,
    routes,
)
from ._sigv4 import SignedRequest

logger = logging.getLogger(__name__)

_Endpoint = Callable[[Request], Awaitable[Response]]


def create_app(backend: object, *, access_policy: AccessPolicy | None = None) -> Starlette:
    """Build the ASGI app serving ``backend`` (e.g. ``LocalS3VectorsClient`` or a boto3 client).

    Args:
        backend: any object with boto3's s3vectors methods (``create_index(**kwargs)``,
            ``query_vectors(**kwargs)``, ...) returning boto3-style dicts and raising botocore's
            ``ClientError`` / ``ParamValidationError``. Operations it lacks answer 501.
        access_policy: optional per-access-key index restrictions (see :class:`AccessPolicy`);
            None lets every request through.
    """
    validator = ParamValidator()
    app_routes = [
        Route(
            route.path,
            endpoint=_operation_endpoint(route.operation, backend, validator, access_policy),
            methods=[route.method],
            name=route.operation.name,
        )
        for route in routes()
    ]
    return Starlette(
        routes=app_routes,
        exception_handlers={HTTPException: _http_exception_handler},
    )


def _operation_endpoint(
    op: OperationModel, backend: object, validator: ParamValidator, policy: AccessPolicy | None
) -> _Endpoint:
    method_name = xform_name(op.name)

    def handle(raw: _RawRequest) -> WireResponse:
        """Everything after reading the body, synchronously: a worker thread keeps the loop free."""
        try:
            params = decode_request(
                op,
                path_params=raw.path_params,
                query=raw.query,
                headers=raw.headers,
                body=_decompress(raw.body, raw.headers.get("content-encoding", "")),
            )
            report = validator.validate(params, op.input_shape) if op.input_shape is not None else None
            if report is not None and report.has_errors():
                raise WireError(400, "ValidationException", report.generate_report())
            if policy is not None:
                credential = next((v for k, v in raw.query if k == "X-Amz-Credential"), None)
                key_id = access_key_id(raw.headers.get("authorization"), credential)
                problem = policy.signature_problem(key_id, raw.signed)
                if problem is not None:
                    raise WireError(403, problem.code, problem.message)
                reason = policy.denial_reason(key_id, op.name, params)
                if reason is not None:
                    raise WireError(403, "AccessDeniedException", reason)
            call = getattr(backend, method_name, None)
            if call is None:
                raise WireError(501, "NotImplementedException", f"{op.name} is not implemented by this backend")
            return encode_result(op, _call_backend(call, params))
        except WireError as exc:
            return encode_error(exc)

    async def endpoint(request: Request) -> Response:
        raw = _RawRequest(
            method=request.method,
            raw_path=request.scope.get("raw_path", b"").decode("latin-1") or request.url.path,
            raw_query=request.scope.get("query_string", b"").decode("latin-1"),
            path_params=dict(request.path_params),
            query=request.query_params.multi_items(),
            headers={k.lower(): v for k, v in request.headers.items()},
            body=await request.body(),
        )
        return _send(await run_in_threadpool(handle, raw))

    return endpoint


@dataclass(frozen=True)
class _RawRequest:
    """The parts of an HTTP request the codec and the signature check need, detached from ASGI."""

    method: str
    raw_path: str  #: as sent (still percent-encoded): what a SigV4 signature covers
    raw_query: str
    path_params: dict[str, str]
    query: list[tuple[str, str]]
    headers: dict[str, str]
    body: bytes

    @property
    def signed(self) -> SignedRequest:
        """The request as sent, for signature checks."""
        return SignedRequest(self.method, self.raw_path, self.raw_query, self.headers, self.body)


def _call_backend(call: Callable[..., Any], params: Mapping[str, Any]) -> Mapping[str, Any]:
    """Run one backend call, translating its exceptions into wire errors."""
    try:
        result = call(**params)
    except ClientError as exc:
        raise _from_client_error(exc) from exc
    except ParamValidationError as exc:
        raise WireError(400, "ValidationException", str(exc)) from exc
    except Exception as exc:
        logger.exception("backend failed on %s", getattr(call, "__name__", call))
        raise WireError(500, "InternalServerException", f"{type(exc).__name__}: {exc}") from exc
    return result if isinstance(result, Mapping) else {}


def _from_client_error(exc: ClientError) -> WireError:
    """Keep the code, message, HTTP status and modeled members the backend raised."""
    response: Mapping[str, Any] = exc.response
    error = response.get("Error", {})
    code = str(error.get("Code") or "InternalServerException")
    status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
    if not isinstance(status, int) or status < 300:
        status = error_status(code)
    extra = {k: v for k, v in response.items() if k not in ("Error", "ResponseMetadata")}
    return WireError(status, code, str(error.get("Message", "")), extra)


def _decompress(body: bytes, encoding: str) -> bytes:
    """Accept botocore's optional request compression (``Content-Encoding: gzip``)."""
    encodings = [e.strip().lower() for e in encoding.split(",") if e.strip()]
    for enc in reversed(encodings):
        if enc in ("gzip", "x-gzip"):
            try:
                body = gzip.decompress(body)
            except (OSError, EOFError) as exc:
                raise WireError(400, "ValidationException", f"bad gzip body: {exc}") from None
        elif enc == "deflate":
            try:
                body = zlib.decompress(body)
            except zlib.error as exc:
                raise WireError(400, "ValidationException", f"bad deflate body: {exc}") from None
    return body


async def _http_exception_handler(request: Request, exc: Exception) -> Response:
    """Unknown paths and wrong methods answer in the service's error format, not Starlette's text."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    if status == 405:
        error = WireError(405, "MethodNotAllowedException", f"{request.method} is not allowed on {request.url.path}")
    elif status == 404:
        error = WireError(404, "UnknownOperationException", f"no S3 Vectors operation at {request.url.path}")
    else:
        error = WireError(status, "InternalServerException", str(getattr(exc, "detail", exc)))
    return _send(encode_error(error))


def _send(wire: WireResponse) -> Response:
    headers = {"x-amzn-RequestId": uuid.uuid4().hex, **wire.headers}
    return Response(content=wire.body, status_code=wire.status, headers=headers, media_type="application/json")
