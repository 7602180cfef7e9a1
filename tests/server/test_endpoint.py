"""Running the endpoint: env-var discovery, concurrency, clean shutdown, persistence, the CLI's serve()."""

from __future__ import annotations

import queue
import re
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import boto3
import pytest

from s3vectors_engine.server import ENDPOINT_ENV, LocalEndpoint

ClientFactory = Callable[..., Any]
_VECTOR = {"float32": [0.0, 1.0, 0.0]}


def _make_index(client: Any, bucket: str, index: str = "memory-a") -> None:
    client.create_vector_bucket(vectorBucketName=bucket)
    client.create_index(
        vectorBucketName=bucket, indexName=index, dataType="float32", dimension=3, distanceMetric="cosine"
    )


def test_env_var_points_a_plain_boto3_client_at_the_server(
    engine_endpoint: LocalEndpoint, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    for name in (
        "AWS_ENDPOINT_URL",
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(ENDPOINT_ENV, engine_endpoint.url)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDENV")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "no-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "no-credentials"))
    monkeypatch.setattr(boto3, "DEFAULT_SESSION", None)  # a fresh default session reads the env above

    client = boto3.client("s3vectors")
    assert client.meta.endpoint_url == engine_endpoint.url
    _make_index(client, "env-bucket")
    # The engine behind the server saw it: the request went nowhere else.
    direct = engine_endpoint.backend.get_index(vectorBucketName="env-bucket", indexName="memory-a")
    assert direct["index"]["dimension"] == 3


def test_many_concurrent_clients_lose_nothing(engine_endpoint: LocalEndpoint, client_for: ClientFactory) -> None:
    threads, batches, per_batch = 8, 6, 25
    _make_index(client_for(engine_endpoint.url), "busy-bucket")
    clients = [client_for(engine_endpoint.url) for _ in range(threads)]  # boto3 client creation is not thread-safe

    def work(worker: int) -> int:
        client = clients[worker]
        hits = 0
        for batch in range(batches):
            vectors = [
                {
                    "key": f"w{worker}-b{batch}-{i}",
                    "data": {"float32": [1.0, float(worker), float(i)]},
                    "metadata": {"worker": worker},
                }
                for i in range(per_batch)
            ]
            client.put_vectors(vectorBucketName="busy-bucket", indexName="memory-a", vectors=vectors)
            found = client.query_vectors(
                vectorBucketName="busy-bucket",
                indexName="memory-a",
                queryVector={"float32": [1.0, float(worker), 0.0]},
                topK=3,
                filter={"worker": worker},
            )
            hits += len(found["vectors"])
        return hits

    with ThreadPoolExecutor(max_workers=threads) as pool:
        hits = list(pool.map(work, range(threads)))
    assert all(h == 3 * batches for h in hits)
    keys: set[str] = set()
    for page in clients[0].get_paginator("list_vectors").paginate(vectorBucketName="busy-bucket", indexName="memory-a"):
        keys.update(v["key"] for v in page["vectors"])
    assert len(keys) == threads * batches * per_batch


def _refused(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    except ConnectionRefusedError:
        return True
    return False


def test_shutdown_releases_the_port_and_the_thread(tmp_path: Path, client_for: ClientFactory) -> None:
    with LocalEndpoint(tmp_path / "data") as endpoint:
        assert endpoint.url.startswith("http://127.0.0.1:")  # loopback unless asked otherwise
        port = endpoint.port
        client = client_for(endpoint.url)
        _make_index(client, "persist-bucket")  # leaves a keep-alive connection open
        client.put_vectors(
            vectorBucketName="persist-bucket",
            indexName="memory-a",
            vectors=[{"key": "kept", "data": _VECTOR}],
        )
    assert _refused(port)
    assert not [t for t in threading.enumerate() if t.name == f"s3vectors-endpoint-{port}"]
    # Same port, same directory: a new server binds at once and the data survived.
    with LocalEndpoint(tmp_path / "data", port=port) as again:
        assert again.port == port
        got = client_for(again.url).get_vectors(vectorBucketName="persist-bucket", indexName="memory-a", keys=["kept"])
        assert [v["key"] for v in got["vectors"]] == ["kept"]


def test_busy_port_fails_loudly(engine_endpoint: LocalEndpoint, tmp_path: Path) -> None:
    with pytest.raises(OSError), LocalEndpoint(tmp_path, port=engine_endpoint.port):
        pass


def test_serve_runs_until_interrupted(tmp_path: Path, client_for: ClientFactory) -> None:
    code = "import sys; from s3vectors_engine.server import serve; serve(sys.argv[1], port=0)"
    proc = subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "served")], stderr=subprocess.PIPE, text=True)
    lines: queue.Queue[str] = queue.Queue()

    def pump() -> None:
        for line in proc.stderr or []:
            lines.put(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    try:
        seen = ""
        while f"export {ENDPOINT_ENV}=" not in seen:
            seen += lines.get(timeout=30)
        match = re.search(rf"export {ENDPOINT_ENV}=(http://127\.0\.0\.1:\d+)", seen)
        assert match, seen
        client = client_for(match.group(1))
        _make_index(client, "cli-bucket")
        assert [b["vectorBucketName"] for b in client.list_vector_buckets()["vectorBuckets"]] == ["cli-bucket"]
    finally:
        proc.send_signal(signal.SIGINT)
        assert proc.wait(timeout=20) == 0
    reader.join(timeout=5)
