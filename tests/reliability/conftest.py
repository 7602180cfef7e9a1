"""Fixtures of the reliability suite: isolated offline stores, endpoints with tenant access rules.

Everything lives under ``tmp_path`` and is closed at the end of the test, so the suite runs in
parallel (xdist) without sharing state; plugins are closed so no writer thread outlives its test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from reliability_support import (
    ADMIN_KEY,
    RecordingPolicy,
    SeededRandomEmbedder,
    boto3_client,
    tenant_policy,
)

from s3vectors_engine import LocalS3VectorsClient
from s3vectors_engine.server import LocalEndpoint
from strands_s3_vectors_memory import MultiTenantS3VectorMemory, S3VectorMemory, S3VectorMemoryPlugin

BUCKET = "reliability"


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[LocalS3VectorsClient]:
    """A private embedded engine (not the process-wide one), closed after the test."""
    client = LocalS3VectorsClient(tmp_path / "engine")
    yield client
    client.close()


@pytest.fixture
def hash_store(engine: LocalS3VectorsClient, tmp_path: Path) -> S3VectorMemory:
    """Single-tenant store on the private engine with the fast hash embedder."""
    return S3VectorMemory(
        BUCKET, backend="local", data_dir=tmp_path, client=engine, embedder=SeededRandomEmbedder(),
        similarity_threshold=0.0,
    )


@pytest.fixture
def hash_multi_store(engine: LocalS3VectorsClient, tmp_path: Path) -> MultiTenantS3VectorMemory:
    """Multi-tenant store on the same private engine (same bucket) with the hash embedder."""
    return MultiTenantS3VectorMemory(
        BUCKET, backend="local", data_dir=tmp_path, client=engine, embedder=SeededRandomEmbedder(),
        similarity_threshold=0.0,
    )


@pytest.fixture
def plugins() -> Iterator[list[S3VectorMemoryPlugin]]:
    """Register plugins here to have their writers closed when the test ends."""
    created: list[S3VectorMemoryPlugin] = []
    yield created
    for plugin in created:
        plugin.close(5)


@pytest.fixture(scope="module")
def tenant_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalEndpoint, RecordingPolicy]]:
    """One endpoint per module, enforcing 'key TENANT-<t> reaches memory-<t> only'."""
    policy = tenant_policy()
    with LocalEndpoint(tmp_path_factory.mktemp("endpoint"), access_policy=policy) as endpoint:
        yield endpoint, policy


@pytest.fixture
def admin_client(tenant_endpoint: tuple[LocalEndpoint, RecordingPolicy]) -> Any:
    return boto3_client(tenant_endpoint[0].url, ADMIN_KEY)


@pytest.fixture
def fresh_bucket(admin_client: Any, request: pytest.FixtureRequest) -> str:
    """A bucket of its own on the module's endpoint (tests of one module share the server)."""
    import hashlib

    name = "b-" + hashlib.sha256(request.node.nodeid.encode()).hexdigest()[:20]
    admin_client.create_vector_bucket(vectorBucketName=name)
    return name


ClientFactory = Callable[[str], Any]
