"""``bench/costs.py`` counts what it says it counts: two conversations, every count cross-checked."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import costs
from _cost_script import conversations
from strands_s3_vectors_memory.embeddings import LocalEmbedder


def test_the_cost_counts_of_two_conversations_agree_with_each_other(tmp_path: Path) -> None:
    script = conversations(2)
    counted = costs.count_ours(tmp_path / "data", script, LocalEmbedder(), reply_chars=200)
    events = counted["events"]
    figures = costs.figures(counted, None)  # tokens as characters / 4: no tokenizer needed

    # one summary call per ended conversation, holding that conversation's transcript
    summaries = [e for e in events if e["kind"] == "model" and e["call"] == "summary"]
    assert figures["summary_calls"] == len(summaries) == len(script)
    for conversation, summary in zip(script, summaries, strict=True):
        assert f"USER: {conversation.turns[0]}" in summary["messages"][-1]
        assert summary["phase"] == "end_session"

    # every vector written is in the index and nothing else is; each was embedded once, as a document
    written = [key for e in events if e["kind"] == "s3vectors" and e["op"] == "PutVectors" for key in e["keys"]]
    assert sorted(written) == sorted(counted["stored_keys"])
    assert figures["vectors_written"] * len(script) == figures["stored_vectors"] == len(written)
    documents = [e for e in events if e["kind"] == "embed" and e["purpose"] == "document"]
    assert len(documents) == len(written)
    assert figures["put_logical_bytes"] == figures["stored_logical_bytes"] > 4 * costs.AWS_DIMENSION

    # a first turn: one query embedded, two filtered queries (memories, facts); later turns: nothing
    assert [e["phase"] for e in events if e["kind"] == "embed" and e["purpose"] == "query"].count("first_turn") == 2
    assert figures["s3vectors"]["first_turn/QueryVectors"] == 2
    assert not [e for e in events if e["kind"] in ("s3vectors", "embed", "s3") and e["phase"] == "later_turn"]

    # the S3 spool: each job is written, claimed, then deleted with its claim once stored
    s3 = Counter((e["op"], e["area"]) for e in events if e["kind"] == "s3" and e["phase"] == "end_session")
    assert s3[("DeleteObject", "jobs")] == s3[("DeleteObject", "claims")] == s3[("PutObject", "claims")] == 2
    assert s3[("PutObject", "jobs")] >= 2
    assert s3[("PutObject", "owners")] == 2  # a lone conversation renews the writer's heartbeat

    priced = costs.prices(figures)
    assert all(value >= 0 for value in priced.values()) and priced["summary call (model input)"] > 0
