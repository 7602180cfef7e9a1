"""Helpers for the S3 spool tests: an offline S3 (moto), made atomic where S3 is, and what is in it.

moto 5.2 implements the conditional writes the S3 spool relies on (``PutObject`` with
``If-None-Match: *`` and ``If-Match``, ``DeleteObject`` with ``If-Match``; 412 when the condition
fails, 404 for ``If-Match`` on a missing key), but it checks the condition and then writes without
a lock: two threads can both pass ``If-None-Match: *``. S3 decides each conditional write atomically,
so :func:`atomic_moto` serialises moto's object requests; the race tests would otherwise test moto.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.s3.responses import S3Response

from strands_s3_vectors_memory.durability._spool_format import WriteJob, decode_job

__all__ = ["BUCKET", "atomic_moto", "job_objects", "keys_below", "offline_s3"]

BUCKET = "memory-spool"


@contextmanager
def offline_s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """moto's in-process S3 with the spool bucket, and fake credentials as an operator's environment has."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("s3", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        yield client


def atomic_moto(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make each of moto's object requests atomic (check and write under one lock), as S3's are."""
    lock = threading.Lock()
    original = S3Response.key_response

    def locked(self: S3Response, *args: Any, **kwargs: Any) -> Any:
        with lock:
            return original(self, *args, **kwargs)

    monkeypatch.setattr(S3Response, "key_response", locked)


def keys_below(client: Any, prefix: str, bucket: str = BUCKET) -> list[str]:
    """The object keys below ``prefix/`` (relative to it)."""
    start = prefix.rstrip("/") + "/"
    found: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=start):
        found.extend(item["Key"][len(start):] for item in page.get("Contents", []))
    return sorted(found)


def job_objects(client: Any, spool_prefix: str, bucket: str = BUCKET) -> list[WriteJob]:
    """The jobs pending in an S3 spool (decoded as the CLI would)."""
    jobs = []
    for name in keys_below(client, f"{spool_prefix}/jobs", bucket):
        body = client.get_object(Bucket=bucket, Key=f"{spool_prefix}/jobs/{name}")["Body"].read()
        jobs.append(decode_job(body))
    return jobs
