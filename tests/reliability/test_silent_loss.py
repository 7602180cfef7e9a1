"""Ways a conversation's memory can disappear with no fault injected at all.

Found by the load test (``bench/load_test.py``, 50 agents x 20 conversations): the counts of
summaries requested and stored disagreed although no write failed. Each test here isolates one
cause and guards its fix.
"""

from __future__ import annotations

from pathlib import Path

from reliability_support import make_agent, say, summaries

from s3vectors_engine import LocalS3VectorsClient
from strands_s3_vectors_memory import RetrievalSettings, S3VectorMemory, S3VectorMemoryPlugin
from support import all_vectors

BUCKET = "reliability"


def test_a_long_lived_agent_keeps_storing_conversations_after_its_history_window_fills(
    hash_store: S3VectorMemory, engine: LocalS3VectorsClient, tmp_path: Path, plugins: list[S3VectorMemoryPlugin],
) -> None:
    agent, plugin, _ = make_agent(hash_store, spool_dir=tmp_path / "spool",
                                  retrieval=RetrievalSettings(read_your_writes_timeout=0))
    plugins.append(plugin)
    requested = {f"conv-{i}" for i in range(25)}
    for i in range(25):
        say(agent, f"Conversation {i}: my parcel tracking code is PX{i:04d}.", f"user-{i}", f"conv-{i}")
        say(agent, "Thanks, bye.", f"user-{i}", f"conv-{i}", end=True)
    assert plugin.flush(30) and plugin.writer.stats.failed == 0
    stored = {v["metadata"]["conversation_id"] for v in summaries(all_vectors(engine, BUCKET, "memory"))}
    assert requested - stored == set(), f"{len(requested - stored)} of 25 conversations were not stored"


def test_two_conversations_with_different_facts_on_one_topic_are_both_kept(
    local_env: Path, plugins: list[S3VectorMemoryPlugin]
) -> None:
    store = S3VectorMemory()  # the offline default: bundled e5 model, extractive summaries
    agent, plugin, _ = make_agent(store, spool_dir=local_env / "spool",
                                  retrieval=RetrievalSettings(read_your_writes_timeout=0))
    plugins.append(plugin)
    for conversation, fact in (("diet-1", "I'm vegetarian and allergic to peanuts."),
                               ("diet-2", "I'm vegan and allergic to nuts.")):
        say(agent, fact, "u1", conversation)
        say(agent, "Thanks, that's all for now.", "u1", conversation, end=True)
        assert plugin.flush(30)
    engine = store._base_client()
    stored = {v["metadata"]["conversation_id"] for v in summaries(all_vectors(engine, store.bucket_name, "memory"))}
    assert stored == {"diet-1", "diet-2"}
