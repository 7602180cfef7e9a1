"""Isolation through the local S3 Vectors endpoint, with a stock boto3 client per tenant.

The multi-tenant store runs its AWS code path unchanged: the Token Vending Machine vends one access
key per tenant (STS is faked: it is AWS), boto3 signs with it, and the endpoint's AccessPolicy lets
that key reach ``memory-<tenant>`` only, as the TVM role's session-tag policy does on AWS.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from hypothesis import HealthCheck, settings
from hypothesis.stateful import run_state_machine_as_test
from isolation_machine import TVM_ROLE, IsolationMachine
from reliability_support import (
    ADMIN_KEY,
    FakeSts,
    RecordingPolicy,
    SeededRandomEmbedder,
    boto3_client,
    client_error,
    make_agent,
    say,
    tenant_key,
)

from s3vectors_engine.server import LocalEndpoint
from strands_s3_vectors_memory import (
    IsolationError,
    MultiTenantS3VectorMemory,
    RetrievalSettings,
    S3VectorMemory,
    S3VectorMemoryPlugin,
    TokenVendingMachine,
)
from support import all_vectors, chat_prompts

PROPERTY = settings(
    max_examples=8,
    stateful_step_count=25,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_random_operation_sequences_never_cross_scopes_over_http(
    tenant_endpoint: tuple[LocalEndpoint, RecordingPolicy],
) -> None:
    IsolationMachine.endpoint_url = tenant_endpoint[0].url
    try:
        run_state_machine_as_test(IsolationMachine, settings=PROPERTY)  # type: ignore[no-untyped-call]
    finally:
        IsolationMachine.endpoint_url = None


def _tenant_store(url: str, bucket: str, tmp_path: Path, tvm: TokenVendingMachine) -> MultiTenantS3VectorMemory:
    return MultiTenantS3VectorMemory(
        bucket, backend="aws", data_dir=tmp_path, tvm=tvm, endpoint_url=url, embedder=SeededRandomEmbedder(),
        similarity_threshold=0.0,
    )


def test_tenant_b_querying_tenant_a_index_is_denied(
    tenant_endpoint: tuple[LocalEndpoint, RecordingPolicy], fresh_bucket: str, admin_client: Any, tmp_path: Path
) -> None:
    endpoint = tenant_endpoint[0]
    sts = FakeSts()
    tvm = TokenVendingMachine(TVM_ROLE, sts_client=sts)
    store = _tenant_store(endpoint.url, fresh_bucket, tmp_path, tvm)
    store.store_memory("u1", "tenant a's Q4 budget is 2M", {"tenantId": "a"}, "assistant")
    store.store_memory("u1", "tenant b's Q4 budget is 5M", {"tenantId": "b"}, "assistant")
    assert sorted(set(sts.calls)) == ["a", "b"]

    # Through the store: each tenant sees its own memory only.
    for tenant, amount in (("a", "2M"), ("b", "5M")):
        (memory,) = store.search("u1", "Q4 budget", tenant_context={"tenantId": tenant}, agent_name="assistant")
        assert amount in memory.content

    # With tenant B's vended credentials, tenant A's index is out of reach for every operation.
    tenant_b = tvm.client_for("b", endpoint_url=endpoint.url)
    vector = {"float32": [1.0] + [0.0] * 15}
    calls: dict[str, Callable[[], Any]] = {
        "QueryVectors": lambda: tenant_b.query_vectors(
            vectorBucketName=fresh_bucket, indexName="memory-a", queryVector=vector, topK=5, returnMetadata=True),
        "ListVectors": lambda: tenant_b.list_vectors(vectorBucketName=fresh_bucket, indexName="memory-a"),
        "PutVectors": lambda: tenant_b.put_vectors(
            vectorBucketName=fresh_bucket, indexName="memory-a", vectors=[{"key": "x", "data": vector}]),
        "DeleteIndex": lambda: tenant_b.delete_index(vectorBucketName=fresh_bucket, indexName="memory-a"),
        "ListIndexes": lambda: tenant_b.list_indexes(vectorBucketName=fresh_bucket),
    }
    for operation, call in calls.items():
        with pytest.raises(tenant_b.exceptions.AccessDeniedException) as info:
            call()
        message = info.value.response["Error"]["Message"]
        assert tenant_key("b") in message and operation in message
    # Tenant A's data is intact.
    contents = [v["metadata"]["content"] for v in all_vectors(admin_client, fresh_bucket, "memory-a")]
    assert contents == ["tenant a's Q4 budget is 2M"]


def test_sts_failure_is_isolation_error_and_never_uses_ambient_credentials(
    tenant_endpoint: tuple[LocalEndpoint, RecordingPolicy], fresh_bucket: str, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, plugins: list[S3VectorMemoryPlugin], caplog: pytest.LogCaptureFixture,
) -> None:
    endpoint, policy = tenant_endpoint
    # The ambient identity is all-powerful on this endpoint: any fallback to it would succeed (and show).
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", ADMIN_KEY)
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "ambient-secret")
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3VECTORS", endpoint.url)
    sts = FakeSts()
    tvm = TokenVendingMachine(TVM_ROLE, sts_client=sts, failure_ttl_seconds=0)
    store = _tenant_store(endpoint.url, fresh_bucket, tmp_path, tvm)
    store.store_memory("u1", "tenant a remembers the launch date", {"tenantId": "a"}, "assistant")
    policy.seen.clear()

    failures = [
        client_error("AccessDenied", 403, "AssumeRole"),
        EndpointConnectionError(endpoint_url="https://sts.amazonaws.com"),
        client_error("ExpiredToken", 400, "AssumeRole"),
    ]
    for failure in failures:
        tvm.forget("a")
        sts.failures[:] = [failure, failure]
        with pytest.raises(IsolationError):
            store.search("u1", "launch date", tenant_context={"tenantId": "a"}, agent_name="assistant")
        with pytest.raises(IsolationError):
            store.store_memory("u1", "must not be written", {"tenantId": "a"}, "assistant")

    # The plugin refuses the turn rather than answering with memories fetched some other way.
    tvm.forget("a")
    sts.failures[:] = [client_error("AccessDenied", 403, "AssumeRole")] * 3
    agent, plugin, model = make_agent(store, spool_dir=tmp_path / "spool")
    plugins.append(plugin)
    with pytest.raises(IsolationError):
        say(agent, "When is the launch?", "u1", "c1", tenant_context={"tenantId": "a"})
    assert all("launch date" not in p for p in chat_prompts(model))
    assert policy.seen == [], f"requests were sent without tenant credentials: {policy.seen}"

    # Once STS answers again, the same store works with the tenant's own key.
    sts.failures.clear()
    tvm.forget("a")
    (memory,) = store.search("u1", "launch date", tenant_context={"tenantId": "a"}, agent_name="assistant")
    assert "launch" in memory.content
    assert {key for key, _op in policy.seen} == {tenant_key("a")}
    contents = [m.content for m in store.search("u1", "must not be written", top_k=100,
                                                tenant_context={"tenantId": "a"}, agent_name="assistant")]
    assert contents == ["tenant a remembers the launch date"]


def test_single_tenant_store_over_http_scopes_users_and_agents(
    tenant_endpoint: tuple[LocalEndpoint, RecordingPolicy], fresh_bucket: str, admin_client: Any, tmp_path: Path,
    plugins: list[S3VectorMemoryPlugin],
) -> None:
    store = S3VectorMemory(fresh_bucket, backend="aws", data_dir=tmp_path, client=admin_client,
                           embedder=SeededRandomEmbedder(), similarity_threshold=0.0)
    agent, plugin, model = make_agent(store, spool_dir=tmp_path / "spool",
                                      retrieval=RetrievalSettings(similarity_threshold=0.0))
    other, other_plugin, other_model = make_agent(store, name="planner", spool_dir=tmp_path / "spool2",
                                                  retrieval=RetrievalSettings(similarity_threshold=0.0))
    plugins.extend([plugin, other_plugin])
    say(agent, "alice-secret-1", "alice", "a1", end=True)
    say(agent, "bob-secret-2", "bob", "b1", end=True)
    say(other, "alice-planner-3", "alice", "p1", end=True)
    assert plugin.flush(30) and other_plugin.flush(30)
    say(agent, "hello", "alice", "a2")
    prompt = chat_prompts(model)[-1]
    assert "alice-secret-1" in prompt and "bob-secret-2" not in prompt and "alice-planner-3" not in prompt
    say(other, "hello", "bob", "p2")
    assert "secret" not in chat_prompts(other_model)[-1]
    with pytest.raises(ClientError):
        boto3_client(tenant_endpoint[0].url, tenant_key("x")).list_vectors(
            vectorBucketName=fresh_bucket, indexName="memory")


def test_endpoint_down_fails_open(tmp_path: Path, plugins: list[S3VectorMemoryPlugin],
                                  caplog: pytest.LogCaptureFixture) -> None:
    with LocalEndpoint(tmp_path / "down") as endpoint:
        client = boto3_client(endpoint.url)
        client.create_vector_bucket(vectorBucketName="down")
        store = S3VectorMemory("down", backend="aws", data_dir=tmp_path, client=client, embedder=SeededRandomEmbedder(),
                               similarity_threshold=0.0)
        store.store_memory("u1", "remember the red door", agent_name="assistant")
        agent, plugin, model = make_agent(store, spool_dir=tmp_path / "spool")
        plugins.append(plugin)
    # The endpoint is gone: connections are refused.
    with caplog.at_level(logging.WARNING):
        say(agent, "what door?", "u1", "c1")
    assert chat_prompts(model)[-1] == "You are helpful.\n\nBe brief."
    assert "answering without memories" in caplog.text
    assert agent.messages[-1]["role"] == "assistant"
