"""Fault injection around the write path: every conversation handed to the writer is stored, once.

Each test ends a known set of conversations under a fault (throttling, 5xx, timeouts, embedding or
model failures, STS failures, a full or read-only spool, a SIGKILL mid-write), recovers the way a
user would (waiting, fixing the fault, restarting the process), then counts the summaries actually
in the index: requested minus stored must be 0, with no duplicates. Reads fail open instead: the
agent still answers, with an empty memory context and a logged warning.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ConnectTimeoutError, EndpointConnectionError, ReadTimeoutError
from isolation_machine import TVM_ROLE
from reliability_support import (
    ADMIN_KEY,
    PROMPT,
    FakeSts,
    Fault,
    FaultyClient,
    RecordingPolicy,
    SeededRandomEmbedder,
    boto3_client,
    client_error,
    make_agent,
    say,
    summaries,
    tenant_policy,
    tool_results,
)
from strands.types.content import Messages
from strands.types.exceptions import ModelThrottledException

import strands_s3_vectors_memory.durability._spool as spool_module
import strands_s3_vectors_memory.durability._writer_spool as writer_spool_module
from s3vectors_engine import LocalS3VectorsClient
from s3vectors_engine.server import LocalEndpoint
from strands_s3_vectors_memory import (
    EmbeddingError,
    MultiTenantS3VectorMemory,
    RetrievalSettings,
    S3VectorMemory,
    S3VectorMemoryPlugin,
    TokenVendingMachine,
)
from strands_s3_vectors_memory.plugin._settings import DEFAULT_WRITER_WORKERS
from strands_s3_vectors_memory.testing import Reply, ScriptedModel, ToolCall, default_responder
from support import all_vectors, asks_for_summary, chat_prompts, is_summary_request

CHILD = Path(__file__).parent / "helpers" / "crash_child.py"
BUCKET = "crash"  # the crash child uses the same bucket
EMPTY_PROMPT = PROMPT.replace("{memory_context}", "")
#: Most tests here end many conversations of one user at once: the next first turn must not wait on them.
NO_WAIT = RetrievalSettings(read_your_writes_timeout=0)


# ------------------------------------------------------------------------------------------ helpers


def _store(engine: Any, root: Path, fault: Fault | None = None, embedder: Any = None) -> tuple[S3VectorMemory,
                                                                                                  FaultyClient]:
    client = FaultyClient(engine, fault)
    store = S3VectorMemory(BUCKET, backend="local", data_dir=root, client=client,
                           embedder=embedder or SeededRandomEmbedder(), similarity_threshold=0.0)
    return store, client


def _end_conversations(agent: Any, count: int, prefix: str = "conv", **extra: Any) -> set[str]:
    """End ``count`` one-turn conversations of three users; returns the conversation ids requested."""
    requested = set()
    for i in range(count):
        conversation = f"{prefix}-{i}"
        say(agent, f"In {conversation} I said my lucky number is {i * 7}.", f"user-{i % 3}", conversation,
            end=True, **extra)
        requested.add(conversation)
    return requested


def _assert_none_lost(vectors: Sequence[Mapping[str, Any]], requested: set[str]) -> None:
    """Summaries requested vs stored: the figure must be 0 lost, 0 duplicated, contents intact."""
    stored = summaries(vectors)
    conversations = [str(v["metadata"]["conversation_id"]) for v in stored]
    lost = requested - set(conversations)
    assert not lost, f"{len(lost)} of {len(requested)} summaries lost: {sorted(lost)}"
    assert sorted(conversations) == sorted(requested), "a conversation was stored more than once"
    assert len({v["key"] for v in stored}) == len(stored)
    for vector in stored:
        conversation = vector["metadata"]["conversation_id"]
        number = int(conversation.rsplit("-", 1)[1]) * 7
        assert f"lucky number is {number}." in vector["metadata"]["content"]


def _per_job(operation: str, failures: int, error: Callable[[], BaseException]) -> Fault:
    """Fail the first ``failures`` attempts of every conversation's ``operation`` call."""
    seen: dict[str, int] = {}
    lock = threading.Lock()

    def plan(op: str, params: Mapping[str, Any]) -> BaseException | None:
        if op != operation:
            return None
        key = str(params["vectors"][0]["key"]) if op == "put_vectors" else "query"
        with lock:
            seen[key] = seen.get(key, 0) + 1
            return error() if seen[key] <= failures else None

    return plan


class FlakyEmbedder(SeededRandomEmbedder):
    """The hash embedder, failing on demand: ``broken`` raises ``error()`` for every document call."""

    def __init__(self) -> None:
        super().__init__()
        self.document_errors: list[BaseException] = []
        self.query_error: Callable[[], BaseException] | None = None
        self.broken: Callable[[], BaseException] | None = None

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        if self.broken is not None:
            raise self.broken()
        if self.document_errors:
            raise self.document_errors.pop(0)
        return super().embed_documents(texts)

    def embed_query(self, text: str) -> list[float]:
        if self.query_error is not None:
            raise self.query_error()
        return super().embed_query(text)


def _bedrock_throttled() -> EmbeddingError:
    try:
        raise client_error("ThrottlingException", 429, "InvokeModel")
    except Exception as cause:
        try:
            raise EmbeddingError("embedding failed: throttled") from cause
        except EmbeddingError as wrapped:
            return wrapped


# --------------------------------------------------------------------------- transient write faults

TRANSIENT: dict[str, Callable[[], BaseException]] = {
    "429 TooManyRequestsException": lambda: client_error("TooManyRequestsException", 429),
    "503 ServiceUnavailableException": lambda: client_error("ServiceUnavailableException", 503),
    "500 InternalServerException": lambda: client_error("InternalServerException", 500),
    "read timeout": lambda: ReadTimeoutError(endpoint_url="https://s3vectors.us-east-1.api.aws"),
    "connect timeout": lambda: ConnectTimeoutError(endpoint_url="https://s3vectors.us-east-1.api.aws"),
    "connection refused": lambda: EndpointConnectionError(endpoint_url="https://s3vectors.us-east-1.api.aws"),
}


@pytest.mark.parametrize("fault", list(TRANSIENT), ids=list(TRANSIENT))
def test_transient_put_failures_are_retried_until_stored(
    fault: str, engine: LocalS3VectorsClient, tmp_path: Path, plugins: list[S3VectorMemoryPlugin]
) -> None:
    store, client = _store(engine, tmp_path, _per_job("put_vectors", 2, TRANSIENT[fault]))
    agent, plugin, _ = make_agent(store, spool_dir=tmp_path / "spool", retrieval=NO_WAIT)
    plugins.append(plugin)
    requested = _end_conversations(agent, 6)
    assert plugin.flush(60)
    _assert_none_lost(all_vectors(engine, BUCKET, "memory"), requested)
    stats = plugin.writer.stats
    assert (stats.failed, stats.pending, stats.retried) == (0, 0, 12)
    assert len([c for c in client.ops("put_vectors") if c.error]) == 12


def test_throttled_embeddings_and_model_are_retried(
    engine: LocalS3VectorsClient, tmp_path: Path, plugins: list[S3VectorMemoryPlugin]
) -> None:
    embedder = FlakyEmbedder()
    embedder.document_errors = [_bedrock_throttled() for _ in range(4)]
    summary_failures = [ModelThrottledException("slow down") for _ in range(3)]

    def throttled_model(messages: Messages, system_prompt: str | None) -> Reply:
        if asks_for_summary(messages) and summary_failures:
            raise summary_failures.pop(0)
        return default_responder(messages, system_prompt)

    store, _ = _store(engine, tmp_path, embedder=embedder)
    agent, plugin, _ = make_agent(store, model=ScriptedModel(responder=throttled_model),
                                  spool_dir=tmp_path / "spool", retrieval=NO_WAIT)
    plugins.append(plugin)
    requested = _end_conversations(agent, 5)
    assert plugin.flush(60)
    _assert_none_lost(all_vectors(engine, BUCKET, "memory"), requested)
    assert plugin.writer.stats.failed == 0 and plugin.writer.stats.retried == 7
    assert not summary_failures and not embedder.document_errors


#: The outage test runs the defaults' timings this many times faster (a 45 s outage in 1.5 s).
_SPEED_UP = 30.0


def test_an_outage_longer_than_the_retry_budget_is_stored_soon_after_recovery_without_a_restart(
    engine: LocalS3VectorsClient, tmp_path: Path, plugins: list[S3VectorMemoryPlugin]
) -> None:
    """PutVectors throttled for "45 s": every conversation is stored within "90 s" of recovery, same process."""
    from strands_s3_vectors_memory.durability._writer import DEFAULT_MAX_DELAY

    outage = threading.Event()
    outage.set()
    store, client = _store(engine, tmp_path, lambda op, _params: (
        client_error("ThrottlingException", 400) if op == "put_vectors" and outage.is_set() else None))
    agent, plugin, _ = make_agent(store, spool_dir=tmp_path / "spool", retrieval=NO_WAIT)
    plugins.append(plugin)
    writer = plugin.writer
    writer.retries = dataclasses.replace(  # the defaults' schedule, sped up; rounds end well inside the outage
        writer.retries, base_delay=writer.retries.base_delay / _SPEED_UP, max_delay=DEFAULT_MAX_DELAY / _SPEED_UP,
        max_attempts=3)
    requested = _end_conversations(agent, 6)
    time.sleep(45 / _SPEED_UP)
    assert summaries(all_vectors(engine, BUCKET, "memory")) == []
    assert writer.stats.pending == 6 and writer.stats.failed == 0  # still being retried, not parked
    outage.clear()
    recovered = time.monotonic()
    assert plugin.flush(90 / _SPEED_UP + 5)  # 5 s of slack for a loaded CI machine
    elapsed = time.monotonic() - recovered
    _assert_none_lost(all_vectors(engine, BUCKET, "memory"), requested)
    assert elapsed <= 90 / _SPEED_UP + 5, elapsed
    assert len([c for c in client.ops("put_vectors") if c.error]) >= 6 * 3  # more than one round each


# --------------------------------------------------------------- lasting faults, recovered by restart


def test_broken_embedder_keeps_jobs_spooled_and_a_restart_stores_them(
    engine: LocalS3VectorsClient, tmp_path: Path, plugins: list[S3VectorMemoryPlugin]
) -> None:
    embedder = FlakyEmbedder()
    embedder.broken = lambda: EmbeddingError("hash-16: embedding contains NaN or infinite values")
    store, _ = _store(engine, tmp_path, embedder=embedder)
    agent, plugin, model = make_agent(store, spool_dir=tmp_path / "spool", retrieval=NO_WAIT)
    requested = _end_conversations(agent, 5)
    assert plugin.flush(60)
    assert plugin.writer.stats.failed == 5
    assert summaries(all_vectors(engine, BUCKET, "memory")) == []
    # The details are embedded before the summary call (they are its related-facts query): while the
    # embedder is broken, no summary is paid for that could not be stored.
    assert not any(is_summary_request(r) for r in model.requests)
    plugin.close(10)  # the process "restarts" with the embedder fixed

    embedder.broken = None
    model_after = ScriptedModel()
    _agent, plugin_after, _ = make_agent(store, model=model_after, spool_dir=tmp_path / "spool")
    plugins.append(plugin_after)
    assert plugin_after.flush(60)
    assert plugin_after.writer.stats.replayed == 5 and plugin_after.writer.stats.failed == 0
    _assert_none_lost(all_vectors(engine, BUCKET, "memory"), requested)
    assert sum(1 for r in model_after.requests if is_summary_request(r)) == 5  # each paid for once
    assert not list((tmp_path / "spool").rglob("*.json"))


def test_sts_outage_on_the_write_path_loses_nothing(
    tmp_path: Path, plugins: list[S3VectorMemoryPlugin], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ADMIN_KEY)  # ambient credentials that must never be used
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient")
    policy: RecordingPolicy = tenant_policy()
    with LocalEndpoint(tmp_path / "endpoint", access_policy=policy) as endpoint:
        admin = boto3_client(endpoint.url)
        admin.create_vector_bucket(vectorBucketName=BUCKET)
        sts = FakeSts()
        tvm = TokenVendingMachine(TVM_ROLE, sts_client=sts, failure_ttl_seconds=0)
        store = MultiTenantS3VectorMemory(BUCKET, backend="aws", data_dir=tmp_path, tvm=tvm,
                                          endpoint_url=endpoint.url, embedder=SeededRandomEmbedder())
        tenant = {"tenantId": "acme"}
        agent, plugin, _ = make_agent(store, spool_dir=tmp_path / "spool", retrieval=NO_WAIT)
        # First turns run while STS works (the memory context is fetched with acme's key) ...
        for i in range(4):
            say(agent, f"In conv-{i} I said my lucky number is {i * 7}.", "u1", f"conv-{i}", tenant_context=tenant)
        # ... then STS fails: a transient outage for two conversations, a hard AccessDenied for two.
        policy.seen.clear()
        tvm.forget("acme")
        sts.failures[:] = [EndpointConnectionError(endpoint_url="https://sts.amazonaws.com")] * 2
        for i in (0, 1):
            say(agent, "bye", "u1", f"conv-{i}", end=True, tenant_context=tenant)
        assert plugin.flush(60)
        assert plugin.writer.stats.failed == 0 and plugin.writer.stats.retried >= 1
        tvm.forget("acme")
        sts.failures[:] = [client_error("AccessDenied", 403, "AssumeRole")] * 100
        for i in (2, 3):
            say(agent, "bye", "u1", f"conv-{i}", end=True, tenant_context=tenant)
        assert plugin.flush(60)
        assert plugin.writer.stats.failed == 2  # not retryable: kept in the spool
        assert all(key != ADMIN_KEY for key, _op in policy.seen), "ambient credentials were used"
        plugin.close(10)

        sts.failures.clear()
        tvm.forget("acme")
        _agent, restarted, _ = make_agent(store, spool_dir=tmp_path / "spool")
        plugins.append(restarted)
        assert restarted.flush(60) and restarted.writer.stats.replayed == 2
        assert {key for key, _op in policy.seen} == {"TENANT-acme"}, "only acme's vended key may be used"
        _assert_none_lost(all_vectors(admin, BUCKET, "memory-acme"), {f"conv-{i}" for i in range(4)})


# ------------------------------------------------------------------------------ the spool in trouble


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EDQUOT], ids=["ENOSPC", "EROFS", "EDQUOT"])
def test_unwritable_spool_degrades_durability_but_loses_nothing(
    code: int, engine: LocalS3VectorsClient, tmp_path: Path, plugins: list[S3VectorMemoryPlugin],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    attempts: list[Path] = []

    def no_space(path: Path, data: bytes) -> None:
        attempts.append(path)
        raise OSError(code, os.strerror(code), str(path))

    monkeypatch.setattr(spool_module, "write_atomic", no_space)
    store, _ = _store(engine, tmp_path, _per_job("put_vectors", 1, TRANSIENT["429 TooManyRequestsException"]))
    agent, plugin, _ = make_agent(store, spool_dir=tmp_path / "spool", retrieval=NO_WAIT)
    plugins.append(plugin)
    with caplog.at_level(logging.WARNING):
        requested = _end_conversations(agent, 5)
        assert plugin.flush(60)
    assert attempts, "the spool was never tried"
    assert "degraded durability" in caplog.text
    assert plugin.writer.stats.spool_errors >= 5
    _assert_none_lost(all_vectors(engine, BUCKET, "memory"), requested)


def test_read_only_spool_at_start_still_stores_everything(
    engine: LocalS3VectorsClient, tmp_path: Path, plugins: list[S3VectorMemoryPlugin],
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
) -> None:
    def read_only(root: Path) -> Any:
        raise OSError(errno.EROFS, "Read-only file system", str(root))

    monkeypatch.setattr(writer_spool_module, "Spool", read_only)
    store, _ = _store(engine, tmp_path)
    with caplog.at_level(logging.WARNING):
        agent, plugin, _ = make_agent(store, spool_dir=tmp_path / "spool", retrieval=NO_WAIT)
        plugins.append(plugin)
        requested = _end_conversations(agent, 4)
        assert plugin.flush(60)
    assert "unusable" in caplog.text
    _assert_none_lost(all_vectors(engine, BUCKET, "memory"), requested)


def test_spool_that_recovers_mid_run(
    engine: LocalS3VectorsClient, tmp_path: Path, plugins: list[S3VectorMemoryPlugin], monkeypatch: pytest.MonkeyPatch,
) -> None:
    real = spool_module.write_atomic
    budget = [3]

    def full_then_free(path: Path, data: bytes) -> None:
        if budget[0] > 0:
            budget[0] -= 1
            raise OSError(errno.ENOSPC, "No space left on device", str(path))
        real(path, data)

    monkeypatch.setattr(spool_module, "write_atomic", full_then_free)
    store, _ = _store(engine, tmp_path)
    agent, plugin, _ = make_agent(store, spool_dir=tmp_path / "spool", retrieval=NO_WAIT)
    plugins.append(plugin)
    requested = _end_conversations(agent, 6)
    assert plugin.flush(60)
    _assert_none_lost(all_vectors(engine, BUCKET, "memory"), requested)
    assert not list((tmp_path / "spool").rglob("claims/*/*.json"))


# --------------------------------------------------------------------------- kill -9 in the middle


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


@pytest.mark.slow
@pytest.mark.parametrize("hang", ["summary", "put", "put-odd", "slow"])
def test_sigkill_mid_write_then_a_new_process_replays_everything(hang: str, tmp_path: Path) -> None:
    data, spool, count = tmp_path / "data", tmp_path / "spool", 8
    writer = _spawn("write", str(data), str(spool), str(count), hang)
    try:
        assert writer.stdout is not None
        line = writer.stdout.readline()
        assert line.strip() == "READY", f"child failed: {line!r} {writer.stderr.read() if writer.stderr else ''}"
        if hang == "slow":
            threading.Event().wait(0.1)  # let the writer get going, then kill it wherever it is
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.communicate(timeout=30)
    assert writer.returncode == -signal.SIGKILL

    with LocalS3VectorsClient(data) as engine:
        before = len(summaries(all_vectors(engine, BUCKET, "memory")))
    if hang in ("summary", "put"):
        assert before == 0, "nothing could have been stored before the kill"

    replay = _spawn("replay", str(data), str(spool))
    out, err = replay.communicate(timeout=90)
    assert replay.returncode == 0, err[-3000:]
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["flushed"] and stats["failed"] == 0, err[-4000:]
    # A job whose put landed just before the kill, but whose spool file was not yet removed, runs again
    # (harmless: deterministic keys); none may be missing. Only where the kill can land between a put
    # that succeeds and its spool file's removal: "slow", and the even conversations of "put-odd".
    exact = stats["replayed"] == count - before
    assert exact or (hang in ("slow", "put-odd") and stats["replayed"] >= count - before)
    if hang == "put":  # the stuck jobs (one per writer thread) had checkpointed their summaries: not asked again
        assert stats["summary_calls"] == count - DEFAULT_WRITER_WORKERS
    if hang == "summary":
        assert stats["summary_calls"] == count
    with LocalS3VectorsClient(data) as engine:
        _assert_none_lost(all_vectors(engine, BUCKET, "memory"), {f"conv-{i}" for i in range(count)})
    assert not list(spool.rglob("claims/*/*.json")), "jobs left in the spool after a successful replay"


# ----------------------------------------------------------------------- reads fail open, with a warning

READ_FAULTS: dict[str, Callable[[FaultyClient, FlakyEmbedder], None]] = {
    "query 429": lambda c, e: setattr(c, "fault", _always("query_vectors", "TooManyRequestsException", 429)),
    "query 503": lambda c, e: setattr(c, "fault", _always("query_vectors", "ServiceUnavailableException", 503)),
    "query timeout": lambda c, e: setattr(
        c, "fault", lambda op, p: ReadTimeoutError(endpoint_url="x") if op == "query_vectors" else None),
    "embedding failure": lambda c, e: setattr(e, "query_error", lambda: EmbeddingError("model unavailable")),
}


def _always(operation: str, code: str, status: int) -> Fault:
    return lambda op, _params: client_error(code, status, operation) if op == operation else None


@pytest.mark.parametrize("fault", list(READ_FAULTS), ids=list(READ_FAULTS))
def test_retrieval_failure_fails_open_with_a_warning(
    fault: str, tmp_path: Path, plugins: list[S3VectorMemoryPlugin], caplog: pytest.LogCaptureFixture
) -> None:
    engine = LocalS3VectorsClient(tmp_path / "engine")
    embedder = FlakyEmbedder()
    store, client = _store(engine, tmp_path, embedder=embedder)
    store.store_memory("u1", "the user's dog is called Rex", agent_name="assistant")
    model = ScriptedModel(replies=["Hello!", ToolCall("recall_memories", {"query": "dog"}), "I could not check."])
    agent, plugin, _ = make_agent(store, model=model, spool_dir=tmp_path / "spool",
                                  retrieval=RetrievalSettings(similarity_threshold=0.0))
    READ_FAULTS[fault](client, embedder)  # the backend breaks after the agent started
    plugins.append(plugin)
    with caplog.at_level(logging.WARNING):
        say(agent, "What is my dog called?", "u1", "c1")
        say(agent, "Please check your memory.", "u1", "c1")
    assert chat_prompts(model)[0] == EMPTY_PROMPT
    assert "answering without memories" in caplog.text
    assert tool_results(agent) == ["Memory search failed; continue without it."]
    assert "recall_memories failed" in caplog.text
    assert agent.messages[-1]["role"] == "assistant"
    engine.close()

