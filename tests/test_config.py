from __future__ import annotations

from pathlib import Path

import pytest

from strands_s3_vectors_memory.config import (
    Backend,
    resolve_backend,
    resolve_bucket_name,
    resolve_data_dir,
    resolve_region,
)
from strands_s3_vectors_memory.errors import ConfigurationError


def test_backend_defaults_to_aws(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S3_VECTORS_MEMORY_BACKEND", raising=False)
    assert resolve_backend() is Backend.AWS


def test_backend_env_switches_to_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_VECTORS_MEMORY_BACKEND", " LOCAL ")
    assert resolve_backend() is Backend.LOCAL


def test_explicit_backend_wins_over_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("S3_VECTORS_MEMORY_BACKEND", "local")
    assert resolve_backend("aws") is Backend.AWS


def test_unknown_backend_is_a_clear_error() -> None:
    with pytest.raises(ConfigurationError, match="'aws' or 'local'"):
        resolve_backend("cloud")


def test_data_dir_env_and_argument(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("S3_VECTORS_MEMORY_DATA_DIR", str(tmp_path / "env"))
    assert resolve_data_dir() == tmp_path / "env"
    assert resolve_data_dir(tmp_path / "arg") == tmp_path / "arg"


def test_region_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_REGION", raising=False)
    assert resolve_region() == "us-east-1"
    monkeypatch.setenv("AWS_REGION", "eu-west-1")
    assert resolve_region() == "eu-west-1"


def test_bucket_name_required(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("S3_VECTOR_BUCKET_NAME", raising=False)
    with pytest.raises(ConfigurationError, match="S3_VECTOR_BUCKET_NAME"):
        resolve_bucket_name()
    monkeypatch.setenv("S3_VECTOR_BUCKET_NAME", "b1")
    assert resolve_bucket_name() == "b1"
