"""The spec's two code examples, run verbatim offline with a scripted model in place of Bedrock."""

from __future__ import annotations

import json
import os
import runpy
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import strands.models
from strands.types.content import Messages

from memory_env import MemoryEnv
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.testing import Reply, ScriptedModel, default_responder
from support import all_vectors, asks_for_summary, chat_prompts, s3_server

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.fixture
def scripted_bedrock(monkeypatch: pytest.MonkeyPatch) -> list[ScriptedModel]:
    """Make ``BedrockModel()`` in the examples build scripted models; returns those built."""
    built: list[ScriptedModel] = []

    def factory(*args: Any, **kwargs: Any) -> ScriptedModel:
        model = ScriptedModel()
        built.append(model)
        return model

    monkeypatch.setattr(strands.models, "BedrockModel", factory)
    return built


def _run(name: str) -> dict[str, Any]:
    namespace = runpy.run_path(str(EXAMPLES / name), run_name="__example__")
    namespace["plugin"].flush(30)
    return namespace


def test_single_tenant_example_remembers_across_conversations(
    memory_env: MemoryEnv, scripted_bedrock: list[ScriptedModel]
) -> None:
    ns = _run("single_tenant.py")
    model = scripted_bedrock[0]
    prompts = chat_prompts(model)
    assert len(prompts) == 3
    first, second, third = prompts
    assert "{memory_context}" not in first and "Strands Agents" not in first
    assert "<memories>" not in second  # turn 2 of conv-001: nothing was stored yet
    assert "Strands Agents" in third and "<memories>" in third  # conv-002 sees conv-001's fact

    # Another user on the same agent sees nothing of user-001.
    ns["agent"]("What do you know about my preferences?", invocation_state={
        "user_id": "user-002", "conversation_id": "conv-900", "end_session": False})
    assert "Strands Agents" not in (model.system_prompts[-1] or "")


def test_single_tenant_example_stores_one_summary_with_the_spec_layout(
    memory_env: MemoryEnv, scripted_bedrock: list[ScriptedModel]
) -> None:
    _run("single_tenant.py")
    client = memory_env.client
    index = client.get_index(vectorBucketName="my-vector-memory", indexName="memory")["index"]
    assert index["distanceMetric"] == "cosine" and index["dataType"] == "float32"
    assert sorted(index["metadataConfiguration"]["nonFilterableMetadataKeys"]) == sorted(
        ["content", "stored_at", "conversation_id", "type"])
    vectors = client.list_vectors(vectorBucketName="my-vector-memory", indexName="memory",
                                  returnMetadata=True)["vectors"]
    summaries = [v for v in vectors if v["metadata"]["type"] == "summary"]
    assert len(summaries) == 1
    meta = summaries[0]["metadata"]
    assert meta["user_id"] == "user-001" and meta["agent_name"] == "assistant"
    assert meta["conversation_id"] == "conv-001" and "Strands Agents" in meta["content"]
    assert meta["stored_at"].endswith("Z")
    assert all("user-001" not in v["key"] for v in vectors)


def test_multi_tenant_example_stores_in_the_tenant_index(
    memory_env: MemoryEnv, scripted_bedrock: list[ScriptedModel]
) -> None:
    ns = _run("multi_tenant.py")
    client = memory_env.client
    vectors = client.list_vectors(vectorBucketName="my-vector-memory", indexName="memory-tenant-001",
                                  returnMetadata=True)["vectors"]
    assert any("$2M" in v["metadata"]["content"] for v in vectors)

    agent, model = ns["agent"], scripted_bedrock[0]
    agent("What is our Q4 budget?", invocation_state={
        "tenant_context": {"tenantId": "tenant-001"}, "user_id": "user-456", "conversation_id": "c2"})
    assert "$2M" in (model.system_prompts[-1] or "")
    agent("What is our Q4 budget?", invocation_state={
        "tenant_context": {"tenantId": "tenant-002"}, "user_id": "user-456", "conversation_id": "c3"})
    assert "$2M" not in (model.system_prompts[-1] or "")


def test_memory_manager_example_injects_the_bound_users_memory(
    memory_env: MemoryEnv, scripted_bedrock: list[ScriptedModel]
) -> None:
    ns = _run_plain("memory_manager.py")
    model = scripted_bedrock[0]
    last = " ".join(str(b.get("text", "")) for m in model.requests[-1].messages for b in m["content"])
    assert "Strands Agents" in last  # the manager folded user-001's memory into the second call
    assert {tool.tool_name for tool in ns["store"].get_tools()} == {"list_memories", "delete_memory"}


def _run_plain(name: str) -> dict[str, Any]:
    return runpy.run_path(str(EXAMPLES / name), run_name="__example__")


SESSIONS = "agent-sessions"
EXAMPLE_TURN = Path(__file__).resolve().parent / "plugin_helpers" / "example_turn.py"


@pytest.fixture
def sessions_bucket(local_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """The serverless examples' session bucket on moto's S3 server (shared with child processes)."""
    pytest.importorskip("flask", reason="moto's server (moto[server]) shares one S3 with a child process")
    monkeypatch.setenv("SESSION_BUCKET", SESSIONS)
    with s3_server(monkeypatch, SESSIONS):
        yield local_env


def _request_in_a_reclaimed_environment(kind: str, event: dict[str, Any], *session: str) -> dict[str, Any]:
    """Run one request of an example in a child process, then kill it (a reclaimed environment)."""
    proc = subprocess.Popen([sys.executable, str(EXAMPLE_TURN), kind, json.dumps(event), *session],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdout is not None
    line = proc.stdout.readline()
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    assert line, proc.stderr.read() if proc.stderr else ""
    reply: dict[str, Any] = json.loads(line)
    return reply


class _LambdaContext:
    def __init__(self, seconds: float = 30.0) -> None:
        self.seconds = seconds

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds * 1000)


def _summaries(data_dir: Path, user: str) -> list[str]:
    return [v["metadata"]["content"] for v in all_vectors(local_client(data_dir))
            if v["metadata"]["type"] == "summary" and v["metadata"]["user_id"] == user]


def test_lambda_handler_stores_a_conversation_whose_first_turn_ran_in_a_reclaimed_environment(
    sessions_bucket: Path, scripted_bedrock: list[ScriptedModel]
) -> None:
    first = _request_in_a_reclaimed_environment(
        "lambda", {"user_id": "u1", "conversation_id": "c1", "message": "My locker code is 8812."})
    assert not first["stored"]  # an open conversation: nothing stored yet (and nothing claims otherwise)
    assert _summaries(sessions_bucket, "u1") == []
    handler = runpy.run_path(str(EXAMPLES / "lambda_handler.py"), run_name="__example__")["handler"]
    reply = handler({"user_id": "u1", "conversation_id": "c1", "message": "Thanks, bye.", "end_session": True},
                    _LambdaContext())
    assert reply["stored"]
    # The handler has returned: the memory is already in the index (a frozen Lambda stores nothing later),
    # and it covers turn 1, which only the session in S3 still held.
    (summary,) = _summaries(sessions_bucket, "u1")
    assert "8812" in summary
    reply = handler({"user_id": "u1", "conversation_id": "c2", "message": "What is my locker code?"},
                    _LambdaContext())
    assert "8812" in reply["reply"]  # the scripted model repeats the memory it was given


def test_lambda_handler_says_stored_false_when_the_write_outlives_the_request(
    sessions_bucket: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()

    def slow_summaries(messages: Messages, system_prompt: str | None) -> Reply:
        if asks_for_summary(messages):
            release.wait(30)  # the summary model is slower than the request's time left
        return default_responder(messages, system_prompt)

    monkeypatch.setattr(strands.models, "BedrockModel", lambda *a, **k: ScriptedModel(responder=slow_summaries))
    handler = runpy.run_path(str(EXAMPLES / "lambda_handler.py"), run_name="__example__")["handler"]
    event = {"user_id": "u3", "conversation_id": "c1", "message": "My locker code is 5150.", "end_session": True}
    reply = handler(event, _LambdaContext(seconds=6.0))  # inline_timeout: 1 s
    assert reply["stored"] is False and _summaries(sessions_bucket, "u3") == []  # it is in the spool
    release.set()
    deadline = time.monotonic() + 30
    while not _summaries(sessions_bucket, "u3") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert any("5150" in summary for summary in _summaries(sessions_bucket, "u3"))  # stored after all, later
    reply = handler({**event, "conversation_id": "c2", "end_session": False}, _LambdaContext())
    assert reply["stored"] is False  # not an ending turn: nothing is claimed stored


def test_lambda_handler_can_store_conversations_that_never_end(
    sessions_bucket: Path, scripted_bedrock: list[ScriptedModel]
) -> None:
    event = {"user_id": "u2", "conversation_id": "c1", "end_open": True}
    assert _request_in_a_reclaimed_environment("lambda", {**event, "message": "I am allergic to KIWI."})["stored"]
    handler = runpy.run_path(str(EXAMPLES / "lambda_handler.py"), run_name="__example__")["handler"]
    assert handler({**event, "message": "And to MANGO too."})["stored"]
    (summary,) = _summaries(sessions_bucket, "u2")
    assert "KIWI" in summary and "MANGO" in summary  # one conversation, both requests, nothing lost


def test_agentcore_app_stores_a_conversation_that_moved_to_another_microvm(
    sessions_bucket: Path, scripted_bedrock: list[ScriptedModel]
) -> None:
    pytest.importorskip("bedrock_agentcore")
    from starlette.testclient import TestClient

    session = "conversation-0001-of-user-u1-in-agentcore"  # the runtime session id: one conversation
    first = _request_in_a_reclaimed_environment(
        "agentcore", {"user_id": "u1", "prompt": "My locker code is 4417."}, session)
    assert first["stored"] is False and _summaries(sessions_bucket, "u1") == []
    # The session idled out and its microVM was terminated; the user comes back on a new one.
    app = runpy.run_path(str(EXAMPLES / "agentcore_app.py"), run_name="__example__")["app"]
    response = TestClient(app).post("/invocations", json={"user_id": "u1", "prompt": "Thanks, bye.",
                                                          "end_session": True},
                                    headers={"X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": session})
    assert response.status_code == 200 and response.json()["stored"] is True
    (summary,) = _summaries(sessions_bucket, "u1")
    assert "4417" in summary  # turn 1 ran on a microVM that is gone; only the session held it


@pytest.mark.parametrize("name", ["single_tenant.py", "multi_tenant.py", "memory_manager.py"])
def test_the_example_runs_offline_as_written(local_env: Path, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``MEMORY_MODEL=scripted`` on the local backend: no Bedrock, no credentials, no real TVM role."""
    import os
    import subprocess
    import sys

    import strands_s3_vectors_memory

    for variable in ("S3_VECTOR_TVM_ROLE_ARN", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_PROFILE"):
        monkeypatch.delenv(variable, raising=False)
    src = str(Path(strands_s3_vectors_memory.__file__).resolve().parents[1])
    env = {**os.environ, "MEMORY_MODEL": "scripted", "PYTHONPATH": os.pathsep.join([src, *sys.path]),
           "AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    done = subprocess.run([sys.executable, str(EXAMPLES / name)], env=env, capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-3000:]
    index = "memory-tenant-001" if name == "multi_tenant.py" else "memory"
    if not all_vectors(local_client(local_env), index=index):
        # On a loaded machine the exit flush (10 s) can end before the write: then the job must be in the
        # spool (at-least-once), and the next start, here `replay`, stores it.
        replay = subprocess.run([sys.executable, "-m", "strands_s3_vectors_memory.cli", "replay"], env=env,
                                capture_output=True, text=True, timeout=240)
        assert replay.returncode == 0, replay.stderr[-3000:]
    assert all_vectors(local_client(local_env), index=index), "the example stored nothing"
