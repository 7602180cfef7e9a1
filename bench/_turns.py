"""Per-turn timing of an agent with and without a memory plugin (shared by both plugin versions).

Kept free of imports from ``strands_s3_vectors_memory`` so the 0.3.0 runner (which must import the
*original* package under that name) can use it too.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

BASE_PROMPT = "You are a helpful assistant.\n{memory_context}\nUse prior context naturally in your responses."
TURN_KINDS = ("first", "later", "end")

#: First-turn openers; a conversation number is appended so no two queries are alike (no cache hits).
OPENERS = (
    "Can you suggest a dinner I could cook this Sunday",
    "What should I pack for my trip in April",
    "Help me plan my training week before the race",
    "Any ideas for a birthday present for my partner",
    "How should I prepare for my job interview on Monday",
)


@dataclass
class TurnTimes:
    """Wall-clock seconds of every timed ``agent(...)`` call, by turn kind."""

    samples: dict[str, list[float]] = field(default_factory=lambda: {kind: [] for kind in TURN_KINDS})

    def add(self, kind: str, seconds: float) -> None:
        self.samples[kind].append(seconds)

    def median_ms(self, kind: str) -> float:
        return 1000 * statistics.median(self.samples[kind]) if self.samples[kind] else float("nan")

    def p95_ms(self, kind: str) -> float:
        values = sorted(self.samples[kind])
        return 1000 * values[min(len(values) - 1, int(0.95 * len(values)))] if values else float("nan")


def run_conversations(
    agents: dict[str, Any],
    conversations: int,
    *,
    user_id: str,
    after_conversation: Callable[[], None] = lambda: None,
    progress: Callable[[int], Any] = range,
) -> dict[str, TurnTimes]:
    """Interleave the same three-turn conversations on every agent and time each turn.

    Each conversation starts from an empty message history (as a fresh session would), so the
    scripted model sees the same input with and without the plugin. ``after_conversation`` runs
    untimed after each conversation (e.g. waiting for the writer, so it never competes with the
    next measurement for the CPU).
    """
    times = {name: TurnTimes() for name in agents}
    for number in progress(conversations):
        opener = f"{OPENERS[number % len(OPENERS)]} (conversation {number})?"
        turns = (
            ("first", opener, False),
            ("later", "That sounds good, tell me more about the second option.", False),
            ("end", "Thanks, that's all for today. Bye!", True),
        )
        for name, agent in agents.items():
            agent.messages.clear()
            for kind, text, end in turns:
                state = {"user_id": user_id, "conversation_id": f"bench-{number}", "end_session": end}
                started = time.perf_counter()
                agent(text, invocation_state=state)
                times[name].add(kind, time.perf_counter() - started)
        after_conversation()
    return times


def track_original_writes(plugin_module: Any) -> Callable[[], None]:
    """Make 0.3.0's background writes awaitable: its plugin module submits them to ``_executor``;
    the returned ``drain()`` waits for every one submitted so far (0.3.0 has no flush)."""
    pending: list[Future[Any]] = []
    real_submit = plugin_module._executor.submit

    def tracked_submit(*a: Any, **kw: Any) -> Future[Any]:
        future: Future[Any] = real_submit(*a, **kw)
        pending.append(future)
        return future

    plugin_module._executor.submit = tracked_submit

    def drain() -> None:
        while pending:
            pending.pop().result()

    return drain
