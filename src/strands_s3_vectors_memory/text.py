"""Plain-text helpers shared by every room: safe UTF-8, byte-bounded cuts and message text.

One home for three small ideas that were written several times: text that may hold lone
surrogates (from JSON or a browser) must still encode as UTF-8; stored text must fit byte limits
without splitting a character; and a strands message's plain text is the text of its text blocks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

__all__ = ["clean_text", "has_text_content", "message_text", "truncate_utf8"]


def clean_text(text: str) -> str:
    """Make text safe to encode as UTF-8 (lone surrogates replaced) and drop NUL characters."""
    return text.encode("utf-8", errors="replace").decode("utf-8").replace("\x00", "")


def truncate_utf8(text: str, max_bytes: int) -> str:
    """Cut ``text`` to at most ``max_bytes`` UTF-8 bytes without splitting a character."""
    encoded = clean_text(text).encode("utf-8")
    if len(encoded) <= max_bytes:
        return encoded.decode("utf-8")
    return encoded[: max(0, max_bytes)].decode("utf-8", errors="ignore")


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
