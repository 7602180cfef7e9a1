"""The archive's settings: what is stored of an ended conversation, and for how long (:class:`SummarySettings`).

Checked when built, with the same refusals as the plugin's other groups (:func:`~..config.require_setting`),
so a wiring mistake fails at start; the plugin takes it as ``summary=`` and hands it to the archiver as it is.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..config import is_int, is_number, require_flags, require_setting
from ._facts import DEFAULT_RELATED_FACTS
from ._summarizer import DEFAULT_SUMMARY_MAX_CHARS, SUMMARY_PROMPT

__all__ = ["SummarySettings"]


@dataclass(frozen=True)
class SummarySettings:
    """What is stored of an ended conversation, and for how long.

    The archiver (the writer's job) reads this group as it is: one summary call per conversation with
    ``summary_prompt``, cut to ``summary_max_chars``; the user's turns as detail records; the user's
    facts and which stored ones they supersede; and the expiry of what it stores.

    Attributes:
        summary_prompt: System prompt of the summary call.
        summary_max_chars: Longest stored summary (cut at a sentence boundary).
        store_details: Also store the user's turns as finer-grained records (better recall).
        ttl_seconds: Expire stored conversation memories after this many seconds (``None``: never).
        extract_facts: The summary call also extracts the user's facts and what they supersede (no
            extra model call).
        related_facts: At most this many stored facts are shown to the summary call to supersede.
    """

    summary_prompt: str = SUMMARY_PROMPT
    summary_max_chars: int = DEFAULT_SUMMARY_MAX_CHARS
    store_details: bool = True
    ttl_seconds: float | None = None
    extract_facts: bool = True
    related_facts: int = DEFAULT_RELATED_FACTS

    def __post_init__(self) -> None:
        prompt = self.summary_prompt
        require_setting(isinstance(prompt, str) and bool(prompt.strip()), "summary_prompt", "a non-empty string",
                        prompt)
        require_setting(is_int(self.summary_max_chars) and self.summary_max_chars >= 1, "summary_max_chars",
                        "an integer >= 1", self.summary_max_chars)
        ttl = self.ttl_seconds
        require_setting(ttl is None or (is_number(ttl) and ttl > 0), "ttl_seconds", "None or a positive number", ttl)
        require_setting(is_int(self.related_facts) and self.related_facts >= 0, "related_facts", "an integer >= 0",
                        self.related_facts)
        require_flags(self, "store_details", "extract_facts")
