"""Long-term semantic memory for Strands Agents, backed by Amazon S3 Vectors."""

from __future__ import annotations

from .errors import (
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    InvalidIdentityError,
    IsolationError,
    S3VectorMemoryError,
)

__all__ = [
    "ConfigurationError",
    "DimensionMismatchError",
    "EmbeddingError",
    "InvalidIdentityError",
    "IsolationError",
    "S3VectorMemoryError",
]
