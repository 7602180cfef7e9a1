"""Which failures are worth another attempt, and how long to wait before it.

Shared by the background writer (summaries and puts) and the plugin (retrieval): one definition of
"transient" (throttling, a 429/5xx answer, a timeout, a dropped connection), so a read and a write
facing the same error make the same call.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import random
import sys
from typing import Any

from botocore.exceptions import ClientError, HTTPClientError
from botocore.exceptions import ConnectionError as BotocoreConnectionError

__all__ = ["full_jitter", "is_retryable_error"]

#: Error codes that mean "slow down" or "try again later": botocore's own throttling and transient
#: lists (``botocore.retries.standard``) plus the 5xx-style codes AWS services return by name.
_RETRYABLE_ERROR_CODES = frozenset(
    {
        # throttling (botocore.retries.standard.ThrottledRetryableChecker)
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "TransactionInProgressException",
        "RequestLimitExceeded",
        "BandwidthLimitExceeded",
        "LimitExceededException",
        "RequestThrottled",
        "SlowDown",
        "EC2ThrottledException",
        # transient (botocore.retries.standard.TransientRetryableChecker)
        "RequestTimeout",
        "RequestTimeoutException",
        "PriorRequestNotComplete",
        # server side, by name (S3 Vectors, Bedrock runtime, STS)
        "ServiceUnavailable",
        "ServiceUnavailableException",
        "InternalServerException",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
        "ModelNotReadyException",
        "ModelTimeoutException",
        "IDPCommunicationError",
    }
)

#: Exception types that are transient by nature. botocore's ConnectionError/HTTPClientError cover
#: EndpointConnectionError, ConnectTimeoutError, ReadTimeoutError and ConnectionClosedError, the same
#: families botocore's standard retry mode retries.
_RETRYABLE_EXCEPTIONS: tuple[type[BaseException], ...] = (
    BotocoreConnectionError,
    HTTPClientError,
    TimeoutError,
    ConnectionError,
    concurrent.futures.TimeoutError,  # distinct from TimeoutError before Python 3.11
    asyncio.TimeoutError,
)

_MAX_CAUSE_DEPTH = 8


def is_retryable_error(exc: BaseException) -> bool:
    """Return True when ``exc`` is transient: throttling, a 429/5xx answer, a timeout or a dropped connection.

    Wrapped errors count too: an ``EmbeddingError`` raised ``from`` a throttling ``ClientError`` is
    retried, because the wrapper says *where* it failed, not *whether* trying again can help.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    for _ in range(_MAX_CAUSE_DEPTH):
        if current is None or id(current) in seen:
            return False
        seen.add(id(current))
        if _is_retryable_one(current):
            return True
        current = current.__cause__
    return False


def _is_retryable_one(exc: BaseException) -> bool:
    if isinstance(exc, ClientError):
        response: dict[str, Any] = getattr(exc, "response", None) or {}
        code = (response.get("Error") or {}).get("Code")
        if code in _RETRYABLE_ERROR_CODES:
            return True
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return isinstance(status, int) and (status == 429 or 500 <= status <= 599)
    if isinstance(exc, _RETRYABLE_EXCEPTIONS):
        return True
    # The agent's model throttling (the summary step). Looked up lazily: if strands was never
    # imported, no strands exception can exist, and the writer stays importable on its own.
    strands_exceptions = sys.modules.get("strands.types.exceptions")
    throttled = getattr(strands_exceptions, "ModelThrottledException", None)
    return isinstance(throttled, type) and isinstance(exc, throttled)


def full_jitter(cap: float) -> float:
    """The "full jitter" backoff of the AWS architecture blog: a uniform wait in ``[0, cap]``.

    Spreading retries over the whole window is what stops many writers that were throttled together
    from retrying together.
    """
    return random.uniform(0.0, cap)
