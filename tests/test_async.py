"""Under invoke_async / stream_async the plugin never blocks the caller's event loop.

Every blocking step (query embedding, ``query_vectors``, ranking, the read-your-writes wait, the
hand-off of an ended conversation to the spool, the recall tool's search) must run on other threads.
The tests record the thread each embedder and S3 Vectors call runs on, and time every callback the
loop runs: a blocking call would show up as a callback as long as the embedder's 0.2 s delay.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from strands import Agent

from _common import LongestCallback  # bench/: the same measure as bench/async_server.py
from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.archive._summary_format import parse_summary_request
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.testing import ScriptedModel, ToolCall, default_responder
from strands_s3_vectors_memory.text import message_text
from support import PROMPT, chat_requests

DELAY = 0.2


class _Threads:
    """Thread ids that ran memory work (embedder and S3 Vectors calls)."""

    def __init__(self) -> None:
        self.ids: set[int] = set()
        self._lock = threading.Lock()

    def note(self) -> None:
        with self._lock:
            self.ids.add(threading.get_ident())


class _SlowEmbedder:
    """Like a Bedrock round trip: each call sleeps; word-bag vectors so related texts match."""

    def __init__(self, threads: _Threads) -> None:
        self._threads = threads
        self._vocabulary: dict[str, int] = {}

    @property
    def model_id(self) -> str:
        return "slow-bag-of-words"

    @property
    def dimension(self) -> int:
        return 64

    def _vector(self, text: str) -> list[float]:
        vector = [0.0] * 64
        for word in text.lower().split():
            vector[self._vocabulary.setdefault(word.strip(".,?!"), len(self._vocabulary)) % 64] += 1.0
        norm = sum(x * x for x in vector) ** 0.5 or 1.0
        return [x / norm + (1e-3 if i == 0 else 0.0) for i, x in enumerate(vector)]

    def embed_query(self, text: str) -> list[float]:
        self._threads.note()
        time.sleep(DELAY)
        return self._vector(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self._threads.note()
        time.sleep(DELAY)
        return [self._vector(t) for t in texts]


class _RecordingClient:
    """The embedded engine, noting the thread of every S3 Vectors call."""

    def __init__(self, inner: Any, threads: _Threads) -> None:
        self._inner = inner
        self._threads = threads

    def __getattr__(self, name: str) -> Any:
        attribute = getattr(self._inner, name)
        if not callable(attribute) or name.startswith("_") or name in ("exceptions", "meta", "get_paginator"):
            return attribute

        def call(*args: Any, **kwargs: Any) -> Any:
            self._threads.note()
            return attribute(*args, **kwargs)

        return call


@pytest.fixture
def threads() -> _Threads:
    return _Threads()


@pytest.fixture
def store(local_env: Path, threads: _Threads) -> Iterator[S3VectorMemory]:
    client = _RecordingClient(local_client(local_env), threads)
    yield S3VectorMemory(client=client, embedder=_SlowEmbedder(threads), similarity_threshold=0.0)


def _agent(
    store: S3VectorMemory, model: ScriptedModel | None = None
) -> tuple[Agent, S3VectorMemoryPlugin, ScriptedModel]:
    model = model or ScriptedModel()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=PROMPT, writing=WritingSettings(flush_at_exit=False))
    return Agent(model=model, name="assistant", plugins=[plugin], system_prompt=PROMPT,
                 callback_handler=None), plugin, model


def _state(user: str, conversation: str, end: bool = False) -> dict[str, Any]:
    return {"user_id": user, "conversation_id": conversation, "end_session": end}


def test_concurrent_async_conversations_never_run_memory_work_on_the_loop(
    store: S3VectorMemory, threads: _Threads
) -> None:
    store.verify()  # start-up work, before the server takes requests: the index, and the process's
    _agent(store)  # memory runtime (writer threads, spool), created by the first plugin
    threads.ids.clear()
    recalled: list[bool] = []

    async def conversation(user: int) -> S3VectorMemoryPlugin:
        agent, plugin, _ = _agent(store)
        await agent.invoke_async(f"My locker number is {user}.", invocation_state=_state(f"u{user}", "c1"))
        await agent.invoke_async("Thanks, bye.", invocation_state=_state(f"u{user}", "c1", end=True))
        agent, plugin, model = _agent(store)  # the user's next conversation, in a new request
        await agent.invoke_async("What is my locker number?", invocation_state=_state(f"u{user}", "c2"))
        recalled.append(f"My locker number is {user}." in (chat_requests(model)[0].system_prompt or ""))
        return plugin

    async def main() -> tuple[int, list[S3VectorMemoryPlugin]]:
        return threading.get_ident(), list(await asyncio.gather(*(conversation(u) for u in range(8))))

    with LongestCallback() as loop:
        loop_thread, plugins = asyncio.run(main())
    assert plugins[0].flush(60)
    assert threads.ids and loop_thread not in threads.ids  # every embedding and S3 Vectors call ran elsewhere
    # one blocking call would be 0.2 s; the margin is for a machine whose cores are busy with other tests
    assert loop.longest < 0.15, f"the loop was blocked for {loop.longest:.3f}s"
    assert all(recalled)  # each returning user's first turn waited (off the loop) for their own write


def test_stream_async_and_the_recall_tool_stay_off_the_loop(store: S3VectorMemory, threads: _Threads) -> None:
    store.store_conversation("u1", "c0", "The user's locker number is 31.", agent_name="assistant")
    model = ScriptedModel([ToolCall("recall_memories", {"query": "locker number"}), "It is 31."])
    agent, _, _ = _agent(store, model)

    async def main() -> tuple[int, list[Any]]:
        events = [event async for event in agent.stream_async("Which locker?", invocation_state=_state("u1", "c1"))]
        return threading.get_ident(), events

    threads.ids.clear()
    with LongestCallback() as loop:
        loop_thread, events = asyncio.run(main())
    assert any("result" in event for event in events)
    assert loop_thread not in threads.ids and loop.longest < 0.15
    results = [block["toolResult"] for m in agent.messages for block in m["content"] if "toolResult" in block]
    assert "locker number is 31" in str(results)


def test_a_returning_users_wait_for_their_own_write_lets_other_requests_run(store: S3VectorMemory) -> None:
    release = threading.Event()

    def slow_summaries(messages: Any, system_prompt: str | None) -> Any:
        if parse_summary_request(message_text(messages[-1], fold=False)) is not None:
            release.wait(30)
        return default_responder(messages, system_prompt)

    ticks: list[float] = []

    async def ticker(stop: asyncio.Event) -> None:
        while not stop.is_set():
            ticks.append(time.perf_counter())
            await asyncio.sleep(0.01)

    async def main() -> float:
        agent, _, _ = _agent(store, ScriptedModel(responder=slow_summaries))
        await agent.invoke_async("I collect VINYL records.", invocation_state=_state("u1", "c1", end=True))
        stop = asyncio.Event()
        tick = asyncio.create_task(ticker(stop))
        asyncio.get_running_loop().call_later(0.5, release.set)
        again, _, model = _agent(store)
        started = time.perf_counter()
        await again.invoke_async("What do I collect?", invocation_state=_state("u1", "c2"))
        waited = time.perf_counter() - started
        stop.set()
        await tick
        assert "VINYL" in (chat_requests(model)[0].system_prompt or "")
        return waited

    waited = asyncio.run(main())
    assert waited >= 0.4  # it did wait for the write...
    gaps = [b - a for a, b in itertools.pairwise(ticks)]
    assert max(gaps) < 0.15  # ...while the loop kept serving the ticker
