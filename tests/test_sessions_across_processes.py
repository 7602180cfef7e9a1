"""A conversation whose turns run in different processes (Lambda, AgentCore): nothing said earlier is lost.

Turn 1 runs in a child process that is then killed (a reclaimed environment: no exit hook, no
flush); the ending turn runs in another process with the same session storage. strands' session
manager restores turn 1 into the new agent, and the stored memory must cover it, once.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from strands import Agent
from strands.session import FileSessionManager, S3SessionManager, SessionManager

from strands_s3_vectors_memory import InvalidInvocationStateError, S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.archive._summary_format import parse_summary_request
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.testing import ScriptedModel
from strands_s3_vectors_memory.text import message_text
from support import PROMPT, all_vectors, s3_server, say

HELPER = Path(__file__).parent / "plugin_helpers" / "session_turn.py"
SESSIONS_BUCKET = "agent-sessions"

Sessions = tuple[list[str], Callable[[], SessionManager]]


@pytest.fixture(params=["file", "s3"])
def sessions(request: pytest.FixtureRequest, local_env: Path, tmp_path: Path,
             monkeypatch: pytest.MonkeyPatch) -> Iterator[Sessions]:
    """Session storage both processes share: a directory, or an S3 bucket on moto's server."""
    if request.param == "file":
        where = str(tmp_path / "sessions")
        yield ["file", where], lambda: FileSessionManager(session_id="c1", storage_dir=where)
        return
    pytest.importorskip("flask", reason="moto's server (moto[server]) shares one S3 with a child process")
    with s3_server(monkeypatch, SESSIONS_BUCKET):
        yield ["s3", SESSIONS_BUCKET], lambda: S3SessionManager(session_id="c1", bucket=SESSIONS_BUCKET,
                                                                region_name="us-east-1")


def _turn_in_a_killed_process(where: list[str], message: str) -> None:
    proc = subprocess.Popen([sys.executable, str(HELPER), *where, message], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=dict(os.environ))
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "TURN DONE", proc.stderr.read() if proc.stderr else ""
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)


def _agent(new_session: Callable[[], SessionManager]) -> tuple[Agent, S3VectorMemoryPlugin, ScriptedModel]:
    """A request's agent, built as the examples build it: no ``history`` argument."""
    model = ScriptedModel()
    plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt=PROMPT)
    agent = Agent(model=model, name="assistant", plugins=[plugin], system_prompt=PROMPT, callback_handler=None,
                  session_manager=new_session())
    return agent, plugin, model


def _summarized(model: ScriptedModel) -> list[str]:
    """The transcripts this model was asked to summarize."""
    requests = [parse_summary_request(message_text(r.messages[-1], fold=False)) for r in model.requests]
    return [request.transcript for request in requests if request is not None]


def _summaries(data_dir: Path) -> list[str]:
    return [v["metadata"]["content"] for v in all_vectors(local_client(data_dir))
            if v["metadata"]["type"] == "summary"]


def test_turns_restored_by_a_session_manager_are_stored_once(sessions: Sessions, local_env: Path) -> None:
    where, new_session = sessions
    _turn_in_a_killed_process(where, "My locker code is 7781.")
    assert _summaries(local_env) == []  # the killed environment stored nothing

    agent, plugin, model = _agent(new_session)
    assert plugin.history == "agent"  # a session manager makes it the default
    say(agent, "Thanks, bye.", "u1", "c1", end=True)
    assert plugin.flush(60)
    (transcript,) = _summarized(model)
    assert transcript.count("USER: My locker code is 7781.") == 1 and "USER: Thanks, bye." in transcript
    (summary,) = _summaries(local_env)
    assert "7781" in summary

    # The conversation goes on in yet another request, and is ended again: only the new turn is new.
    agent, plugin, model = _agent(new_session)
    say(agent, "Also, my bike is a green Brompton.", "u1", "c1", end=True)
    assert plugin.flush(60)
    (transcript,) = _summarized(model)
    assert "Brompton" in transcript and "USER: My locker" not in transcript and "USER: Thanks" not in transcript
    (summary,) = _summaries(local_env)  # one conversation, one summary, covering both parts
    assert "7781" in summary and "Brompton" in summary


def test_a_session_holding_another_conversation_is_refused(sessions: Sessions, local_env: Path) -> None:
    where, new_session = sessions
    _turn_in_a_killed_process(where, "My locker code is 7781.")
    agent, _, model = _agent(new_session)
    with pytest.raises(InvalidInvocationStateError, match="another conversation"):
        say(agent, "Hello", "u1", "c2")
    assert not model.requests  # refused before the model saw c1's messages as c2's


def test_a_warm_environment_building_an_agent_per_request_counts_each_turn_once(
    local_env: Path, tmp_path: Path
) -> None:
    def new_session() -> SessionManager:
        return FileSessionManager(session_id="c1", storage_dir=str(tmp_path / "sessions"))

    models: list[ScriptedModel] = []

    def request(text: str, **extra: bool) -> S3VectorMemoryPlugin:
        agent, plugin, model = _agent(new_session)  # a new agent per request; the process (and its book) stays
        models.append(model)
        say(agent, text, "u1", "c1", **extra)
        return plugin

    request("My locker code is 7781.")
    plugin = request("And my gym is on Elm Street.")
    plugin.end_open_conversations()  # end_open: stored at the end of a request
    assert plugin.flush(60)
    (transcript,) = [t for model in models for t in _summarized(model)]
    assert transcript.count("USER: My locker code is 7781.") == 1
    assert transcript.count("USER: And my gym is on Elm Street.") == 1
    models.clear()
    assert request("Bye.", end=True).flush(60)  # a later request ends it: nothing stored twice
    (transcript,) = [t for model in models for t in _summarized(model)]
    assert "USER: My locker" not in transcript and "USER: And my gym" not in transcript
    assert "USER: Bye." in transcript


def test_an_idle_end_marks_the_session_so_the_next_environment_stores_only_what_came_after(
    local_env: Path, tmp_path: Path
) -> None:
    def new_session() -> SessionManager:
        return FileSessionManager(session_id="c1", storage_dir=str(tmp_path / "sessions"))

    model = ScriptedModel()
    plugin = S3VectorMemoryPlugin(S3VectorMemory(), PROMPT, writing=WritingSettings(idle_timeout_seconds=0.2))
    agent = Agent(model=model, name="assistant", plugins=[plugin], system_prompt=PROMPT, callback_handler=None,
                  session_manager=new_session())
    say(agent, "My locker code is 7781.", "u1", "c1")
    deadline = time.monotonic() + 30
    while not _summarized(model) and time.monotonic() < deadline:  # the reaper ends it once it is idle
        time.sleep(0.05)
    assert plugin.flush(60) and len(_summarized(model)) == 1
    # The session now says turn 1 is stored: the next environment's agent restores it, and stores only the rest.
    again, plugin, model = _agent(new_session)
    say(again, "Bye.", "u1", "c1", end=True)
    assert plugin.flush(60)
    (transcript,) = _summarized(model)
    assert "USER: My locker" not in transcript and "USER: Bye." in transcript


def test_the_messages_an_agent_is_built_with_are_not_the_users_conversation(local_env: Path, tmp_path: Path) -> None:
    examples = [{"role": "user", "content": [{"text": "Example: I am allergic to peanuts."}]},
                {"role": "assistant", "content": [{"text": "Noted, no peanuts."}]}]

    def agent_with_examples() -> tuple[Agent, S3VectorMemoryPlugin, ScriptedModel]:
        model = ScriptedModel()
        plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt=PROMPT)
        agent = Agent(model=model, name="assistant", plugins=[plugin], system_prompt=PROMPT, callback_handler=None,
                      messages=[dict(m) for m in examples],  # type: ignore[misc]
                      session_manager=FileSessionManager(session_id="c1", storage_dir=str(tmp_path / "sessions")))
        return agent, plugin, model

    agent, _, _ = agent_with_examples()
    say(agent, "My locker code is 7781.", "u1", "c1")
    agent, plugin, model = agent_with_examples()  # the next request: the session restores examples and turn 1
    say(agent, "Bye.", "u1", "c1", end=True)
    assert plugin.flush(60)
    (transcript,) = _summarized(model)
    assert "peanuts" not in transcript and transcript.count("USER: My locker code is 7781.") == 1
