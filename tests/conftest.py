"""Shared fixtures: an offline environment (embedded engine + bundled embedder) per test."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


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
