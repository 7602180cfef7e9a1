"""Where S3 Vectors clients come from: the one place that knows AWS from offline.

Everything above this module talks to an :class:`~..client.S3VectorsClient`: ``boto3.client("s3vectors")``
on AWS (``AWS_ENDPOINT_URL_S3VECTORS`` is honoured by boto3 itself, so the local endpoint works too), or
the embedded engine with the same methods, shapes and errors offline. Like httpx's transports, the
layers above never ask which one they have. boto3's clients are untyped: this is the one place that
vouches for them (:func:`_boto3_client`), so everything above is type-checked against the seam.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import boto3
from botocore.config import Config

from ..client import S3VectorsClient
from ..config import Backend

if TYPE_CHECKING:
    from ..tenancy import TokenVendingMachine

__all__ = [
    "AWS_CALL_ATTEMPTS",
    "AWS_RETRY_CONFIG",
    "aws_client",
    "local_client",
    "make_s3vectors_client",
    "s3vectors_client",
    "vended_client",
]

#: HTTP calls per AWS call at most: botocore's standard mode makes the short retries (throttling, 5xx,
#: dropped connections, with its own jittered backoff of a second or two). Long retries are the
#: background writer's (an attempt every 60 s at most, for up to 24 h): the two multiply, so this
#: stays small. A failing write step costs at most ``AWS_CALL_ATTEMPTS`` calls per writer attempt.
AWS_CALL_ATTEMPTS = 3

#: Retries for throttling (429) and 5xx on the AWS path; botocore's standard mode backs off with jitter.
AWS_RETRY_CONFIG = Config(
    retries={"mode": "standard", "total_max_attempts": AWS_CALL_ATTEMPTS},
    connect_timeout=5,
    read_timeout=30,
    user_agent_extra="strands-s3-vectors-memory",
)

_local_clients: dict[Path, S3VectorsClient] = {}
_local_lock = threading.Lock()


def local_client(data_dir: Path) -> S3VectorsClient:
    """Return the process-wide embedded engine client for ``data_dir``.

    One client per directory, so every store in a process shares one in-memory copy of the vectors.
    """
    from s3vectors_engine import LocalS3VectorsClient

    root = Path(data_dir).expanduser().resolve()
    with _local_lock:
        client = _local_clients.get(root)
        if client is None:
            root.mkdir(parents=True, exist_ok=True)
            engine: S3VectorsClient = LocalS3VectorsClient(root)  # checked statically against the seam
            client = _local_clients[root] = engine
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


def s3vectors_client(
    *, region: str, session: boto3.Session | None = None, endpoint_url: str | None = None
) -> S3VectorsClient:
    """:func:`aws_client` for S3 Vectors, typed as the seam (``session``: whose credentials sign)."""
    return _vouch(aws_client("s3vectors", region=region, session=session, endpoint_url=endpoint_url))


def vended_client(
    tvm: TokenVendingMachine, tenant_id: str, *, region: str, endpoint_url: str | None = None
) -> S3VectorsClient:
    """An S3 Vectors client signed with ``tenant_id``'s vended credentials, kept by ``tvm`` while they last.

    Built with the library's retry and timeout settings, like every other client here; raises
    :class:`~strands_s3_vectors_memory.IsolationError` when the credentials cannot be vended.
    """
    return _vouch(
        tvm.client_for(tenant_id, "s3vectors", endpoint_url=endpoint_url, region=region, config=AWS_RETRY_CONFIG)
    )


def make_s3vectors_client(
    backend: Backend, *, region: str, data_dir: Path, endpoint_url: str | None = None
) -> S3VectorsClient:
    """Return the S3 Vectors client for ``backend`` (ambient credentials on AWS)."""
    if backend is Backend.LOCAL:
        return local_client(data_dir)
    return s3vectors_client(region=region, endpoint_url=endpoint_url)


def _vouch(client: Any) -> S3VectorsClient:
    """A boto3 ``s3vectors`` client, as the seam it satisfies.

    boto3 generates its methods from the service model at run time, so mypy cannot see them; they
    are the very operations (and keyword arguments) :class:`S3VectorsClient` spells out.
    """
    return cast(S3VectorsClient, client)
