"""Facts that stay true, end to end on the embedded engine and on the AWS code path: a fact stated in
one conversation is superseded by a later one (kept as history, same vector, never injected as
current), retries and replays write the same thing, a forgotten user's facts never come back, and
tenants never see each other's facts."""

from __future__ import annotations

import contextvars
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from memory_env import MemoryEnv
from strands_s3_vectors_memory import MultiTenantS3VectorMemory, S3VectorMemory, SummarySettings
from strands_s3_vectors_memory.archive._archiver import Archiver
from strands_s3_vectors_memory.archive._jobs import ConversationJob
from strands_s3_vectors_memory.archive._summary_format import FACT_PARSE_COUNTS, parse_summary_request
from strands_s3_vectors_memory.embeddings import Embedder, make_embedder, mean_direction
from strands_s3_vectors_memory.embeddings._base import EmbedderWrapper
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.index._records import (
    FACT_CURRENT,
    FACT_SUPERSEDED,
    TYPE_FACT,
    Memory,
    MemoryScope,
    fact_key,
    key_belongs,
)
from strands_s3_vectors_memory.store._search import beside
from strands_s3_vectors_memory.testing import ScriptedModel, ToolCall, default_responder
from strands_s3_vectors_memory.text import message_text
from support import all_vectors, asks_for_summary, chat_prompts, is_summary_request, make_agent, say

AGENT = "assistant"


def _facts(client: Any, user: str = "alice", index: str = "memory") -> dict[str, dict[str, Any]]:
    """The user's fact vectors by content, with their metadata."""
    return {
        v["metadata"]["content"]: {**v["metadata"], "key": v["key"]}
        for v in all_vectors(client, index=index)
        if v["metadata"].get("type") == TYPE_FACT and v["metadata"]["user_id"] == user
    }


def _vector(client: Any, key: str, index: str = "memory") -> list[float]:
    found = client.get_vectors(vectorBucketName="my-vector-memory", indexName=index, keys=[key], returnData=True)
    return [float(x) for x in found["vectors"][0]["data"]["float32"]]


def _injected_facts(prompt: str) -> str:
    return "\n".join(line for line in prompt.splitlines() if line.startswith("<fact "))


def test_a_move_supersedes_the_old_city_which_is_kept_but_never_injected(memory_env: MemoryEnv) -> None:
    store = S3VectorMemory()
    agent, plugin, model = make_agent(store)
    say(agent, "I live in Berlin. I'm vegetarian.", "alice", "c1", end=True)
    assert plugin.flush(60)
    berlin = _facts(memory_env.client)["Lives in Berlin"]
    assert berlin["fact_status"] == FACT_CURRENT and berlin["conversation_id"] == "c1"
    vector_before = _vector(memory_env.client, berlin["key"])

    say(agent, "I live in Paris now.", "alice", "c2", end=True)
    assert plugin.flush(60)
    asked = parse_summary_request(message_text([r for r in model.requests if is_summary_request(r)][-1].messages[-1],
                                               fold=False))
    assert asked is not None and "Lives in Berlin" in asked.current_facts  # the model was shown the old fact
    facts = _facts(memory_env.client)
    paris, berlin = facts["Lives in Paris now"], facts["Lives in Berlin"]
    assert paris["fact_status"] == FACT_CURRENT and paris["conversation_id"] == "c2"
    assert berlin["fact_status"] == FACT_SUPERSEDED and berlin["superseded_by"] == paris["key"]
    assert berlin["valid_to"] >= berlin["stored_at"] and berlin["content"] == "Lives in Berlin"
    assert _vector(memory_env.client, berlin["key"]) == vector_before  # re-put with its own vector
    assert facts["Is vegetarian"]["fact_status"] == FACT_CURRENT  # an unrelated fact is left alone

    say(agent, "Where do I live these days?", "alice", "c3")
    injected = _injected_facts(chat_prompts(model)[-1])
    assert "Paris" in injected and "Berlin" not in injected
    plugin.close(10)


def test_recall_memories_returns_superseded_facts_when_asked_about_the_past(memory_env: MemoryEnv) -> None:
    store = S3VectorMemory()
    agent, plugin, _ = make_agent(store)
    say(agent, "I live in Berlin.", "alice", "c1", end=True)
    assert plugin.flush(60)
    say(agent, "I live in Paris now.", "alice", "c2", end=True)
    assert plugin.flush(60)
    calls = [ToolCall("recall_memories", {"query": "Where did I live before Paris?", "include_past": True}), "ok",
             ToolCall("recall_memories", {"query": "Where do I live?"}), "ok"]
    model2 = ScriptedModel(replies=calls)
    agent.model = model2
    say(agent, "Where did I live before?", "alice", "c3")
    say(agent, "And now?", "alice", "c3")
    results = [str(block["toolResult"]["content"][0]["text"]) for request in model2.requests
               for message in request.messages for block in message["content"] if "toolResult" in block]
    past, now = results[0], results[-1]
    assert 'status="superseded"' in past and "Lives in Berlin" in past and "Lives in Paris now" in past
    assert "Lives in Berlin</fact>" not in now and "Lives in Paris now</fact>" in now
    plugin.close(10)


def _job(conversation: str, text: str, ended_at: float) -> ConversationJob:
    return ConversationJob(MemoryScope("alice", AGENT), conversation, f"USER: {text}", started_at=ended_at - 10,
                           ended_at=ended_at)


def test_a_retry_reuses_the_checkpoint_and_writes_the_same_facts(memory_env: MemoryEnv) -> None:
    store = S3VectorMemory()
    model = ScriptedModel()
    archiver = Archiver(store, lambda: model)
    archiver.archive(_job("c1", "I live in Berlin.", 1_000_000))
    saved: list[ConversationJob] = []
    archiver.archive(_job("c2", "I live in Paris.", 2_000_000), saved.append)
    checkpoint = ConversationJob.from_payload(saved[-1].to_payload())  # as spooled, read back
    assert checkpoint.related_facts is not None and [r.text for r in checkpoint.related_facts] == ["Lives in Berlin"]
    assert checkpoint.fact_changes is not None and checkpoint.fact_changes.status == "ok"
    before = _facts(memory_env.client)

    def no_model(messages: Any, system_prompt: str | None) -> Any:
        raise AssertionError("a checkpointed job must not call the model again")

    calls = len(model.requests)
    Archiver(store, lambda: ScriptedModel(responder=no_model)).archive(checkpoint)
    assert len(model.requests) == calls
    assert _facts(memory_env.client) == before  # same facts, same history: the supersession is not stamped twice


def test_a_replayed_old_job_does_not_revive_a_fact_a_later_conversation_ended(memory_env: MemoryEnv) -> None:
    store = S3VectorMemory()
    archiver = Archiver(store, ScriptedModel)
    saved: list[ConversationJob] = []
    archiver.archive(_job("c1", "I live in Berlin.", 1_000_000), saved.append)
    archiver.archive(_job("c2", "I live in Paris.", 2_000_000))
    archiver.archive(saved[-1])  # c1 again, e.g. replayed from a spool after a crash
    facts = _facts(memory_env.client)
    assert facts["Lives in Berlin"]["fact_status"] == FACT_SUPERSEDED
    assert facts["Lives in Paris"]["fact_status"] == FACT_CURRENT
    archiver.archive(_job("c3", "I live in Berlin.", 3_000_000))  # later, she really moves back
    facts = _facts(memory_env.client)
    assert facts["Lives in Berlin"]["fact_status"] == FACT_CURRENT and "valid_to" not in facts["Lives in Berlin"]
    assert facts["Lives in Paris"]["superseded_by"] == facts["Lives in Berlin"]["key"]


def test_a_user_forgotten_while_facts_are_written_gets_none_of_them_back(memory_env: MemoryEnv) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(messages: Any, system_prompt: str | None) -> Any:
        if asks_for_summary(messages) and "Paris" in message_text(messages[-1]):
            started.set()
            release.wait(30)
        return default_responder(messages, system_prompt)

    store = S3VectorMemory()
    agent, plugin, _ = make_agent(store, ScriptedModel(responder=slow))
    say(agent, "I live in Berlin.", "alice", "c1", end=True)
    say(agent, "I live in Berlin too.", "bob", "b1", end=True)
    assert plugin.flush(60)
    say(agent, "I live in Paris now.", "alice", "c2", end=True)  # will supersede the Berlin fact
    assert started.wait(30)
    store.forget_user("alice")
    release.set()
    assert plugin.flush(60)
    assert [v for v in all_vectors(memory_env.client) if v["metadata"]["user_id"] == "alice"] == []
    assert _facts(memory_env.client, "bob")["Lives in Berlin too"]["fact_status"] == FACT_CURRENT
    plugin.close(10)


def test_an_unparseable_facts_section_still_stores_the_summary(memory_env: MemoryEnv) -> None:
    def sloppy(messages: Any, system_prompt: str | None) -> Any:
        if asks_for_summary(messages):
            return "The user lives in Paris.\nFACTS:\n???\n(see the summary)"
        return "ok"

    FACT_PARSE_COUNTS.reset()
    store = S3VectorMemory()
    agent, plugin, _ = make_agent(store, ScriptedModel(responder=sloppy))
    say(agent, "I live in Paris.", "alice", "c1", end=True)
    assert plugin.flush(60)
    stored = [v["metadata"] for v in all_vectors(memory_env.client)]
    assert [m["content"] for m in stored if m["type"] == "summary"] == ["The user lives in Paris."]
    assert not [m for m in stored if m["type"] == TYPE_FACT]
    assert FACT_PARSE_COUNTS.snapshot()["malformed"] == 1
    plugin.close(10)


def test_an_older_job_without_facts_is_stored_as_before(memory_env: MemoryEnv) -> None:
    payload = _job("c1", "I live in Lima.", 1_000_000).to_payload()
    for key in ("related_facts", "fact_changes"):
        payload.pop(key)  # a job spooled by a version without facts
    job = ConversationJob.from_payload({**payload, "summary": "The user lives in Lima."})
    assert job.related_facts is None and job.fact_changes is None
    Archiver(S3VectorMemory(), lambda: None).archive(job)
    stored = [v["metadata"] for v in all_vectors(memory_env.client)]
    assert [m["content"] for m in stored if m["type"] == "summary"] == ["The user lives in Lima."]
    assert not [m for m in stored if m["type"] == TYPE_FACT]


def test_tenants_never_see_or_supersede_each_others_facts(local_env: Path) -> None:
    store = MultiTenantS3VectorMemory()
    model = ScriptedModel()
    agent, plugin, _ = make_agent(store, model)
    say(agent, "I live in Berlin.", "u1", "c1", end=True, tenant_context={"tenantId": "acme"})
    assert plugin.flush(60)
    say(agent, "I live in Paris.", "u1", "c2", end=True, tenant_context={"tenantId": "globex"})
    assert plugin.flush(60)
    asked = parse_summary_request(message_text([r for r in model.requests if is_summary_request(r)][-1].messages[-1],
                                               fold=False))
    assert asked is not None and asked.current_facts == ()  # acme's fact was never shown for globex
    acme = store.search_with_facts(store.scope("u1", AGENT, {"tenantId": "acme"}), "Where do I live?",
                                   similarity_threshold=0.0)[0]
    globex = store.search_with_facts(store.scope("u1", AGENT, {"tenantId": "globex"}), "Where do I live?",
                                     similarity_threshold=0.0)[0]
    assert [(m.content, m.fact_status) for m in acme] == [("Lives in Berlin", FACT_CURRENT)]
    assert [(m.content, m.fact_status) for m in globex] == [("Lives in Paris", FACT_CURRENT)]
    plugin.close(10)


def test_fact_keys_are_content_addressed_and_owned_by_their_scope() -> None:
    alice, bob = MemoryScope("alice", AGENT), MemoryScope("bob", AGENT)
    assert fact_key(alice, "Lives in  Paris") == fact_key(alice, "lives in paris")
    assert fact_key(alice, "Lives in Paris") != fact_key(bob, "Lives in Paris")
    assert key_belongs(fact_key(alice, "x"), alice) and not key_belongs(fact_key(alice, "x"), bob)
    assert not key_belongs(fact_key(alice, "x"), MemoryScope("alice", AGENT, "tenant-b"))


def test_a_conversation_found_only_through_a_fact_shows_its_summary_never_the_fact(memory_env: MemoryEnv) -> None:
    store = S3VectorMemory(dedupe_threshold=None)
    scope = MemoryScope("alice", AGENT)
    store.store_conversation_scope(scope, "c1", "We talked about her new home and the neighbours.",
                                   facts=["Lives in Lisbon"])
    facts, memories = store.search_with_facts(scope, "Lisbon", similarity_threshold=0.0)
    assert [m.content for m in facts] == ["Lives in Lisbon"]
    assert memories and all(isinstance(m, Memory) and m.type != TYPE_FACT for m in memories)
    assert memories[0].content.startswith("We talked about her new home")


def test_a_superseded_fact_of_the_longest_ids_fits_the_filterable_metadata_limit(memory_env: MemoryEnv) -> None:
    user, agent = "u" * 512, "a" * 512  # the largest ids: 1 KB of the 2 KB of filterable metadata
    store = S3VectorMemory()
    archiver = Archiver(store, ScriptedModel)
    scope = MemoryScope(user, agent)
    archiver.archive(ConversationJob(scope, "c1", "USER: I live in Berlin.", 1_000_000, 1_000_000))
    archiver.archive(ConversationJob(scope, "c2", "USER: I live in Paris.", 2_000_000, 2_000_000))
    facts = _facts(memory_env.client, user)
    assert facts["Lives in Berlin"]["fact_status"] == FACT_SUPERSEDED  # the engine checks S3 Vectors' limit
    assert facts["Lives in Paris"]["fact_status"] == FACT_CURRENT


class _CountingEmbedder(EmbedderWrapper):
    """Records every text embedded, by kind (documents, queries of any path)."""

    def __init__(self, inner: Embedder) -> None:
        super().__init__(inner)
        self.documents: list[str] = []
        self.queries: list[str] = []

    def embed_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return self._inner.embed_query(text)

    def embed_background_query(self, text: str) -> list[float]:
        self.queries.append(text)
        return super().embed_background_query(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.documents.extend(texts)
        return self._inner.embed_documents(texts)


def _counting_store(tmp_path: Path) -> tuple[S3VectorMemory, _CountingEmbedder]:
    embedder = _CountingEmbedder(make_embedder("local"))
    return S3VectorMemory("my-vector-memory", backend="local", data_dir=tmp_path, embedder=embedder), embedder


def test_the_related_facts_lookup_reuses_the_detail_vectors_instead_of_embedding_a_query(tmp_path: Path) -> None:
    """Each ended conversation embeds each text once: its details serve as the facts' query (they
    used to cost one more embedding, of up to 2,000 characters, per conversation)."""
    store, embedder = _counting_store(tmp_path)
    model = ScriptedModel()
    archiver = Archiver(store, lambda: model)
    archiver.archive(_job("c1", "I live in Berlin. I keep bees on the roof.", 1_000_000))
    embedder.documents.clear()
    said = "I live in Paris now."
    archiver.archive(_job("c2", said, 2_000_000))
    assert embedder.queries == []  # no query of any kind for the related facts
    assert sorted(set(embedder.documents)) == sorted(embedder.documents)  # no text embedded twice
    assert f"USER: {said}" in embedder.documents
    asked = parse_summary_request(message_text([r for r in model.requests if is_summary_request(r)][-1].messages[-1],
                                               fold=False))
    assert asked is not None and asked.current_facts[0] == "Lives in Berlin"  # the nearest, first
    facts = _facts(local_client(tmp_path), index="memory")
    assert facts["Lives in Berlin"]["fact_status"] == FACT_SUPERSEDED


def test_without_details_the_related_facts_are_found_with_what_the_user_said(tmp_path: Path) -> None:
    store, embedder = _counting_store(tmp_path)
    model = ScriptedModel()
    archiver = Archiver(store, lambda: model, SummarySettings(store_details=False))
    archiver.archive(_job("c1", "I live in Berlin.", 1_000_000))
    embedder.queries.clear()
    archiver.archive(_job("c2", "I live in Paris now.", 2_000_000))
    assert embedder.queries == ["I live in Paris now."]  # the background query, as the only way
    assert _facts(local_client(tmp_path), index="memory")["Lives in Berlin"]["fact_status"] == FACT_SUPERSEDED


def test_related_facts_near_vectors_rank_the_facts_closest_to_them_first(tmp_path: Path) -> None:
    store, _ = _counting_store(tmp_path)
    scope = store.scope("alice", agent_name=AGENT)
    store.store_conversation_scope(scope, "c1", "Alice's profile.",
                                   facts=["Lives in Berlin", "Keeps bees on the roof", "Works as a night nurse"])
    for said, nearest in (("USER: I finally moved out of Berlin, to Paris.", "Lives in Berlin"),
                          ("USER: I changed jobs, no more night shifts at the hospital.", "Works as a night nurse"),
                          ("USER: My bees swarmed and left the hive.", "Keeps bees on the roof")):
        near = store.embed_documents([said, "USER: hello there"])
        found = store.related_facts(scope, "", limit=1, near=near)
        assert [fact.text for fact in found] == [nearest], said
    assert store.related_facts(scope, "", limit=0, near=near) == []
    assert store.related_facts(scope, "ASSISTANT: no user words", limit=5) == []  # nothing to search with


def test_mean_direction_is_the_normalised_mean() -> None:
    assert mean_direction([[1.0, 0.0], [0.0, 1.0]]) == pytest.approx([0.5 ** 0.5, 0.5 ** 0.5])
    assert mean_direction([[0.6, 0.8]]) == pytest.approx([0.6, 0.8])
    assert mean_direction([[1.0, 0.0], [-1.0, 0.0]]) == [1.0, 0.0]  # cancelled out: the first stands in
    with pytest.raises(ValueError):
        mean_direction([])


def test_a_retried_summary_call_does_not_embed_the_details_again(tmp_path: Path) -> None:
    """The details are embedded before the summary call; when that call fails (throttled) the
    writer's next attempt reuses their vectors instead of paying for them again."""
    store, embedder = _counting_store(tmp_path)
    failures = [RuntimeError("ThrottlingException: rate exceeded")]

    def flaky(messages: Any, system_prompt: str | None) -> Any:
        if failures:
            raise failures.pop()
        return default_responder(messages, system_prompt)

    archiver = Archiver(store, lambda: ScriptedModel(responder=flaky))
    job = _job("c1", "I live in Berlin. I keep bees on the roof. I keep bees on the roof.", 1_000_000)
    with pytest.raises(RuntimeError, match="ThrottlingException"):  # what the model raised reaches the writer
        archiver.archive(job)
    details = list(embedder.documents)
    assert details and len(set(details)) == len(details)  # embedded before the call, each text once
    archiver.archive(job)  # the writer's next attempt
    again = embedder.documents[len(details):]
    assert not set(details) & set(again)  # the details were not embedded a second time
    stored = {v["metadata"]["content"] for v in all_vectors(local_client(tmp_path))}
    assert "Lives in Berlin" in stored and any(d in stored for d in details)


class _SlowQueries:
    """An S3 Vectors client whose ``query_vectors`` takes ``delay`` seconds (a network round trip),
    counting how many run at once; everything else goes straight to the wrapped client."""

    def __init__(self, inner: Any, delay: float) -> None:
        self._inner, self._delay = inner, delay
        self.running = self.most = 0
        self._lock = threading.Lock()

    def query_vectors(self, **params: Any) -> Any:
        with self._lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(self._delay)
            return self._inner.query_vectors(**params)
        finally:
            with self._lock:
                self.running -= 1

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_on_aws_a_first_turns_memory_and_fact_queries_run_side_by_side(tmp_path: Path) -> None:
    """One round trip instead of two for a first turn on AWS; the same answer as one after the other."""
    local = S3VectorMemory("my-vector-memory", backend="local", data_dir=tmp_path, embedder=make_embedder("local"))
    scope = local.scope("alice", agent_name=AGENT)
    local.store_conversation_scope(scope, "c1", "Alice talked about her flat in Lisbon and her bees.",
                                   details=["USER: I live in Lisbon and keep bees."],
                                   facts=["Lives in Lisbon", "Keeps bees"])
    expected = local.search_with_facts(scope, "Where do I live?")
    assert expected[0] and expected[1]  # a fact and a memory to find

    slow = _SlowQueries(local_client(tmp_path), delay=0.4)
    remote = S3VectorMemory("my-vector-memory", backend="aws", region_name="us-east-1", client=slow,
                            embedder=local.embedder)
    remote.verify()
    started = time.perf_counter()
    found = remote.search_with_facts(scope, "Where do I live?")
    elapsed = time.perf_counter() - started
    assert [m.key for m in found[0]] == [m.key for m in expected[0]]
    assert [m.key for m in found[1]] == [m.key for m in expected[1]]
    assert slow.most == 2 and elapsed < 0.75  # side by side: one 0.4 s round trip, not two


def test_beside_returns_the_calls_result_in_the_callers_context_or_raises_what_it_raised() -> None:
    who: contextvars.ContextVar[str] = contextvars.ContextVar("who")
    who.set("the first turn")
    assert beside(who.get)() == "the first turn"  # spans and settings of the caller reach the thread
    with pytest.raises(ZeroDivisionError):
        beside(lambda: 1 // 0)()


class _FailingPut:
    """An S3 Vectors client whose first ``put_vectors`` fails (throttled); the rest goes through."""

    def __init__(self, inner: Any) -> None:
        self._inner, self.failures = inner, 1

    def put_vectors(self, **params: Any) -> Any:
        if self.failures:
            self.failures -= 1
            raise RuntimeError("TooManyRequestsException: slow down")
        return self._inner.put_vectors(**params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def test_a_retried_write_embeds_nothing_twice(tmp_path: Path) -> None:
    """A throttled PutVectors: the next attempt, from the checkpoint, reuses every vector the failed
    one embedded (details, summary, facts)."""
    embedder = _CountingEmbedder(make_embedder("local"))
    store = S3VectorMemory("my-vector-memory", backend="local", data_dir=tmp_path, embedder=embedder,
                           client=_FailingPut(local_client(tmp_path)))
    archiver = Archiver(store, ScriptedModel)
    saved: list[ConversationJob] = []
    job = _job("c1", "I live in Berlin. I keep bees on the roof.", 1_000_000)
    with pytest.raises(RuntimeError, match="TooManyRequests"):
        archiver.archive(job, saved.append)
    first = list(embedder.documents)
    assert len(first) >= 3  # details, summary and facts were embedded before the put failed
    archiver.archive(saved[-1])  # the writer's next attempt starts from the checkpoint
    assert embedder.documents == first  # nothing embedded again
    stored = {v["metadata"]["content"] for v in all_vectors(local_client(tmp_path))}
    assert "Lives in Berlin" in stored and "Keeps bees on the roof" in stored
