"""The archive: an ended conversation turned into the records memory keeps.

* :mod:`._archiver`: a conversation job in, its summary, details and facts stored (through an
  :class:`ArchiveStore`, so this room never imports the store that reads them back).
* :mod:`._summarizer`, :mod:`._summary_format`, :mod:`._summary_reader`: the summary call, its
  request and reply format, and the tolerant reader of real models' replies.
* :mod:`._facts`: facts that stay true (found, resolved, superseded in time order).
* :mod:`._details`, :mod:`._conversation_records`: the detail records and everything one
  conversation stores.
* :mod:`._settings`: :class:`SummarySettings`, what is stored of a conversation and for how long.
* :mod:`._transcript`: a conversation as bounded ``ROLE: text`` lines.
* :mod:`._jobs`: the write job of an ended conversation, a typed value with a JSON form.
* :mod:`._pending`: the jobs still on their way to the index, as the rest of the process sees them
  (read-your-writes, ``forget``).
"""

from __future__ import annotations

from ._archiver import Archiver, ArchiveStore
from ._conversation_records import Record, check_conversation, conversation_records
from ._facts import DEFAULT_RELATED_FACTS, FactRef, facts_to_write, find_facts, related_vector, supersede
from ._jobs import ConversationJob, job_scope, merge_write_jobs
from ._pending import PENDING_WRITES, cancel_pending, job_is_forgotten, register_canceller, wait_for_own_writes
from ._settings import SummarySettings
from ._summarizer import SUMMARY_PROMPT, extractive_summary
from ._summary_format import (
    FACTS_PROMPT,
    ConversationMemory,
    ExtractedFact,
    StatedFact,
    parse_summary_request,
    render_summary_response,
)
from ._transcript import bound_transcript, render_transcript

__all__ = [
    "DEFAULT_RELATED_FACTS",
    "FACTS_PROMPT",
    "PENDING_WRITES",
    "SUMMARY_PROMPT",
    "ArchiveStore",
    "Archiver",
    "ConversationJob",
    "ConversationMemory",
    "ExtractedFact",
    "FactRef",
    "Record",
    "StatedFact",
    "SummarySettings",
    "bound_transcript",
    "cancel_pending",
    "check_conversation",
    "conversation_records",
    "extractive_summary",
    "facts_to_write",
    "find_facts",
    "job_is_forgotten",
    "job_scope",
    "merge_write_jobs",
    "parse_summary_request",
    "register_canceller",
    "related_vector",
    "render_summary_response",
    "render_transcript",
    "supersede",
    "wait_for_own_writes",
]
