"""Deprecated alias of :mod:`s3vectors_engine`: the embedded engine moved to its own package.

``from strands_s3_vectors_memory.local import LocalS3VectorsClient`` keeps working (with a
``DeprecationWarning``); import it from :mod:`s3vectors_engine` instead.
"""

from __future__ import annotations

import warnings

from s3vectors_engine import LocalS3VectorsClient

__all__ = ["LocalS3VectorsClient"]

warnings.warn(
    "strands_s3_vectors_memory.local is deprecated: import LocalS3VectorsClient from s3vectors_engine",
    DeprecationWarning,
    stacklevel=2,
)
