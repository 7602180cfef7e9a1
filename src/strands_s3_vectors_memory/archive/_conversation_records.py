"""The records one ended conversation stores: its summary, its detail records and its facts.

Built here, without touching the index, so the write path's rules read in one place: the summary
under its conversation's deterministic key (storing the conversation again overwrites it), at most
:data:`~._details.DETAIL_MAX_RECORDS` detail records addressed by content (a turn said twice is one
record), and each fact under its text's key, current as of the conversation's end. Which facts
are still to be written (a later conversation may have superseded one) is a question for the index,
asked by the store (:func:`~._facts.facts_to_write`) before the records are built.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ..index import (
    EXTRACTIVE_KEY,
    SUMMARIZED_BY_KEY,
    TYPE_DETAIL,
    TYPE_SUMMARY,
    MemoryScope,
    build_fact_metadata,
    build_metadata,
    detail_key,
    fact_key,
    summary_key,
    validate_id,
)
from ._details import DETAIL_MAX_RECORDS

__all__ = ["Record", "check_conversation", "conversation_records"]

#: One vector to write: its key, the text to embed, its metadata.
Record = tuple[str, str, Mapping[str, Any]]


def check_conversation(conversation_id: str, summary: str, details: Sequence[str], facts: Sequence[str]) -> None:
    """Refuse a conversation that cannot be stored, before any embedding is paid for.

    A lone string passed as ``details`` or ``facts`` is refused too: it would be stored one
    character per record.
    """
    validate_id(conversation_id, "conversation_id")
    if not isinstance(summary, str):
        raise TypeError(f"summary must be a string, got {type(summary).__name__}")
    if isinstance(details, str) or not all(isinstance(d, str) for d in details):
        raise TypeError("details must be a sequence of strings")
    if isinstance(facts, str) or not all(isinstance(f, str) for f in facts):
        raise TypeError("facts must be a sequence of strings")


def conversation_records(
    scope: MemoryScope,
    conversation_id: str,
    summary: str,
    *,
    details: Sequence[str] = (),
    facts: Sequence[str] = (),
    stated_at: str,
    expires_at: float | None = None,
    extractive: bool = False,
    summarized_by: str | None = None,
) -> list[Record]:
    """The summary, detail and fact records of a conversation checked by :func:`check_conversation`.

    ``extractive`` marks a summary that is the user's own words rather than a model's summary;
    ``stated_at`` (ISO-8601 UTC) is when the conversation happened (its last turn): the ``stored_at``
    of every record, so a conversation stored late (a replay, a retry) is dated as it happened and
    its memories compare with facts on one clock; and a job delivered twice (a crash after the put,
    before its spool file was removed) writes the very same records again, not newer copies.
    ``summarized_by`` is how a model's summary was obtained (structured output or text).
    """
    records: list[Record] = []
    if summary.strip():
        meta = build_metadata(
            scope, summary, memory_type=TYPE_SUMMARY, conversation_id=conversation_id, stored_at=stated_at,
            expires_at=expires_at,
        )
        if extractive:
            meta[EXTRACTIVE_KEY] = True
        elif summarized_by:
            meta[SUMMARIZED_BY_KEY] = summarized_by
        records.append((summary_key(scope, conversation_id), meta["content"], meta))
    seen: set[str] = set()
    for text in [d for d in details if d.strip()][:DETAIL_MAX_RECORDS]:  # the details' budget, enforced
        meta = build_metadata(
            scope, text, memory_type=TYPE_DETAIL, conversation_id=conversation_id, stored_at=stated_at,
            expires_at=expires_at,
        )
        key = detail_key(scope, conversation_id, meta["content"])
        if key not in seen:  # a turn said twice is one record (keys are content addresses)
            seen.add(key)
            records.append((key, meta["content"], meta))
    for text in facts:
        meta = build_fact_metadata(scope, text, conversation_id=conversation_id, stored_at=stated_at,
                                   expires_at=expires_at)
        records.append((fact_key(scope, text), meta["content"], meta))
    return records
