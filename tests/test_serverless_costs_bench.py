"""``bench/serverless_costs.py`` counts what docs/costs.md says: per turn, one buffer PUT and no model call."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import serverless_costs
from _cost_script import conversations
from strands_s3_vectors_memory.embeddings import LocalEmbedder


def test_durable_turns_cost_one_put_per_turn_and_one_summary_call_per_conversation(tmp_path: Path) -> None:
    script = conversations(2)
    turns = sum(len(conversation.turns) for conversation in script)
    encoder = LocalEmbedder()
    counted = serverless_costs.count_arm("durable_turns", tmp_path / "buffer", script, encoder, reply_chars=200)
    events = counted["events"]
    summaries = [e for e in events if e["kind"] == "model" and e["call"] == "summary"]
    assert [e["phase"] for e in summaries] == ["end_session"] * len(script)  # no model call before the end
    buffer = Counter(e["op"] for e in events if e["kind"] == "s3" and e["area"] == "turns")
    assert buffer == {"PutObject": turns, "ListObjectsV2": len(script), "GetObject": turns, "DeleteObject": turns}
    for conversation, summary in zip(script, summaries, strict=True):
        for said in conversation.turns:  # every turn of the conversation, each once
            assert summary["messages"][-1].count(f"USER: {said}") == 1

    end_open = serverless_costs.count_arm("end_open", tmp_path / "end_open", script, encoder, reply_chars=200)
    requests = [e for e in end_open["events"] if e["kind"] == "model" and e["call"] == "summary"]
    assert len(requests) == turns  # end_open: one summary call per request
