"""Which errors are worth retrying, and the backoff jitter (:mod:`strands_s3_vectors_memory.durability._retry`)."""

from __future__ import annotations

import random
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    ParamValidationError,
    ReadTimeoutError,
)

from strands_s3_vectors_memory.durability._retry import full_jitter, is_retryable_error
from strands_s3_vectors_memory.errors import EmbeddingError


def _throttled(code: str = "ThrottlingException", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "slow down"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutVectors",
    )

@pytest.mark.parametrize(
    "exc",
    [
        _throttled("TooManyRequestsException", 429),
        _throttled("ThrottlingException"),
        _throttled("Throttling"),
        _throttled("ServiceUnavailableException", 503),
        _throttled("InternalServerException", 500),
        _throttled("RequestTimeout", 408),
        _throttled("SomethingNew", 502),
        _throttled("SomethingNew", 429),
        EndpointConnectionError(endpoint_url="https://x"),
        ConnectTimeoutError(endpoint_url="https://x"),
        ReadTimeoutError(endpoint_url="https://x"),
        ConnectionClosedError(endpoint_url="https://x"),
        TimeoutError("timed out"),
        ConnectionResetError("reset"),
    ],
    ids=repr,
)
def test_transient_errors_are_retryable(exc: BaseException) -> None:
    assert is_retryable_error(exc)


@pytest.mark.parametrize(
    "exc",
    [
        _throttled("ValidationException", 400),
        _throttled("AccessDeniedException", 403),
        _throttled("NotFoundException", 404),
        _throttled("ServiceQuotaExceededException", 402),
        NoCredentialsError(),
        ParamValidationError(report="bad"),
        ValueError("bad"),
        KeyError("x"),
    ],
    ids=repr,
)
def test_permanent_errors_are_not_retryable(exc: BaseException) -> None:
    assert not is_retryable_error(exc)


def test_a_wrapped_transient_error_is_retryable() -> None:
    try:
        try:
            raise _throttled()
        except ClientError as inner:
            raise EmbeddingError("embedding failed") from inner
    except EmbeddingError as outer:
        assert is_retryable_error(outer)
    assert not is_retryable_error(EmbeddingError("model returned garbage"))


def test_the_agents_model_throttling_is_retryable() -> None:
    from strands.types.exceptions import ModelThrottledException

    assert is_retryable_error(ModelThrottledException("rate exceeded"))


def test_an_error_caused_by_itself_does_not_loop_forever() -> None:
    error = EmbeddingError("outer")
    error.__cause__ = error
    assert not is_retryable_error(error)


def test_full_jitter_waits_anywhere_between_zero_and_the_cap() -> None:
    random.seed(7)
    waits = [full_jitter(2.0) for _ in range(2000)]
    assert all(0.0 <= w <= 2.0 for w in waits)
    assert min(waits) < 0.1 and max(waits) > 1.9  # the whole window is used: retries spread out
    assert full_jitter(0.0) == 0.0


def test_one_retry_budget_a_throttled_put_costs_at_most_three_http_calls_per_writer_attempt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """botocore makes the short retries, the writer the long ones: they must not multiply into dozens of calls.

    A real botocore client, with the library's settings, against an HTTP server that throttles everything.
    """
    import http.server
    import threading

    from strands_s3_vectors_memory.durability._spool_format import WriteJob
    from strands_s3_vectors_memory.durability._writer import BackgroundWriter, JobContext
    from strands_s3_vectors_memory.index._clients import AWS_CALL_ATTEMPTS, s3vectors_client

    calls: list[str] = []

    class Throttling(http.server.BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            calls.append(self.path)
            body = b'{"message": "Rate exceeded"}'
            self.send_response(429)
            self.send_header("x-amzn-ErrorType", "ThrottlingException")
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:
            pass

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Throttling)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    client = s3vectors_client(region="us-east-1", endpoint_url=f"http://127.0.0.1:{server.server_address[1]}")
    attempts: list[int] = []

    def put(context: JobContext) -> None:
        attempts.append(len(calls))
        client.put_vectors(vectorBucketName="bkt", indexName="memory",
                           vectors=[{"key": "k", "data": {"float32": [1.0]}}])

    writer = BackgroundWriter(put, spool_dir=None, max_attempts=2, base_delay=0.0, max_age=0.0,
                              flush_at_exit=False)
    try:
        writer.submit(WriteJob("j1", {}, created_at=0.0))  # already max_age old: one attempt, then dead
        assert writer.flush(60)
    finally:
        writer.close(10)
        server.shutdown()
    assert len(attempts) == 1 and writer.stats.dead_lettered == 1
    assert len(calls) == AWS_CALL_ATTEMPTS == 3
