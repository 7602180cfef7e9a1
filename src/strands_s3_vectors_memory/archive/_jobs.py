"""The write job of an ended conversation, as a typed value with an explicit JSON form.

The background writer and its spool move opaque :class:`~strands_s3_vectors_memory.durability._spool_format.WriteJob`
envelopes; this module is the one place that knows what a conversation job holds and how it is
written down, so every step (hand-off, checkpoint, replay after a crash, merge, dead letter) reads
and writes the same fields.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any

from ..config import is_number
from ..durability import WriteJob
from ..index import MemoryScope, summary_key
from ._facts import FactChanges, FactRef
from ._transcript import bound_transcript

__all__ = ["ConversationJob", "job_scope", "merge_write_jobs"]

#: Why a conversation was ended: by the caller, or by the plugin for a conversation left open.
REASONS = ("end_session", "idle", "evicted", "exit", "close_session")


@dataclass(frozen=True)
class ConversationJob:
    """Summarize and store one conversation.

    ``transcript`` holds every turn handed over so far under this conversation id that is not yet
    covered by a stored summary; ``started_at`` is when its first turn was recorded (``forget``
    cancels jobs that began before it), ``ended_at`` when its last turn was (recorded when it
    ended, carried through spools, retries and replicas): the time its facts were stated, which
    decides what supersedes what however late the job is stored (see :func:`~._facts.supersede`).
    ``earlier_summary``, ``related_facts``, ``summary`` and ``fact_changes`` are checkpoints: the
    stored summary the conversation continues and the user's stored facts shown to the model (both
    read once, so a retry numbers the facts the same way), then the model's summary and what it
    said about the facts (saved together), so a retry or a replay never repeats the model call. A
    job spooled by a version without facts has ``None`` for both facts checkpoints and reads as
    before. ``summary_path`` is how the model's reply was obtained
    (:data:`~._summary_format.SummaryPath`), checkpointed with the summary and stored with it.
    """

    scope: MemoryScope
    conversation_id: str
    transcript: str
    started_at: float
    ended_at: float
    reason: str = "end_session"
    earlier_summary: str | None = None
    summary: str | None = None
    trace: dict[str, str] = field(default_factory=dict)
    related_facts: tuple[FactRef, ...] | None = None
    fact_changes: FactChanges | None = None
    summary_path: str | None = None

    @property
    def job_id(self) -> str:
        """The summary key: one pending job per conversation, found again when it is re-ended."""
        return summary_key(self.scope, self.conversation_id)

    def to_payload(self) -> dict[str, Any]:
        return {
            "tenant_id": self.scope.tenant_id,
            "user_id": self.scope.user_id,
            "agent_name": self.scope.agent_name,
            "conversation_id": self.conversation_id,
            "transcript": self.transcript,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "reason": self.reason,
            "earlier_summary": self.earlier_summary,
            "summary": self.summary,
            "trace": dict(self.trace),
            "related_facts": None if self.related_facts is None else [
                {"key": ref.key, "text": ref.text} for ref in self.related_facts
            ],
            "fact_changes": None if self.fact_changes is None else self.fact_changes.to_payload(),
            "summary_path": self.summary_path,
        }

    @classmethod
    def from_payload(cls, payload: dict[str, Any]) -> ConversationJob:
        """Read a payload written by this or an earlier version (0.9 spools had ``tenant_context``).

        Raises ``ValueError`` (or an identity error) for a payload that does not describe a job.
        """
        transcript, conversation_id = payload.get("transcript", ""), payload.get("conversation_id")
        if not isinstance(transcript, str) or not isinstance(conversation_id, str):
            raise ValueError("a conversation job needs a transcript and a conversation_id")
        ended = _number(payload.get("ended_at"), time.time())
        trace = payload.get("trace")
        return cls(
            scope=_scope(payload),
            conversation_id=conversation_id,
            transcript=transcript,
            started_at=_number(payload.get("started_at"), ended),
            ended_at=ended,
            reason=str(payload.get("reason") or "end_session"),
            earlier_summary=_text_or_none(payload.get("earlier_summary")),
            summary=_text_or_none(payload.get("summary")),
            trace={str(k): str(v) for k, v in trace.items()} if isinstance(trace, dict) else {},
            related_facts=_fact_refs(payload.get("related_facts")),
            fact_changes=FactChanges.from_payload(payload.get("fact_changes")),
            summary_path=_text_or_none(payload.get("summary_path")),
        )

    def to_write_job(self) -> WriteJob:
        return WriteJob(job_id=self.job_id, payload=self.to_payload(), created_at=time.time())

    @classmethod
    def from_write_job(cls, job: WriteJob) -> ConversationJob:
        return cls.from_payload(job.payload)

    def merged_with(self, newer: ConversationJob) -> ConversationJob:
        """This pending version followed by ``newer`` turns of the same conversation: nothing lost.

        The summary and facts checkpoints are dropped (the combined transcript needs a new model call,
        and its related facts a new look); the stored summary this version continues stays the
        starting point.
        """
        joined = "\n".join(part for part in (self.transcript, newer.transcript) if part)
        return replace(
            newer,
            transcript=bound_transcript(joined),
            started_at=min(self.started_at, newer.started_at),
            earlier_summary=self.earlier_summary if self.earlier_summary is not None else newer.earlier_summary,
            summary=None,
            related_facts=None,
            fact_changes=None,
            summary_path=None,
        )


def job_scope(job: WriteJob) -> MemoryScope:
    """Whose memories a spooled conversation job writes: the writer's ``group``, so one user's
    conversations are archived one at a time (``ValueError`` for a payload that names no user)."""
    return _scope(job.payload)


def _scope(payload: dict[str, Any]) -> MemoryScope:
    tenant = payload.get("tenant_id")
    if tenant is None and isinstance(payload.get("tenant_context"), dict):
        tenant = payload["tenant_context"].get("tenantId")
    user_id: Any = payload.get("user_id")
    return MemoryScope(user_id, payload.get("agent_name"), tenant)  # validates the ids


def merge_write_jobs(older: WriteJob, newer: WriteJob) -> WriteJob:
    """The writer's ``merge``: a re-ended conversation keeps the turns of its pending version."""
    merged = ConversationJob.from_write_job(older).merged_with(ConversationJob.from_write_job(newer))
    return replace(newer, payload=merged.to_payload(), rounds=0, attempts=0)


def _number(value: object, default: float) -> float:
    return float(value) if is_number(value) else default


def _text_or_none(value: object) -> str | None:
    return value if isinstance(value, str) else None


def _fact_refs(value: object) -> tuple[FactRef, ...] | None:
    if not isinstance(value, list):
        return None
    return tuple(
        FactRef(item["key"], item["text"])
        for item in value
        if isinstance(item, dict) and isinstance(item.get("key"), str) and isinstance(item.get("text"), str)
    )
