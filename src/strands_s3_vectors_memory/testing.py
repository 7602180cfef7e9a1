"""A scripted strands ``Model`` for tests and the offline demo.

The SDK ships no fake model, and no usable small chat LLM ships on PyPI, so tests and the offline demo
need a model that answers deterministically without a network. :class:`ScriptedModel` streams the same
event shapes a real provider does (``messageStart``, ``contentBlockStart/Delta/Stop``, ``messageStop``,
``metadata``), records every request it sees (so tests can assert on the system prompt the plugin
built), and can emit tool calls.

By default it answers like a polite assistant and, when asked to summarize a conversation, writes an
extractive summary of what the user said, which is what the memory plugin stores offline.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from collections.abc import AsyncGenerator, AsyncIterable, Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import BaseModel
from strands.models import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

from .summarizer import extractive_summary, parse_summary_request
from .text import message_text

__all__ = ["ModelRequest", "Reply", "Responder", "ScriptedModel", "ToolCall", "default_responder"]

T = TypeVar("T", bound=BaseModel)



@dataclass(frozen=True)
class ToolCall:
    """A scripted reply that asks the agent to run a tool."""

    name: str
    input: dict[str, Any]


@dataclass
class ModelRequest:
    """One request the model received."""

    messages: Messages
    system_prompt: str | None
    tool_names: list[str] = field(default_factory=list)
    #: The system prompt as content blocks (cache points included), when the SDK passed them.
    system_prompt_content: list[dict[str, Any]] | None = None


Reply = str | ToolCall
Responder = Callable[[Messages, str | None], Reply]


def default_responder(messages: Messages, system_prompt: str | None) -> Reply:
    """Answer summary requests extractively and everything else with a short canned reply.

    A summary request is recognised by its shape (a ``<transcript>`` element, see
    :func:`~strands_s3_vectors_memory.summarizer.summary_request`), not by any marker.
    """
    last = message_text(messages[-1], fold=False) if messages else ""
    request = parse_summary_request(last)
    if request is not None:
        earlier, transcript = request
        return extractive_summary(transcript, earlier_summary=earlier)
    remembered = re.findall(r"<memory [^>]*>\s*(.*?)\s*</memory>", system_prompt or "", flags=re.S)
    if remembered:
        return f"(scripted model) I remember {len(remembered)} earlier note(s): {remembered[0][:160]}"
    return f"(scripted model) Noted: {' '.join(last.split())[:160]}"


class ScriptedModel(Model):
    """A deterministic strands model: replies from a script, a responder function, or the default.

    Args:
        replies: Replies used in order, one per model call (a ``str`` is a text answer, a
            :class:`ToolCall` asks for a tool). When exhausted, ``responder`` answers.
        responder: ``(messages, system_prompt) -> reply`` for calls beyond the script.
    """

    def __init__(self, replies: Sequence[Reply] = (), responder: Responder = default_responder) -> None:
        self._replies = list(replies)
        self._responder = responder
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self.requests: list[ModelRequest] = []
        self.config: dict[str, Any] = {"model_id": "scripted"}

    def update_config(self, **model_config: Any) -> None:
        """Merge configuration (kept only so the SDK can call it)."""
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        """Return the configuration."""
        return dict(self.config)

    @property
    def system_prompts(self) -> list[str | None]:
        """System prompts of every request, oldest first."""
        with self._lock:
            return [request.system_prompt for request in self.requests]

    def _next_reply(self, messages: Messages, system_prompt: str | None) -> Reply:
        with self._lock:
            if self._replies:
                return self._replies.pop(0)
        return self._responder(messages, system_prompt)

    def structured_output(
        self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, T | Any], None]:
        """Structured output is outside what a scripted chat model can honestly produce."""
        raise TypeError("ScriptedModel does not produce structured output")

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[StreamEvent]:
        """Stream one scripted reply in the provider event format."""
        with self._lock:
            self.requests.append(
                ModelRequest(
                    messages=json.loads(json.dumps(messages, default=str)),
                    system_prompt=system_prompt,
                    tool_names=[spec["name"] for spec in tool_specs or []],
                    system_prompt_content=json.loads(json.dumps(kwargs.get("system_prompt_content"), default=str)),
                )
            )
        reply = self._next_reply(messages, system_prompt)
        yield {"messageStart": {"role": "assistant"}}
        if isinstance(reply, ToolCall):
            tool_use_id = f"tooluse-{next(self._ids)}"
            yield {"contentBlockStart": {"start": {"toolUse": {"toolUseId": tool_use_id, "name": reply.name}}}}
            yield {"contentBlockDelta": {"delta": {"toolUse": {"input": json.dumps(reply.input)}}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "tool_use"}}
        else:
            yield {"contentBlockStart": {"start": {}}}
            yield {"contentBlockDelta": {"delta": {"text": reply}}}
            yield {"contentBlockStop": {}}
            yield {"messageStop": {"stopReason": "end_turn"}}
        yield {
            "metadata": {
                "usage": {"inputTokens": 0, "outputTokens": 0, "totalTokens": 0},
                "metrics": {"latencyMs": 0},
            }
        }
