"""The summary call's format: the request the model reads and the reply it writes, builder next to parser.

One model call per ended conversation returns both its summary and the user's durable facts:

* **request** (the user message): ``<current_facts>`` with the user's related stored facts, numbered
  from 1 (only when there are some), ``<earlier_summary>`` (only when the conversation was ended
  before), then ``<transcript>``; each element is fenced data (see :func:`summary_request`);
* **response**, either a typed :class:`ConversationMemory` (structured output: summary, facts with
  the numbers they supersede, retracted numbers) or text: the summary, then a facts section::

      <summary>
      FACTS:
      FACT: Lives in Paris (moved from Berlin in March 2026)
      SUPERSEDES: 1
      FACT: Prefers window seats

  ``SUPERSEDES: n[, m]`` after a ``FACT`` line means that fact replaces current fact ``n``; before
  any ``FACT`` line, that fact is simply no longer true. ``FACTS: none`` when there is nothing new.

Real models decorate the text format, so :mod:`._summary_reader` reads it line by line (and reads the
typed result under the same rules): every line that can be read is kept, one that cannot is dropped
and counted, a number that names no shown fact is dropped, never guessed. Whatever the facts, the
summary is kept. Counts: :data:`FACT_PARSE_COUNTS` (statuses, paths, dropped
lines) and the summarize span's ``facts_status``, ``summary_path`` and ``dropped_lines``. The call
itself, and the summary's length rules, are in :mod:`._summarizer`; the parsed facts are resolved to
stored keys in :mod:`._facts`.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, Field

__all__ = [
    "FACTS_PROMPT",
    "FACT_PARSE_COUNTS",
    "MAX_FACTS_PER_CONVERSATION",
    "STRUCTURED_PROMPT",
    "ConversationMemory",
    "ExtractedFact",
    "FactParseCounts",
    "FactsStatus",
    "StatedFact",
    "SummaryPath",
    "SummaryReply",
    "SummaryRequest",
    "parse_summary_request",
    "render_summary_response",
    "strip_echo",
    "summary_request",
]

_FACTS_OPEN, _FACTS_CLOSE = "<current_facts>", "</current_facts>"
_EARLIER_OPEN, _EARLIER_CLOSE = "<earlier_summary>", "</earlier_summary>"
_TRANSCRIPT_OPEN, _TRANSCRIPT_CLOSE = "<transcript>", "</transcript>"
_REQUEST = re.compile(
    rf"^(?:{_FACTS_OPEN}\n(?P<facts>.*?)\n{_FACTS_CLOSE}\n)?"
    rf"(?:{_EARLIER_OPEN}\n(?P<earlier>.*?)\n{_EARLIER_CLOSE}\n)?"
    rf"{_TRANSCRIPT_OPEN}\n(?P<transcript>.*)\n{_TRANSCRIPT_CLOSE}$",
    flags=re.S,
)
_NUMBERED_FACT = re.compile(r"^(\d+)\. (.*)$")


@dataclass(frozen=True)
class SummaryRequest:
    """What a summary request carries: the transcript, the earlier summary, the numbered current facts."""

    transcript: str
    earlier_summary: str = ""
    #: The user's stored facts shown to the model; fact ``n`` of the reply is ``current_facts[n - 1]``.
    current_facts: tuple[str, ...] = ()


def _fence(text: str, closing: str) -> str:
    """Keep data from closing its own element early (``</transcript>`` inside a turn is defused)."""
    return text.replace(closing, closing.replace("</", "</ "))


def summary_request(transcript: str, earlier_summary: str = "", current_facts: Sequence[str] = ()) -> str:
    """The user message of a summary request: facts, earlier summary and transcript as fenced data.

    ``current_facts`` are numbered from 1, one per line (a fact's own line breaks are folded).
    """
    parts = []
    if current_facts:
        numbered = "\n".join(f"{n}. {' '.join(fact.split())}" for n, fact in enumerate(current_facts, start=1))
        parts.append(f"{_FACTS_OPEN}\n{_fence(numbered, _FACTS_CLOSE)}\n{_FACTS_CLOSE}")
    if earlier_summary.strip():
        parts.append(f"{_EARLIER_OPEN}\n{_fence(earlier_summary.strip(), _EARLIER_CLOSE)}\n{_EARLIER_CLOSE}")
    parts.append(f"{_TRANSCRIPT_OPEN}\n{_fence(transcript, _TRANSCRIPT_CLOSE)}\n{_TRANSCRIPT_CLOSE}")
    return "\n".join(parts)


def parse_summary_request(text: str) -> SummaryRequest | None:
    """The :class:`SummaryRequest` of a :func:`summary_request` message, else ``None``.

    The inverse of :func:`summary_request`, for tools that answer or inspect summary requests
    (the scripted model of :mod:`strands_s3_vectors_memory.testing` does).
    """
    match = _REQUEST.match(text)
    if match is None:
        return None
    facts: list[str] = []
    for line in (match["facts"] or "").splitlines():
        numbered = _NUMBERED_FACT.match(line)
        if numbered is None or int(numbered.group(1)) != len(facts) + 1:
            return None
        facts.append(numbered.group(2))
    return SummaryRequest(match["transcript"], match["earlier"] or "", tuple(facts))


# --- the response -----------------------------------------------------------------------------------

FACTS_PROMPT = (
    "After the summary, list the durable facts and preferences about the user that this conversation "
    "states or changes (where they live, their work, relationships, health, plans, likes and dislikes), in "
    "exactly this format: a line FACTS: and then one line per fact, FACT: followed by a short standalone "
    "statement (under 200 characters, with the date when it is known). <current_facts>, when present, "
    "numbers what is already known: do not repeat those. When the conversation shows that a current fact "
    "is no longer true (changed, contradicted, cancelled), write the new fact and, on the line right after "
    "it, SUPERSEDES: and the number of the fact it replaces; a current fact that is simply no longer true "
    "gets its SUPERSEDES: line right after the FACTS: line. Only the user's own facts count, never the "
    "assistant's. When there is nothing to list, write FACTS: none"
)

#: Added after :data:`FACTS_PROMPT` when the reply is asked for as a typed :class:`ConversationMemory`
#: (structured output): a model that calls the tool fills its fields; one that answers in text anyway still
#: follows the text format, so its answer is read without a second call.
STRUCTURED_PROMPT = (
    "When the ConversationMemory tool is offered, answer by calling it instead of writing text: summary is "
    "the summary; facts are the new or changed facts, each with supersedes, the numbers of the current facts "
    "it replaces; retracted lists the numbers of current facts that are simply no longer true. Empty lists "
    "when there is nothing new."
)

#: Most facts kept from one conversation (any beyond are dropped, not counted as a failure).
MAX_FACTS_PER_CONVERSATION = 20

#: How a reply's facts section parsed: ``ok`` (read, including ``FACTS: none``; lines it could not read
#: are dropped and counted in :attr:`SummaryReply.dropped`), ``missing`` (no section), ``malformed`` (a
#: section with nothing readable in it), ``skipped`` (facts were not asked for, or no model answered).
FactsStatus = Literal["ok", "missing", "malformed", "skipped"]

#: How the reply was obtained: ``structured`` (a typed :class:`ConversationMemory` through the model's
#: structured output), ``salvaged`` (the structured call failed but its reply was read as text or JSON, no
#: second call), ``text`` (the text protocol of :data:`FACTS_PROMPT`), ``none`` (no call was made).
SummaryPath = Literal["structured", "salvaged", "text", "none"]


class StatedFact(BaseModel):
    """A durable fact about the user that the conversation states or changes."""

    text: str = Field(description="A short standalone statement about the user, under 200 characters.")
    supersedes: list[int] = Field(
        default_factory=list, description="Numbers of the <current_facts> this fact replaces (empty: none)."
    )


class ConversationMemory(BaseModel):
    """The summary of a conversation and the durable facts about the user it states or changes."""

    summary: str = Field(description="The summary of the conversation, plain text.")
    facts: list[StatedFact] = Field(default_factory=list, description="New or changed facts about the user.")
    retracted: list[int] = Field(
        default_factory=list, description="Numbers of the <current_facts> that are simply no longer true."
    )


@dataclass(frozen=True)
class ExtractedFact:
    """A fact the model listed, and the current facts (numbers from 1) it replaces."""

    text: str
    supersedes: tuple[int, ...] = ()


@dataclass(frozen=True)
class SummaryReply:
    """A parsed reply: the summary, the new facts, the current facts retracted without a replacement.

    ``dropped`` counts the lines and numbers the parser could not use (never guessed); ``path`` is how the
    reply was obtained (:data:`SummaryPath`). Plain values only, so a reply checkpoints as it is.
    """

    summary: str
    facts: tuple[ExtractedFact, ...] = ()
    retracted: tuple[int, ...] = ()
    status: FactsStatus = "ok"
    dropped: int = 0
    path: SummaryPath = "text"

    @property
    def superseded(self) -> frozenset[int]:
        """Every current fact this reply ends (replaced or retracted)."""
        return frozenset(self.retracted).union(*(fact.supersedes for fact in self.facts))


def render_summary_response(
    summary: str, facts: Sequence[ExtractedFact] = (), retracted: Sequence[int] = ()
) -> str:
    """A reply in the format :func:`~._summary_reader.parse_summary_response` reads (scripted models, tests)."""
    lines = [summary.strip(), "FACTS:" if facts or retracted else "FACTS: none"]
    lines.extend(f"SUPERSEDES: {number}" for number in retracted)
    for fact in facts:
        lines.append(f"FACT: {' '.join(fact.text.split())}")
        if fact.supersedes:
            lines.append("SUPERSEDES: " + ", ".join(str(number) for number in fact.supersedes))
    return "\n".join(lines)


class FactParseCounts:
    """How this process's summary replies were obtained and parsed (thread-safe).

    By facts status (:meth:`snapshot`), by path (:meth:`paths`: structured output, salvaged, text
    protocol) and the lines and numbers dropped as unreadable (:attr:`dropped`). Read by benchmarks and
    health checks: ``FACT_PARSE_COUNTS.snapshot()["malformed"]``, ``FACT_PARSE_COUNTS.paths()["text"]``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()
        self._paths: Counter[str] = Counter()
        self._dropped = 0

    def record(self, status: FactsStatus, path: SummaryPath = "text", dropped: int = 0) -> None:
        with self._lock:
            self._counts[status] += 1
            self._paths[path] += 1
            self._dropped += dropped

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {status: self._counts[status] for status in ("ok", "missing", "malformed", "skipped")}

    def paths(self) -> dict[str, int]:
        """Replies by how they were obtained (see :data:`SummaryPath`)."""
        with self._lock:
            return {path: self._paths[path] for path in ("structured", "salvaged", "text", "none")}

    @property
    def dropped(self) -> int:
        """Lines and fact numbers dropped as unreadable, over all replies."""
        with self._lock:
            return self._dropped

    @property
    def failures(self) -> int:
        """Replies whose facts could not be used: the section was missing or malformed."""
        counts = self.snapshot()
        return counts["missing"] + counts["malformed"]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()
            self._paths.clear()
            self._dropped = 0


#: The process's tally of facts-section parses (see :class:`FactParseCounts`).
FACT_PARSE_COUNTS = FactParseCounts()


_ECHOED_FACTS = re.compile(rf"{_FACTS_OPEN}.*?(?:{_FACTS_CLOSE}|$)", flags=re.S)
_ECHOED_TAGS = re.compile(rf"</?(?:transcript|earlier_summary)>|{_FACTS_CLOSE}")
_REASONING = re.compile(r"<(think|thinking|reasoning)>.*?(?:</\1>|$)", flags=re.S | re.I)


def strip_echo(reply: str) -> str:
    """A reply without the request's own fences, which small models copy back instead of answering.

    An echoed ``<current_facts>`` block goes whole (stored facts must not come back as this
    conversation's summary); the transcript's and earlier summary's tags go, their text stays. A
    reasoning block (``<think>...</think>``, as Qwen and DeepSeek models write) is not the answer.
    """
    return _ECHOED_TAGS.sub(" ", _ECHOED_FACTS.sub(" ", _REASONING.sub(" ", reply))).strip()

