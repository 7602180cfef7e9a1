"""A conversation's memory covers every turn ever sent under its id, however and whenever it ends."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from memory_env import MemoryEnv
from strands_s3_vectors_memory import RetrievalSettings, S3VectorMemory, WritingSettings
from strands_s3_vectors_memory.archive._summary_format import parse_summary_request
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.testing import ScriptedModel, default_responder
from strands_s3_vectors_memory.text import message_text
from support import all_vectors, make_agent, say

HELPER = Path(__file__).parent / "plugin_helpers" / "open_conversation.py"


def _summaries(env: MemoryEnv) -> list[str]:
    return [v["metadata"]["content"] for v in all_vectors(env.client) if v["metadata"]["type"] == "summary"]


def _is_summary(messages: Any) -> bool:
    return bool(messages) and parse_summary_request(message_text(messages[-1], fold=False)) is not None


def _wait_for(condition: Any, timeout: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


def test_ending_a_conversation_again_keeps_what_its_first_part_said(memory_env: MemoryEnv) -> None:
    agent, plugin, _ = make_agent()
    say(agent, "I live in LISBON.", "u1", "c1", end=True)
    assert plugin.flush(30)
    say(agent, "My dog is called REX.", "u1", "c1", end=True)
    assert plugin.flush(30)
    (summary,) = _summaries(memory_env)
    assert "LISBON" in summary and "REX" in summary


def test_the_first_part_survives_a_restart_between_the_two_ends(memory_env: MemoryEnv) -> None:
    agent, plugin, _ = make_agent()
    say(agent, "I play the OBOE.", "u1", "c1", end=True)
    plugin.close(30)  # the process ends: its runtime, book and writer are gone
    agent, plugin, _ = make_agent()  # a new process (fresh runtime for the same spool)
    say(agent, "And I collect STAMPS.", "u1", "c1", end=True)
    assert plugin.flush(30)
    (summary,) = _summaries(memory_env)
    assert "OBOE" in summary and "STAMPS" in summary


def test_a_retried_ending_turn_does_not_lose_the_earlier_turns(memory_env: MemoryEnv) -> None:
    failures = iter([RuntimeError("model unavailable")])

    def flaky(messages: Any, system_prompt: str | None) -> Any:
        if not _is_summary(messages) and "bye" in message_text(messages[-1]):
            error = next(failures, None)
            if error is not None:
                raise error
        return default_responder(messages, system_prompt)

    agent, plugin, _ = make_agent(model=ScriptedModel(responder=flaky))
    say(agent, "My car is a red VOLVO.", "u1", "c1")
    with pytest.raises(RuntimeError):
        say(agent, "Thanks, bye.", "u1", "c1", end=True)
    say(agent, "Thanks, bye.", "u1", "c1", end=True)  # the caller retries the ending turn
    assert plugin.flush(30)
    (summary,) = _summaries(memory_env)
    assert "VOLVO" in summary


def test_re_ending_while_the_first_end_is_still_queued_merges_both(memory_env: MemoryEnv) -> None:
    release = threading.Event()

    def slow(messages: Any, system_prompt: str | None) -> Any:
        if _is_summary(messages):
            release.wait(30)
        return default_responder(messages, system_prompt)

    # (no read-your-writes wait: the second end reopens c1 while its first end is still queued)
    agent, plugin, _ = make_agent(model=ScriptedModel(responder=slow), writing=WritingSettings(writer_workers=1),
                                  retrieval=RetrievalSettings(read_your_writes_timeout=0))
    say(agent, "Ending another talk first.", "u9", "z1", end=True)  # occupies the only writer thread
    say(agent, "My sister is called MAYA.", "u1", "c1", end=True)
    say(agent, "My brother is called TOM.", "u1", "c1", end=True)  # same id while the first is queued
    release.set()
    assert plugin.flush(30)
    summaries = [s for s in _summaries(memory_env) if "MAYA" in s or "TOM" in s]
    assert len(summaries) == 1 and "MAYA" in summaries[0] and "TOM" in summaries[0]


def test_an_idle_conversation_is_ended_and_stored(memory_env: MemoryEnv, caplog: pytest.LogCaptureFixture) -> None:
    agent, plugin, _ = make_agent(writing=WritingSettings(idle_timeout_seconds=0.3))
    with caplog.at_level(logging.INFO, logger="strands_s3_vectors_memory"):
        say(agent, "My train leaves from PLATFORM 9.", "u1", "c1")  # the user closes the tab
        assert _wait_for(lambda: any("PLATFORM 9" in s for s in _summaries(memory_env)) or not plugin.flush(0))
        assert plugin.flush(30)
    assert any("PLATFORM 9" in s for s in _summaries(memory_env))
    assert "idle too long" in caplog.text


def test_a_conversation_resumed_after_it_went_idle_keeps_both_parts(memory_env: MemoryEnv) -> None:
    agent, plugin, _ = make_agent(writing=WritingSettings(idle_timeout_seconds=0.3))
    say(agent, "I am learning JAPANESE.", "u1", "c1")
    assert _wait_for(lambda: any("JAPANESE" in s for s in _summaries(memory_env)))
    say(agent, "I also study KOREAN.", "u1", "c1", end=True)
    assert plugin.flush(30)
    (summary,) = _summaries(memory_env)
    assert "JAPANESE" in summary and "KOREAN" in summary


def test_past_the_open_conversation_cap_the_oldest_is_ended_and_stored(
    memory_env: MemoryEnv, caplog: pytest.LogCaptureFixture
) -> None:
    agent, plugin, _ = make_agent(writing=WritingSettings(max_open_conversations=2))
    with caplog.at_level(logging.INFO, logger="strands_s3_vectors_memory"):
        say(agent, "My hotel room is 404.", "u1", "c1")
        say(agent, "I like tea.", "u2", "c2")
        say(agent, "I like coffee.", "u3", "c3")  # a third open conversation: c1 is ended
        assert plugin.flush(30)
    assert any("404" in s for s in _summaries(memory_env))
    assert "too many open conversations" in caplog.text
    assert len(plugin.runtime.book) == 2


def test_conversations_open_at_exit_are_ended_and_stored(local_env: Path) -> None:
    proc = subprocess.run([sys.executable, str(HELPER), "My umbrella is YELLOW."], capture_output=True,
                          text=True, timeout=120, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr
    assert "process is exiting" in proc.stderr
    env = MemoryEnv("local", local_client(local_env), "my-vector-memory", local_env)
    assert any("YELLOW" in s for s in _summaries(env))


def test_closing_the_plugin_ends_its_open_conversations_first(memory_env: MemoryEnv) -> None:
    agent, plugin, _ = make_agent()
    say(agent, "My kayak is ORANGE.", "u1", "c1")
    plugin.close(30)  # close ends the open conversation before stopping the writer
    assert any("ORANGE" in s for s in _summaries(memory_env))
    agent, plugin, model = make_agent(S3VectorMemory())  # and the spool works again afterwards
    say(agent, "What colour is my kayak?", "u1", "c2")
    assert "ORANGE" in (model.requests[-1].system_prompt or "")
