"""MemoryManagerStore: the strands-native MemoryStore over S3 Vectors, driven by the SDK's MemoryManager."""

from __future__ import annotations

import asyncio
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from strands import Agent
from strands.memory import AddMessagesContext, MemoryManager
from strands.types.content import Message

from strands_s3_vectors_memory import (
    DimensionMismatchError,
    InvalidIdentityError,
    MultiTenantS3VectorMemory,
    S3VectorMemory,
)
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.store._memory_store import MemoryManagerStore
from strands_s3_vectors_memory.testing import ScriptedModel, ToolCall
from support import all_vectors

BUCKET = "my-vector-memory"


def vectors(data_dir: Path, index: str = "memory") -> list[dict[str, Any]]:
    """Every vector in an index, read with an operator client (not through the store under test)."""
    return all_vectors(local_client(data_dir), BUCKET, index)


def make_agent(store: MemoryManagerStore, model: ScriptedModel | None = None) -> tuple[Agent, ScriptedModel]:
    model = model or ScriptedModel()
    agent = Agent(model=model, name="assistant", memory_manager=MemoryManager(stores=[store]), callback_handler=None)
    return agent, model


def model_input(model: ScriptedModel) -> str:
    """All text the model saw in its last request (the manager injects memory into the messages)."""
    return " ".join(
        str(block["text"]) for message in model.requests[-1].messages for block in message["content"] if "text" in block
    )


def injected(model: ScriptedModel) -> str:
    """The memory block the manager injected into the model's last request ('' when none)."""
    found = re.search(r"<memory>(.*?)</memory>", model_input(model), flags=re.S)
    return found.group(1) if found else ""


def user_message(text: str) -> Message:
    return {"role": "user", "content": [{"text": text}]}


def test_agent_recalls_what_an_earlier_agent_extracted(local_env: Path) -> None:
    memory = S3VectorMemory()
    writer = MemoryManagerStore(memory, user_id="alice", agent_name="assistant", extraction=True)
    agent, _ = make_agent(writer)
    agent("My dog is called Rex and I live in Lisbon.")  # the synchronous call flushes extraction

    stored = vectors(local_env)
    assert [v["metadata"]["content"] for v in stored] == ["My dog is called Rex and I live in Lisbon."]
    assert stored[0]["metadata"]["user_id"] == "alice" and stored[0]["metadata"]["agent_name"] == "assistant"

    reader = MemoryManagerStore(S3VectorMemory(), user_id="alice", agent_name="assistant")
    later, model = make_agent(reader)
    later("What is my dog called?")
    assert "Rex" in injected(model)


def test_assistant_replies_and_tool_blocks_are_not_stored_by_default(local_env: Path) -> None:
    store = MemoryManagerStore(S3VectorMemory(), user_id="alice")
    messages: list[Message] = [
        user_message("I prefer window seats."),
        {"role": "assistant", "content": [{"text": "Noted, window seats it is."}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "status": "success",
                                                     "content": [{"text": "42"}]}}]},
    ]
    keys = asyncio.run(store.add_messages(messages, AddMessagesContext(sequence_numbers=[0, 1, 2])))
    assert len(keys) == 1
    assert [v["metadata"]["content"] for v in vectors(local_env)] == ["I prefer window seats."]

    both = MemoryManagerStore(S3VectorMemory(), user_id="bob", message_roles=("user", "assistant"))
    asyncio.run(both.add_messages(messages[:2], AddMessagesContext(sequence_numbers=[0, 1])))
    assert {v["metadata"]["content"] for v in vectors(local_env) if v["metadata"]["user_id"] == "bob"} == {
        "I prefer window seats.",
        "Noted, window seats it is.",
    }


def test_retried_batch_does_not_duplicate_but_repeated_text_is_kept(local_env: Path) -> None:
    store = MemoryManagerStore(S3VectorMemory(), user_id="alice")
    batch = [user_message("ok"), user_message("I moved to Porto."), user_message("ok")]
    context = AddMessagesContext(sequence_numbers=[3, 4, 7])
    first = asyncio.run(store.add_messages(batch, context))
    retried = asyncio.run(store.add_messages(batch, AddMessagesContext(sequence_numbers=[3, 4, 7])))

    assert first == retried
    assert len(set(first)) == 3  # two "ok" turns are two messages, not one
    assert len(vectors(local_env)) == 3

    # A new agent run numbers from 0 again: different text under a reused number is a new record.
    again = MemoryManagerStore(S3VectorMemory(), user_id="alice")
    asyncio.run(again.add_messages([user_message("I sold my car.")], AddMessagesContext(sequence_numbers=[3])))
    assert sorted(v["metadata"]["content"] for v in vectors(local_env)) == [
        "I moved to Porto.", "I sold my car.", "ok", "ok",
    ]


def test_add_is_idempotent_per_user_and_text(local_env: Path) -> None:
    memory = S3VectorMemory()
    alice = MemoryManagerStore(memory, user_id="alice")
    bob = MemoryManagerStore(memory, user_id="bob")

    key = asyncio.run(alice.add("Likes   green tea."))
    assert asyncio.run(alice.add("Likes green tea.")) == key  # whitespace differences are the same memory
    bob_key = asyncio.run(bob.add("Likes green tea."))

    assert bob_key != key
    assert sorted(v["metadata"]["user_id"] for v in vectors(local_env)) == ["alice", "bob"]
    with pytest.raises(ValueError, match="non-empty"):
        asyncio.run(alice.add("   "))


def test_two_users_never_see_each_others_entries(local_env: Path) -> None:
    memory = S3VectorMemory()
    alice = MemoryManagerStore(memory, user_id="alice", agent_name="assistant", extraction=True)
    bob = MemoryManagerStore(memory, user_id="bob", agent_name="assistant", extraction=True)
    alice_agent, _ = make_agent(alice)
    alice_agent("My passport number is X1234567 and my dog is Rex.")
    asyncio.run(alice.add("Alice's bank is in Zurich."))

    entries = asyncio.run(bob.search("passport number dog bank", {"max_search_results": 10}))
    assert entries == []
    bob_agent, bob_model = make_agent(bob)
    bob_agent("What is my passport number? Where is my bank?")
    assert injected(bob_model) == ""
    assert "X1234567" not in model_input(bob_model) and "Zurich" not in model_input(bob_model)

    mine = asyncio.run(alice.search("passport number", {"max_search_results": 10}))
    assert any("X1234567" in entry.content for entry in mine)
    assert all("user_id" not in (entry.metadata or {}) for entry in mine)


def test_agents_namespace_memories_of_the_same_user(local_env: Path) -> None:
    memory = S3VectorMemory()
    asyncio.run(MemoryManagerStore(memory, user_id="alice", agent_name="travel").add("Prefers aisle seats."))
    other = MemoryManagerStore(memory, user_id="alice", agent_name="cooking")
    every_agent = MemoryManagerStore(memory, user_id="alice", agent_name=None)

    assert asyncio.run(other.search("seat preference")) == []
    assert [e.content for e in asyncio.run(every_agent.search("seat preference"))] == ["Prefers aisle seats."]


def test_shared_agent_scoped_per_call_with_bind(local_env: Path) -> None:
    memory = S3VectorMemory()
    store = MemoryManagerStore(memory, agent_name="assistant", extraction=True)
    agent, model = make_agent(store)

    def ask(user: str, text: str) -> str:
        agent.messages.clear()  # one agent serving many users: no history carried between them
        with store.bind(user_id=user):
            agent(text)
        return injected(model)

    assert ask("alice", "My favourite colour is teal.") == ""
    assert "teal" not in ask("bob", "What is my favourite colour?")
    assert "teal" in ask("alice", "What is my favourite colour?")

    stored = {(v["metadata"]["content"], v["metadata"]["user_id"]) for v in vectors(local_env)}
    assert stored == {
        ("My favourite colour is teal.", "alice"),
        ("What is my favourite colour?", "bob"),
        ("What is my favourite colour?", "alice"),
    }


def test_bindings_do_not_leak_between_concurrent_calls(local_env: Path) -> None:
    memory = S3VectorMemory()
    store = MemoryManagerStore(memory, similarity_threshold=0.0)
    for user in ("alice", "bob"):
        with store.bind(user_id=user):
            asyncio.run(store.add(f"The secret word of {user} is {user}-word."))

    async def search_as(user: str) -> list[str]:
        with store.bind(user_id=user):
            await asyncio.sleep(0)  # let the other task bind in between
            return [entry.content for entry in await store.search("secret word", {"max_search_results": 10})]

    async def both() -> list[list[str]]:
        return list(await asyncio.gather(search_as("alice"), search_as("bob")))

    results: dict[str, list[list[str]]] = {}

    def run(name: str) -> None:
        results[name] = asyncio.run(both())

    threads = [threading.Thread(target=run, args=(str(i),)) for i in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for alice_hits, bob_hits in results.values():
        assert alice_hits == ["The secret word of alice is alice-word."]
        assert bob_hits == ["The secret word of bob is bob-word."]
    with pytest.raises(InvalidIdentityError, match="no user"):
        asyncio.run(store.search("secret word"))


def test_bind_validates_identity(local_env: Path) -> None:
    store = MemoryManagerStore(S3VectorMemory())
    with pytest.raises(InvalidIdentityError), store.bind(user_id="bad\x00id"):
        pass
    with pytest.raises(InvalidIdentityError):
        MemoryManagerStore(S3VectorMemory(), user_id="")


def test_multi_tenant_stores_stay_in_their_tenant_index(local_env: Path) -> None:
    memory = MultiTenantS3VectorMemory()
    acme = MemoryManagerStore(memory, user_id="alice", tenant_context={"tenantId": "acme"})
    globex = MemoryManagerStore(memory, user_id="alice", tenant_context={"tenantId": "globex"})
    asyncio.run(acme.add("Acme's launch date is March 3."))
    asyncio.run(globex.add("Globex's launch date is May 9."))

    assert [e.content for e in asyncio.run(acme.search("launch date"))] == ["Acme's launch date is March 3."]
    assert [e.content for e in asyncio.run(globex.search("launch date"))] == ["Globex's launch date is May 9."]
    assert [v["metadata"]["content"] for v in vectors(local_env, "memory-acme")] == ["Acme's launch date is March 3."]
    with pytest.raises(InvalidIdentityError):
        MemoryManagerStore(memory, user_id="alice", tenant_context={"tenantId": "Not Valid"})
    untenanted = MemoryManagerStore(memory, user_id="alice")
    with pytest.raises(InvalidIdentityError):
        asyncio.run(untenanted.search("launch date"))


def test_search_honours_result_limits_and_reports_scores(local_env: Path) -> None:
    store = MemoryManagerStore(S3VectorMemory(), user_id="alice", similarity_threshold=0.0, max_search_results=2)
    for fact in ("Likes jazz.", "Likes rock.", "Likes opera.", "Likes techno."):
        asyncio.run(store.add(fact))

    assert len(asyncio.run(store.search("music taste"))) == 2
    entries = asyncio.run(store.search("music taste", {"max_search_results": 3}))
    assert len(entries) == 3
    metadata = entries[0].metadata or {}
    assert metadata["type"] == "memory" and metadata["key"].startswith("mem-")
    assert 0.0 < metadata["similarity"] <= 1.0
    with pytest.raises(ValueError):
        asyncio.run(store.search("music taste", {"max_search_results": 0}))


def test_search_fetches_a_detail_s_summary_only_when_the_store_asks(local_env: Path) -> None:
    """One result, so one candidate: the detail that matched, not the summary. By default the manager
    gets that detail; ``fetch_summaries=True`` gets the conversation's summary, as the plugin's setting does."""
    memory = S3VectorMemory(candidate_k=1)
    memory.store_conversation(
        "alice", "food", "Alice is vegetarian and allergic to peanuts. She cooks in big batches on Sundays.",
        agent_name="assistant",
        details=["ASSISTANT: When do you cook?\nUSER: Big batches on Sundays, my favourite is a lentil dal."],
    )
    settings: dict[str, Any] = {"user_id": "alice", "agent_name": "assistant", "similarity_threshold": 0.0,
                                "max_search_results": 1}

    (shown,) = asyncio.run(MemoryManagerStore(memory, **settings).search("lentil dal recipe"))
    assert (shown.metadata or {})["type"] == "detail" and "lentil dal" in shown.content
    (fetched,) = asyncio.run(MemoryManagerStore(memory, fetch_summaries=True, **settings).search("lentil dal recipe"))
    assert (fetched.metadata or {})["type"] == "summary" and fetched.content.startswith("Alice is vegetarian")


def test_ttl_expires_written_memories(local_env: Path) -> None:
    memory = S3VectorMemory()
    permanent = MemoryManagerStore(memory, user_id="alice", similarity_threshold=0.0)
    temporary = MemoryManagerStore(memory, user_id="alice", similarity_threshold=0.0, ttl_seconds=3.0)
    asyncio.run(permanent.add("The front door is painted green."))  # also warms the embedder up
    started = time.monotonic()
    asyncio.run(temporary.add("Temporary door code 4711."))
    assert {e.content for e in asyncio.run(permanent.search("door"))} == {
        "The front door is painted green.", "Temporary door code 4711.",
    }
    time.sleep(max(0.0, 3.2 - (time.monotonic() - started)))  # (3 s: a loaded machine is slow to search)
    assert [e.content for e in asyncio.run(permanent.search("door"))] == ["The front door is painted green."]


def test_read_only_store_refuses_writes(local_env: Path) -> None:
    store = MemoryManagerStore(S3VectorMemory(), user_id="alice", writable=False)
    with pytest.raises(ValueError, match="not writable"):
        asyncio.run(store.add("anything"))
    with pytest.raises(ValueError, match="not writable"):
        asyncio.run(store.add_messages([user_message("anything")]))
    with pytest.raises(ValueError, match="writable"):
        MemoryManager(stores=[MemoryManagerStore(S3VectorMemory(), user_id="a", writable=False, extraction=True)])


def test_agent_construction_fails_on_an_index_of_the_wrong_dimension(local_env: Path) -> None:
    client = local_client(local_env)
    client.create_vector_bucket(vectorBucketName=BUCKET)
    client.create_index(
        vectorBucketName=BUCKET, indexName="memory", dataType="float32", dimension=8, distanceMetric="cosine"
    )
    store = MemoryManagerStore(S3VectorMemory(), user_id="alice")
    with pytest.raises(DimensionMismatchError):
        make_agent(store)


def _tool_result(agent: Agent) -> str:
    results = [block["toolResult"] for m in agent.messages for block in m["content"] if "toolResult" in block]
    return " ".join(str(c.get("text", c.get("json", ""))) for c in results[-1]["content"])


def test_the_model_lists_and_deletes_only_the_bound_users_own_memories(local_env: Path) -> None:
    memory = S3VectorMemory()
    store = MemoryManagerStore(memory, agent_name="assistant")
    with store.bind(user_id="alice"):
        alice_key = asyncio.run(store.add("Alice's bike is a blue FIXIE."))
    with store.bind(user_id="bob"):
        bob_key = asyncio.run(store.add("Bob's bike is a red TANDEM."))
    assert {tool.tool_name for tool in store.get_tools()} == {"list_memories", "delete_memory"}

    def run(*calls: ToolCall) -> str:
        agent, _ = make_agent(store, ScriptedModel([*calls, "done"]))
        with store.bind(user_id="alice"):
            agent("Manage my memories.")
        return _tool_result(agent)

    listed = run(ToolCall("list_memories", {}))
    assert "FIXIE" in listed and alice_key in listed and "TANDEM" not in listed and bob_key not in listed
    assert run(ToolCall("delete_memory", {"key": bob_key})) == "No memory of this user has that key."
    assert run(ToolCall("delete_memory", {"key": alice_key})) == "Deleted."
    remaining = {v["key"] for v in vectors(local_env)}
    assert bob_key in remaining and alice_key not in remaining
    assert "FIXIE" not in run(ToolCall("list_memories", {}))


def test_store_tools_carry_the_store_name_when_it_is_not_the_default(local_env: Path) -> None:
    store = MemoryManagerStore(S3VectorMemory(), user_id="alice", name="team notes")
    assert {tool.tool_name for tool in store.get_tools()} == {"team_notes_list_memories", "team_notes_delete_memory"}


def test_the_old_name_of_the_adapter_still_works_with_a_warning() -> None:
    import strands_s3_vectors_memory

    with pytest.warns(DeprecationWarning, match="MemoryManagerStore"):
        assert strands_s3_vectors_memory.S3VectorsMemoryStore is MemoryManagerStore
