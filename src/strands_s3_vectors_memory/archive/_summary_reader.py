"""How a model's summary reply is read: the typed result, a JSON object, or the text format line by line.

The formats are in :mod:`._summary_format`; this module is the reader. Real models decorate the text
format (a preamble, bold or markdown headers, bullets, ``FACT 1:`` labels, code fences, JSON, ``#1``,
"1 and 2", ``SUPERSEDES: 1 (Lives in Berlin)``, a supersession on the fact's own line, a closing
"Let me know...", another language's labels), so it is salvaged line by line: each line that can be
read is kept, one that cannot is dropped and counted (:attr:`~._summary_format.SummaryReply.dropped`),
and a number that names no shown fact is dropped, never guessed. Only a trailing facts section counts
as one: a summary with a line starting "Fact:" in the middle keeps its whole text. The same rules
(:class:`_Reading`) apply to a typed structured-output result and to a JSON reply.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, Literal

from ..index import MAX_FACT_CHARS
from ..text import to_plain_text, truncate_at_sentence
from ._summary_format import (
    MAX_FACTS_PER_CONVERSATION,
    ConversationMemory,
    ExtractedFact,
    FactsStatus,
    SummaryPath,
    SummaryReply,
)

__all__ = ["parse_summary_response", "reply_from_mapping", "reply_from_result"]


def _clean_fact(text: str) -> str:
    text = to_plain_text(text).strip().strip("\"'“”‘’").strip()
    return truncate_at_sentence(text, MAX_FACT_CHARS)


def _folded(text: str) -> str:
    """A fact's text for comparison: case, markup, quotes and closing punctuation aside."""
    return " ".join(re.sub(r"[^\w\s]", " ", to_plain_text(text).casefold()).split())


class _Reading:
    """What the parser has read so far: new facts, retractions, and what it had to drop.

    One home for the rules every reply shape shares: a number must name a shown fact (else it is
    dropped and counted, never guessed), a fact that only restates a shown one is not new, a fact
    listed twice is one fact.
    """

    def __init__(self, shown: Sequence[str]) -> None:
        self._shown = [_folded(fact) for fact in shown]
        self.facts: dict[str, ExtractedFact] = {}
        self.retracted: list[int] = []
        self.dropped = 0
        self.nothing = False  # the reply said there is nothing new
        self._last: str | None = None  # the fact a following SUPERSEDES line belongs to

    def numbers(self, values: Iterable[int]) -> tuple[int, ...]:
        kept: list[int] = []
        for number in values:
            if 1 <= number <= len(self._shown):
                kept.append(number)
            else:
                self.dropped += 1
        return tuple(dict.fromkeys(kept))

    def named(self, text: str) -> int | None:
        """The shown fact ``text`` names word for word (``SUPERSEDES: Lives in Berlin``), else ``None``."""
        folded = _folded(re.sub(r"^(?:current\s+)?fact\s*:?\s*", "", text.strip(), flags=re.I))
        return self._shown.index(folded) + 1 if folded and folded in self._shown else None

    def fact(self, text: str, supersedes: Iterable[int] = ()) -> None:
        cleaned = _clean_fact(text)
        if len(cleaned) < 2:
            self.dropped += 1
            return
        numbers = self.numbers(supersedes)
        key = cleaned.casefold()
        previous = self.facts.get(key)
        merged = numbers if previous is None else tuple(dict.fromkeys((*previous.supersedes, *numbers)))
        self.facts[key] = ExtractedFact(previous.text if previous else cleaned, merged)
        self._last = key

    def supersede_last(self, numbers: Iterable[int]) -> None:
        """A ``SUPERSEDES`` line: it belongs to the fact right before it; before any fact, it retracts."""
        if self._last is None:
            self.retract(numbers)
            return
        kept = self.numbers(numbers)
        last = self.facts[self._last]
        self.facts[self._last] = ExtractedFact(last.text, tuple(dict.fromkeys((*last.supersedes, *kept))))

    def retract(self, numbers: Iterable[int]) -> None:
        self.retracted.extend(n for n in self.numbers(numbers) if n not in self.retracted)

    def reply(self, summary: str, path: SummaryPath) -> SummaryReply:
        """The reply read: ``ok`` when the section gave facts, retractions or a "none", else ``malformed``."""
        status: FactsStatus = "ok" if self.facts or self.retracted or self.nothing else "malformed"
        # A current fact only said again is nothing new (it may still replace another shown fact).
        new = [fact for fact in self.facts.values() if fact.supersedes or _folded(fact.text) not in self._shown]
        facts = tuple(new)[:MAX_FACTS_PER_CONVERSATION]
        return SummaryReply(summary, facts, tuple(self.retracted), status, self.dropped, path)


def reply_from_mapping(value: Mapping[str, Any], current_facts: Sequence[str], path: SummaryPath) -> SummaryReply:
    """A JSON-like reply (a structured call's raw tool input that failed validation) under the parser's rules."""
    reading = _Reading(current_facts)
    _read_mapping(value, reading)
    summary = value.get("summary")
    return reading.reply(summary.strip() if isinstance(summary, str) else "", path)


def reply_from_result(result: ConversationMemory, current_facts: Sequence[str]) -> SummaryReply:
    """A typed structured-output result as a :class:`SummaryReply`, under the parser's own rules."""
    reading = _Reading(current_facts)
    for fact in result.facts:
        reading.fact(fact.text, fact.supersedes)
    reading.retract(result.retracted)
    reading.nothing = True  # a typed result always states its facts, even when the list is empty
    return reading.reply(result.summary.strip(), "structured")


# Decorations a model puts around the format: headings, quotes, bullets, numbering, emphasis, code.
_DECORATION = re.compile(r"^(?:#{1,6}\s+|>\s*)?(?P<bullet>(?:[-*•+–→▪]|\d{1,2}[.)])\s+)?")
_EMPHASIS = re.compile(r"\*\*|__|`|(?<!\w)\*(?=\S)|(?<=\S)\*(?!\w)")
_FACT_WORD = r"(?:facts?|faits?|hechos?|fakten|fakt|fatos?|fatti|fatto)"
_SUPERSEDE_WORD = (
    r"(?:supersed(?:es|ed|e|ing)|replac(?:es|ed|e|ing)|remplace|reemplaza|sustituye|ersetzt|substitui|sostituisce)")
_RETRACT_WORD = r"(?:retract(?:ed|s|ions?)?|no longer true|no longer valid|withdrawn)"
_HEADER = re.compile(
    rf"^(?:(?:new|key|durable|user|extracted|updated|the user's|user's|important)\s+)*{_FACT_WORD}"
    r"(?:\s+(?:about|on|for|of)\s+(?:the\s+)?user)?(?:\s*\([^)]*\))?\s*[:：]?\s*$", re.I)
_LABEL = re.compile(
    rf"^(?P<word>{_FACT_WORD})(?:\s*(?:#|no\.?)?\s*\d{{1,2}})?\s*(?:[:：]|\s[-–—]\s)\s*(?P<rest>.*)$", re.I)
_SUPERSEDES = re.compile(rf"^{_SUPERSEDE_WORD}\b\s*[:：]?\s*(?P<rest>.*)$", re.I)
_RETRACTS = re.compile(rf"^{_RETRACT_WORD}\b\s*[:：]?\s*(?P<rest>.*)$", re.I)
_SUMMARY_HEADER = re.compile(
    r"^(?:conversation\s+)?(?:summary|résumé|resumen|zusammenfassung|resumo|riassunto)"
    r"(?:\s+of\s+the\s+conversation)?\s*(?:[:：]\s*(?P<rest>.*)|$)", re.I)
_NOTHING = re.compile(
    r"^[(\[]?(?:none|nothing(?:\s+new)?|n/?a|-|—|no new facts?|no facts?|aucun(?:e)?|rien|ninguno|nada|keine|nessuno)"
    r"(?:\s+(?:to (?:add|record|list|report)|this time|in this conversation))?[)\]]?\s*\.?$", re.I)
_NO_NEW_FACTS = re.compile(r"^(?:there are\s+)?no\s+(?:new\s+)?(?:durable\s+)?facts?\b.*$|^nothing new\b.*$", re.I)
_REMARK = re.compile(
    r"^(?:let me know|i hope|hope this|feel free|if you (?:need|have|want|would|'d)|is there anything|anything else"
    r"|please let me know|note\b|n\.b\.|\(note\b|i (?:have |'ve )?(?:not |n't )?(?:included|listed|omitted|left out)"
    r"|i did(?: not|n't) (?:include|list))", re.I)
_PREAMBLE = re.compile(
    r"^(?:sure|certainly|of course|okay|ok|absolutely|great|here(?:'s| is| are)|below is|voici|aquí"
    r"|(?:i'll|i will|let me)\s+(?:summari[sz]e|extract|list|provide|write))\b[^\n]{0,120}$",
    re.I)
_FENCE = re.compile(r"^\s*(?:```|~~~)[\w-]*\s*$")
_NUMBER_RUN = re.compile(
    r"^\s*(?:(?:current\s+)?(?:facts?|numbers?|nos?\.?|items?)\s*)?"
    r"(?P<run>#?\d+(?:\s*(?:,|;|/|&|\+|and|et|y|und|e)?\s*(?:(?:fact|no\.?)\s*)?#?\d+)*)(?!\d)", re.I)
_INLINE_SUPERSEDES = re.compile(
    rf"(?P<text>.*?)[\s(\[{{—–|;,.-]*\b{_SUPERSEDE_WORD}\b\s*[:：]?\s*(?:(?:current\s+)?(?:facts?|numbers?)\s*)?"
    r"(?P<run>#?\d+(?:\s*(?:,|;|/|&|\+|and|et|y|und|e)\s*(?:(?:fact)\s*)?#?\d+)*)(?!\d)"
    r"(?:\s*[:(\-–—][^)\]}]*)?\s*[)\]}]?\s*\.?\s*$", re.I)


def _bare(line: str) -> tuple[str, bool]:
    """A line without its decorations, and whether it was a list item (bullet or number)."""
    text = line.strip()
    match = _DECORATION.match(text)
    bullet = bool(match and match["bullet"])
    text = _EMPHASIS.sub("", text[match.end():] if match else text).strip()
    return text, bullet


def _number_run(text: str) -> list[int] | None:
    match = _NUMBER_RUN.match(text)
    return None if match is None else [int(n) for n in re.findall(r"\d+", match["run"])]


def _numbers_in(text: str, reading: _Reading) -> list[int]:
    """The fact numbers a ``SUPERSEDES``-style line names: ``1``, ``#1``, ``1 and 2``, ``1 (Lives in Berlin)``,
    or a shown fact's own words. Nothing that is not one of those is read as a number."""
    text = text.strip().rstrip(".")
    run = _number_run(text)
    if run is not None:
        return run
    named = reading.named(re.sub(r"^[\"'“]|[\"'”]$", "", text))
    if named is not None:
        return [named]
    if text and not _NOTHING.match(text):
        reading.dropped += 1
    return []


def _fact_with_inline(text: str) -> tuple[str, list[int]]:
    """``Lives in Paris (SUPERSEDES: 1)`` -> ``("Lives in Paris", [1])``: a supersession on the fact's own line."""
    match = _INLINE_SUPERSEDES.match(text)
    if match is None or not match["text"].strip():
        return text, []
    return match["text"].strip(), [int(n) for n in re.findall(r"\d+", match["run"])]


_Kind = Literal["header", "label", "supersedes", "retracts", "nothing", "remark", "summary", "item", "prose", "blank"]


def _classify(line: str) -> tuple[_Kind, str]:
    """What one line of a reply is, and the text that matters in it."""
    if not line.strip():
        return "blank", ""
    text, bullet = _bare(line)
    if not text:
        return "blank", ""
    if _HEADER.match(text):
        return "header", ""
    label = _LABEL.match(text)
    if label is not None:
        rest = label["rest"].strip()
        if not rest:
            return "prose", text
        return ("nothing" if _NOTHING.match(rest) else "label"), rest
    supersedes = _SUPERSEDES.match(text)
    if supersedes is not None:
        return "supersedes", supersedes["rest"]
    retracts = _RETRACTS.match(text)
    if retracts is not None:
        return "retracts", retracts["rest"]
    if _NOTHING.match(text) or _NO_NEW_FACTS.match(text):
        return "nothing", ""
    if _REMARK.match(text):
        return "remark", ""
    summary = _SUMMARY_HEADER.match(text)
    if summary is not None:
        return "summary", (summary["rest"] or "").strip()
    return ("item" if bullet else "prose"), text


_SECTION_KINDS = frozenset({"label", "supersedes", "retracts", "nothing"})


def _json_reply(text: str, reading: _Reading) -> str | None:
    """The summary of a reply that is a JSON object with ``summary``/``facts`` (its facts read into
    ``reading``), else ``None``."""
    start = text.find("{")
    if start < 0:
        return None
    try:
        value, _ = _LENIENT_JSON.raw_decode(text[start:])
    except ValueError:
        return _cut_json_summary(text, start, reading)
    if not isinstance(value, dict) or not ({"summary", "facts"} & set(value)):
        return None
    _read_mapping(value, reading)
    summary = value.get("summary")
    return summary.strip() if isinstance(summary, str) and summary.strip() else text[:start].strip()


#: Small models put raw line breaks inside JSON strings: read them rather than lose the reply.
_LENIENT_JSON = json.JSONDecoder(strict=False)
_JSON_OPENING = re.compile(r'^\s*\{\s*"(?:summary|facts|retracted)"')
_JSON_SUMMARY = re.compile(r'^\s*\{\s*"summary"\s*:\s*"(?P<value>(?:[^"\\]|\\.)*)"')


def _cut_json_summary(text: str, start: int, reading: _Reading) -> str | None:
    """The summary of a reply that is a JSON object cut short (an answer stopped at ``max_tokens``): its
    complete ``"summary"`` string, else nothing; the rest is dropped and counted. ``None``: not such a reply."""
    if text[:start].strip() or not _JSON_OPENING.match(text[start:]):
        return None
    reading.dropped += 1
    match = _JSON_SUMMARY.match(text[start:])
    try:
        summary = str(_LENIENT_JSON.decode(f'"{match["value"]}"')) if match else ""
    except ValueError:  # a string whose escapes are broken too
        summary = ""
    return summary.strip()  # "": the caller's extractive fallback


def _as_numbers(value: object, reading: _Reading) -> list[int]:
    if isinstance(value, bool):
        return []
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        return _numbers_in(value, reading)
    if isinstance(value, list):
        return [n for item in value for n in _as_numbers(item, reading)]
    return []


def _read_mapping(value: Mapping[str, Any], reading: _Reading) -> None:
    """Read the facts of a JSON-like reply (or a structured call's raw tool input) into ``reading``."""
    facts = value.get("facts")
    for item in facts if isinstance(facts, list) else []:
        if isinstance(item, str):
            text, inline = _fact_with_inline(item)
            reading.fact(text, inline)
        elif isinstance(item, Mapping):
            text = next((item[k] for k in ("text", "fact", "statement", "content", "value") if isinstance(
                item.get(k), str)), "")
            numbers = [n for k in ("supersedes", "replaces", "supersedes_facts", "superseded")
                       for n in _as_numbers(item.get(k), reading)]
            reading.fact(str(text), numbers)
        else:
            reading.dropped += 1
    for key in ("retracted", "retracts", "retractions", "no_longer_true"):
        reading.retract(_as_numbers(value.get(key), reading))
    reading.nothing = reading.nothing or isinstance(facts, list)


def _section_start(kinds: Sequence[_Kind]) -> int | None:
    """Where the facts section starts: after the last header, or at the first ``FACT`` line of a trailing
    run of section lines. A ``FACT:`` line inside the summary, with more summary after it, starts nothing."""
    headers = [i for i, kind in enumerate(kinds) if kind == "header"]
    if headers:
        return headers[-1]
    meaningful = [i for i, kind in enumerate(kinds) if kind not in ("blank", "remark")]
    if not meaningful or kinds[meaningful[-1]] not in _SECTION_KINDS:
        return None
    first = next(i for i, kind in enumerate(kinds) if kind in _SECTION_KINDS)
    return first


def parse_summary_response(text: str, current_facts: int | Sequence[str] = 0) -> SummaryReply:
    """Split a model's reply into its summary and its facts, salvaging line by line (see the module notes).

    ``current_facts``: the facts shown in the request (or how many), which the reply's numbers name.
    A JSON object with ``summary``/``facts`` is read as such. Otherwise the facts section is what follows
    the last facts header (``FACTS:``, ``**Key facts:**``, ``## Facts``), or, without one, a trailing run
    of ``FACT``/``SUPERSEDES`` lines; decorations (bullets, bold, numbering, code fences, ``FACT 1:``,
    ``#1``, ``1 and 2``, parentheticals, a supersession on the fact's own line) are accepted, a line
    that is neither is dropped and counted, never guessed; so is a number that names no shown fact.
    The summary is returned raw (the caller applies the plain-text and length rules), without the
    reply's preamble, summary header and closing remarks.
    """
    shown = [f"#{n}" for n in range(1, current_facts + 1)] if isinstance(current_facts, int) else current_facts
    reading = _Reading(shown)
    lines = [line for line in text.splitlines() if not _FENCE.match(line)]
    as_json = _json_reply("\n".join(lines), reading)
    if as_json is not None:
        return reading.reply(as_json, "text")
    classified = [_classify(line) for line in lines]
    kinds = [kind for kind, _ in classified]
    start = _section_start(kinds)
    summary_lines: list[str] = []
    end = len(lines)
    if start is not None:
        after = next((i for i in range(start + 1, len(lines)) if kinds[i] == "summary"), None)
        if after is not None:  # the facts came first, then a summary header
            end = after
            summary_lines.extend(_summary_text(lines[after:], classified[after:]))
    head = _summary_text(lines[:start], classified[:start]) if start is not None else _summary_text(lines, classified)
    summary = "\n".join([*head, *summary_lines]).strip()
    if start is None:
        return SummaryReply(summary, status="missing")
    section = classified[start:end]
    # Among FACT: lines an unlabelled line is a stray; among bullets, unmarked prose is; else prose is the list.
    labelled = any(kind == "label" for kind, _ in section)
    listed = labelled or any(kind == "item" for kind, _ in section)
    for kind, rest in section:
        if kind == "label" or (kind == "item" and not labelled) or (
                kind == "prose" and not listed and _statement(rest)):
            body, inline = _fact_with_inline(rest)
            reading.fact(body, inline)
        elif kind == "supersedes":
            reading.supersede_last(_numbers_in(rest, reading))
        elif kind == "retracts":
            reading.retract(_numbers_in(rest, reading))
        elif kind == "nothing":
            reading.nothing = True
        elif kind in ("item", "prose", "summary"):
            reading.dropped += 1
    return reading.reply(summary, "text")


def _statement(text: str) -> bool:
    """Whether an unmarked line of an all-prose facts list reads as a statement (not ``???``, a question, a label)."""
    return text[:1].isalnum() and len(text.split()) >= 2 and not text.endswith(("?", ":"))


def _summary_text(lines: Sequence[str], classified: Sequence[tuple[_Kind, str]]) -> list[str]:
    """The summary's lines: without a leading preamble, its own header and closing remarks."""
    kept: list[str] = []
    for line, (kind, rest) in zip(lines, classified, strict=True):
        if kind == "remark" or (kind == "summary" and not rest):
            continue
        if kind == "summary":
            kept.append(rest)
        elif not kept and kind == "prose" and _PREAMBLE.match(rest) and (
                rest.endswith((":", "!")) or len(rest.split()) <= 10):
            continue
        else:
            kept.append(line)
    return kept
