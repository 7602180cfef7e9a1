"""Where S3 Vectors clients come from: the one place that knows AWS from offline.

Everything above this module talks to "an S3-Vectors-shaped client": ``boto3.client("s3vectors")`` on
AWS (``AWS_ENDPOINT_URL_S3VECTORS`` is honoured by boto3 itself, so the local endpoint works too), or
the embedded engine with the same methods, shapes and errors offline. Like httpx's transports, the
layers above never ask which one they have.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import boto3
from botocore.config import Config

from .config import Backend

#: Retries for throttling (429) and 5xx on the AWS path; botocore's standard mode backs off with jitter.
AWS_RETRY_CONFIG = Config(
    retries={"mode": "standard", "max_attempts": 6},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="strands-s3-vectors-memory",
)

_local_clients: dict[Path, Any] = {}
_local_lock = threading.Lock()


def local_client(data_dir: Path) -> Any:
    """Return the process-wide embedded engine client for ``data_dir``.

    One client per directory, so every store in a process shares one in-memory copy of the vectors.
    """
    from s3vectors_engine import LocalS3VectorsClient

    root = Path(data_dir).expanduser().resolve()
    with _local_lock:
        client = _local_clients.get(root)
        if client is None:
            root.mkdir(parents=True, exist_ok=True)
            client = _local_clients[root] = LocalS3VectorsClient(root)
        return client


def aws_client(
    service_name: str = "s3vectors",
    *,
    region: str,
    session: boto3.Session | None = None,
    endpoint_url: str | None = None,
) -> Any:
    """Return a boto3 client with the library's retry and timeout settings."""
    factory = session or boto3.Session()
    return factory.client(service_name, region_name=region, endpoint_url=endpoint_url, config=AWS_RETRY_CONFIG)


def make_s3vectors_client(
    backend: Backend, *, region: str, data_dir: Path, endpoint_url: str | None = None
) -> Any:
    """Return the S3 Vectors client for ``backend`` (ambient credentials on AWS)."""
    if backend is Backend.LOCAL:
        return local_client(data_dir)
    return aws_client("s3vectors", region=region, endpoint_url=endpoint_url)
