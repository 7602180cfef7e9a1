"""Deprecated alias of :mod:`s3vectors_engine.server`: the local endpoint moved to its own package.

``from strands_s3_vectors_memory.server import LocalEndpoint`` (and the other names below) keeps
working (with a ``DeprecationWarning``); import them from :mod:`s3vectors_engine.server` instead.
"""

from __future__ import annotations

import warnings

from s3vectors_engine.server import ENDPOINT_ENV, AccessPolicy, LocalEndpoint, create_app, serve

__all__ = ["ENDPOINT_ENV", "AccessPolicy", "LocalEndpoint", "create_app", "serve"]

warnings.warn(
    "strands_s3_vectors_memory.server is deprecated: import from s3vectors_engine.server",
    DeprecationWarning,
    stacklevel=2,
)
