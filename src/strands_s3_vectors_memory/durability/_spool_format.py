"""A spooled job and its JSON form: what every spool stores, whichever spool it is.

Both spools (:mod:`._spool` on disk, :mod:`._s3_spool` on S3) keep a pending job as the same bytes
(:func:`encode_job`) under the same key (:func:`job_key`), and a dead letter as those bytes plus
its error, so a job can be read by the CLI, retried or replayed whichever spool held it. The writer
moves :class:`WriteJob` s without looking inside their payload (:mod:`..archive._jobs` gives it a type).
"""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

__all__ = [
    "DeadLetter",
    "WriteJob",
    "conversation_id_of",
    "decode_dead_letter",
    "decode_job",
    "encode_dead_letter",
    "encode_job",
    "job_key",
]

#: The version of the JSON form; a file of another version is not a job (it is quarantined, never guessed).
_SPOOL_FORMAT = 1

@dataclass(frozen=True)
class WriteJob:
    """One unit of background work, e.g. "summarise and store this conversation".

    ``job_id`` must be deterministic for the thing being written (a hash of tenant, user, agent and
    conversation), so that re-ending a conversation finds the pending job instead of adding one.
    ``payload`` must be JSON-serialisable: it is what the spool stores and what a replay sees.
    ``attempts`` counts the failed attempts in this process (0 on the first try; every start that
    replays a job starts again at 0); ``rounds`` counts the rounds that ended in a non-retryable
    failure, across restarts (it is kept in the spool file), so a job that can never succeed is
    eventually set aside as a dead letter instead of being replayed forever. Transient failures do
    not end a round: they are retried in-process until ``created_at`` is the writer's ``max_age`` ago.
    """

    job_id: str
    payload: dict[str, Any]
    created_at: float
    attempts: int = 0
    rounds: int = 0


def conversation_id_of(job: WriteJob) -> Any:
    """The conversation a job is about, for log lines (None when the payload does not say)."""
    return job.payload.get("conversation_id") if isinstance(job.payload, dict) else None


def job_key(job_id: str) -> str:
    """File-safe, fixed-length key for a job id (ids may hold any character)."""
    return hashlib.sha256(job_id.encode("utf-8")).hexdigest()


def encode_job(job: WriteJob, **extra: Any) -> bytes:
    """The spool file of ``job`` (``extra`` fields, e.g. a dead letter's error, are kept beside it)."""
    record = {
        "format": _SPOOL_FORMAT,
        "job_id": job.job_id,
        "created_at": job.created_at,
        "rounds": job.rounds,
        "payload": job.payload,
        **extra,
    }
    return json.dumps(record, ensure_ascii=False, allow_nan=False).encode("utf-8")


def decode_job(data: bytes) -> WriteJob:
    """Read :func:`encode_job` 's bytes; ``ValueError`` for anything else (the caller sets it aside)."""
    record = json.loads(data)
    if not isinstance(record, dict) or record.get("format") != _SPOOL_FORMAT:
        raise ValueError("not a spooled write job")
    job_id, payload, created = (record.get(k) for k in ("job_id", "payload", "created_at"))
    rounds = record.get("rounds", 0)  # files written before 1.0 have no rounds
    if not isinstance(job_id, str) or not isinstance(payload, dict):
        raise ValueError("spooled write job has missing or mistyped fields")
    if not isinstance(created, (int, float)) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError("spooled write job has no created_at or a bad rounds count")
    return WriteJob(job_id=job_id, payload=payload, created_at=float(created), rounds=rounds)


def encode_dead_letter(job: WriteJob, error: BaseException | str) -> bytes:
    """A dead letter's bytes: the whole job (so it can be retried), its error, and when it died."""
    text = error if isinstance(error, str) else f"{type(error).__name__}: {error}"
    return encode_job(job, error=text, dead_at=time.time())


@dataclass(frozen=True)
class DeadLetter:
    """A job set aside after too many failed rounds: where it is, what it was, and why it failed."""

    path: Path | str  #: a file, or an ``s3://`` URL for a dead letter of an S3 spool
    key: str
    job: WriteJob
    error: str
    dead_at: float


def decode_dead_letter(where: Path | str, key: str, data: bytes) -> DeadLetter:
    """Read :func:`encode_dead_letter` 's bytes found at ``where`` (``ValueError`` if unreadable)."""
    job = decode_job(data)
    record = json.loads(data)
    return DeadLetter(where, key, job, str(record.get("error", "")), float(record.get("dead_at") or 0.0))
