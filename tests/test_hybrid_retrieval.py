"""Memory retrieval on S3 Vectors' full-text search: new indexes, the hybrid first turn, the upgrade.

The engine stands in for the service (CLASSIC-era buckets through its clock). A hashing embedder
blind to digits makes "what the dense search finds" predictable: the memory holding the asked code
is farther from the query than its look-alikes, so only its words can bring it among the candidates.
How the candidates then rank with a real model is measured in ``bench/locomo_recall.py``.
"""

from __future__ import annotations

import json
import math
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import pytest
from strands import Agent
from typer.testing import CliRunner

from _common import DelayedLink  # bench/: the link bench/first_turn_queries.py measures over
from s3vectors_engine import LocalS3VectorsClient
from s3vectors_engine.server import LocalEndpoint
from strands_s3_vectors_memory import RetrievalSettings, S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.cli import app
from strands_s3_vectors_memory.index._index import create_index
from strands_s3_vectors_memory.lifecycle import upgrade_index
from strands_s3_vectors_memory.store._search import MAX_QUERY_TEXT_CHARS, text_query
from strands_s3_vectors_memory.testing import ScriptedModel
from support import HashingEmbedder, offline_cli_env

BUCKET = "hybrid-memory"
INDEX = "memories"
BEFORE_CUTOFF = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()


def code_blind_embedder() -> HashingEmbedder:
    """64-d bag of hashed words: similar wording, similar vector; an identifier barely moves it (digits ignored)."""
    return HashingEmbedder(64, token=r"[a-z]+")


class Recording:
    """The engine, with every QueryVectors request kept (what the first turn asks, and how much)."""

    def __init__(self, inner: LocalS3VectorsClient) -> None:
        self.inner = inner
        self.queries: list[dict[str, Any]] = []
        self.found: list[list[str]] = []  # the contents each query returned

    def query_vectors(self, **params: Any) -> Any:
        self.queries.append(params)
        response = self.inner.query_vectors(**params)
        self.found.append([str(v.get("metadata", {}).get("content", "")) for v in response["vectors"]])
        return response

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _store(client: Any, **kwargs: Any) -> S3VectorMemory:
    return S3VectorMemory(bucket_name=BUCKET, index_name=INDEX, client=client, embedder=code_blind_embedder(),
                          backend="local", similarity_threshold=0.0, dedupe_threshold=None, **kwargs)


_SHOPS = ["garden", "kitchen", "sports", "books", "toys", "music", "office", "pets", "shoes", "games"]


def _seed(store: S3VectorMemory, look_alikes: int = 60) -> None:
    for i in range(look_alikes):
        shop, other = _SHOPS[i % 10], _SHOPS[(i // 10 + 3) % 10]
        store.store_memory("ann", f"My {shop} parcel with order ORD-{10000 + i} from the {other} shop is late, "
                                  "the courier lost it")
    store.store_memory("ann", "Refund for ORD-47110 approved, money back next week")


QUESTION = "my parcel ORD-47110 is late, the courier lost it, what now?"


def test_new_memory_indexes_are_enhanced_with_content_searchable(tmp_path: Path) -> None:
    with LocalS3VectorsClient(tmp_path) as engine:
        _store(engine).verify()
        index = engine.get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]
        assert index["indexMode"] == "ENHANCED"
        assert index["metadataConfiguration"]["textSearchConfigurations"] == [
            {"metadataKey": "content", "status": "ACTIVE"}
        ]
        assert index["metadataConfiguration"]["nonFilterableMetadataKeys"] == [
            "content", "stored_at", "conversation_id", "type"
        ]  # the spec's layout, as 0.3.0 made and reads it


def test_first_turn_is_one_hybrid_query_that_finds_the_code_dense_search_misses(tmp_path: Path) -> None:
    with LocalS3VectorsClient(tmp_path) as engine:
        client = Recording(engine)
        store = _store(client)
        _seed(store)
        store.search_with_facts(store.scope("ann"), QUESTION, top_k=5, fact_k=0)
        assert any("ORD-47110" in content for content in client.found[-1])  # a candidate, by its words
        (query,) = client.queries
        assert query["queryTexts"] == [{"metadataKey": "content", "text": QUESTION}]
        assert query["topK"] == 30  # 6 per memory shown, not 100 records' metadata
        # the dense search alone (0.3.0's query, as the CLASSIC fallback sends it) misses the code
        dense = engine.query_vectors(vectorBucketName=BUCKET, indexName=INDEX, topK=20, returnMetadata=True,
                                     queryVector={"float32": code_blind_embedder().embed_query(QUESTION)})
        assert all("47110" not in v["metadata"]["content"] for v in dense["vectors"])


@pytest.mark.parametrize("question", [QUESTION, "Any news on ORD-47110?"])
def test_first_turn_ranks_the_asked_codes_memory_above_closer_look_alikes(tmp_path: Path, question: str) -> None:
    """Among hybrid candidates the words weigh more than among dense ones: the one memory holding the
    asked code comes first, though 60 look-alikes are nearer the question's vector (and share more of
    its other words); with the dense candidates' mix it was not even among the five shown."""
    with LocalS3VectorsClient(tmp_path) as engine:
        store = _store(engine)
        _seed(store)
        _facts, memories = store.search_with_facts(store.scope("ann"), question, top_k=5, fact_k=0)
        assert "ORD-47110" in memories[0].content
        assert all("ORD-47110" not in m.content for m in memories[1:])


def _remote(link: DelayedLink, **kwargs: Any) -> tuple[Any, S3VectorMemory]:
    """A stock boto3 client through ``link`` and the AWS-backend store over it (the index already made)."""
    client = boto3.client("s3vectors", endpoint_url=link.url, region_name="us-east-1",
                          aws_access_key_id="test", aws_secret_access_key="test")
    remote = S3VectorMemory(bucket_name=BUCKET, index_name=INDEX, client=client, embedder=code_blind_embedder(),
                            backend="aws", region_name="us-east-1", similarity_threshold=0.0, **kwargs)
    remote.verify()
    return client, remote


def test_over_a_network_the_first_turns_two_reads_share_one_round_trip(tmp_path: Path) -> None:
    """boto3 through the endpoint, every answer 0.4 s late: the facts query is sent before the
    memories query's answer is in (and the other way round), so the turn waits one round trip, not two."""
    rtt = 0.4
    with LocalS3VectorsClient(tmp_path) as engine:
        store = _store(engine)
        _seed(store)
        store.store_conversation_scope(store.scope("ann"), "c1", "Ann moved her parcels to the Lisbon depot.",
                                       facts=["Lives in Lisbon"])
    with LocalEndpoint(tmp_path) as endpoint, DelayedLink(endpoint.port, rtt) as link:
        client, remote = _remote(link)
        events: list[tuple[str, str]] = []
        client.meta.events.register("before-send.s3vectors.QueryVectors", lambda request, **_: events.append(
            ("sent", "memories" if "queryTexts" in json.loads(request.body) else "facts")))
        client.meta.events.register("after-call.s3vectors.QueryVectors", lambda **_: events.append(("answer", "")))
        started = time.perf_counter()
        facts, memories = remote.search_with_facts(remote.scope("ann"), QUESTION, top_k=5, fact_k=30,
                                                   include_superseded=True, fact_threshold=-math.inf)
        elapsed = time.perf_counter() - started
    assert [f.content for f in facts] == ["Lives in Lisbon"] and "ORD-47110" in memories[0].content
    assert sorted(events[:2]) == [("sent", "facts"), ("sent", "memories")]  # both out before any answer
    assert events[2:] == [("answer", ""), ("answer", "")]  # no third request: summaries were candidates
    assert rtt <= elapsed < 2 * rtt


_REFUND_DETAILS = [f"USER: the refund for ORD-47110 is still missing, day {day}" for day in range(1, 8)]


def _first_turn_over_a_slow_link(
    tmp_path: Path, rtt: float, retrieval: RetrievalSettings
) -> tuple[str, list[str], float]:
    """A returning user's first turn through boto3 and the endpoint, every answer ``rtt`` late: the
    block the model saw, the S3 Vectors operations the turn called, and how long it took."""
    with LocalS3VectorsClient(tmp_path / "data") as engine:
        store = _store(engine)
        store.store_conversation_scope(store.scope("ann", "assistant"), "c1", "Ann planned her spring garden beds.",
                                       details=_REFUND_DETAILS, facts=["Lives in Lisbon"])
    with LocalEndpoint(tmp_path / "data") as endpoint, DelayedLink(endpoint.port, rtt) as link:
        # 5 candidates: the conversation's details, not its summary (no word of the question)
        client, remote = _remote(link, candidate_k=5)
        calls: list[str] = []
        client.meta.events.register("before-call.s3vectors", lambda model, **_: calls.append(model.name))
        model = ScriptedModel()
        plugin = S3VectorMemoryPlugin(remote, "You help Ann.\n{memory_context}", retrieval=retrieval,
                                      writing=WritingSettings(spool_dir=tmp_path / "spool", flush_at_exit=False))
        agent = Agent(model=model, name="assistant", plugins=[plugin], system_prompt="You help Ann.\n{memory_context}",
                      callback_handler=None)
        started = time.perf_counter()
        agent("Any news on my refund for ORD-47110?", invocation_state={"user_id": "ann", "conversation_id": "c2"})
        elapsed, turn_calls = time.perf_counter() - started, list(calls)
        plugin.close(10)  # stores the open conversation: calls of its own
    return str(model.requests[0].system_prompt), turn_calls, elapsed


def test_a_first_turn_is_one_round_trip_even_when_a_detail_found_the_conversation(tmp_path: Path) -> None:
    """The conversation's details outrank its summary, which is no candidate: the block shows the
    detail and the user's fact, from the two queries sent side by side, with no fetch after them."""
    rtt = 0.4
    block, calls, elapsed = _first_turn_over_a_slow_link(tmp_path, rtt, RetrievalSettings())
    assert calls == ["QueryVectors", "QueryVectors"]
    assert "Lives in Lisbon" in block and "refund for ORD-47110 is still missing" in block
    assert "spring garden" not in block
    assert rtt <= elapsed < 2 * rtt


def test_fetch_summaries_shows_the_summary_for_one_more_round_trip(tmp_path: Path) -> None:
    rtt = 0.4
    block, calls, elapsed = _first_turn_over_a_slow_link(tmp_path, rtt, RetrievalSettings(fetch_summaries=True))
    assert calls == ["QueryVectors", "QueryVectors", "GetVectors"]
    assert "Lives in Lisbon" in block and "Ann planned her spring garden beds." in block
    assert 2 * rtt <= elapsed < 3 * rtt


def test_a_conversation_found_only_through_its_fact_needs_the_fetch_to_be_shown(tmp_path: Path) -> None:
    """The one candidate is the user's fact: facts are never a conversation's memory, so without the
    fetch the search shows nothing (the fact is the facts query's to show); with it, the summary."""
    with LocalS3VectorsClient(tmp_path) as engine:
        store = _store(engine, candidate_k=1)
        store.store_conversation_scope(store.scope("ann", "assistant"), "c1", "Ann planned her spring garden beds.",
                                       facts=["Lives in Lisbon"])
        question = "Does Ann still live in Lisbon?"
        assert store.search("ann", question, agent_name="assistant", top_k=1) == []
        (shown,) = store.search("ann", question, agent_name="assistant", top_k=1, fetch_summaries=True)
        assert (shown.type, shown.content) == ("summary", "Ann planned her spring garden beds.")


def test_classic_index_falls_back_to_dense_candidates_and_upgrade_brings_hybrid(tmp_path: Path) -> None:
    """An index made by today's version in a CLASSIC-era bucket: dense ranking, then upgraded in place."""
    with LocalS3VectorsClient(tmp_path, clock=lambda: BEFORE_CUTOFF) as engine:
        engine.create_vector_bucket(vectorBucketName=BUCKET)
        create_index(engine, BUCKET, INDEX, dimension=code_blind_embedder().dimension)  # refused text search: CLASSIC
        before = engine.get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]
        assert before["indexMode"] == "CLASSIC" and "textSearchConfigurations" not in before["metadataConfiguration"]
        client = Recording(engine)
        store = _store(client, candidate_k=20)
        _seed(store)
        store.search_with_facts(store.scope("ann"), QUESTION, top_k=5, fact_k=0)
        assert "queryTexts" not in client.queries[-1] and client.queries[-1]["topK"] == 20
        assert all("47110" not in content for content in client.found[-1])  # dense: not among its 20

        index, changed = upgrade_index(engine, BUCKET, INDEX)
        assert changed == ["index_mode", "full_text"]
        assert index["indexMode"] == "ENHANCED"
        assert index["metadataConfiguration"]["textSearchConfigurations"][0]["status"] == "ACTIVE"
        assert upgrade_index(engine, BUCKET, INDEX)[1] == []  # twice: nothing left to do

        client = Recording(engine)
        upgraded = _store(client, candidate_k=20)  # a new process sees the new index
        upgraded.search_with_facts(upgraded.scope("ann"), QUESTION, top_k=5, fact_k=0)
        assert "queryTexts" in client.queries[-1]
        assert any("ORD-47110" in content for content in client.found[-1])


def test_setup_upgrade_command_is_safe_to_run_twice(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    offline_cli_env(monkeypatch, tmp_path / "data", BUCKET, columns=200)
    runner = CliRunner()
    first = runner.invoke(app, ["setup", "--upgrade", "--json"])
    assert first.exit_code == 0, first.output
    result = json.loads(first.stdout)
    assert (result["index_mode"], result["full_text"], result["upgraded"]) == ("ENHANCED", "ACTIVE", [])
    again = runner.invoke(app, ["setup", "--upgrade"])
    assert again.exit_code == 0, again.output
    assert "index mode ENHANCED, content full-text search ACTIVE" in again.stdout


def test_setup_upgrade_on_a_service_without_index_modes_says_so(tmp_path: Path) -> None:
    """moto (like any service before 2026) reports no index mode: the upgrade explains, never pretends."""
    import os

    import boto3
    from moto import mock_aws

    from strands_s3_vectors_memory.errors import ConfigurationError

    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("s3vectors", region_name="us-east-1")
        client.create_vector_bucket(vectorBucketName=BUCKET)
        create_index(client, BUCKET, INDEX, dimension=8)
        with pytest.raises(ConfigurationError, match="no index mode"):
            upgrade_index(client, BUCKET, INDEX)


def test_a_long_first_message_keeps_its_words_for_the_text_side() -> None:
    words = [f"word{i}" for i in range(600)]
    message = " ".join([*words, "the", "ORD-47110", *words])  # 9,000 characters, the code in the middle
    text = text_query(message)
    assert len(text) <= MAX_QUERY_TEXT_CHARS
    assert text_query("short question?") == "short question?"
    assert "ORD-47110" not in text or len(set(text.split())) == len(text.split())  # distinct words only
    tail = text_query(" ".join(["filler"] * 2000 + ["ORD-47110"]))
    assert tail == "filler ORD-47110"  # repeats collapse, so a late rare word still reaches the service
