"""No memory is lost when the process exits or dies right after a conversation ends."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from strands import Agent

from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.testing import ScriptedModel

HELPER = Path(__file__).parent / "plugin_helpers" / "end_conversation.py"


def _stored_contents(data_dir: Path) -> list[str]:
    client = local_client(data_dir)
    try:
        page = client.list_vectors(vectorBucketName="my-vector-memory", indexName="memory", returnMetadata=True)
    except client.exceptions.NotFoundException:
        return []
    return [v["metadata"]["content"] for v in page["vectors"] if v["metadata"]["type"] == "summary"]


def _spawn(mode: str, fact: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(HELPER), mode, fact],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ),
    )


def test_pending_write_is_flushed_at_interpreter_exit(local_env: Path) -> None:
    proc = _spawn("exit", "My locker code is 2468.")
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "ENDED" in out
    assert any("2468" in c for c in _stored_contents(local_env))


def test_write_of_a_killed_process_is_replayed_by_the_next_one(local_env: Path) -> None:
    proc = _spawn("hang", "My bike is a green Brompton.")
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "ENDED"  # reply returned; the summary is still pending
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert _stored_contents(local_env) == []  # nothing stored yet, but the job is spooled
    spooled = list((local_env / "spool").rglob("*.json"))
    assert spooled, "the ended conversation must be in the spool"

    # A new process (here: this one) attaching the same agent name replays the spool.
    plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt="{memory_context}")
    Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], callback_handler=None)
    assert plugin.flush(60)
    stored = _stored_contents(local_env)
    assert len(stored) == 1 and "Brompton" in stored[0]
    assert not [p for p in (local_env / "spool").rglob("*.json") if p.parent.name != "corrupt"]
    plugin.close(5)


def _index_bytes(data_dir: Path) -> bytes:
    """Every vector of the index (key, data, metadata), canonically serialised: the index state."""
    from support import all_vectors

    client = local_client(data_dir)
    vectors = []
    token = None
    while True:
        page = client.list_vectors(vectorBucketName="my-vector-memory", indexName="memory", returnData=True,
                                   returnMetadata=True, **({"nextToken": token} if token else {}))
        vectors += page["vectors"]
        token = page.get("nextToken")
        if not token:
            break
    assert len(vectors) == len(all_vectors(client))
    return json.dumps(sorted(vectors, key=lambda v: v["key"]), sort_keys=True).encode()


def test_a_job_run_again_after_a_crash_leaves_the_index_byte_for_byte_the_same(local_env: Path) -> None:
    """At-least-once delivery, idempotent effects: the crash comes after the put, before the spool file goes."""
    earlier = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt="{memory_context}")
    agent = Agent(model=ScriptedModel(), name="assistant", plugins=[earlier], callback_handler=None)
    agent("I live in Paris.", invocation_state={"user_id": "u1", "conversation_id": "c0", "end_session": True})
    assert earlier.flush(60)  # a current fact for the crashed job to supersede
    earlier.close(30)

    proc = _spawn("crash-after-put", "I live in Lisbon now. I keep bees. My locker code is 2468.")
    _out, err = proc.communicate(timeout=120)
    assert proc.returncode == 9, err
    after_first_run = _index_bytes(local_env)
    assert b"Lisbon" in after_first_run and b"superseded" in after_first_run
    assert [p for p in (local_env / "spool").rglob("*.json") if "dead" not in p.parts], "the job must be spooled"

    time.sleep(1.1)  # the next start comes later (the index's timestamps have whole seconds)
    plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt="{memory_context}")
    Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], callback_handler=None)
    assert plugin.flush(60)
    assert plugin.writer.stats.replayed == 1 and plugin.writer.stats.succeeded == 1  # it did run again
    assert _index_bytes(local_env) == after_first_run
    assert not [p for p in (local_env / "spool").rglob("*.json") if p.parent.name != "corrupt"]
    plugin.close(5)
