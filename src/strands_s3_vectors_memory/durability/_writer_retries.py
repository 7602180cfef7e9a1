"""How the background writer retries: the schedule of a failed job's next attempt, and its log lines.

Transient failures (:func:`~._retry.is_retryable_error`) are retried in the process that has the job,
with a full-jitter backoff doubling from ``base_delay`` up to ``max_delay`` (60 s), for as long as
an outage lasts: until the job is ``max_age`` (24 h) old, when it becomes a dead letter. botocore
makes the short retries of each AWS call (:data:`~..index._clients.AWS_CALL_ATTEMPTS`), so the two layers
do not multiply. Every ``max_attempts`` failed attempts (a round) one WARNING line says so; the
traceback is logged only at DEBUG.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from ._retry import full_jitter
from ._spool_format import WriteJob, conversation_id_of

__all__ = ["DEFAULT_MAX_AGE", "DEFAULT_MAX_DELAY", "RetryPolicy", "one_line"]

#: Longest wait between two attempts of a job: during an outage a job is retried at least this often.
DEFAULT_MAX_DELAY = 60.0
#: How long a job that keeps failing transiently is retried in-process before it becomes a dead letter.
DEFAULT_MAX_AGE = 24 * 3600.0


def one_line(exc: BaseException) -> str:
    """An error as one log-friendly line: its type and the first line of its message."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


@dataclass(frozen=True)
class RetryPolicy:
    """When a job that failed is tried again, and when it is given up (built once per writer)."""

    base_delay: float = 0.2
    max_delay: float = DEFAULT_MAX_DELAY
    max_attempts: int = 8  #: attempts per round: each round that ends failing logs one WARNING
    max_age: float = DEFAULT_MAX_AGE
    jitter: Callable[[float], float] = full_jitter

    def age(self, job: WriteJob) -> float:
        return time.time() - job.created_at

    def delay(self, attempts: int) -> float:
        """The wait before the next attempt, after ``attempts`` failed ones (full jitter, capped)."""
        cap = min(self.max_delay, self.base_delay * 2.0 ** min(attempts - 1, 60))
        return max(0.0, float(self.jitter(cap)))

    def log_retry(self, log: logging.Logger, name: str, job: WriteJob, attempts: int, exc: BaseException,
                  delay: float) -> None:
        """DEBUG for each retry; one WARNING line (conversation, attempt, error) when a round ends."""
        if attempts % self.max_attempts:
            log.debug("%s: job %s failed (%r), retry %d in %.3fs", name, job.job_id, exc, attempts, delay)
            return
        log.warning(
            "%s: write job %s (conversation_id=%s) failed attempt %d: %s; still retrying in this process "
            "(next in %.1fs, backoff capped at %gs, dead letter %gs after submission)",
            name, job.job_id, conversation_id_of(job), attempts, one_line(exc), delay, self.max_delay,
            self.max_age, exc_info=exc if log.isEnabledFor(logging.DEBUG) else None,
        )
