"""The summary call's format: the request the model reads and the reply it writes, builder next to parser.

One model call per ended conversation returns both its summary and the user's durable facts:

* **request** (the user message): ``<current_facts>`` with the user's related stored facts, numbered
  from 1 (only when there are some), ``<earlier_summary>`` (only when the conversation was ended
  before), then ``<transcript>``; each element is fenced data (see :func:`summary_request`);
* **response**: the summary as plain text, then a facts section, parsed strictly
  (:func:`parse_summary_response`)::

      <summary>
      FACTS:
      FACT: Lives in Paris (moved from Berlin in March 2026)
      SUPERSEDES: 1
      FACT: Prefers window seats

  ``SUPERSEDES: n[, m]`` after a ``FACT`` line means that fact replaces current fact ``n``; before
  any ``FACT`` line, that fact is simply no longer true. ``FACTS: none`` when there is nothing new.

A reply whose facts section is missing or malformed still gives its summary; the facts are dropped
(never guessed) and the failure is counted (:data:`FACT_PARSE_COUNTS`, and the ``facts_status``
attribute of the summarize span). The call itself, and the summary's length rules, are in
:mod:`.summarizer`; the parsed facts are resolved to stored keys in :mod:`.facts`.
"""

from __future__ import annotations

import re
import threading
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from .records import MAX_FACT_CHARS
from .text import to_plain_text, truncate_at_sentence

__all__ = [
    "FACTS_PROMPT",
    "FACT_PARSE_COUNTS",
    "MAX_FACTS_PER_CONVERSATION",
    "ExtractedFact",
    "FactParseCounts",
    "FactsStatus",
    "SummaryReply",
    "SummaryRequest",
    "parse_summary_request",
    "parse_summary_response",
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

#: Most facts kept from one conversation (any beyond are dropped, not counted as a failure).
MAX_FACTS_PER_CONVERSATION = 20

#: How a reply's facts section parsed: ``ok`` (including ``FACTS: none``), ``missing`` (no section),
#: ``malformed`` (a line of neither form, or a number that names no current fact), ``skipped``
#: (facts were not asked for, or no model answered: nothing to parse).
FactsStatus = Literal["ok", "missing", "malformed", "skipped"]

_FACTS_HEADER = re.compile(r"^[-*•]?\s*(?:\*\*)?facts(?:\*\*)?\s*:\s*(?:\*\*)?\s*(?P<rest>.*?)\s*$", re.I)
_FACT_LINE = re.compile(r"^(?:[-*•]|\d+[.)])?\s*(?:\*\*)?fact(?:\*\*)?\s*:\s*(?:\*\*)?\s*(?P<text>.*?)\s*$", re.I)
_SUPERSEDES_LINE = re.compile(
    r"^[-*•]?\s*(?:\*\*)?supersedes(?:\*\*)?\s*:\s*(?:\*\*)?\s*(?P<numbers>\d+(?:\s*,\s*\d+)*)\s*\.?$", re.I
)
_NOTHING = re.compile(r"^\(?(?:none|nothing|n/a|-)\)?\.?$", re.I)


@dataclass(frozen=True)
class ExtractedFact:
    """A fact the model listed, and the current facts (numbers from 1) it replaces."""

    text: str
    supersedes: tuple[int, ...] = ()


@dataclass(frozen=True)
class SummaryReply:
    """A parsed reply: the summary, the new facts, the current facts retracted without a replacement."""

    summary: str
    facts: tuple[ExtractedFact, ...] = ()
    retracted: tuple[int, ...] = ()
    status: FactsStatus = "ok"

    @property
    def superseded(self) -> frozenset[int]:
        """Every current fact this reply ends (replaced or retracted)."""
        return frozenset(self.retracted).union(*(fact.supersedes for fact in self.facts))


def _clean_fact(text: str) -> str:
    text = to_plain_text(text).strip().strip("\"'").strip()
    return truncate_at_sentence(text, MAX_FACT_CHARS)


def parse_summary_response(text: str, current_facts: int = 0) -> SummaryReply:
    """Split a model's reply into its summary and its facts section (see the module notes).

    Strict about the section, lenient about decoration (bullets, bold, case): each non-empty line of
    the section must be ``FACT: ...`` or ``SUPERSEDES: n`` with ``1 <= n <= current_facts``; anything
    else makes the section ``malformed`` and none of it is used. The section starts at the first line
    that is ``FACTS:`` or ``FACT: ...``; everything before is the summary (returned raw: the caller
    applies the plain-text and length rules).
    """
    lines = text.splitlines()
    start = next((i for i, line in enumerate(lines) if _FACTS_HEADER.match(line.strip())
                  or _FACT_LINE.match(line.strip())), None)
    if start is None:
        return SummaryReply(text.strip(), status="missing")
    summary = "\n".join(lines[:start]).strip()
    body = lines[start:]
    header = _FACTS_HEADER.match(body[0].strip())
    if header is not None:
        rest = header["rest"]
        body = body[1:]
        if rest and _NOTHING.match(rest):
            leftover = [line for line in body if line.strip()]
            return SummaryReply(summary, status="malformed" if leftover else "ok")
        if rest:
            return SummaryReply(summary, status="malformed")
    facts: list[ExtractedFact] = []
    retracted: list[int] = []
    for raw in body:
        line = raw.strip()
        if not line:
            continue
        fact_line = _FACT_LINE.match(line)
        if fact_line is not None:
            cleaned = _clean_fact(fact_line["text"])
            if not cleaned:
                return SummaryReply(summary, status="malformed")
            facts.append(ExtractedFact(cleaned))
            continue
        supersedes = _SUPERSEDES_LINE.match(line)
        if supersedes is None:
            return SummaryReply(summary, status="malformed")
        numbers = tuple(int(n) for n in re.findall(r"\d+", supersedes["numbers"]))
        if not all(1 <= n <= current_facts for n in numbers):
            return SummaryReply(summary, status="malformed")
        if facts:
            last = facts[-1]
            facts[-1] = ExtractedFact(last.text, tuple(dict.fromkeys((*last.supersedes, *numbers))))
        else:
            retracted.extend(n for n in numbers if n not in retracted)
    unique: dict[str, ExtractedFact] = {}
    for extracted in facts:
        key = extracted.text.casefold()
        previous = unique.get(key)
        unique[key] = extracted if previous is None else ExtractedFact(
            extracted.text, tuple(dict.fromkeys((*previous.supersedes, *extracted.supersedes))))
    return SummaryReply(summary, tuple(unique.values())[:MAX_FACTS_PER_CONVERSATION], tuple(retracted))


def render_summary_response(
    summary: str, facts: Sequence[ExtractedFact] = (), retracted: Sequence[int] = ()
) -> str:
    """A reply in the format :func:`parse_summary_response` reads (for scripted models and tests)."""
    lines = [summary.strip(), "FACTS:" if facts or retracted else "FACTS: none"]
    lines.extend(f"SUPERSEDES: {number}" for number in retracted)
    for fact in facts:
        lines.append(f"FACT: {' '.join(fact.text.split())}")
        if fact.supersedes:
            lines.append("SUPERSEDES: " + ", ".join(str(number) for number in fact.supersedes))
    return "\n".join(lines)


class FactParseCounts:
    """How the facts sections of this process's summary replies parsed (thread-safe), by status.

    Read by benchmarks and health checks: ``FACT_PARSE_COUNTS.snapshot()["malformed"]``.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[str] = Counter()

    def record(self, status: FactsStatus) -> None:
        with self._lock:
            self._counts[status] += 1

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {status: self._counts[status] for status in ("ok", "missing", "malformed", "skipped")}

    @property
    def failures(self) -> int:
        """Replies whose facts could not be used: the section was missing or malformed."""
        counts = self.snapshot()
        return counts["missing"] + counts["malformed"]

    def reset(self) -> None:
        with self._lock:
            self._counts.clear()


#: The process's tally of facts-section parses (see :class:`FactParseCounts`).
FACT_PARSE_COUNTS = FactParseCounts()


_ECHOED_FACTS = re.compile(rf"{_FACTS_OPEN}.*?(?:{_FACTS_CLOSE}|$)", flags=re.S)
_ECHOED_TAGS = re.compile(rf"</?(?:transcript|earlier_summary)>|{_FACTS_CLOSE}")


def strip_echo(reply: str) -> str:
    """A reply without the request's own fences, which small models copy back instead of answering.

    An echoed ``<current_facts>`` block goes whole (stored facts must not come back as this
    conversation's summary); the transcript's and earlier summary's tags go, their text stays.
    """
    return _ECHOED_TAGS.sub(" ", _ECHOED_FACTS.sub(" ", reply)).strip()

