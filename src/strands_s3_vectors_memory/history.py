"""Whose messages an agent holds: one history per conversation on a shared agent, or the agent's own.

``history="isolated"`` (the default): each conversation's messages live in the conversation book and
are swapped into ``agent.messages`` when a call of that conversation starts; a new conversation starts
from the agent's initial messages (few-shot examples, say), and calls without identity share one
history of their own. Setups that cannot be kept apart are refused when the plugin is attached.

``history="agent"``: ``agent.messages`` is left alone (one agent per conversation, e.g. with a strands
session manager restoring it); a call of another conversation is refused instead of mixing them.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any, Literal

from strands.types.agent import ConcurrentInvocationMode

from .errors import ConfigurationError, InvalidInvocationStateError

if TYPE_CHECKING:
    from strands import Agent

    from .book import Conversation
    from .identity import ConversationKey, Invocation

__all__ = ["AgentHistory", "History"]

History = Literal["isolated", "agent"]


class AgentHistory:
    """The history policy of one plugin's agent."""

    def __init__(self, mode: History) -> None:
        if mode not in ("isolated", "agent"):
            raise ConfigurationError("history must be 'isolated' or 'agent'")
        self.mode = mode
        self.seed: list[Any] = []  #: what every new conversation starts from (isolated)
        self._unbound: list[Any] = []  # the history of calls that carry no identity (isolated)
        self._owner: ConversationKey | None = None  # whose messages the agent holds (agent mode)

    def attach(self, agent: Agent) -> None:
        """Refuse setups that would mix conversations; remember the agent's initial messages."""
        if self.mode == "agent":
            return
        if getattr(agent, "_session_manager", None) is not None:
            raise ConfigurationError(
                "this agent has a session manager, which persists one history under one session id: on an "
                "agent shared by several conversations it would mix them. Use one agent per conversation "
                "with S3VectorMemoryPlugin(..., history='agent'), or drop the session manager (the plugin "
                "keeps each conversation's history itself)"
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
        if self._owner is not None and self._owner != invocation.key and agent.messages:
            raise InvalidInvocationStateError(
                f"this agent's messages belong to another conversation than {invocation.conversation_id!r}; "
                "with history='agent' each agent serves one conversation (create one per conversation, or "
                "use history='isolated')"
            )
        self._owner = invocation.key

    def bind(self, agent: Agent, conversation: Conversation | None) -> None:
        """Give the call its conversation's messages (``None``: a call without identity)."""
        if self.mode == "isolated":
            agent.messages = conversation.history if conversation is not None else self._unbound

    def unbound_call_ended(self, agent: Agent) -> None:
        """A call without identity ended: keep its history (a conversation manager may have replaced it)."""
        if self.mode == "isolated":
            self._unbound = agent.messages
