"""A job that keeps failing ends as a dead letter with what could be stored; forget means forget."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from memory_env import MemoryEnv
from strands_s3_vectors_memory import S3VectorMemory, WritingSettings
from strands_s3_vectors_memory.archive._archiver import Archiver
from strands_s3_vectors_memory.archive._jobs import ConversationJob
from strands_s3_vectors_memory.archive._summary_format import parse_summary_request
from strands_s3_vectors_memory.cli import app
from strands_s3_vectors_memory.durability._spool import dead_letters, default_spool_dir
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.index._records import MemoryScope
from strands_s3_vectors_memory.testing import ScriptedModel, default_responder
from strands_s3_vectors_memory.text import message_text
from support import all_vectors, make_agent, say

END_CONVERSATION = Path(__file__).parent / "plugin_helpers" / "end_conversation.py"


def _is_summary(messages: Any) -> bool:
    return bool(messages) and parse_summary_request(message_text(messages[-1], fold=False)) is not None


def _broken_summaries(messages: Any, system_prompt: str | None) -> Any:
    if _is_summary(messages):
        raise ValueError("the model rejects this conversation")  # not retryable
    return default_responder(messages, system_prompt)


def _summaries(client: Any) -> list[dict[str, Any]]:
    return [v["metadata"] for v in all_vectors(client) if v["metadata"]["type"] == "summary"]


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_a_poison_job_becomes_a_dead_letter_with_its_extractive_summary_stored(memory_env: MemoryEnv) -> None:
    agent, plugin, _ = make_agent(model=ScriptedModel(responder=_broken_summaries))
    say(agent, "My passport number ends in 7731.", "u1", "c1", end=True)
    for _restart in range(2):  # each start replays the job once more, and it fails again
        assert plugin.flush(30) and plugin.writer.stats.failed == 1
        assert _summaries(memory_env.client) == []
        plugin.close(30)
        agent, plugin, _ = make_agent(model=ScriptedModel(responder=_broken_summaries))
    assert plugin.flush(30)  # the third failed round: a dead letter now, and never replayed again
    stats = plugin.writer.stats
    assert stats.dead_lettered == 1
    (summary,) = _summaries(memory_env.client)
    assert "7731" in summary["content"] and summary["extractive"] is True
    spool = default_spool_dir(memory_env.data_dir, "assistant")
    (letter,) = dead_letters(spool)
    assert letter.job.rounds == 3 and "rejects this conversation" in letter.error
    plugin.close(30)
    agent, plugin, _ = make_agent()
    assert plugin.flush(30) and plugin.writer.stats.replayed == 0  # no longer replayed at start


def test_dead_letters_are_listed_retried_with_a_model_and_dropped_from_the_cli(memory_env: MemoryEnv) -> None:
    agent, plugin, _ = make_agent(model=ScriptedModel(responder=_broken_summaries))
    plugin.writer._max_rounds = 1  # dead at the first failure (the rounds themselves are tested above)
    say(agent, "I keep bees on the ROOF.", "u1", "c1", end=True)
    say(agent, "I sail a DINGHY.", "u2", "c2", end=True)
    assert plugin.flush(30) and plugin.writer.stats.dead_lettered == 2
    plugin.close(30)
    common = ["--data-dir", str(memory_env.data_dir), "--bucket", memory_env.bucket]
    listed = _cli(*common, "--json", "dead-letters", "list")
    assert listed.exit_code == 0, listed.output
    letters = {row["user_id"]: row for row in json.loads(listed.stdout)["dead_letters"]}
    assert set(letters) == {"u1", "u2"} and letters["u1"]["rounds"] == 1
    assert _cli(*common, "dead-letters", "retry", letters["u1"]["key"][:12]).exit_code == 0
    replayed = _cli(*common, "--json", "replay", "--model", "scripted")
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout)["spools"][0]["stored"] == 1
    by_user = {s["user_id"]: s for s in _summaries(memory_env.client)}
    assert "ROOF" in by_user["u1"]["content"] and not by_user["u1"].get("extractive")  # the model's now
    assert by_user["u2"]["extractive"] is True
    dropped = _cli(*common, "dead-letters", "drop", "--all", "--yes")
    assert dropped.exit_code == 0 and dead_letters(default_spool_dir(memory_env.data_dir, "assistant")) == []


def test_replay_from_the_cli_stores_a_dead_process_spool_without_an_agent(local_env: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(END_CONVERSATION), "hang", "My piano is a STEINWAY."],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ENDED"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    result = _cli("replay")  # settings from the environment, no agent, no model: extractive
    assert result.exit_code == 0, result.output
    (summary,) = _summaries(local_client(local_env))
    assert "STEINWAY" in summary["content"] and summary["extractive"] is True


def test_forget_right_after_an_ended_conversation_cancels_its_pending_write(memory_env: MemoryEnv) -> None:
    release = threading.Event()

    def slow(messages: Any, system_prompt: str | None) -> Any:
        if _is_summary(messages):
            release.wait(30)
        return default_responder(messages, system_prompt)

    store = S3VectorMemory()
    agent, plugin, _ = make_agent(store, ScriptedModel(responder=slow), writing=WritingSettings(writer_workers=1))
    say(agent, "Someone else's talk.", "bob", "b1", end=True)  # keeps the only writer thread busy
    say(agent, "My diary password is HUNTER2.", "alice", "a1", end=True)
    report = store.forget_user("alice")
    assert report.pending_cancelled == 1
    started = time.monotonic()
    say(agent, "Hello again.", "alice", "a2")  # nothing of alice's is pending any more: no wait for it
    assert time.monotonic() - started < 5.0, "a cancelled write left alice's next conversation waiting"
    release.set()
    assert plugin.flush(30)
    contents = [m["content"] for m in _summaries(memory_env.client)]
    assert not any("HUNTER2" in c for c in contents)
    assert any("Someone else" in c for c in contents)  # other users' writes are untouched


def test_a_write_in_flight_during_forget_deletes_itself_again(memory_env: MemoryEnv) -> None:
    started, release = threading.Event(), threading.Event()

    def slow(messages: Any, system_prompt: str | None) -> Any:
        if _is_summary(messages):
            started.set()
            release.wait(30)
        return default_responder(messages, system_prompt)

    store = S3VectorMemory()
    agent, plugin, _ = make_agent(store, ScriptedModel(responder=slow))
    say(agent, "My safe code is 0451.", "alice", "a1", end=True)
    assert started.wait(30)  # the writer is summarizing right now: too late to cancel the job
    store.forget_user("alice")
    release.set()
    assert plugin.flush(30)
    assert [v for v in all_vectors(memory_env.client) if v["metadata"]["user_id"] == "alice"] == []


def test_forget_drops_the_open_conversations_of_the_user(memory_env: MemoryEnv) -> None:
    store = S3VectorMemory()
    agent, plugin, model = make_agent(store)
    say(agent, "My blood type is AB NEGATIVE.", "alice", "a1")
    store.forget_user("alice")
    say(agent, "Thanks, bye.", "alice", "a1", end=True)
    assert plugin.flush(30)
    assert not any("NEGATIVE" in m["content"] for m in _summaries(memory_env.client))
    assert "NEGATIVE" not in " ".join(message_text(m) for m in model.requests[-1].messages)


def test_forget_from_the_cli_after_a_crash_erases_the_spooled_conversation(local_env: Path) -> None:
    proc = subprocess.Popen([sys.executable, str(END_CONVERSATION), "hang", "My loan number is 99-2210."],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ENDED"
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    result = _cli("--json", "forget", "--user", "u1", "--yes")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["pending_cancelled"] == 1
    _agent, plugin, _ = make_agent()  # the next start: nothing to replay, nothing comes back
    assert plugin.flush(30)
    assert _summaries(local_client(local_env)) == []


def test_a_salvaged_resumed_conversation_keeps_its_earlier_summary(memory_env: MemoryEnv) -> None:
    """A job that failed before it read the conversation's stored summary (say, every GetVectors was
    throttled) is salvaged on top of that summary, not over it."""
    store = S3VectorMemory()
    scope = MemoryScope("u1", "assistant")
    Archiver(store, ScriptedModel).archive(
        ConversationJob(scope, "c1", "USER: My passport number ends in 7731.", started_at=100.0, ended_at=110.0))
    resumed = ConversationJob(scope, "c1", "USER: My visa expires in May.", started_at=200.0, ended_at=210.0)
    assert resumed.earlier_summary is None  # as spooled before any attempt read it
    Archiver(store, ScriptedModel).salvage(resumed)
    (summary,) = _summaries(memory_env.client)
    assert "7731" in summary["content"] and "May" in summary["content"] and summary["extractive"] is True
