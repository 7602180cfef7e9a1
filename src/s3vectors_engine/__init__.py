"""An embedded, on-disk engine compatible with Amazon S3 Vectors, and a server for it.

``LocalS3VectorsClient(root)`` behaves like ``boto3.client("s3vectors")`` (same methods, arguments,
responses and exceptions) but keeps everything under ``root``: SQLite for durability, an in-memory
numpy matrix per index for speed.

:mod:`s3vectors_engine.server` serves it (or any boto3-shaped client) over the S3 Vectors REST-JSON
protocol, so a stock ``boto3.client("s3vectors", endpoint_url=...)`` works against it:
:class:`LocalEndpoint`, :func:`serve`, :func:`create_app`, :class:`AccessPolicy`. Those names are
re-exported here too, imported on first use so that the engine alone does not load the web stack.

Layout: every module but :mod:`s3vectors_engine` and :mod:`s3vectors_engine.server` is private
(underscore-prefixed); the public names are the ``__all__`` of those two packages. The package does
not depend on ``strands_s3_vectors_memory`` (which builds on it).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._client import LocalS3VectorsClient

if TYPE_CHECKING:
    from .server import ENDPOINT_ENV, AccessPolicy, LocalEndpoint, create_app, serve

__all__ = ["ENDPOINT_ENV", "AccessPolicy", "LocalEndpoint", "LocalS3VectorsClient", "create_app", "serve"]

#: Names served by :mod:`s3vectors_engine.server`, imported on first access (starlette, uvicorn).
_SERVER_NAMES = frozenset({"ENDPOINT_ENV", "AccessPolicy", "LocalEndpoint", "create_app", "serve"})


def __getattr__(name: str) -> Any:
    if name in _SERVER_NAMES:
        value = getattr(importlib.import_module(".server", __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | _SERVER_NAMES)
