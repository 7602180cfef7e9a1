"""botocore's model of S3 Vectors: the one source of truth for the engine and the server.

The engine validates parameters and builds its exceptions from it (:mod:`._validation`,
:mod:`._errors`); the server routes and (de)serialises requests with it (:mod:`.server._protocol`).
Everything is loaded once, from the botocore session behind boto3's default session, so the
exception classes the engine raises are the very ones a ``boto3.client("s3vectors")`` raises.
"""

from __future__ import annotations

import functools
from typing import Any

import boto3
import botocore.session
from botocore.model import ServiceModel, StructureShape

SERVICE_NAME = "s3vectors"


@functools.lru_cache(maxsize=1)
def botocore_session() -> botocore.session.Session:
    """The botocore session of boto3's default session (so exception classes are shared)."""
    if boto3.DEFAULT_SESSION is None:
        boto3.setup_default_session()
    session = getattr(boto3.DEFAULT_SESSION, "_session", None)
    if isinstance(session, botocore.session.Session):
        return session
    return botocore.session.get_session()  # pragma: no cover - boto3 internals changed


@functools.lru_cache(maxsize=1)
def service_model() -> ServiceModel:
    """The s3vectors service model shipped with the installed botocore (loaded once; it is immutable)."""
    return botocore_session().get_service_model(SERVICE_NAME)


@functools.cache
def paginator_config(api_name: str) -> dict[str, Any]:
    """The paginator configuration of one operation (``ListVectors``...), as botocore's paginators take it."""
    model = botocore_session().get_paginator_model(SERVICE_NAME)
    config: dict[str, Any] = model.get_paginator(api_name)
    return config


@functools.lru_cache(maxsize=128)  # bounded: a served backend may raise codes the model does not know
def error_shape(code: str) -> StructureShape | None:
    """The modeled error shape for an error code (``None`` when the model does not name it)."""
    for shape in service_model().error_shapes:
        if shape.error_code == code:
            return shape
    return None


def error_status(code: str, default: int = 400) -> int:
    """The HTTP status the model declares for an error code (``default`` when it declares none)."""
    shape = error_shape(code)
    if shape is None:
        return default
    return int(shape.metadata.get("error", {}).get("httpStatusCode", default))
