"""Whose messages an agent holds: one history per conversation on a shared agent, or the agent's own.

``history="isolated"`` (the default): each conversation's messages live in the conversation book and
are swapped into ``agent.messages`` when a call of that conversation starts; a new conversation starts
from the agent's initial messages (few-shot examples, say), and calls without identity share one
history of their own. Setups that cannot be kept apart are refused when the plugin is attached.

``history="agent"``: ``agent.messages`` is left alone (one agent per conversation, e.g. with a strands
session manager restoring it); a call of another conversation is refused instead of mixing them. It
is the default for an agent with a session manager. Then the conversation is what the agent holds:
on request-scoped runtimes turn 1 ran in an environment that is gone, and only the session manager
brought it back. So the transcript handed to the writer also covers the messages the agent holds
that this process did not record, and the agent's state (persisted by the session manager) marks
how far the conversation has been handed to the writer, so a later end (in this process or
another) hands over only what came after: no turn lost, none twice. Messages are counted from the
conversation's start (the conversation manager's ``removed_message_count`` plus the position in
``agent.messages``), so a sliding window trimming the front never shifts the mark.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Literal

from strands.types.agent import ConcurrentInvocationMode

from ..archive import render_transcript
from ..errors import ConfigurationError, InvalidInvocationStateError
from ..text import has_text_content

if TYPE_CHECKING:
    from strands import Agent

    from ..identity import ConversationKey, Invocation
    from ._book import Conversation

__all__ = ["AgentHistory", "History"]

History = Literal["isolated", "agent"]

#: The key of ``agent.state`` (persisted by a session manager) holding, in agent mode, which
#: conversation the agent's messages are and how many of them were handed to the writer.
STATE_KEY = "s3_vectors_memory"


class AgentHistory:
    """The history policy of one plugin's agent (``None``: decided by the agent, see :meth:`attach`)."""

    def __init__(self, mode: History | None) -> None:
        if mode not in (None, "isolated", "agent"):
            raise ConfigurationError("history must be 'isolated' or 'agent'")
        self._requested = mode
        self.mode: History = mode or "isolated"
        self.seed: list[Any] = []  #: what every new conversation starts from (isolated)
        self._unbound: list[Any] = []  # the history of calls that carry no identity (isolated)
        self._owner: ConversationKey | None = None  # whose messages the agent holds (agent mode)
        self._seeded = 0  # agent mode: the messages the agent was built with (few-shot examples), never archived

    def attach(self, agent: Agent) -> None:
        """Refuse setups that would mix conversations; remember the agent's initial messages.

        Unless asked otherwise, an agent with a session manager gets ``"agent"``: a session manager
        persists one conversation, so the agent serves one.
        """
        if self._requested is None and getattr(agent, "_session_manager", None) is not None:
            self.mode = "agent"
        if self.mode == "agent":  # (attached before a session manager restores anything)
            self._seeded = len(agent.messages)
            return
        if getattr(agent, "_session_manager", None) is not None:
            raise ConfigurationError(
                "this agent has a session manager, which persists one history under one session id: on an "
                "agent shared by several conversations it would mix them. Use one agent per conversation "
                "with S3VectorMemoryPlugin(..., history='agent') (the default with a session manager), or drop "
                "the session manager (the plugin keeps each conversation's history itself)"
            )
        if getattr(agent, "concurrent_invocation_mode", None) == ConcurrentInvocationMode.UNSAFE_REENTRANT:
            raise ConfigurationError(
                "concurrent_invocation_mode=UNSAFE_REENTRANT lets concurrent calls share agent.messages, so "
                "conversations could not be kept apart: use the default mode, or one agent per request"
            )
        self.seed = copy.deepcopy(agent.messages)
        self._unbound = agent.messages

    def claim(self, agent: Agent, invocation: Invocation) -> None:
        """Before a call of ``invocation``'s conversation: check (agent mode) that the agent may serve it."""
        if self.mode != "agent":
            return
        mark = _mark(agent)
        held = mark.get("conversation")
        held_key = tuple(held) if isinstance(held, list) else None
        others = {key for key in (self._owner, held_key) if key is not None and key != invocation.key}
        if others and agent.messages:
            session = getattr(getattr(agent, "_session_manager", None), "session_id", None)
            raise InvalidInvocationStateError(
                f"this agent's messages{f' (session {session!r})' if session else ''} belong to another "
                f"conversation than {invocation.conversation_id!r}; with history='agent' each agent serves one "
                "conversation (create one per conversation, with its own session, or use history='isolated')"
            )
        self._owner = invocation.key
        if held_key != invocation.key:  # the session now holds this conversation (saved with its next message)
            agent.state.set(STATE_KEY, {"conversation": list(invocation.key), "archived_through": 0})

    def unrecorded(self, agent: Agent, recorded: int) -> tuple[str, bool]:
        """Agent mode: the transcript of the messages the agent holds that were neither handed to the
        writer (by any process) nor recorded in this process's transcript (the first ``recorded``
        messages), e.g. turns a session manager restored; and whether it carries text. Call it
        before the invocation adds its own messages."""
        if self.mode != "agent":
            return "", False
        archived = _mark(agent).get("archived_through")
        done = max(recorded, archived if isinstance(archived, int) else 0, self._seeded)
        pending = agent.messages[max(done - _removed(agent), 0):]
        return render_transcript(pending), has_text_content(pending)

    def held(self, agent: Agent) -> int:
        """Agent mode: the messages of the conversation so far, counted from its start (else 0)."""
        return _removed(agent) + len(agent.messages) if self.mode == "agent" else 0

    def handed_over(self, agent: Agent, through: int) -> None:
        """Agent mode: the conversation's first ``through`` messages are spooled; mark it in the agent's
        state and write that to its session at once (an idle end or ``end_open_conversations`` come
        after the session manager's own sync of the turn)."""
        mark = _mark(agent)
        archived = mark.get("archived_through")
        if isinstance(archived, int) and archived >= through:
            return
        agent.state.set(STATE_KEY, {**mark, "archived_through": through})
        session_manager = getattr(agent, "_session_manager", None)
        if session_manager is not None:
            session_manager.sync_agent(agent)

    def bind(self, agent: Agent, conversation: Conversation | None) -> None:
        """Give the call its conversation's messages (``None``: a call without identity)."""
        if self.mode == "isolated":
            agent.messages = conversation.history if conversation is not None else self._unbound

    def unbound_call_ended(self, agent: Agent) -> None:
        """A call without identity ended: keep its history (a conversation manager may have replaced it)."""
        if self.mode == "isolated":
            self._unbound = agent.messages


def _mark(agent: Agent) -> Mapping[str, Any]:
    mark = agent.state.get(STATE_KEY)
    return mark if isinstance(mark, Mapping) else {}


def _removed(agent: Agent) -> int:
    """Messages the conversation manager already removed from the front of ``agent.messages``."""
    removed = getattr(getattr(agent, "conversation_manager", None), "removed_message_count", 0)
    return removed if isinstance(removed, int) else 0
