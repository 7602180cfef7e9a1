"""A conversation as text: its messages rendered as ``ROLE: text`` lines, and bounded in length.

Only text survives; tool calls, images, documents and other blocks are described in a few words,
never crash. One trimming rule for every over-long transcript (one turn's, or a whole
conversation's): keep the start and the end, on line boundaries, so what the user said first and
last stays and stays attributed. The plugin renders each message as it is added, the book bounds a
conversation's transcript, the archiver hands it to the summarizer and the detail records.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

from ..text import printable_text

__all__ = [
    "BLOCK_NOTE",
    "DEFAULT_TRANSCRIPT_MAX_CHARS",
    "MAX_CONVERSATION_CHARS",
    "bound_transcript",
    "render_transcript",
]

#: One turn's messages longer than this are cut in the middle when rendered (head and tail kept).
DEFAULT_TRANSCRIPT_MAX_CHARS = 60_000
#: A conversation's whole transcript (every turn since it began) is bounded to this, the same way.
MAX_CONVERSATION_CHARS = 2 * DEFAULT_TRANSCRIPT_MAX_CHARS


#: How :func:`_describe_block` renders what is not text (tool calls and results, attachments): the
#: notes that are not something the user said (detail records skip turns made only of them).
BLOCK_NOTE = re.compile(r"\[(?:used tool|tool result|image|document|video)[^\]]*\]")


def _describe_block(block: Mapping[str, Any]) -> str | None:
    """Render one content block as text, or ``None`` to skip it."""
    if "text" in block:
        return str(block["text"])
    if "toolUse" in block:
        return f"[used tool {block['toolUse'].get('name', '?')}]"
    if "toolResult" in block:
        parts = [str(item["text"]) for item in block["toolResult"].get("content", []) if "text" in item]
        result = " ".join(parts).strip()
        return f"[tool result: {result[:300]}]" if result else "[tool result]"
    if "image" in block:
        return f"[image ({block['image'].get('format', 'unknown format')})]"
    if "document" in block:
        return f"[document {block['document'].get('name', '')}]".replace(" ]", "]")
    if "video" in block:
        return "[video]"
    if "citationsContent" in block:
        texts = [str(c["text"]) for c in block["citationsContent"].get("content", []) if "text" in c]
        return " ".join(texts) or None
    return None  # reasoning, cache points, guard content and unknown blocks carry nothing to remember


def render_transcript(messages: Iterable[Mapping[str, Any]], max_chars: int = DEFAULT_TRANSCRIPT_MAX_CHARS) -> str:
    """Render strands messages as ``ROLE: text`` lines; odd blocks are described, never fatal."""
    lines: list[str] = []
    for message in messages:
        if not isinstance(message, Mapping):
            continue
        role = str(message.get("role", "unknown")).upper()
        content = message.get("content")
        if isinstance(content, str):
            content = [{"text": content}]
        if not isinstance(content, list):
            continue
        parts = [text for block in content if isinstance(block, Mapping) and (text := _describe_block(block))]
        text = " ".join(" ".join(parts).split())
        if text:
            lines.append(f"{role}: {printable_text(text)}")  # what the summary call and the spool get
    transcript = "\n".join(lines)
    return transcript if len(transcript) <= max_chars else _cut_middle(lines, max_chars)


def bound_transcript(transcript: str, max_chars: int = MAX_CONVERSATION_CHARS) -> str:
    """The one trimming rule for transcripts: past ``max_chars``, keep the start and the end.

    Line-aware (see :func:`_cut_middle`): what the user said first and last stays, labelled.
    """
    return transcript if len(transcript) <= max_chars else _cut_middle(transcript.splitlines(), max_chars)


def _cut_middle(lines: list[str], max_chars: int) -> str:
    """Keep the start (2/3) and the end (1/3) of an over-long transcript, on line boundaries.

    A line cut at the tail keeps its ``ROLE:`` label, so what the user said last stays attributed to
    the user (details and extractive summaries only read labelled lines).
    """
    head_budget, tail_budget = max_chars * 2 // 3, max_chars // 3
    head: list[str] = []
    used = 0
    for line in lines:
        if used + len(line) + 1 > head_budget:
            if head_budget - used > 40:
                head.append(line[: head_budget - used])
            break
        head.append(line)
        used += len(line) + 1
    tail: list[str] = []
    used = 0
    for index in range(len(lines) - 1, -1, -1):
        line = lines[index]
        if used + len(line) + 1 > tail_budget or index < len(head):
            label, _, text = line.partition(": ")
            room = tail_budget - used - len(label) - 6
            if room > 40 and text:
                tail.append(f"{label}: ... {text[-room:]}")
            break
        tail.append(line)
        used += len(line) + 1
    omitted = sum(len(line) + 1 for line in lines) - sum(len(line) + 1 for line in head + tail)
    return "\n".join([*head, f"[... {max(omitted, 0)} characters omitted ...]", *reversed(tail)])
