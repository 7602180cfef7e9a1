"""Isolation on the embedded engine: no user, agent or tenant ever sees another's memory.

Property tests use the hash embedder (thousands of operations); one test runs the real offline
model end to end, because its vectors, unlike hash vectors, make different users' memories
genuinely similar, which is when a missing scope filter would show.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test
from isolation_machine import IDS, IsolationMachine, Scope
from reliability_support import SeededRandomEmbedder, make_agent, say, tool_results

from s3vectors_engine import LocalS3VectorsClient
from strands_s3_vectors_memory import MultiTenantS3VectorMemory, RetrievalSettings, S3VectorMemory, S3VectorMemoryPlugin
from strands_s3_vectors_memory.testing import ScriptedModel, ToolCall
from support import all_vectors, chat_prompts

PROPERTY = settings(
    max_examples=30,
    stateful_step_count=30,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)


def test_random_operation_sequences_never_cross_scopes() -> None:
    IsolationMachine.endpoint_url = None
    run_state_machine_as_test(IsolationMachine, settings=PROPERTY)  # type: ignore[no-untyped-call]


SCOPE_LISTS = st.lists(
    st.builds(
        Scope,
        tenant=st.one_of(st.none(), st.from_regex(r"[a-z0-9]{1,6}", fullmatch=True)),
        user=IDS,
        agent=st.sampled_from(["assistant", "planner", "Assistant"]),
    ),
    min_size=20,
    max_size=60,
    unique=True,
)


@settings(max_examples=12, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much,
                                 HealthCheck.function_scoped_fixture])
@given(scopes=SCOPE_LISTS)
def test_hundreds_of_scopes_each_see_exactly_their_own(
    scopes: list[Scope], tmp_path_factory: pytest.TempPathFactory
) -> None:
    root = tmp_path_factory.mktemp("many")
    engine = LocalS3VectorsClient(root / "engine")
    try:
        embedder = SeededRandomEmbedder()
        single = S3VectorMemory("many", backend="local", data_dir=root, client=engine, embedder=embedder)
        multi = MultiTenantS3VectorMemory("many", backend="local", data_dir=root, client=engine, embedder=embedder)
        keys: dict[Scope, str] = {}
        for i, scope in enumerate(scopes):
            store = multi if scope.tenant is not None else single
            keys[scope] = store.store_memory(scope.user, f"memory number {i}", scope.tenant_context, scope.agent)["key"]
        for i, scope in enumerate(scopes):
            store = multi if scope.tenant is not None else single
            found = store.search(scope.user, "memory number", top_k=100, tenant_context=scope.tenant_context,
                                 agent_name=scope.agent, similarity_threshold=0.0)
            assert [m.key for m in found] == [keys[scope]], f"{scope} saw {[m.content for m in found]}"
            assert found[0].content == f"memory number {i}"
    finally:
        engine.close()


def test_recall_tool_arguments_cannot_widen_scope(
    hash_store: S3VectorMemory,
    hash_multi_store: MultiTenantS3VectorMemory,
    tmp_path: Path,
    plugins: list[S3VectorMemoryPlugin],
) -> None:
    hash_store.store_memory("victim", "victim PIN 4321", agent_name="assistant")
    hash_store.store_memory("me", "my hobby is chess", agent_name="assistant")
    hash_store.store_memory("me", "planner secret 777", agent_name="planner")
    hash_multi_store.store_memory("me", "tenant-b budget 9M", {"tenantId": "b"}, "assistant")
    greedy = {
        "query": "PIN budget secret hobby", "top_k": 10, "user_id": "victim", "agent_name": "planner",
        "tenant_context": {"tenantId": "b"}, "tenantId": "b",
        "invocation_state": {"user_id": "victim", "tenant_context": {"tenantId": "b"}},
    }
    model = ScriptedModel(replies=[ToolCall("recall_memories", greedy), "done"])
    agent, plugin, _ = make_agent(hash_store, model=model, spool_dir=tmp_path / "spool",
                                  retrieval=RetrievalSettings(similarity_threshold=0.0))
    plugins.append(plugin)
    say(agent, "hello", "me", "c1")
    (result,) = tool_results(agent)
    assert "chess" in result
    for foreign in ("4321", "777", "9M"):
        assert foreign not in result


def test_real_embedder_keeps_similar_memories_of_users_apart(local_env: Path) -> None:
    """Same wording, different owners: the real model ranks them all close; scope filters decide."""
    store = S3VectorMemory()
    tenants = MultiTenantS3VectorMemory()
    agent, plugin, model = make_agent(store, spool_dir=local_env / "spool")
    agent_mt, plugin_mt, model_mt = make_agent(tenants, spool_dir=local_env / "spool-mt")
    try:
        colours = {"alice": "teal", "bob": "crimson", "carol": "amber"}
        for user, colour in colours.items():
            say(agent, f"My favourite colour is {colour}.", user, f"{user}-1", end=True)
        for tenant, colour in {"t-a": "olive", "t-b": "indigo"}.items():
            say(agent_mt, f"My favourite colour is {colour}.", "alice", "conv-1", end=True,
                tenant_context={"tenantId": tenant})
        assert plugin.flush(60) and plugin_mt.flush(60)
        for user, colour in colours.items():
            say(agent, "What is my favourite colour?", user, f"{user}-2")
            prompt = chat_prompts(model)[-1]
            assert colour in prompt
            assert not any(other in prompt for other in ({*colours.values(), "olive", "indigo"} - {colour}))
        for tenant, colour in {"t-a": "olive", "t-b": "indigo"}.items():
            say(agent_mt, "What is my favourite colour?", "alice", "conv-2", tenant_context={"tenantId": tenant})
            prompt = chat_prompts(model_mt)[-1]
            assert colour in prompt
            assert not any(other in prompt for other in ({*colours.values(), "olive", "indigo"} - {colour}))
        stored = {v["metadata"]["user_id"] for v in all_vectors(store._base_client(), store.bucket_name, "memory")}
        assert stored == set(colours)
    finally:
        plugin.close(10)
        plugin_mt.close(10)
