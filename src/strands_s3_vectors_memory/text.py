"""Plain-text helpers shared by every room: safe UTF-8, bounded cuts, plain text and message text.

One home for small ideas that were written several times: text that may hold lone surrogates
(from JSON or a browser) must still encode as UTF-8; stored text must fit byte limits without
splitting a character; a summary or a fact is cut at a sentence end and loses the markdown a model
adds despite the prompt; stored and injected text carries nothing unprintable (terminal escape
sequences, C0/C1 controls, bidi overrides: :func:`printable_text`); and a strands message's plain
text is the text of its text blocks.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any

__all__ = [
    "clean_text",
    "fact_text",
    "has_text_content",
    "head_and_tail",
    "message_text",
    "printable_text",
    "to_plain_text",
    "truncate_at_sentence",
    "truncate_utf8",
]

_SENTENCE_END = re.compile(r"[.!?](?=\s|$)")
_MARKDOWN_LINE_PREFIX = re.compile(r"^\s*(?:#{1,6}\s+|[-*+•]\s+|\d+[.)]\s+|>\s*)", flags=re.M)
_MARKDOWN_EMPHASIS = re.compile(r"(\*\*|__|\*|`)(.+?)\1")


def clean_text(text: str) -> str:
    """Make text safe to encode as UTF-8 (lone surrogates replaced) and drop NUL characters."""
    return text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "")


#: Terminal escape sequences whole (CSI ``ESC [ ... m``, OSC ``ESC ] ... BEL``, two-character ``ESC x``),
#: so no "[31m" is left behind; then any other C0 control but tab and newline, DEL, C1 controls, and
#: the Unicode bidi embeddings, overrides, isolates and marks that reorder what a reader sees.
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]|\x9b[0-?]*[ -/]*[@-~]"
)
_UNPRINTABLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]")


def printable_text(text: str) -> str:
    """``text`` without what a terminal or a model would read as something else than text.

    Escape sequences (``ESC [31m``) go whole, other control characters (C0 but tab and newline, DEL,
    C1) and bidi controls (U+202A-U+202E, U+2066-U+2069, LRM/RLM/ALM) are removed; a carriage
    return becomes a newline. Applied to everything stored (:func:`~.index._records.build_metadata`) and to
    everything injected (:mod:`.plugin._prompt`), so a memory stored before this rule is cleaned too.
    """
    text = clean_text(text).replace("\r\n", "\n").replace("\r", "\n")
    return _UNPRINTABLE.sub("", _ESCAPE_SEQUENCE.sub("", text))


def fact_text(text: str) -> str | None:
    """A fact as stored: printable, plain (no markdown, no wrapping quotes), one line; ``None`` when
    nothing is left that says anything (``**``, ``-``, ``""``): such a fact is rejected."""
    plain = to_plain_text(printable_text(text))
    while len(plain) >= 2 and plain[0] == plain[-1] and plain[0] in "\"'`":
        plain = plain[1:-1].strip()
    return plain if any(ch.isalnum() for ch in plain) else None


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    encoded = clean_text(text).encode("utf-8")
    if len(encoded) <= max_bytes:
        return encoded.decode("utf-8")
    return encoded[: max(0, max_bytes)].decode("utf-8", errors="ignore")


def truncate_at_sentence(text: str, max_chars: int) -> str:
    """Cut ``text`` to ``max_chars``, at the last sentence end when there is one in the second half."""
    text = text.strip()
    if len(text) <= max_chars:
        return text
    window = text[:max_chars]
    ends = [match.end() for match in _SENTENCE_END.finditer(window)]
    if ends and ends[-1] >= max_chars // 2:
        return window[: ends[-1]].strip()
    cut = window.rfind(" ")
    return (window[:cut] if cut >= max_chars // 2 else window).rstrip()


def to_plain_text(text: str) -> str:
    """Strip markdown a model may add despite the prompt (headers, bullets, emphasis) and fold lines."""
    text = _MARKDOWN_LINE_PREFIX.sub("", text)
    text = _MARKDOWN_EMPHASIS.sub(r"\2", text)
    return " ".join(text.split())


def message_text(message: Mapping[str, Any] | Any, *, fold: bool = True) -> str:
    """The text a strands message carries (its text blocks), cleaned for UTF-8.

    With ``fold`` (the default) blocks are joined by spaces and runs of whitespace folded into one;
    without it blocks are joined by newlines and the text is kept as written. Tool calls, images,
    documents and other blocks are not text; a ``str`` content (as some callers write messages)
    counts as one text block. Anything that is not a message gives ``""``.
    """
    if not isinstance(message, Mapping):
        return ""
    content = message.get("content")
    if isinstance(content, str):
        texts = [content]
    elif isinstance(content, list):
        texts = [str(block["text"]) for block in content if isinstance(block, Mapping) and "text" in block]
    else:
        return ""
    if fold:
        return " ".join(clean_text(" ".join(texts)).split())
    return clean_text("\n".join(texts)).strip()


def has_text_content(messages: Iterable[Mapping[str, Any]]) -> bool:
    """True when any message carries real text (not only tool calls, images or documents)."""
    return any(message_text(message) for message in messages)


def head_and_tail(text: str, max_chars: int) -> str:
    """``text`` (whitespace folded) when it fits ``max_chars``, else its first two thirds and last third.

    A long message often opens with context and ends with the question: both ends are kept.
    """
    folded = " ".join(text.split())
    if len(folded) <= max_chars:
        return folded
    head = max_chars * 2 // 3
    return f"{folded[:head]} {folded[-(max_chars - head - 1):]}"
