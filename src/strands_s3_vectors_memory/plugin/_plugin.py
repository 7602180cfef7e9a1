"""The strands plugin: long-term memory wired into an agent through hooks.

Per ``agent()`` call the plugin reads the caller's identity from ``invocation_state`` (``user_id``,
``conversation_id``, ``end_session``, ``tenant_context``) into one :class:`~.identity.Invocation`.
On a conversation's first turn it retrieves the user's relevant memories; every model call of that
conversation then gets them in ``{memory_context}``, injected per call (the agent's durable
``system_prompt`` keeps the placeholder and never holds anyone's memories). On an agent shared by
many users, each call sees only its own conversation's messages: the conversation book
(:mod:`.book`) keeps one history per conversation and swaps it into ``agent.messages``.

Turns are recorded per message; ``end_session=True`` (or a conversation left idle, evicted, or open
at exit) hands the transcript to the process's background writer, which summarizes it with the
agent's own model and stores it (:mod:`.runtime`, :mod:`.archiver`), off the reply path and
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

from ..archive import (
    DEFAULT_SUMMARY_MAX_CHARS,
    SUMMARY_PROMPT,
    Archiver,
    SummarySettings,
    render_transcript,
    wait_for_own_writes,
)
from ..durability import BackgroundWriter, default_spool_dir
from ..errors import ConfigurationError, InvalidInvocationStateError
from ..identity import Invocation, read_invocation
from ..index import Memory
from ..store import MultiTenantS3VectorMemory, S3VectorMemory
from ..text import has_text_content
from ._book import Conversation
from ._history import AgentHistory, History
from ._prompt import DEFAULT_MEMORY_BUDGET_CHARS, SystemPrompt, has_placeholder, render_prompt
from ._retrieval import first_turn_query, recall, recall_for_tool
from ._runtime import DEFAULT_WRITER_WORKERS, MemoryRuntime, StoreIdentity, runtime_for
from ._settings import (
    DEFAULT_IDLE_TIMEOUT_SECONDS,
    DEFAULT_INLINE_TIMEOUT,
    DEFAULT_READ_YOUR_WRITES_TIMEOUT,
    DEFAULT_TOP_K,
    MAX_OPEN_CONVERSATIONS,
    STRANDS_DEFAULT_AGENT_NAME,
    WriteMode,
    check_agent_name,
    check_plugin_settings,
)

if TYPE_CHECKING:
    from strands import Agent
    from strands.middleware.stages import InvokeModelContext
    from strands.models import Model

__all__ = [
    "DEFAULT_IDLE_TIMEOUT_SECONDS",
    "DEFAULT_READ_YOUR_WRITES_TIMEOUT",
    "DEFAULT_TOP_K",
    "MAX_OPEN_CONVERSATIONS",
    "STRANDS_DEFAULT_AGENT_NAME",
    "History",
    "S3VectorMemoryPlugin",
]

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
        top_k: Memories injected on the first turn (1-100).
        similarity_threshold: Override of the store's relevance threshold.
        spool_dir: Where pending writes are spooled (default ``<data dir>/spool/<agent name>``).
        summary_prompt: System prompt used to summarize a finished conversation.
        summary_max_chars: Longest stored summary (cut at a sentence boundary).
        store_details: Also store the user's turns as finer-grained records (better recall).
        ttl_seconds: Expire stored conversation memories after this many seconds (``None``: never).
        idle_timeout_seconds: A conversation without a new turn for this long is ended and stored.
        max_open_conversations: Open conversations kept in the process; beyond it the least recently
            used one is ended and stored.
        history: ``"isolated"`` (default without a session manager): the plugin keeps each conversation's
            messages and shows the model only the current conversation's, so one agent can serve many
            users. ``"agent"`` (default with a session manager): ``agent.messages`` is left alone (one
            agent per conversation); the stored conversation covers every turn the agent holds,
            restored ones included, and a call of another conversation is refused.
        flush_at_exit: Flush pending writes when the interpreter exits.
        writer_workers: Background writer threads (they mostly wait on the summary model and the network;
            the first plugin of a process and spool sets the count, the runtime being shared).
        read_your_writes_timeout: A new conversation's first turn waits up to this long for the same
            user's still-pending writes (so "bye" then "hello again" sees the first conversation);
            other users never wait. ``0`` disables.
        conversation_ttl_seconds: Deprecated name of ``idle_timeout_seconds``.
        write_mode: ``"background"`` (default): ``end_session`` returns once the conversation is spooled,
            and it is stored in the background. ``"inline"``: the ending turn returns once it is stored
            (up to ``inline_timeout`` seconds; after that it stays spooled), for runtimes that freeze
            after the reply (AWS Lambda, AgentCore Runtime without async tasks).
        inline_timeout: The longest an ending turn waits in ``"inline"`` mode.
        memory_budget_chars: Largest memory block, in characters (about 4 per token); ``None``: no limit.
        extract_facts: The summary call also extracts the user's facts and what they supersede.
        durable_turns: Write each turn of an open conversation to the S3 spool (one small conditional PUT, no
            model call): whichever environment ends it (or an idle sweep, or a replay) stores all of it.
    """

    name = "s3-vector-memory"

    def __init__(
        self,
        store: S3VectorMemory,
        base_prompt: SystemPrompt,
        *,
        top_k: int = DEFAULT_TOP_K,
        similarity_threshold: float | None = None,
        spool_dir: str | Path | None = None,
        summary_prompt: str = SUMMARY_PROMPT,
        summary_max_chars: int = DEFAULT_SUMMARY_MAX_CHARS,
        store_details: bool = True,
        ttl_seconds: float | None = None,
        idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS,
        max_open_conversations: int = MAX_OPEN_CONVERSATIONS,
        history: History | None = None,
        flush_at_exit: bool = True,
        writer_workers: int = DEFAULT_WRITER_WORKERS,
        read_your_writes_timeout: float = DEFAULT_READ_YOUR_WRITES_TIMEOUT,
        conversation_ttl_seconds: float | None = None,
        write_mode: WriteMode = "background",
        inline_timeout: float = DEFAULT_INLINE_TIMEOUT,
        memory_budget_chars: int | None = DEFAULT_MEMORY_BUDGET_CHARS,
        extract_facts: bool = True,
        durable_turns: bool = False,
    ) -> None:
        if conversation_ttl_seconds is not None:
            idle_timeout_seconds = conversation_ttl_seconds
        check_plugin_settings(store, base_prompt, top_k=top_k, idle_timeout_seconds=idle_timeout_seconds,
                              max_open_conversations=max_open_conversations, write_mode=write_mode,
                              inline_timeout=inline_timeout)
        super().__init__()
        self.store = store
        self.base_prompt = base_prompt
        self.top_k = top_k
        self.similarity_threshold = similarity_threshold
        self.settings = SummarySettings(summary_prompt, summary_max_chars, store_details, ttl_seconds, extract_facts)
        self.memory_budget_chars = memory_budget_chars
        self.idle_timeout_seconds = float(idle_timeout_seconds)
        self.max_open_conversations = max_open_conversations
        self.write_mode = write_mode
        self.inline_timeout = float(inline_timeout)
        self._history = AgentHistory(history)
        self.history = history  #: "isolated" or "agent" once attached (``None`` given: the agent decides)
        self.read_your_writes_timeout = read_your_writes_timeout
        self._spool_dir = Path(spool_dir) if spool_dir is not None else None
        self._flush_at_exit = flush_at_exit
        self._writer_workers = writer_workers
        self.durable_turns = durable_turns
        self._agent_ref: weakref.ReferenceType[Agent] | None = None
        self._last_model: Model | None = None
        self._archiver = Archiver(store, self._model, self.settings)
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
        spool = self._spool_dir or default_spool_dir(self.store.data_dir, name)
        self._runtime = runtime_for(
            spool,
            StoreIdentity.of(self.store),
            workers=self._writer_workers,
            flush_at_exit=self._flush_at_exit,
        )
        self._runtime.book.max_open = self.max_open_conversations
        if self.durable_turns:
            self._runtime.enable_turn_buffer(self.idle_timeout_seconds)
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
            invocation, owner=self._archiver, seed=self._history.seed, idle_timeout=self.idle_timeout_seconds,
            # agent mode: the book keeps this (latest) agent until the conversation is handed over
            on_handed=functools.partial(self._history.handed_over, agent) if self._history.mode == "agent" else None,
        )
        restored = self._history.unrecorded(agent, conversation.recorded_through)
        try:
            if displaced:
                await runtime.run(loop, runtime.end_all, displaced)
            if conversation.memory_context is None:
                await wait_for_own_writes(invocation, self.read_your_writes_timeout)
                conversation.memory_context = await runtime.run(
                    loop, recall, self.store, invocation, first_turn_query(event.messages or []), top_k=self.top_k,
                    similarity_threshold=self.similarity_threshold, budget_chars=self.memory_budget_chars,
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
            end=turn.invocation.end_session, recorded_through=self._history.held(agent), durable=self.durable_turns,
        )
        ended = await runtime.run(loop, finish) if self.durable_turns else finish()  # (durable: one S3 write)
        if ended is not None:
            ticket = await runtime.run(loop, runtime.end, ended, self._archiver)
            if self.write_mode == "inline" and ticket is not None:
                await self._wait_until_stored(loop, ticket, ended.invocation)

    async def _wait_until_stored(self, loop: asyncio.AbstractEventLoop, ticket: int, invocation: Invocation) -> None:
        """write_mode="inline": the reply returns once this conversation is stored (or stays spooled)."""
        if not await self.runtime.run(loop, self.runtime.writer.wait, {ticket}, self.inline_timeout):
            logger.warning(
                "conversation %s was not stored within inline_timeout=%ss; it stays in the spool for replay",
                invocation.conversation_id,
                self.inline_timeout,
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
        return self.store.search_scope(
            invocation.scope, query, top_k=top_k or self.top_k, similarity_threshold=self.similarity_threshold
        )

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
                similarity_threshold=self.similarity_threshold, include_past=bool(include_past),
                budget_chars=self.memory_budget_chars)
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
        return Archiver(self.store, lambda: model, self.settings).archive_messages(scope, conv_id, messages)
