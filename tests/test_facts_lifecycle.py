"""Facts through the lifecycle: list/get/export/import/forget/prune/stats carry them with their
history, and the command line shows current vs superseded."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner, Result

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.archive._archiver import Archiver
from strands_s3_vectors_memory.archive._jobs import ConversationJob
from strands_s3_vectors_memory.cli import app
from strands_s3_vectors_memory.index._records import FACT_CURRENT, FACT_SUPERSEDED, TYPE_FACT, MemoryScope, fact_key
from strands_s3_vectors_memory.testing import ScriptedModel
from support import offline_cli_env

BUCKET = "facts-memory"
AGENT = "assistant"
runner = CliRunner()


@pytest.fixture
def env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    return offline_cli_env(monkeypatch, tmp_path / "data", BUCKET, columns=220)


def _moved(store: S3VectorMemory, user: str = "alice") -> None:
    """``user`` lived in Berlin (conversation c1, long ago), then moved to Paris (c2)."""
    archiver = Archiver(store, ScriptedModel)
    scope = MemoryScope(user, AGENT)
    archiver.archive(ConversationJob(scope, "c1", "USER: I live in Berlin. I'm vegetarian.", 1_000_000, 1_000_000))
    archiver.archive(ConversationJob(scope, "c2", "USER: I live in Paris now.", 2_000_000, 2_000_000))


def run(*args: str) -> Result:
    return runner.invoke(app, list(args))


def as_json(result: Result) -> Any:
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_list_get_and_stats_know_facts_and_their_history(env: Path) -> None:
    store = S3VectorMemory()
    _moved(store)
    _moved(store, "bob")
    facts = {m.content: m for m in store.iter_memories("alice", agent_name=AGENT) if m.type == TYPE_FACT}
    assert facts["Lives in Berlin"].fact_status == FACT_SUPERSEDED
    assert facts["Lives in Berlin"].superseded_by == facts["Lives in Paris now"].key
    got = store.get_memory(fact_key(MemoryScope("alice", AGENT), "Lives in Berlin"), "alice", agent_name=AGENT)
    assert got is not None and got.valid_to == "1970-01-24T03:33:20Z"  # the end of conversation c2
    assert got.as_dict()["fact_status"] == FACT_SUPERSEDED
    assert store.stats().facts == {FACT_CURRENT: 4, FACT_SUPERSEDED: 2}

    listed = as_json(run("list", "--user", "alice", "--agent", AGENT, "--facts", "--json"))["memories"]
    assert [(m["content"], m["fact_status"]) for m in listed] == [
        ("Is vegetarian", FACT_CURRENT), ("Lives in Paris now", FACT_CURRENT), ("Lives in Berlin", FACT_SUPERSEDED)]
    table = run("list", "--user", "alice", "--agent", AGENT, "--facts")
    assert table.exit_code == 0 and "2 current and 1 superseded facts of alice" in table.output
    berlin_row = next(line for line in table.output.splitlines() if "Lives in Berlin" in line)
    assert "superseded" in berlin_row and "1970-01-24T03:33:20Z" in berlin_row
    stats = run("stats")
    assert "facts: 4 current, 2 superseded" in stats.output
    assert as_json(run("stats", "--json"))["facts"] == {FACT_CURRENT: 4, FACT_SUPERSEDED: 2}


def test_export_and_import_carry_the_history_and_refuse_foreign_fact_keys(env: Path, tmp_path: Path) -> None:
    store = S3VectorMemory()
    _moved(store)
    buffer = io.StringIO()
    store.export_memories("alice", buffer, agent_name=AGENT)
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    exported = {line["content"]: line for line in lines if line["metadata"]["type"] == TYPE_FACT}
    assert exported["Lives in Berlin"]["metadata"]["fact_status"] == FACT_SUPERSEDED

    bob = MemoryScope("bob", AGENT)
    forged = {**exported["Lives in Paris now"], "key": fact_key(bob, "Lives in Paris now")}  # claims alice's
    path = tmp_path / "alice.jsonl"
    path.write_text("\n".join(json.dumps(line) for line in [*lines, forged]) + "\n", encoding="utf-8")
    other = S3VectorMemory(index_name="copy")
    report = other.import_memories(path.open(encoding="utf-8"), verify_keys=True)
    assert report.rejected == 1 and report.imported == len(lines)
    copied = {m.content: m for m in other.iter_memories("alice", agent_name=AGENT) if m.type == TYPE_FACT}
    assert copied["Lives in Berlin"].fact_status == FACT_SUPERSEDED
    assert copied["Lives in Berlin"].superseded_by == copied["Lives in Paris now"].key
    facts, _ = other.search_with_facts(MemoryScope("alice", AGENT), "Where do I live?", similarity_threshold=0.0)
    assert "Lives in Berlin" not in [f.content for f in facts]  # still history after the import


def test_forget_removes_facts_and_prune_trims_old_history_only(env: Path) -> None:
    store = S3VectorMemory()
    _moved(store)
    _moved(store, "bob")
    assert store.prune_superseded_facts(before=1_500_000) == 0  # they ended at 2,000,000
    result = as_json(run("prune", "--superseded-older-than", "1", "--json"))
    assert result["superseded_facts_pruned"] == 2 and result["pruned"] == 0
    assert {m.content for m in store.iter_memories("bob") if m.type == TYPE_FACT} == {
        "Is vegetarian", "Lives in Paris now"}  # current facts are never pruned
    store.forget_user("alice")
    assert list(store.iter_memories("alice")) == []
    assert store.stats().facts == {FACT_CURRENT: 2}
