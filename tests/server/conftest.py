"""Fixtures for the local S3 Vectors endpoint: real uvicorn servers, real boto3 clients.

Backends: the embedded engine (``LocalS3VectorsClient``, the default the endpoint serves) and a
moto-backed boto3 client (moto implements every operation except QueryVectors), so the server is
shown to be a transparent pipe for any boto3-shaped client.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from s3vectors_engine.server import LocalEndpoint

REGION = "us-east-1"
#: No retries: a test must see the first answer, and 5xx retries would only slow failures down.
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"}, connect_timeout=5, read_timeout=30)

ClientFactory = Callable[..., Any]


def _make_client(url: str, key: str = "AKIDTEST", *, config: Config = NO_RETRY) -> Any:
    return boto3.client(
        "s3vectors",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key="dummy-secret",
        config=config,
    )


@pytest.fixture(scope="session")
def client_for() -> ClientFactory:
    """``client_for(url, key="AKIDTEST")``: a stock boto3 s3vectors client with dummy credentials."""
    return _make_client


@pytest.fixture(scope="session")
def engine_factory() -> Callable[[Path], Any]:
    """``engine_factory(root)``: the embedded engine on a directory."""
    from s3vectors_engine import LocalS3VectorsClient

    return LocalS3VectorsClient


@pytest.fixture(scope="module")
def moto_backend() -> Iterator[Any]:
    """A moto-backed boto3 client, for one module (moto's state is process-global)."""
    from moto import mock_aws

    with mock_aws():
        yield boto3.client("s3vectors", region_name=REGION)


@pytest.fixture(scope="module")
def engine_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalEndpoint]:
    """One server per module over the engine on a fresh directory (tests use distinct buckets)."""
    with LocalEndpoint(tmp_path_factory.mktemp("engine")) as endpoint:
        yield endpoint


@pytest.fixture(scope="module")
def engine_client(engine_endpoint: LocalEndpoint) -> Any:
    """A boto3 client on the module's engine endpoint."""
    return _make_client(engine_endpoint.url)
