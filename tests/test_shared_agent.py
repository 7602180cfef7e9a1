"""One agent, many users: each model call sees only its own conversation and its own user's memories.

The spec's pattern is one ``Agent`` serving every user, told apart by ``invocation_state`` only.
"""

from __future__ import annotations

import gc
import logging
import os
import threading
from pathlib import Path
from typing import Any

import pytest
from strands import Agent
from strands.session import FileSessionManager
from strands.types.agent import ConcurrentInvocationMode

from memory_env import MemoryEnv
from strands_s3_vectors_memory import (
    ConfigurationError,
    InvalidIdentityError,
    InvalidInvocationStateError,
    MultiTenantS3VectorMemory,
    S3VectorMemory,
    S3VectorMemoryPlugin,
)
from strands_s3_vectors_memory.archive._summary_format import parse_summary_request
from strands_s3_vectors_memory.testing import ScriptedModel, ToolCall, default_responder
from strands_s3_vectors_memory.text import message_text
from support import PROMPT, all_vectors, chat_prompts, chat_requests, is_summary_request, make_agent, say


def _texts(request: Any) -> str:
    return " ".join(message_text(m) for m in request.messages)


def test_another_users_messages_never_reach_the_model(memory_env: MemoryEnv) -> None:
    agent, _, model = make_agent()
    say(agent, "My secret word is PELICAN.", "alice", "a1")
    say(agent, "Hello, what can you do?", "bob", "b1")
    bob = chat_requests(model)[-1]
    assert "PELICAN" not in _texts(bob)
    assert [m["role"] for m in bob.messages] == ["user"]  # a new conversation starts empty


def test_a_resumed_conversation_gets_its_own_history_back(memory_env: MemoryEnv) -> None:
    agent, _, model = make_agent()
    say(agent, "Let us plan a trip to OSLO.", "alice", "a1")
    say(agent, "My budget is 3000 KRONER.", "bob", "b1")
    say(agent, "Which museums there?", "alice", "a1")
    alice = chat_requests(model)[-1]
    assert "OSLO" in _texts(alice) and "KRONER" not in _texts(alice)
    assert len(alice.messages) == 3  # her first turn, the reply, her second turn


def test_a_call_without_identity_sees_no_conversation(memory_env: MemoryEnv) -> None:
    agent, _, model = make_agent()
    say(agent, "My PIN is 8642.", "alice", "a1")
    agent("Tell me a joke.")
    assert "8642" not in _texts(chat_requests(model)[-1])


def test_every_conversation_starts_from_the_agents_own_initial_messages(memory_env: MemoryEnv) -> None:
    seed = [{"role": "user", "content": [{"text": "Always answer in French."}]},
            {"role": "assistant", "content": [{"text": "D'accord."}]}]
    model = ScriptedModel()
    plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt=PROMPT)
    agent = Agent(model=model, name="assistant", plugins=[plugin], system_prompt=PROMPT, messages=seed,
                  callback_handler=None)
    say(agent, "My dog is REX.", "alice", "a1")
    say(agent, "Hi!", "bob", "b1")
    bob = chat_requests(model)[-1]
    assert "French" in _texts(bob) and "REX" not in _texts(bob)


def test_the_agents_system_prompt_never_holds_anyones_memories(memory_env: MemoryEnv) -> None:
    agent, plugin, model = make_agent()
    say(agent, "I am allergic to HAZELNUTS.", "alice", "a1", end=True)
    assert plugin.flush(30)
    say(agent, "Any allergies I mentioned?", "alice", "a2")
    assert "HAZELNUTS" in chat_prompts(model)[-1]
    assert agent.system_prompt == PROMPT  # durable state: the template, not alice's memories
    say(agent, "Hi there", "bob", "b1")
    assert "HAZELNUTS" not in chat_prompts(model)[-1]


@pytest.mark.parametrize("tenants", [("t-one", "t-two")])
def test_three_users_of_two_tenants_in_three_conversations_on_one_agent(
    memory_env: MemoryEnv, tenants: tuple[str, str]
) -> None:
    """Every model call carries only its own conversation's messages and its own user's memories."""
    store = MultiTenantS3VectorMemory()
    agent, plugin, model = make_agent(store)
    users = ("ana", "ben", "cho")
    conversations = ("c1", "c2", "c3")

    def fact(tenant: str, user: str, conversation: str) -> str:
        return f"F{tenant[-3:]}{user}{conversation}".upper().replace("-", "")

    owner: dict[str, tuple[str, str, str]] = {}
    for conversation in conversations:
        for turn in range(2):
            for tenant in tenants:
                for user in users:
                    token = fact(tenant, user, conversation) + str(turn)
                    owner[token] = (tenant, user, conversation)
                    before = len(model.requests)
                    say(agent, f"Remember the code {token}.", user, conversation, end=turn == 1,
                        tenant_context={"tenantId": tenant})
                    for request in model.requests[before:]:
                        if is_summary_request(request):
                            continue  # the background writer summarizing an earlier conversation
                        said = " ".join(message_text(m) for m in request.messages if m["role"] == "user")
                        seen = [t for t in owner if t in said]
                        assert all(owner[t] == (tenant, user, conversation) for t in seen), (token, seen)
                        # replies may repeat what memory recalled: that user's own codes only
                        seen = [t for t in owner if t in _texts(request)]
                        assert all(owner[t][:2] == (tenant, user) for t in seen), (token, seen)
                        if request.system_prompt is not None and "<memories>" in request.system_prompt:
                            remembered = [t for t in owner if t in request.system_prompt]
                            assert remembered, "memories were injected but name no code"
                            assert all(owner[t][:2] == (tenant, user) for t in remembered), (token, remembered)
        assert plugin.flush(60)
    # the last round's first turns recalled their own earlier conversations
    prompts = [r.system_prompt or "" for r in chat_requests(model)]
    assert sum("<memories>" in p for p in prompts) >= len(tenants) * len(users) * (len(conversations) - 1)


def test_tenant_context_on_a_single_tenant_store_is_refused(memory_env: MemoryEnv) -> None:
    agent, _, model = make_agent(S3VectorMemory())
    with pytest.raises(InvalidInvocationStateError, match="single-tenant"):
        say(agent, "hi", "u1", "c1", tenant_context={"tenantId": "t1"})
    assert not model.requests  # refused before the model saw anything
    with pytest.raises(InvalidInvocationStateError, match="single-tenant"):
        S3VectorMemory().search("u1", "anything", tenant_context={"tenantId": "t1"})


def test_a_multi_tenant_store_without_tenant_context_is_refused(memory_env: MemoryEnv) -> None:
    agent, _, model = make_agent(MultiTenantS3VectorMemory())
    with pytest.raises(InvalidIdentityError, match="tenant_context"):
        say(agent, "hi", "u1", "c1")
    assert isinstance(InvalidIdentityError("x"), InvalidInvocationStateError)
    assert not model.requests


def test_a_session_manager_on_a_shared_agent_is_refused(memory_env: MemoryEnv, tmp_path: Path) -> None:
    plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt=PROMPT, history="isolated")
    with pytest.raises(ConfigurationError, match="history='agent'"):
        Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], callback_handler=None,
              session_manager=FileSessionManager(session_id="s1", storage_dir=str(tmp_path / "sessions")))


def test_an_agent_with_a_session_manager_serves_its_session_by_default(memory_env: MemoryEnv, tmp_path: Path) -> None:
    plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt=PROMPT)
    agent = Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], callback_handler=None,
                  session_manager=FileSessionManager(session_id="a1", storage_dir=str(tmp_path / "sessions")))
    assert plugin.history == "agent"
    say(agent, "My locker is NUMBER 12.", "alice", "a1")
    with pytest.raises(InvalidInvocationStateError, match="session 'a1'"):
        say(agent, "Hi", "bob", "b1")  # the session holds alice's conversation: an error, not a mix


def test_history_agent_mode_serves_one_conversation_per_agent(memory_env: MemoryEnv, tmp_path: Path) -> None:
    sessions = str(tmp_path / "sessions")

    def agent_for(session: str) -> tuple[Agent, ScriptedModel]:
        model = ScriptedModel()
        plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt=PROMPT, history="agent")
        agent = Agent(model=model, name="assistant", plugins=[plugin], system_prompt=PROMPT, callback_handler=None,
                      session_manager=FileSessionManager(session_id=session, storage_dir=sessions))
        return agent, model

    agent, _ = agent_for("a1")
    say(agent, "My locker is NUMBER 12.", "alice", "a1")
    with pytest.raises(InvalidInvocationStateError, match="another conversation"):
        say(agent, "Hi", "bob", "b1")
    again, model = agent_for("a1")  # the session manager restores the conversation in a new agent
    say(again, "Which locker?", "alice", "a1")
    assert "NUMBER 12" in _texts(chat_requests(model)[-1])


def test_unsafe_reentrant_agents_are_refused(memory_env: MemoryEnv) -> None:
    plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt=PROMPT)
    with pytest.raises(ConfigurationError, match="UNSAFE_REENTRANT"):
        Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], callback_handler=None,
              concurrent_invocation_mode=ConcurrentInvocationMode.UNSAFE_REENTRANT)


def test_a_lone_surrogate_in_the_first_message_keeps_memory_on(memory_env: MemoryEnv) -> None:
    agent, plugin, model = make_agent()
    say(agent, "My favourite tree is the GINKGO.", "u1", "c1", end=True)
    assert plugin.flush(30)
    say(agent, "Which tree do I like? \ud800", "u1", "c2")
    assert "GINKGO" in chat_prompts(model)[-1]


def _threads() -> int:
    gc.collect()
    return threading.active_count()


def test_plugins_built_per_request_share_one_writer_and_leak_nothing(memory_env: MemoryEnv) -> None:
    store = S3VectorMemory()

    def requests(first: int, count: int) -> S3VectorMemoryPlugin:
        for i in range(first, first + count):
            agent, plugin, _ = make_agent(store)
            say(agent, f"Request {i}: my favourite number is {i}.", f"user{i % 5}", f"r{i}", end=True)
        return plugin

    requests(0, 10)  # warm up: the process's runtime for this spool and its thread pools exist now
    threads, files = _threads(), len(os.listdir("/proc/self/fd"))
    plugin = requests(10, 40)
    assert plugin.flush(60)
    # one writer per spool: nothing grows with the number of requests (40 here); a thread pool may add a
    # few threads, each with its own engine connection or HTTP socket, under a busy machine
    assert _threads() <= threads + 4
    assert len(os.listdir("/proc/self/fd")) <= files + 20
    assert plugin.writer.stats.succeeded >= 50


def test_a_users_next_request_sees_what_another_plugin_instance_stored(memory_env: MemoryEnv) -> None:
    store = S3VectorMemory()
    release = threading.Event()

    def slow(messages: Any, system_prompt: str | None) -> Any:
        if parse_summary_request(message_text(messages[-1], fold=False)) is not None:
            release.wait(10)
        return default_responder(messages, system_prompt)

    first, _, _ = make_agent(store, ScriptedModel(responder=slow))
    say(first, "My boat is called SEAGULL.", "u1", "c1", end=True)  # stored in the background, slowly
    threading.Timer(2.0, release.set).start()  # the next request starts long before the write is done
    second, _, model = make_agent(store)  # the next request: a new agent and plugin
    say(second, "What is my boat called?", "u1", "c2")
    assert "SEAGULL" in chat_prompts(model)[-1]


def test_a_content_block_prompt_keeps_its_cache_point_and_gets_the_memories(memory_env: MemoryEnv) -> None:
    prompt = [
        {"text": "You are a travel assistant. Long static instructions..."},
        {"cachePoint": {"type": "default"}},
        {"text": "What you know about this user:\n{memory_context}"},
    ]
    agent, plugin, model = make_agent(prompt=prompt)
    say(agent, "I always fly with an AISLE seat.", "u1", "c1", end=True)
    assert plugin.flush(30)
    say(agent, "Book me a flight.", "u1", "c2")
    blocks = chat_requests(model)[-1].system_prompt_content
    assert blocks is not None and [list(b) for b in blocks] == [["text"], ["cachePoint"], ["text"]]
    assert blocks[0] == prompt[0] and blocks[1] == prompt[1]  # the cached prefix is byte-identical
    assert "AISLE" in blocks[2]["text"] and "{memory_context}" not in blocks[2]["text"]
    assert agent.system_prompt_content == prompt  # the durable prompt is still the template
    say(agent, "Hello", "u2", "c3")
    assert "AISLE" not in chat_requests(model)[-1].system_prompt_content[2]["text"]


def test_a_replaced_message_is_remembered_in_its_final_version_only(memory_env: MemoryEnv) -> None:
    """Bidi agents replace a message (MessageUpdatedEvent): the transcript keeps the final text."""
    from strands.hooks import MessageAddedEvent, MessageUpdatedEvent

    agent, plugin, _ = make_agent()

    async def correct_the_user(event: MessageAddedEvent) -> None:
        message = event.message
        if message["role"] == "user" and "ROME" in message_text(message):
            final = {**message, "content": [{"text": "Actually I live in MILAN."}]}
            await event.agent.hooks.invoke_callbacks_async(
                MessageUpdatedEvent(agent=event.agent, tracking_id=message["tracking_id"], message=final))

    agent.hooks.add_callback(MessageAddedEvent, correct_the_user)
    say(agent, "I live in ROME.", "u1", "c1", end=True)
    assert plugin.flush(30)
    stored = " ".join(v["metadata"]["content"] for v in all_vectors(memory_env.client))
    assert "MILAN" in stored and "ROME" not in stored


def test_structured_output_through_the_agent_call_has_memory(memory_env: MemoryEnv) -> None:
    from pydantic import BaseModel

    class Preference(BaseModel):
        drink: str

    agent, plugin, _ = make_agent()
    say(agent, "I only drink JASMINE tea.", "u1", "c1", end=True)
    assert plugin.flush(30)
    model = ScriptedModel([ToolCall("Preference", {"drink": "jasmine tea"})])
    agent, _, _ = make_agent(model=model)
    result = agent("What do I drink?", structured_output_model=Preference,
                   invocation_state={"user_id": "u1", "conversation_id": "c2"})
    assert result.structured_output.drink == "jasmine tea"
    assert "JASMINE" in (model.requests[0].system_prompt or "")


def test_the_deprecated_structured_output_runs_without_memory_and_says_so(
    memory_env: MemoryEnv, caplog: pytest.LogCaptureFixture
) -> None:
    from pydantic import BaseModel

    class Answer(BaseModel):
        text: str

    agent, _, model = make_agent()
    model.structured_output = lambda *args, **kwargs: _single_output(Answer(text="ok"), kwargs)  # type: ignore[method-assign]
    say(agent, "My dog is BRUNO.", "u1", "c1")
    with caplog.at_level(logging.WARNING), pytest.warns(DeprecationWarning):
        assert agent.structured_output(Answer, "Summarize").text == "ok"
    assert "without memory" in caplog.text
    assert _captured["system_prompt"] == PROMPT.replace("{memory_context}", "")
    assert agent.system_prompt == PROMPT  # restored afterwards


_captured: dict[str, Any] = {}


async def _single_output(output: Any, kwargs: dict[str, Any]) -> Any:
    _captured["system_prompt"] = kwargs.get("system_prompt")
    yield {"output": output}
