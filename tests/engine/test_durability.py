"""Durability and concurrency: reopen, SIGKILL mid-put, threads, and several processes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from engine_support import BUCKET, INDEX, make_index

from s3vectors_engine import LocalS3VectorsClient, _storage

NAMES = {"vectorBucketName": BUCKET, "indexName": INDEX}


def _client(root: Path) -> LocalS3VectorsClient:
    return LocalS3VectorsClient(root, account_id="123456789012")


def _keys(client: LocalS3VectorsClient) -> list[str]:
    pages = client.get_paginator("list_vectors").paginate(PaginationConfig={"PageSize": 1000}, **NAMES)
    return [v["key"] for p in pages for v in p["vectors"]]


def test_everything_survives_reopen(tmp_path: Path) -> None:
    with _client(tmp_path) as first:
        make_index(first, dimension=3, metric="euclidean", non_filterable=["content"])
        first.put_vectors(
            vectors=[{"key": "a", "data": {"float32": [1.0, 2.0, 3.0]}, "metadata": {"user_id": "u", "content": "c"}}],
            **NAMES,
        )
        before = first.get_index(**NAMES)["index"]
        first.query_vectors(topK=1, queryVector={"float32": [0.0, 0.0, 0.0]}, **NAMES)  # warm the cache
    with _client(tmp_path) as second:
        assert second.get_index(**NAMES)["index"] == before
        got = second.get_vectors(keys=["a"], returnData=True, returnMetadata=True, **NAMES)["vectors"]
        assert got == [{"key": "a", "data": {"float32": [1.0, 2.0, 3.0]}, "metadata": {"user_id": "u", "content": "c"}}]
        hits = second.query_vectors(
            topK=1, queryVector={"float32": [1.0, 2.0, 4.0]}, filter={"user_id": "u"}, returnDistance=True, **NAMES
        )
        assert hits["vectors"] == [{"key": "a", "distance": 1.0}]


def test_closed_client_refuses_work(tmp_path: Path) -> None:
    client = _client(tmp_path)
    client.close()
    with pytest.raises(RuntimeError):
        client.list_vector_buckets()


_WRITER = textwrap.dedent(
    """
    import sys
    from s3vectors_engine import LocalS3VectorsClient
    root, prefix, batches, size = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
    client = LocalS3VectorsClient(root, account_id="123456789012")
    names = {"vectorBucketName": "test-bucket", "indexName": "test-index"}
    for b in range(batches):
        client.put_vectors(
            vectors=[
                {"key": f"{prefix}-{b}-{i}", "data": {"float32": [float(b), float(i), 1.0, 2.0] * 16},
                 "metadata": {"batch": b, "writer": prefix}}
                for i in range(size)
            ],
            **names,
        )
        print(b, flush=True)
    """
)


def _spawn(root: Path, prefix: str, batches: int, size: int) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(root), prefix, str(batches), str(size)],
        stdout=subprocess.PIPE,
        text=True,
    )


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_sigkill_mid_put_leaves_whole_batches(tmp_path: Path) -> None:
    with _client(tmp_path) as setup:
        make_index(setup, dimension=64, metric="euclidean")
    proc = _spawn(tmp_path, "w", 10_000, 500)
    assert proc.stdout is not None
    acknowledged = -1
    for line in proc.stdout:  # let a few batches land, then kill it while it is writing
        acknowledged = int(line)
        if acknowledged >= 3:
            break
    time.sleep(0.013)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    with _client(tmp_path) as reopened:
        counts: dict[int, int] = {}
        for key in _keys(reopened):
            batch = int(key.split("-")[1])
            counts[batch] = counts.get(batch, 0) + 1
        assert all(n == 500 for n in counts.values()), counts  # all or nothing
        assert set(range(acknowledged + 1)) <= set(counts)  # every acknowledged batch is durable
        assert sorted(counts) == list(range(len(counts)))  # no gaps
        # and the index is still fully usable
        reopened.put_vectors(vectors=[{"key": "after", "data": {"float32": [0.0] * 64}}], **NAMES)
        hits = reopened.query_vectors(topK=1, queryVector={"float32": [0.0] * 64}, **NAMES)
        assert hits["vectors"] == [{"key": "after"}]


def test_threads_writing_and_querying_lose_nothing(tmp_path: Path) -> None:
    with _client(tmp_path) as client:
        make_index(client, dimension=4, metric="euclidean")
        errors: list[BaseException] = []

        def writer(t: int) -> None:
            try:
                for b in range(10):
                    client.put_vectors(
                        vectors=[
                            {
                                "key": f"t{t}-{b}-{i}",
                                "data": {"float32": [float(t), float(b), float(i), 1.0]},
                                "metadata": {"user_id": f"u{t}"},
                            }
                            for i in range(25)
                        ],
                        **NAMES,
                    )
                    client.query_vectors(
                        topK=5, queryVector={"float32": [1.0, 1.0, 1.0, 1.0]}, filter={"user_id": f"u{t}"}, **NAMES
                    )
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)

        threads = [threading.Thread(target=writer, args=(t,)) for t in range(8)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        assert errors == []
        assert len(set(_keys(client))) == 8 * 10 * 25
        for t in range(8):
            out = client.query_vectors(
                topK=100, queryVector={"float32": [0.0, 0.0, 0.0, 0.0]}, filter={"user_id": f"u{t}"}, **NAMES
            )
            assert len(out["vectors"]) == 100
            assert all(v["key"].startswith(f"t{t}-") for v in out["vectors"])


def test_two_processes_writing_lose_nothing(tmp_path: Path) -> None:
    with _client(tmp_path) as observer:
        make_index(observer, dimension=64, metric="euclidean")
        procs = [_spawn(tmp_path, prefix, 10, 100) for prefix in ("p", "q")]
        seen: list[int] = []
        while any(p.poll() is None for p in procs):  # query while they write: counts only grow
            out = observer.query_vectors(topK=100, queryVector={"float32": [0.0] * 64}, **NAMES)
            seen.append(len(out["vectors"]))
            time.sleep(0.01)
        for p in procs:
            assert p.wait() == 0
        assert seen == sorted(seen)
        keys = _keys(observer)
        assert len(keys) == len(set(keys)) == 2 * 10 * 100
        # the observer's cache caught up with both writers' rows
        out = observer.query_vectors(topK=3, queryVector={"float32": [9.0, 99.0, 1.0, 2.0] * 16}, **NAMES)
        assert {v["key"] for v in out["vectors"][:2]} == {"p-9-99", "q-9-99"}


def test_other_clients_writes_and_deletes_reach_a_warm_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_storage, "TOMBSTONE_LIMIT", 50)
    with _client(tmp_path) as reader, _client(tmp_path) as writer:
        make_index(writer, dimension=2, metric="euclidean")
        rng = np.random.default_rng(0)
        data = {f"k{i}": rng.standard_normal(2).astype(np.float32) for i in range(300)}
        writer.put_vectors(vectors=[{"key": k, "data": {"float32": v.tolist()}} for k, v in data.items()], **NAMES)
        query: dict[str, Any] = {"topK": 100, "queryVector": {"float32": [0.0, 0.0]}, **NAMES}

        def expected() -> list[str]:
            keys = sorted(data)
            dist = np.array([np.linalg.norm(data[k].astype(np.float64)) for k in keys])
            return [keys[i] for i in np.argsort(dist, kind="stable")[:100]]

        assert [v["key"] for v in reader.query_vectors(**query)["vectors"]] == expected()
        for step in range(6):  # deletes beyond the tombstone limit force a prune and a reload
            doomed = sorted(data)[:40]
            writer.delete_vectors(keys=doomed, **NAMES)
            for k in doomed:
                del data[k]
            fresh = {f"n{step}-{i}": rng.standard_normal(2).astype(np.float32) for i in range(10)}
            writer.put_vectors(vectors=[{"key": k, "data": {"float32": v.tolist()}} for k, v in fresh.items()], **NAMES)
            data.update(fresh)
            got = [v["key"] for v in reader.query_vectors(**query)["vectors"]]
            assert got == expected(), step


def test_bucket_recreated_elsewhere_is_seen_fresh(tmp_path: Path) -> None:
    with _client(tmp_path) as a, _client(tmp_path) as b:
        make_index(a, dimension=2)
        a.put_vectors(vectors=[{"key": "old", "data": {"float32": [1.0, 0.0]}}], **NAMES)
        query: dict[str, Any] = {"topK": 5, "queryVector": {"float32": [1.0, 0.0]}, **NAMES}
        assert a.query_vectors(**query)["vectors"] == [{"key": "old"}]
        b.delete_index(**NAMES)
        b.delete_vector_bucket(vectorBucketName=BUCKET)
        with pytest.raises(a.exceptions.NotFoundException):
            a.query_vectors(**query)
        make_index(b, dimension=2)
        b.put_vectors(vectors=[{"key": "new", "data": {"float32": [1.0, 0.0]}}], **NAMES)
        assert a.query_vectors(**query)["vectors"] == [{"key": "new"}]


def test_connections_of_finished_threads_are_released(tmp_path: Path) -> None:
    """A server running each request on a fresh thread must not leak one SQLite handle per thread."""
    import gc

    with _client(tmp_path) as client:
        make_index(client, dimension=2)

        def one_request() -> None:
            client.query_vectors(topK=1, queryVector={"float32": [1.0, 0.0]}, **NAMES)

        for _ in range(30):
            th = threading.Thread(target=one_request)
            th.start()
            th.join()
        gc.collect()
        assert len(client._storage._holders) <= 2  # this thread's, and at most one not yet collected
        one_request()  # the client itself is unaffected


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_forked_child_opens_its_own_connections(tmp_path: Path) -> None:
    """SQLite handles must not cross fork: the child reconnects, the parent keeps working."""
    with _client(tmp_path) as client:
        make_index(client, dimension=2)
        client.put_vectors(vectors=[{"key": "parent", "data": {"float32": [1.0, 0.0]}}], **NAMES)
        pid = os.fork()
        if pid == 0:  # pragma: no cover - runs in the child
            code = 1
            try:
                client.put_vectors(vectors=[{"key": "child", "data": {"float32": [0.0, 1.0]}}], **NAMES)
                got = client.get_vectors(keys=["parent", "child"], **NAMES)["vectors"]
                code = 0 if len(got) == 2 else 2
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        assert os.WEXITSTATUS(status) == 0
        hits = client.query_vectors(topK=5, queryVector={"float32": [0.0, 1.0]}, **NAMES)["vectors"]
        assert [v["key"] for v in hits] == ["child", "parent"]
