"""Fixtures for the embedded engine: a fresh engine per test, and moto as the reference service.

``any_client`` runs a test twice: against :class:`LocalS3VectorsClient` and against
``boto3.client("s3vectors")`` on moto 5.2.5, so response shapes and errors are held to the
same standard. moto does not implement QueryVectors; tests that need it use ``engine`` only.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws

from s3vectors_engine import LocalS3VectorsClient

#: Same account for both backends, so ARNs compare equal.
ACCOUNT_ID = "123456789012"
REGION = "us-east-1"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[LocalS3VectorsClient]:
    """An empty engine rooted in this test's temporary directory."""
    with LocalS3VectorsClient(tmp_path / "engine", region=REGION, account_id=ACCOUNT_ID) as client:
        yield client


@pytest.fixture
def moto_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """``boto3.client("s3vectors")`` on moto, with throwaway credentials."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", REGION)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3VECTORS", raising=False)
    with mock_aws():
        yield boto3.client("s3vectors", region_name=REGION)


@pytest.fixture(params=["engine", "moto"])
def any_client(request: pytest.FixtureRequest) -> Any:
    """The engine, then moto: for behaviour both must share."""
    return request.getfixturevalue("engine" if request.param == "engine" else "moto_client")


@pytest.fixture
def backend(any_client: Any) -> str:
    """Which backend ``any_client`` is (for explicit, reasoned skips of moto gaps)."""
    return "engine" if isinstance(any_client, LocalS3VectorsClient) else "moto"
