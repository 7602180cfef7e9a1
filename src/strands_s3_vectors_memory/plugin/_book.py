"""The conversation book: every open conversation of a process, its history and its unsaved turns.

A shared agent serves many users, told apart only by ``invocation_state``. The book keeps, per
conversation (tenant, user, agent, conversation id):

* its **history**, the messages the model sees; the plugin swaps it into ``agent.messages`` when an
  invocation of that conversation starts, so no call ever carries another conversation's messages,
  and a resumed conversation gets its own earlier turns back;
* its **memory context**, retrieved once on its first turn and kept for every later turn;
* its **transcript** of turns not yet handed to the writer, bounded by the one trimming rule.

The book is bounded: a conversation idle for longer than its ``idle_timeout`` is *abandoned*, and
so is the least recently used one when ``max_open`` conversations are open. Abandoned conversations
are never dropped silently: they are returned to the caller (the runtime), which ends and stores
them like any other (users rarely send ``end_session``; they close the tab).
"""

from __future__ import annotations

import copy
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from strands.types.exceptions import ConcurrencyException

from ..archive import bound_transcript
from ..identity import ConversationKey, Invocation

__all__ = ["Conversation", "ConversationBook", "EndedConversation"]

Messages = list[Any]


@dataclass
class Conversation:
    """One open conversation. Its fields are only changed by the book, under the book's lock."""

    invocation: Invocation
    owner: object  #: who ends it when it is abandoned (the archiver of the plugin that last used it)
    history: Messages
    idle_timeout: float
    memory_context: str | None = None  #: ``None`` until its first turn retrieved memories
    transcript: str = ""
    has_text: bool = False
    started_at: float | None = None  #: wall clock of the first turn in ``transcript``
    last_turn_at: float | None = None  #: wall clock of the last turn in ``transcript``
    last_active: float = field(default_factory=time.monotonic)
    active: bool = False  #: an invocation of this conversation is running right now
    #: history="agent": the agent's messages (counted from the conversation's start) in ``transcript``
    recorded_through: int = 0
    #: called with ``recorded_through`` once the conversation is handed to the writer (agent mode marks
    #: the agent's session)
    on_handed: Callable[[int], None] | None = None


@dataclass(frozen=True)
class EndedConversation:
    """What the writer needs of a conversation that ended (or was abandoned)."""

    invocation: Invocation
    owner: object
    transcript: str
    has_text: bool
    started_at: float
    reason: str
    recorded_through: int = 0
    handed: Callable[[int], None] | None = None  #: the conversation's ``on_handed``
    #: When the conversation happened (its last turn; ``None``: now): its facts' time, whenever stored.
    last_turn_at: float | None = None


class ConversationBook:
    """Open conversations of one process (shared by every plugin instance of one spool)."""

    def __init__(self, *, max_open: int = 10_000) -> None:
        self.max_open = max_open
        self._lock = threading.Lock()
        self._open: OrderedDict[ConversationKey, Conversation] = OrderedDict()  # least recently used first

    def __len__(self) -> int:
        with self._lock:
            return len(self._open)

    def open(
        self,
        invocation: Invocation,
        *,
        owner: object,
        seed: Sequence[Any] = (),
        idle_timeout: float,
        on_handed: Callable[[int], None] | None = None,
    ) -> tuple[Conversation, list[EndedConversation]]:
        """Start an invocation of ``invocation``'s conversation; returns it and any it displaced.

        A new conversation's history starts as a copy of ``seed`` (the agent's initial messages).
        Raises strands' ``ConcurrencyException`` when the conversation is already being answered
        (two agents, one conversation, at once): their histories could not both be kept.
        """
        key = invocation.key
        displaced: list[EndedConversation] = []
        with self._lock:
            conversation = self._open.get(key)
            if conversation is not None and conversation.active:
                raise ConcurrencyException(
                    f"conversation {invocation.conversation_id!r} is already being answered by another agent; "
                    "send one turn of a conversation at a time"
                )
            if conversation is None:
                conversation = Conversation(invocation, owner, copy.deepcopy(list(seed)), idle_timeout)
                self._open[key] = conversation
                while len(self._open) > self.max_open:
                    oldest_key = next((k for k, c in self._open.items() if not c.active), None)
                    if oldest_key is None:
                        break
                    displaced.append(self._end(self._open.pop(oldest_key), "evicted"))
            self._open.move_to_end(key)
            conversation.invocation = invocation  # end_session differs per call
            conversation.owner = owner
            conversation.idle_timeout = idle_timeout
            conversation.on_handed = on_handed
            conversation.active = True
            conversation.last_active = time.monotonic()
        return conversation, displaced

    def finish_turn(
        self, conversation: Conversation, turn: str, *, has_text: bool, history: Messages, end: bool,
        recorded_through: int = 0,
    ) -> EndedConversation | None:
        """Record a finished invocation's turn; on ``end`` close the conversation and return it."""
        with self._lock:
            conversation.recorded_through = max(conversation.recorded_through, recorded_through)
            now = time.time()
            conversation.last_turn_at = now  # also when the turn's text went to the S3 turn buffer
            if turn:
                if conversation.started_at is None:
                    conversation.started_at = now
                joined = f"{conversation.transcript}\n{turn}" if conversation.transcript else turn
                conversation.transcript = bound_transcript(joined)
                conversation.has_text = conversation.has_text or has_text
            conversation.history = history
            conversation.active = False
            conversation.last_active = time.monotonic()
            key = conversation.invocation.key
            if not end:
                if self._open.get(key) is not conversation:  # abandoned while the turn ran: keep its turn
                    return self._end(conversation, "evicted") if conversation.transcript else None
                return None
            if self._open.get(key) is conversation:
                del self._open[key]
            return self._end(conversation, "end_session")

    def release(self, conversation: Conversation) -> None:
        """An invocation ended without a turn to record (it failed before the model was called)."""
        with self._lock:
            conversation.active = False
            conversation.last_active = time.monotonic()

    def abandoned(self, now: float | None = None) -> list[EndedConversation]:
        """Close and return the conversations idle for longer than their ``idle_timeout``."""
        current = time.monotonic() if now is None else now
        with self._lock:
            idle = [
                key
                for key, c in self._open.items()
                if not c.active and current - c.last_active >= c.idle_timeout
            ]
            return [self._end(self._open.pop(key), "idle") for key in idle]

    def close_all(self, reason: str = "exit") -> list[EndedConversation]:
        """Close every open conversation (the process is exiting) and return them."""
        with self._lock:
            ended = [self._end(c, reason) for c in self._open.values()]
            self._open.clear()
            return ended

    def drop(self, matches: Callable[[Invocation], bool]) -> int:
        """Forget open conversations (history, memories, unsaved turns) of a forgotten scope.

        Returns how many held turns that would have been stored (``forget`` reports them; turns
        buffered on S3 instead are counted where they are erased).
        """
        with self._lock:
            keys = [key for key, c in self._open.items() if matches(c.invocation)]
            unsaved = 0
            for key in keys:
                conversation = self._open.pop(key)
                unsaved += bool(conversation.transcript)
                conversation.transcript, conversation.has_text, conversation.history = "", False, []
                conversation.memory_context = ""
            return unsaved

    def next_deadline(self) -> float | None:
        """Monotonic time at which the next open conversation becomes idle (``None``: none open)."""
        with self._lock:
            deadlines = [c.last_active + c.idle_timeout for c in self._open.values() if not c.active]
        return min(deadlines) if deadlines else None

    @staticmethod
    def _end(conversation: Conversation, reason: str) -> EndedConversation:
        now = time.time()
        ended = EndedConversation(
            conversation.invocation,
            conversation.owner,
            conversation.transcript,
            conversation.has_text,
            conversation.started_at if conversation.started_at is not None else now,
            reason,
            conversation.recorded_through,
            conversation.on_handed,
            conversation.last_turn_at if conversation.last_turn_at is not None else now,
        )
        conversation.transcript, conversation.has_text, conversation.started_at = "", False, None
        conversation.last_turn_at = None
        return ended
