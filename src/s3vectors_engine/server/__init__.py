"""A local Amazon S3 Vectors endpoint: the embedded engine (or any boto3-shaped client) over HTTP.

A stock ``boto3.client("s3vectors", endpoint_url=...)`` works against it for every operation,
QueryVectors included, so code written for S3 Vectors can be tested end to end offline (moto and
LocalStack do not implement QueryVectors). Routing and (de)serialisation follow botocore's own
service model. This is a development/test endpoint: it binds to loopback unless told otherwise and
checks SigV4 signatures only for keys whose secrets an :class:`AccessPolicy` registers.

- :func:`create_app` builds the Starlette (ASGI) app around a backend.
- :class:`LocalEndpoint` runs it with uvicorn on a background thread (context manager).
- :func:`serve` runs it in the foreground for the ``serve`` CLI command.
- :class:`AccessPolicy` restricts access keys to index names, as tenant IAM policies do, and
  verifies the signatures of keys whose secrets it is given (:mod:`._sigv4`).
"""

from __future__ import annotations

#: What the endpoint needs beyond the engine, and the extra that installs it (not part of the core install).
WEB_STACK = frozenset({"starlette", "uvicorn"})
INSTALL_HINT = 'pip install "strands-s3-vectors-memory[server]"'

try:
    from ._access import AccessPolicy
    from ._app import create_app
    from ._runner import ENDPOINT_ENV, LocalEndpoint, serve
except ModuleNotFoundError as exc:  # a core install: name the extra, not just the missing module
    _missing = (exc.name or "").partition(".")[0]
    if _missing not in WEB_STACK:
        raise
    raise ModuleNotFoundError(
        f"the local S3 Vectors endpoint needs {_missing!r}, which is not installed: {INSTALL_HINT}", name=_missing
    ) from None

__all__ = ["ENDPOINT_ENV", "AccessPolicy", "LocalEndpoint", "create_app", "serve"]
