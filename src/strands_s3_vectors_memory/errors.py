"""Exceptions raised by strands-s3-vectors-memory.

Every error the library raises on purpose derives from :class:`S3VectorMemoryError`, so callers can
catch the whole family at once. Errors coming back from S3 Vectors itself (cloud or the embedded
engine) stay :class:`botocore.exceptions.ClientError`, exactly as boto3 raises them, so code handles
both backends identically.
"""

from __future__ import annotations

__all__ = [
    "ConfigurationError",
    "DimensionMismatchError",
    "EmbeddingError",
    "InvalidIdentityError",
    "InvalidInvocationStateError",
    "IsolationError",
    "S3VectorMemoryError",
]


class S3VectorMemoryError(Exception):
    """Base class of every error this library raises on purpose."""


class ConfigurationError(S3VectorMemoryError, ValueError):
    """The library was wired or configured wrongly (bad setting, missing agent name, ...)."""


class DimensionMismatchError(ConfigurationError):
    """The embedder's vector size does not match the index's dimension.

    Raised when the store starts, not on the first failed write, so the mistake is found early.
    """


class InvalidInvocationStateError(S3VectorMemoryError, ValueError):
    """``invocation_state`` holds a value of the wrong type or shape (e.g. ``end_session="yes"``)."""


class InvalidIdentityError(InvalidInvocationStateError):
    """A ``user_id``, ``conversation_id``, agent name or tenant id is missing, empty or malformed."""


class IsolationError(S3VectorMemoryError):
    """Tenant isolation cannot be guaranteed, so the operation was refused.

    Raised when tenant-scoped credentials cannot be obtained (the Token Vending Machine failed) or
    a request would touch another tenant's index. The library never falls back to ambient
    credentials when this happens.
    """


class EmbeddingError(S3VectorMemoryError):
    """The embedding model failed or returned an unusable vector."""
