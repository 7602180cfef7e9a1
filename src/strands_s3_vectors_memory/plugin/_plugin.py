"""The strands plugin: long-term memory wired into an agent through hooks.

Per ``agent()`` call the plugin reads the caller's identity from ``invocation_state`` (``user_id``,
``conversation_id``, ``end_session``, ``tenant_context``) into one :class:`~..identity.Invocation`.
On a conversation's first turn it retrieves the user's relevant memories; every model call of that
conversation then gets them in ``{memory_context}``, injected per call (the agent's durable
``system_prompt`` keeps the placeholder and never holds anyone's memories). On an agent shared by
many users, each call sees only its own conversation's messages: the conversation book
(:mod:`._book`) keeps one history per conversation and swaps it into ``agent.messages``.

Turns are recorded per message; ``end_session=True`` (or a conversation left idle, evicted, or open
at exit) hands the transcript to the process's background writer, which summarizes it with the
agent's own model and stores it (:mod:`._runtime`, :mod:`..archive._archiver`), off the reply path and
without loss. Every blocking step runs off the caller's event loop under ``invoke_async`` /
``stream_async``.
"""

from __future__ import annotations

import asyncio
import copy
import functools
import logging
import threading
import weakref
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from strands import tool
from strands.hooks import AfterInvocationEvent, BeforeInvocationEvent, MessageAddedEvent, MessageUpdatedEvent
from strands.middleware import InvokeModelStage
from strands.plugins import Plugin, hook
from strands.types.content import split_system_prompt
from strands.types.tools import ToolContext

from ..archive import Archiver, render_transcript, wait_for_own_writes
from ..durability import BackgroundWriter, default_spool_dir
from ..errors import ConfigurationError, InvalidInvocationStateError
from ..identity import Invocation, read_invocation
from ..index import Memory
from ..store import MultiTenantS3VectorMemory, S3VectorMemory
from ..text import has_text_content
from ._book import Conversation
from ._history import AgentHistory, History
from ._prompt import SystemPrompt, has_placeholder, render_prompt
from ._retrieval import first_turn_query, recall, recall_for_tool
from ._runtime import MemoryRuntime, StoreIdentity, runtime_for
from ._settings import (
    MovedKeywords,
    RetrievalSettings,
    SummarySettings,
    WriteMode,
    WritingSettings,
    check_agent_name,
    check_store_and_prompt,
    group_settings,
)

if TYPE_CHECKING:
    from strands import Agent
    from strands.middleware.stages import InvokeModelContext
    from strands.models import Model
    from typing_extensions import Unpack

__all__ = ["S3VectorMemoryPlugin"]

logger = logging.getLogger(__name__)


@dataclass
class _Turn:
    """One running ``agent()`` call of a conversation, and the messages added during it."""

    invocation: Invocation
    conversation: Conversation
    restored: tuple[str, bool]  # history="agent": held messages no one recorded yet (and whether they carry text)
    lines: dict[object, str] = field(default_factory=dict)  # message tracking id -> rendered line
    texts: dict[object, bool] = field(default_factory=dict)  # message tracking id -> carries text


class S3VectorMemoryPlugin(Plugin):
    """Strands plugin giving an agent long-term semantic memory in S3 Vectors.

    Args:
        store: :class:`S3VectorMemory` or :class:`MultiTenantS3VectorMemory`.
        base_prompt: System prompt with a ``{memory_context}`` placeholder: a string, or content blocks
            (e.g. a static prefix, a ``cachePoint``, then a text block holding the placeholder).
        top_k, spool_dir, write_mode: The most used settings of the groups below, as keywords (given
            both ways, the two must agree).
        history: ``"isolated"`` (default without a session manager): the plugin keeps each conversation's
            messages and shows the model only the current conversation's, so one agent can serve many
            users. ``"agent"`` (default with a session manager): ``agent.messages`` is left alone (one
            agent per conversation); the stored conversation covers every turn the agent holds,
            restored ones included, and a call of another conversation is refused.
        retrieval: What a conversation is shown of its user's memories (:class:`RetrievalSettings`).
        writing: When a conversation ends and how it is stored (:class:`WritingSettings`).
        summary: What is stored of an ended conversation (:class:`SummarySettings`).
        **moved: The 1.0 previews' keywords for settings now in a group: deprecated, still accepted.
    """

    name = "s3-vector-memory"

    def __init__(
        self,
        store: S3VectorMemory,
        base_prompt: SystemPrompt,
        *,
        top_k: int | None = None,
        spool_dir: str | Path | None = None,
        write_mode: WriteMode | None = None,
        history: History | None = None,
        retrieval: RetrievalSettings | None = None,
        writing: WritingSettings | None = None,
        summary: SummarySettings | None = None,
        **moved: Unpack[MovedKeywords],
    ) -> None:
        check_store_and_prompt(store, base_prompt)
        self.retrieval, self.writing, self.summary = group_settings(
            retrieval, writing, summary, {"top_k": top_k, "spool_dir": spool_dir, "write_mode": write_mode}, moved
        )
        super().__init__()
        self.store = store
        self.base_prompt = base_prompt
        self._history = AgentHistory(history)
        self.history = history  #: "isolated" or "agent" once attached (``None`` given: the agent decides)
        self._agent_ref: weakref.ReferenceType[Agent] | None = None
        self._last_model: Model | None = None
        self._archiver = Archiver(store, self._model, self.summary)
        self._runtime: MemoryRuntime | None = None
        self._current: _Turn | None = None
        self._structured_prompt: SystemPrompt | None = None
        self._last_prompt: SystemPrompt | None = None
        self._warned: set[str] = set()
        self._lock = threading.Lock()

    # ------------------------------------------------------------------ wiring

    def init_agent(self, agent: Agent) -> None:
        """Check the agent (named, safe history handling), take over its prompt and join the runtime."""
        name = check_agent_name(getattr(agent, "name", None))
        if self._agent_ref is not None and self._agent_ref() not in (None, agent):
            raise ConfigurationError("an S3VectorMemoryPlugin instance serves one agent; create one per agent")
        self._history.attach(agent)
        self.history = self._history.mode
        if not isinstance(self.store, MultiTenantS3VectorMemory):
            self.store.verify()  # index exists with the embedder's dimension, or a clear error now
        self._agent_ref = weakref.ref(agent)
        self._last_model = agent.model
        agent.system_prompt = copy.deepcopy(self.base_prompt)  # type: ignore[assignment]
        agent.add_middleware(InvokeModelStage.Input, self._inject)
        writing = self.writing
        self._runtime = runtime_for(
            writing.spool_path or default_spool_dir(self.store.data_dir, name),
            StoreIdentity.of(self.store),
            workers=writing.writer_workers,
            flush_at_exit=writing.flush_at_exit,
        )
        self._runtime.book.max_open = writing.max_open_conversations
        if writing.durable_turns:
            self._runtime.enable_turn_buffer(writing.idle_timeout_seconds)
        self._runtime.attach(self._archiver)

    def _model(self) -> Model | None:
        """The agent's model now (the one that summarizes), or the last one seen if the agent is gone."""
        agent = self._agent_ref() if self._agent_ref is not None else None
        if agent is not None:
            self._last_model = agent.model
        return self._last_model

    @property
    def runtime(self) -> MemoryRuntime:
        """The process-wide services this plugin uses (exists once it is attached to an agent)."""
        if self._runtime is None:
            raise ConfigurationError("the plugin is not attached to an agent yet")
        return self._runtime

    @property
    def writer(self) -> BackgroundWriter:
        """The background writer (shared by every plugin instance of the same spool)."""
        return self.runtime.writer

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every ended conversation handed over so far is stored; True if all finished."""
        return self._runtime.writer.flush(timeout) if self._runtime is not None else True

    def end_open_conversations(self) -> int:
        """End and store every conversation still open now (e.g. before a request-scoped runtime freezes).

        Returns how many were handed to the writer; ``flush()`` then waits for them.
        """
        return self._runtime.end_open_conversations("exit") if self._runtime is not None else 0

    def close(self, timeout: float | None = None) -> None:
        """End open conversations, flush and stop the background writer of this plugin's spool."""
        if self._runtime is not None:
            self._runtime.close(timeout)

    # ------------------------------------------------------------------ hooks

    def render_prompt(self, memory_context: str) -> SystemPrompt:
        """The base prompt with ``{memory_context}`` filled (empty when nothing is relevant)."""
        return render_prompt(self.base_prompt, memory_context)

    @hook  # type: ignore[call-overload]  # strands types hooks as functions, not methods
    async def before_invocation(self, event: BeforeInvocationEvent) -> None:
        """Bind the call to its conversation: its history, and on its first turn its memories."""
        agent = event.agent
        self._current = None
        if event.messages is None:  # Agent.structured_output(): no invocation_state, no memory
            self._warn_once("structured_output", "Agent.structured_output() passes no invocation_state, so it "
                            "runs without memory; use agent(..., structured_output_model=...) instead")
            self._structured_prompt = copy.deepcopy(self.base_prompt)
            agent.system_prompt = render_prompt(self.base_prompt, "")  # type: ignore[assignment]
            return
        invocation = read_invocation(
            event.invocation_state, agent.name, multi_tenant=isinstance(self.store, MultiTenantS3VectorMemory)
        )
        if invocation is None:
            self._warn_once("identity", "invocation_state has no user_id/conversation_id: memory is off for this call")
            self._history.bind(agent, None)
            return
        runtime = self.runtime
        loop = asyncio.get_running_loop()
        self._history.claim(agent, invocation)
        conversation, displaced = runtime.book.open(
            invocation, owner=self._archiver, seed=self._history.seed, idle_timeout=self.writing.idle_timeout_seconds,
            # agent mode: the book keeps this (latest) agent until the conversation is handed over
            on_handed=functools.partial(self._history.handed_over, agent) if self._history.mode == "agent" else None,
        )
        restored = self._history.unrecorded(agent, conversation.recorded_through)
        try:
            if displaced:
                await runtime.run(loop, runtime.end_all, displaced)
            if conversation.memory_context is None:
                settings = self.retrieval
                await wait_for_own_writes(invocation, settings.read_your_writes_timeout)
                conversation.memory_context = await runtime.run(
                    loop, recall, self.store, invocation, first_turn_query(event.messages or []), top_k=settings.top_k,
                    similarity_threshold=settings.similarity_threshold, budget_chars=settings.memory_budget_chars,
                    fetch_summaries=settings.fetch_summaries,
                )
        except BaseException:
            runtime.book.release(conversation)
            raise
        self._history.bind(agent, conversation)
        self._current = _Turn(invocation, conversation, restored)

    @hook  # type: ignore[call-overload]  # strands types hooks as functions, not methods
    async def after_invocation(self, event: AfterInvocationEvent) -> None:
        """Record the turn; when the conversation ends, hand it to the background writer (spooled)."""
        agent = event.agent
        if self._structured_prompt is not None:
            agent.system_prompt = self._structured_prompt  # type: ignore[assignment]
            self._structured_prompt = None
        turn, self._current = self._current, None
        if turn is None:
            if event.invocation_state:  # (not the structured_output path, which keeps the bound history)
                self._history.unbound_call_ended(agent)
            return
        runtime, loop = self.runtime, asyncio.get_running_loop()
        finish = functools.partial(
            runtime.finish_turn, turn.conversation,
            "\n".join(line for line in (turn.restored[0], *turn.lines.values()) if line),
            has_text=turn.restored[1] or any(turn.texts.values()), history=agent.messages,
            end=turn.invocation.end_session, recorded_through=self._history.held(agent),
            durable=self.writing.durable_turns,
        )
        ended = await runtime.run(loop, finish) if self.writing.durable_turns else finish()  # (durable: one S3 write)
        if ended is not None:
            ticket = await runtime.run(loop, runtime.end, ended, self._archiver)
            if self.writing.write_mode == "inline" and ticket is not None:
                await self._wait_until_stored(loop, ticket, ended.invocation)

    async def _wait_until_stored(self, loop: asyncio.AbstractEventLoop, ticket: int, invocation: Invocation) -> None:
        """write_mode="inline": the reply returns once this conversation is stored (or stays spooled)."""
        if not await self.runtime.run(loop, self.runtime.writer.wait, {ticket}, self.writing.inline_timeout):
            logger.warning(
                "conversation %s was not stored within inline_timeout=%ss; it stays in the spool for replay",
                invocation.conversation_id,
                self.writing.inline_timeout,
            )

    @hook  # type: ignore[call-overload]  # strands types hooks as functions, not methods
    def on_message_added(self, event: MessageAddedEvent) -> None:
        """Record each message of the running turn as it is added.

        Reading ``agent.messages`` after the call instead would miss turns: conversation managers
        (strands' default sliding window) trim the history at the end of an invocation.
        """
        self._record(event.message)

    @hook  # type: ignore[call-overload]  # strands types hooks as functions, not methods
    def on_message_updated(self, event: MessageUpdatedEvent) -> None:
        """A message was replaced (bidi agents): the transcript keeps the final version only."""
        self._record(event.message, event.tracking_id)

    def _record(self, message: Any, tracking_id: object = None) -> None:
        turn = self._current
        if turn is None:
            return
        key = tracking_id or (message.get("tracking_id") if isinstance(message, Mapping) else None) or id(message)
        turn.lines[key] = render_transcript([message])
        turn.texts[key] = has_text_content([message])

    def _inject(self, context: InvokeModelContext) -> InvokeModelContext:
        """Per model call: fill ``{memory_context}`` with the current conversation's memories (or nothing)."""
        turn = self._current
        memory_context = turn.conversation.memory_context or "" if turn is not None else ""
        prompt: Any = context.system_prompt
        if not has_placeholder(prompt):
            if turn is not None and turn.conversation.memory_context:
                self._warn_once("placeholder", "the agent's system prompt no longer contains {memory_context}: "
                                "retrieved memories cannot reach the model")
            return context
        rendered = render_prompt(prompt, memory_context)
        self._last_prompt = rendered
        return context.replace(system_prompt=rendered)  # type: ignore[arg-type]

    @property
    def last_system_prompt(self) -> str:
        """The text of the system prompt the latest model call received (memories included).

        For demos and debugging: the agent's own ``system_prompt`` keeps the ``{memory_context}``
        placeholder, because memories are injected per model call.
        """
        return split_system_prompt(self._last_prompt)[0] or ""  # type: ignore[arg-type]

    def _warn_once(self, topic: str, message: str) -> None:
        with self._lock:
            if topic in self._warned:
                return
            self._warned.add(topic)
        logger.warning(message)

    # ------------------------------------------------------------------ retrieval

    def search(self, invocation: Invocation, query: str, top_k: int | None = None) -> list[Memory]:
        """Memories of the invocation's user and agent (and tenant) relevant to ``query``."""
        return self.store.search_scope(invocation.scope, query, top_k=top_k or self.retrieval.top_k,
                                       similarity_threshold=self.retrieval.similarity_threshold,
                                       fetch_summaries=self.retrieval.fetch_summaries)

    # ------------------------------------------------------------------ tool

    @tool(context=True)
    async def recall_memories(
        self, query: str, tool_context: ToolContext, top_k: int = 3, include_past: bool = False
    ) -> str:
        """Search the current user's memories of earlier conversations.

        Use it when the user refers to something from a previous session that is not already in your
        context, or when you need to recall a specific fact.

        Args:
            query: What to look for, in natural language.
            top_k: How many memories to return (1-10).
            include_past: Also return facts that are no longer true, for questions about the past.
        """
        try:
            invocation = read_invocation(tool_context.invocation_state, tool_context.agent.name,
                                         multi_tenant=isinstance(self.store, MultiTenantS3VectorMemory))
        except InvalidInvocationStateError as exc:
            return f"Memory is unavailable: {exc}"
        if invocation is None:
            return "Memory is unavailable: this conversation has no user identity."
        limit = min(max(int(top_k), 1), 10)
        try:
            return await self.runtime.run(
                asyncio.get_running_loop(), recall_for_tool, self.store, invocation.scope, query, top_k=limit,
                similarity_threshold=self.retrieval.similarity_threshold, include_past=bool(include_past),
                budget_chars=self.retrieval.memory_budget_chars, fetch_summaries=self.retrieval.fetch_summaries)
        except Exception as exc:
            logger.warning("recall_memories failed for conversation %s: %s", invocation.conversation_id, exc)
            return "Memory search failed; continue without it."

    @property
    def memory_tool(self) -> Any:
        """The recall tool (0.3.0 name). It is registered automatically with the plugin."""
        return self.recall_memories

    # ------------------------------------------------------------------ 0.3.0 synchronous API

    def close_session_with_data(
        self,
        tenant_context: Mapping[str, Any] | None,
        user_id: str,
        conv_id: str,
        messages: Sequence[Mapping[str, Any]],
        model: Model,
        agent_name: str | None = None,
    ) -> str | None:
        """Summarize and store a conversation now, synchronously (0.3.0 API); returns the summary."""
        scope = self.store.scope(user_id, agent_name or "default", tenant_context)
        return Archiver(self.store, lambda: model, self.summary).archive_messages(scope, conv_id, messages)
