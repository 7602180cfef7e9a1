"""Durability: nothing written is lost, across crashes, outages, forks and machines.

* :mod:`._writer`: the background writer (workers, per-scope order, in-process retries), with
  :mod:`._job_queue` (which job runs next) and :mod:`._writer_spool` (its side of the spool).
* :mod:`._retry`, :mod:`._writer_retries`: which failures are retried, and when.
* :mod:`._spool_format`, :mod:`._spool_backend`: a spooled job's JSON form, and the seam every spool implements.
* :mod:`._spool` (local files with ``flock``) and :mod:`._s3_spool`, :mod:`._s3_spool_layout`,
  :mod:`._s3_spool_admin`, :mod:`._s3_location` (the spool on S3, shared by a fleet).
* :mod:`._tombstones`, :mod:`._s3_tombstones`: durable records of ``forget``.
* :mod:`._turn_buffer`: an open conversation's turns on the S3 spool, for request-scoped runtimes.
"""

from __future__ import annotations

from ._retry import is_retryable_error
from ._s3_location import S3_CLOCK, S3Location, spool_location
from ._s3_spool_admin import agent_spools as s3_agent_spools
from ._s3_spool_admin import dead_letters as s3_dead_letters
from ._s3_spool_admin import drop_dead_letter as s3_drop_dead_letter
from ._s3_spool_admin import erase_forgotten
from ._s3_spool_admin import pending_jobs as s3_pending_jobs
from ._s3_spool_admin import retry_dead_letter as s3_retry_dead_letter
from ._s3_tombstones import board_beside, board_of, on_s3_clock
from ._spool import dead_letters, default_spool_dir, drop_dead_letter, pending_files, retry_dead_letter
from ._spool_format import DeadLetter, WriteJob, decode_job
from ._tombstones import (
    BOARD_TTL_SECONDS,
    Tombstone,
    TombstoneBoard,
    Tombstones,
    boards_for,
    register_board,
    tombstones_dir,
)
from ._turn_buffer import TurnBuffer, turn_buffer_for
from ._writer import BackgroundWriter, JobContext, WriterStats

__all__ = [
    "BOARD_TTL_SECONDS",
    "S3_CLOCK",
    "BackgroundWriter",
    "DeadLetter",
    "JobContext",
    "S3Location",
    "Tombstone",
    "TombstoneBoard",
    "Tombstones",
    "TurnBuffer",
    "WriteJob",
    "WriterStats",
    "board_beside",
    "board_of",
    "boards_for",
    "dead_letters",
    "decode_job",
    "default_spool_dir",
    "drop_dead_letter",
    "erase_forgotten",
    "is_retryable_error",
    "on_s3_clock",
    "pending_files",
    "register_board",
    "retry_dead_letter",
    "s3_agent_spools",
    "s3_dead_letters",
    "s3_drop_dead_letter",
    "s3_pending_jobs",
    "s3_retry_dead_letter",
    "spool_location",
    "tombstones_dir",
    "turn_buffer_for",
]
