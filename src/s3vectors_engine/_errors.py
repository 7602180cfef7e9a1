"""The exceptions the embedded engine raises.

The engine raises the *same* exception classes a ``boto3.client("s3vectors")`` raises: they are
built by botocore's own :class:`~botocore.errorfactory.ClientExceptionsFactory` from the bundled
s3vectors service model (:mod:`._model`), on the botocore session behind boto3's default session. So
``except client.exceptions.NotFoundException`` (or catching ``ClientError`` and reading
``e.response["Error"]["Code"]``) works unchanged whichever backend is behind the client.
"""

from __future__ import annotations

import functools
import uuid
from email.utils import formatdate
from typing import Any

from botocore.errorfactory import BaseClientExceptions, ClientExceptionsFactory
from botocore.exceptions import ClientError

from ._model import botocore_session, error_status, service_model


@functools.lru_cache(maxsize=1)
def client_exceptions() -> BaseClientExceptions:
    """The ``client.exceptions`` object, built exactly as botocore builds it for a real client."""
    factory = botocore_session()._get_internal_component("exceptions_factory")
    if not isinstance(factory, ClientExceptionsFactory):  # pragma: no cover - defensive
        factory = ClientExceptionsFactory()
    return factory.create_client_exceptions(service_model())


def response_metadata(status: int = 200, error_code: str | None = None) -> dict[str, Any]:
    """A ``ResponseMetadata`` block shaped like the one botocore attaches to every response."""
    request_id = uuid.uuid4().hex.upper()
    headers = {
        "date": formatdate(usegmt=True),
        "content-type": "application/json",
        "x-amzn-requestid": request_id,
    }
    if error_code is not None:
        headers["x-amzn-errortype"] = error_code
    return {"RequestId": request_id, "HTTPStatusCode": status, "HTTPHeaders": headers, "RetryAttempts": 0}


def make_error(
    code: str,
    message: str,
    operation: str,
    *,
    field_list: list[dict[str, str]] | None = None,
) -> ClientError:
    """Build (not raise) the modeled exception for ``code``, with the response boto3 would parse."""
    status = error_status(code)
    response: dict[str, Any] = {
        "Error": {"Code": code, "Message": message},
        "ResponseMetadata": response_metadata(status, code),
        "message": message,
    }
    if field_list:
        response["fieldList"] = field_list
    exc_cls = client_exceptions().from_code(code)
    error: ClientError = exc_cls(response, operation)
    return error


def validation_error(message: str, operation: str, *, path: str | None = None) -> ClientError:
    """A ``ValidationException`` (HTTP 400), optionally naming the offending field like the service."""
    fields = [{"path": path, "message": message}] if path else None
    return make_error("ValidationException", message, operation, field_list=fields)


def not_found(message: str, operation: str) -> ClientError:
    """A ``NotFoundException`` (HTTP 404)."""
    return make_error("NotFoundException", message, operation)


def conflict(message: str, operation: str) -> ClientError:
    """A ``ConflictException`` (HTTP 409)."""
    return make_error("ConflictException", message, operation)


BUCKET_NOT_FOUND = "The specified vector bucket could not be found"
INDEX_NOT_FOUND = "The specified index could not be found"
BUCKET_EXISTS = "A vector bucket with the specified name already exists"
INDEX_EXISTS = "An index with the specified name already exists"
BUCKET_NOT_EMPTY = "The specified vector bucket is not empty"
