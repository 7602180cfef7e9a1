"""durable_turns: an open conversation's turns on the S3 spool, stored by whichever environment ends it.

For request-scoped runtimes without a session manager (Lambda, AgentCore): each turn is one small
conditional write to the conversation's buffer, and no model call; the environment that gets
``end_session`` (or an idle sweep, or ``s3-vectors-memory replay``) archives every buffered turn.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from strands import Agent

import strands_s3_vectors_memory.plugin._runtime as runtime_module
from s3_spool_support import BUCKET, job_objects, keys_below, offline_s3
from strands_s3_vectors_memory import ConfigurationError, S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.durability._s3_location import S3Location
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.plugin._runtime import replay
from strands_s3_vectors_memory.testing import ScriptedModel
from support import PROMPT, all_vectors, is_summary_request, make_agent, s3_server, say

HELPER = Path(__file__).parent / "plugin_helpers" / "session_turn.py"


@pytest.fixture
def spool(local_env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """The agent's S3 spool prefix (``S3_VECTORS_MEMORY_SPOOL`` as an operator sets it)."""
    base = f"fleet-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("S3_VECTORS_MEMORY_SPOOL", f"s3://{BUCKET}/{base}/")
    return f"{base}/assistant"


@pytest.fixture
def shared_s3(spool: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    pytest.importorskip("flask", reason="moto's server (moto[server]) shares one S3 with a child process")
    import boto3

    with s3_server(monkeypatch, BUCKET):
        yield boto3.client("s3", region_name="us-east-1")


def _summaries(data_dir: Path) -> list[str]:
    try:
        vectors = all_vectors(local_client(data_dir))
    except Exception:  # no index yet: nothing stored
        return []
    return [v["metadata"]["content"] for v in vectors if v["metadata"]["type"] == "summary"]


def _turn_in_a_killed_process(message: str) -> None:
    proc = subprocess.Popen([sys.executable, str(HELPER), "buffer", "-", message], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "TURN DONE", proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def test_turns_are_buffered_without_a_model_call_and_stored_once_at_the_end(
    spool: str, monkeypatch: pytest.MonkeyPatch, local_env: Path
) -> None:
    with offline_s3(monkeypatch) as client:
        agent, plugin, model = make_agent(writing=WritingSettings(durable_turns=True))
        for text in ("My locker code is 7781.", "My gym is on Elm Street.", "I swim on Mondays."):
            say(agent, text, "u1", "c1")
        assert len(keys_below(client, f"{spool}/turns")) == 3  # one small object per turn
        assert job_objects(client, spool) == [] and not any(is_summary_request(r) for r in model.requests)
        say(agent, "Thanks, bye.", "u1", "c1", end=True)
        assert plugin.flush(60)
        (request,) = [r for r in model.requests if is_summary_request(r)]
        text = " ".join(str(block.get("text", "")) for block in request.messages[-1]["content"])
        for said in ("USER: My locker code is 7781.", "USER: My gym is on Elm Street.", "USER: Thanks, bye."):
            assert text.count(said) == 1
        assert keys_below(client, f"{spool}/turns") == []  # handed over: the buffer is empty again
        plugin.close(5)


def test_the_environment_that_ends_the_conversation_stores_what_a_reclaimed_one_saw(
    shared_s3: Any, spool: str, local_env: Path
) -> None:
    _turn_in_a_killed_process("My locker code is 7781.")
    assert _summaries(local_env) == [] and len(keys_below(shared_s3, f"{spool}/turns")) == 1
    agent, plugin, _ = make_agent(writing=WritingSettings(durable_turns=True))
    say(agent, "Thanks, bye.", "u1", "c1", end=True)
    assert plugin.flush(60)
    (summary,) = _summaries(local_env)
    assert "7781" in summary
    plugin.close(5)


def test_a_conversation_nobody_ends_is_stored_by_the_idle_sweep_of_a_replay(
    shared_s3: Any, spool: str, local_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _turn_in_a_killed_process("My bike is a green Brompton.")
    monkeypatch.setattr(runtime_module, "DEFAULT_IDLE_TIMEOUT_SECONDS", 0.0)  # idle long enough already
    replay(S3Location.parse(f"s3://{BUCKET}/{spool}"), S3VectorMemory(), ScriptedModel(), timeout=60)
    (summary,) = _summaries(local_env)
    assert "Brompton" in summary
    assert keys_below(shared_s3, f"{spool}/turns") == []


def test_durable_turns_need_the_spool_on_s3(local_env: Path) -> None:
    plugin = S3VectorMemoryPlugin(S3VectorMemory(), PROMPT, writing=WritingSettings(durable_turns=True))
    with pytest.raises(ConfigurationError, match="S3_VECTORS_MEMORY_SPOOL"):
        Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], callback_handler=None)


def test_forget_erases_the_forgotten_users_buffered_turns(
    spool: str, monkeypatch: pytest.MonkeyPatch, local_env: Path
) -> None:
    with offline_s3(monkeypatch) as client:
        store = S3VectorMemory()
        agent, plugin, _ = make_agent(store, writing=WritingSettings(durable_turns=True))
        say(agent, "My locker code is 7781.", "alice", "a1")
        say(agent, "My bike is a green Brompton.", "bob", "b1")
        assert len(keys_below(client, f"{spool}/turns")) == 2
        report = store.forget_user("alice", agent_name="assistant")
        assert report.pending_cancelled >= 1
        (left,) = keys_below(client, f"{spool}/turns")  # bob's turn, nobody else's
        body = client.get_object(Bucket=BUCKET, Key=f"{spool}/turns/{left}")["Body"].read().decode()
        assert "Brompton" in body and "7781" not in body
        plugin.close(5)
