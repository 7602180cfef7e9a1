"""The plugin with its spool on S3 (``S3_VECTORS_MEMORY_SPOOL``): the local spool's guarantees, fleet-wide.

A conversation's job is in the bucket before ``end_session`` returns, a killed process's job is
stored exactly once by the next instance, ``forget`` on one instance reaches a write another holds,
and the CLI replays and handles dead letters of an S3 spool. Vectors live on the embedded engine;
S3 is moto's (in-process, or its server on 127.0.0.1 when a child process must share it).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from strands import Agent
from typer.testing import CliRunner

from s3_spool_support import BUCKET, job_objects, offline_s3
from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.archive._jobs import ConversationJob
from strands_s3_vectors_memory.cli import app
from strands_s3_vectors_memory.durability import _s3_spool_admin as s3_spool_admin
from strands_s3_vectors_memory.durability import _s3_spool_layout as s3_spool_layout
from strands_s3_vectors_memory.durability._s3_location import S3Location
from strands_s3_vectors_memory.durability._s3_spool import S3Spool
from strands_s3_vectors_memory.durability._spool_format import job_key
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.index._records import MemoryScope
from strands_s3_vectors_memory.testing import ScriptedModel
from support import all_vectors, held_summaries, make_agent, s3_server, say

END_CONVERSATION = Path(__file__).parent / "plugin_helpers" / "end_conversation.py"
WAIT = 60.0
LEASE = 1.0


@pytest.fixture
def spool_base(local_env: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh base prefix per test, set as an operator sets it."""
    base = f"fleet-{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("S3_VECTORS_MEMORY_SPOOL", f"s3://{BUCKET}/{base}/")
    monkeypatch.setattr(s3_spool_layout, "DEFAULT_LEASE_SECONDS", LEASE)
    return base


@pytest.fixture
def s3(spool_base: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    with offline_s3(monkeypatch) as client:
        yield client


def _summaries(data_dir: Path) -> list[dict[str, Any]]:
    try:
        vectors = all_vectors(local_client(data_dir))
    except Exception:  # no index yet: nothing stored
        return []
    return [v["metadata"] for v in vectors if v["metadata"]["type"] == "summary"]


def _plant(location: S3Location, user: str, conversation: str, text: str) -> ConversationJob:
    """A conversation an instance spooled and never stored (it then closed: nothing claims it)."""
    now = time.time()
    job = ConversationJob(MemoryScope(user, "assistant", None), conversation, f"USER: {text}", now, now)
    spool = S3Spool(location, heartbeat=False)
    write_job = job.to_write_job()
    spool.publish(job_key(write_job.job_id), lambda _theirs: write_job)
    spool.release()
    return job


def _cli(*args: str) -> Any:
    return CliRunner().invoke(app, list(args), catch_exceptions=False)


def test_an_ended_conversation_is_in_the_bucket_before_end_session_returns_and_stored_once(
    s3: Any, spool_base: str, local_env: Path
) -> None:
    release = threading.Event()
    agent, plugin, _ = make_agent(model=ScriptedModel(responder=held_summaries(release, wait=WAIT)))
    try:
        say(agent, "My locker code is 2468.", "u1", "c1", end=True)
        (spooled,) = job_objects(s3, f"{spool_base}/assistant")  # in S3 as end_session returned
        assert "2468" in spooled.payload["transcript"]
        assert not (local_env / "spool" / "assistant").exists()  # the local disk holds nothing
        release.set()
        assert plugin.flush(WAIT)
        (summary,) = _summaries(local_env)
        assert "2468" in summary["content"]
        assert job_objects(s3, f"{spool_base}/assistant") == []
    finally:
        release.set()
        plugin.close(5)


def test_forget_on_another_instance_drops_the_write_this_one_holds(
    s3: Any, spool_base: str, local_env: Path, tmp_path: Path
) -> None:
    started, release = threading.Event(), threading.Event()
    agent, plugin, _ = make_agent(model=ScriptedModel(responder=held_summaries(release, started, WAIT)),
                                  writing=WritingSettings(writer_workers=1))
    try:
        say(agent, "Someone else's talk.", "bob", "b1", end=True)  # keeps the only writer thread busy
        say(agent, "My diary password is HUNTER2.", "alice", "a1", end=True)
        assert started.wait(WAIT)
        # Another machine: its own data directory (its own local tombstones), the same S3 spool.
        elsewhere = S3VectorMemory(data_dir=tmp_path / "other-machine")
        elsewhere.forget_user("alice")
        release.set()
        assert plugin.flush(WAIT)
        contents = [s["content"] for s in _summaries(local_env)]
        assert not any("HUNTER2" in c for c in contents)
        assert any("Someone else" in c for c in contents)
        assert job_objects(s3, f"{spool_base}/assistant") == []
    finally:
        release.set()
        plugin.close(5)


def test_forget_from_a_machine_whose_clock_is_behind_still_drops_the_write(
    s3: Any, spool_base: str, local_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Forget is ordered by S3's clock: the forgetting machine's clock 30 s behind changes nothing."""
    import strands_s3_vectors_memory.durability._tombstones as tombstones_module

    started, release = threading.Event(), threading.Event()
    agent, plugin, _ = make_agent(model=ScriptedModel(responder=held_summaries(release, started, WAIT)),
                                  writing=WritingSettings(writer_workers=1))
    try:
        say(agent, "My diary password is HUNTER2.", "alice", "a1", end=True)  # begun before the forget
        assert started.wait(WAIT)

        class SlowClock:  # the other machine's clock, 30 s behind this one and S3's
            def __getattr__(self, name: str) -> Any:
                return getattr(time, name)

            @staticmethod
            def time() -> float:
                return time.time() - 30.0

        with monkeypatch.context() as other_machine:
            other_machine.setattr(tombstones_module, "time", SlowClock())
            S3VectorMemory(data_dir=tmp_path / "other-machine").forget_user("alice")
        release.set()
        assert plugin.flush(WAIT)
        assert not any("HUNTER2" in s["content"] for s in _summaries(local_env))
    finally:
        release.set()
        plugin.close(5)


def test_forget_erases_the_write_a_dead_instance_left_in_the_s3_spool(
    s3: Any, spool_base: str, local_env: Path
) -> None:
    spool = S3Location(BUCKET, f"{spool_base}/assistant")
    _plant(spool, "alice", "a1", "My PIN is 7731.")
    _plant(spool, "bob", "b1", "I like kites.")
    report = S3VectorMemory().forget_user("alice")
    assert report.pending_cancelled == 1
    assert [job.payload["user_id"] for job in job_objects(s3, spool.prefix)] == ["bob"]
    _agent, plugin, _ = make_agent()  # the next instance: alice's write never comes back
    try:
        assert plugin.flush(WAIT)
        assert [s["user_id"] for s in _summaries(local_env)] == ["bob"]
    finally:
        plugin.close(5)


def test_the_cli_replays_an_s3_spool_and_handles_its_dead_letters(
    s3: Any, spool_base: str, local_env: Path
) -> None:
    spool = S3Location(BUCKET, f"{spool_base}/assistant")
    _plant(spool, "u1", "c1", "My piano is a STEINWAY.")
    replayed = _cli("--json", "replay")  # the spools below S3_VECTORS_MEMORY_SPOOL, no agent, no model
    assert replayed.exit_code == 0, replayed.output
    assert json.loads(replayed.stdout)["spools"] == [
        {"spool": spool.url, "replayed": 1, "stored": 1, "failed": 0, "dead_lettered": 0, "pending": 0}
    ]
    (summary,) = _summaries(local_env)
    assert "STEINWAY" in summary["content"] and summary["extractive"] is True
    assert job_objects(s3, spool.prefix) == []

    dying = S3Spool(spool, heartbeat=False)
    for user, text in (("u2", "I keep bees on the ROOF."), ("u3", "I sail a DINGHY.")):
        write_job = ConversationJob(MemoryScope(user, "assistant", None), "c", f"USER: {text}", 1.0, 1.0).to_write_job()
        key = job_key(write_job.job_id)
        dying.publish(key, lambda _theirs, write_job=write_job: write_job)
        dying.bury(key, write_job, ValueError("the model rejects this conversation"))
    dying.release()
    listed = _cli("--json", "dead-letters", "list", "--spool", spool.url)
    assert listed.exit_code == 0, listed.output
    letters = {row["user_id"]: row for row in json.loads(listed.stdout)["dead_letters"]}
    assert set(letters) == {"u2", "u3"} and "rejects" in letters["u2"]["error"]
    assert _cli("dead-letters", "retry", letters["u2"]["key"][:12], "--spool", spool.url).exit_code == 0
    again = _cli("--json", "replay", "--spool", spool.url, "--model", "scripted")
    assert again.exit_code == 0, again.output
    assert json.loads(again.stdout)["spools"][0]["stored"] == 1
    assert any("ROOF" in s["content"] and not s.get("extractive") for s in _summaries(local_env))
    dropped = _cli("dead-letters", "drop", "--all", "--yes", "--spool", spool.url)
    assert dropped.exit_code == 0 and s3_spool_admin.dead_letters(spool) == []


def test_a_sigkilled_process_write_is_stored_once_by_the_next_instance(
    spool_base: str, local_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("flask", reason="moto's server (moto[server]) shares one S3 with a child process")

    with s3_server(monkeypatch, BUCKET):
        client = boto3.client("s3", region_name="us-east-1")
        proc = subprocess.Popen([sys.executable, str(END_CONVERSATION), "hang", "My bike is a green Brompton."],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
        assert proc.stdout is not None and proc.stdout.readline().strip() == "ENDED", proc.stderr
        (spooled,) = job_objects(client, f"{spool_base}/assistant")  # durable before end_session returned
        assert "Brompton" in spooled.payload["transcript"]
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        time.sleep(LEASE + 2.5)  # its lease runs out: it renews no more
        plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt="{memory_context}")
        Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], callback_handler=None)
        try:
            assert plugin.flush(WAIT) and plugin.writer.stats.replayed == 1
            (summary,) = _summaries(local_env)  # exactly once in the index
            assert "Brompton" in summary["content"]
            assert job_objects(client, f"{spool_base}/assistant") == []
        finally:
            plugin.close(5)
