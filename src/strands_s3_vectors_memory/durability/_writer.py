"""The background writer: takes finished conversations off the agent's reply path and never loses one.

Why it exists: summarising, embedding and ``put_vectors`` take seconds and fail transiently
(throttling, timeouts), while the strands hook that ends a conversation must return in milliseconds
and the agent's own event loop is short-lived (its pending asyncio tasks are cancelled). So the
writer owns daemon threads, a bounded queue, retries with backoff, and an on-disk spool that lets a
job survive a crash, a ``kill -9`` or a failed AWS call. The work itself is done by a handler the
plugin supplies; the writer only decides *when* and *how often* it runs.

Durability contract:

* :meth:`BackgroundWriter.submit` writes the job to the spool (atomically, fsynced) *before* it is
  queued, and the spool file is removed only after the handler succeeded. A job that finally fails
  keeps its file, so the next start (:meth:`BackgroundWriter.replay_spool`) tries again.
* Jobs are keyed by ``job_id``: submitting the same id again (re-ending a conversation) replaces the
  pending job in memory and on disk; the last submission wins, unless a ``merge`` function is given:
  then the new submission is combined with the pending version (in memory, on disk, or left in the
  spool by an earlier failure), so nothing the older one carried is lost. A replacement that arrives
  while the old version is running waits for it and runs next, so one id never runs twice at the
  same time.
* A transient failure is retried in this process, at most 60 s apart, until the job is 24 h old
  (a dead letter then): an outage never parks a job until the next start (:mod:`._writer_retries`).
* A job that fails with a non-retryable error keeps its spool file for the next start (a fix is
  deployed by restarting), with its count of failed rounds. After ``max_rounds`` such rounds it is
  a dead letter: ``on_dead_letter`` stores what can be stored without the failing step, and the
  file moves to ``<spool_dir>/dead/`` (the CLI lists, retries and drops dead letters).
* Memory is bounded by ``max_pending``: beyond it a submitted job is kept **on disk only** (a small
  reference stays in memory) and read back when it runs; replayed jobs always are. Submit never
  blocks and never drops. If the spool cannot be written (read-only, disk full, no spool configured)
  the job is queued in memory anyway, above the bound if need be, and a WARNING says durability is
  degraded. The queue itself (versions, ready-times, groups, flushes) is :mod:`._job_queue`.
* Jobs of one ``group`` (the runtime's: one memory scope) never run at once, and no worker waits for one.

The spool's layout, claims and adoption of a dead writer's files are described in :mod:`._spool`.
"""

from __future__ import annotations

import atexit
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

from ..errors import ConfigurationError
from ..forking import reset_in_child
from ..telemetry import SERVICE_NAME
from ._job_queue import Group, JobQueue, Run
from ._retry import full_jitter, is_retryable_error
from ._s3_location import S3Location
from ._spool_format import WriteJob, conversation_id_of, job_key
from ._writer_retries import DEFAULT_MAX_AGE, DEFAULT_MAX_DELAY, RetryPolicy, one_line
from ._writer_spool import WriterSpool

__all__ = ["DEFAULT_MAX_AGE", "DEFAULT_MAX_DELAY", "BackgroundWriter", "JobContext", "WriterStats"]

_log = logging.getLogger(__name__)


def _location(spool_dir: str | os.PathLike[str] | S3Location | None) -> Path | S3Location | None:
    """A spool directory, or an ``s3://`` spool kept as one (a ``Path`` would fold its ``//``)."""
    if spool_dir is None or isinstance(spool_dir, S3Location):
        return spool_dir
    path = spool_dir if isinstance(spool_dir, str) else Path(spool_dir)
    return S3Location.of(path) or Path(spool_dir).expanduser()

#: How long close() waits for idle workers to leave (they do at once; a bound, never reached).
_IDLE_EXIT_TIMEOUT = 5.0

@dataclass(frozen=True)
class WriterStats:
    """A consistent snapshot of the writer's counters (for logs, metrics and tests)."""

    submitted: int  #: submit() calls accepted (replacements included)
    succeeded: int  #: jobs whose handler returned
    retried: int  #: retries scheduled after a retryable error
    failed: int  #: jobs given up in this process (not retryable, or max_age reached); their spool files stay
    replaced: int  #: pending jobs superseded by a newer submission with the same job_id
    replayed: int  #: jobs picked up from the spool by replay_spool()
    pending: int  #: jobs not finished yet (in memory or on disk only)
    in_memory: int  #: pending jobs whose payload is held in memory (bounded by max_pending)
    overflow: int  #: pending jobs kept on disk only (read back when they run)
    spooled: int  #: pending jobs with a durable spool file (they survive a crash)
    spool_errors: int  #: spool writes that failed (durability was degraded for those jobs)
    dead_lettered: int  #: jobs set aside after max_rounds failed rounds
    cancelled: int  #: pending jobs removed by cancel() (e.g. their user was forgotten)


class JobContext:
    """What the handler gets with each attempt: the job, and a way to save progress.

    Saving progress matters because the expensive step (summarising with the agent's model) should
    not be repeated when a later step (``put_vectors``) is throttled or the process dies: checkpoint
    the summary into the payload and the retry, or the replay after a crash, sees it.
    """

    __slots__ = ("_job", "_run", "_writer")

    def __init__(self, writer: BackgroundWriter, run: Run, job: WriteJob) -> None:
        self._writer = writer
        self._run = run
        self._job = job

    @property
    def job(self) -> WriteJob:
        """The job as it stands now (with the latest checkpointed payload)."""
        return self._job

    @property
    def ticket(self) -> int:
        """The ticket of the version being run (what :meth:`BackgroundWriter.submit` returned for it)."""
        return self._run.seq

    def checkpoint(self, payload: dict[str, Any]) -> None:
        """Replace the job's payload, in memory and atomically in the spool.

        Raises ``TypeError``/``ValueError`` if the payload is not JSON-serialisable (a bug in the
        handler). Ignored on disk when a newer submission of the same ``job_id`` has arrived
        meanwhile: the newer transcript must not be overwritten with progress on the older one.
        """
        self._job = self._writer._disk.checkpoint(self._run, self._job, payload)


class BackgroundWriter:
    """Runs write jobs on daemon threads with a spool, retries, backoff and flushing.

    ``handler`` does the work of one attempt and raises on failure; :func:`is_retryable_error` (or
    ``is_retryable``) decides whether another attempt is scheduled, after
    ``jitter(min(max_delay, base_delay * 2**attempt))`` seconds, until the job is ``max_age``
    old. Retry waits are entries in a heap of ready-times, so a job that is backing off never holds
    a worker. ``jitter`` defaults to
    :func:`full_jitter`; tests pass a deterministic one.

    ``retries`` is the :class:`~._writer_retries.RetryPolicy` those arguments make.
    ``spool_dir=None`` disables the spool (jobs live in memory only, lost on a crash).
    With ``flush_at_exit`` an ``atexit`` hook waits up to ``exit_timeout`` seconds for pending jobs;
    the threads are daemons so a hung AWS call cannot keep the interpreter alive past that.
    """

    def __init__(
        self,
        handler: Callable[[JobContext], None],
        *,
        spool_dir: str | os.PathLike[str] | S3Location | None,
        max_pending: int = 10_000,
        max_attempts: int = 8,
        base_delay: float = 0.2,
        max_delay: float = DEFAULT_MAX_DELAY,
        workers: int = 2,
        is_retryable: Callable[[BaseException], bool] = is_retryable_error,
        flush_at_exit: bool = True,
        exit_timeout: float = 10.0,
        name: str = f"{SERVICE_NAME}.writer",
        jitter: Callable[[float], float] = full_jitter,
        merge: Callable[[WriteJob, WriteJob], WriteJob] | None = None,
        max_rounds: int = 3,
        on_dead_letter: Callable[[WriteJob, BaseException], None] | None = None,
        max_age: float = DEFAULT_MAX_AGE,
        group: Callable[[WriteJob], Group] | None = None,
    ) -> None:
        if max_pending < 1 or max_attempts < 1 or workers < 1 or max_rounds < 1:
            raise ConfigurationError("max_pending, max_attempts, max_rounds and workers must be at least 1")
        if base_delay < 0 or max_delay < 0 or exit_timeout < 0 or max_age < 0:
            raise ConfigurationError("base_delay, max_delay, max_age and exit_timeout must not be negative")
        self._handler = handler
        self.retries = RetryPolicy(base_delay, max_delay, max_attempts, max_age, jitter)
        self._is_retryable = is_retryable
        self._exit_timeout = exit_timeout
        self._merge = merge
        self._max_rounds = max_rounds
        self._on_dead_letter = on_dead_letter
        self.name = name
        self._workers, self._group = workers, group
        self._closed = False
        self._spool_dir = _location(spool_dir)
        self._start(max_pending)
        self._atexit_registered = flush_at_exit
        if flush_at_exit:
            atexit.register(self._at_exit)
        reset_in_child(self, BackgroundWriter._after_fork_in_child)

    def _start(self, max_pending: int) -> None:
        """A fresh queue, spool claim and worker threads (at construction, and in a forked child)."""
        self._queue = JobQueue(max_pending, self._group)
        self._lock = self._queue.lock
        self._counts = self._queue.counts
        self._disk = WriterSpool(self._spool_dir, self._queue, name=self.name, merge=self._merge)
        self._spool = self._disk.spool
        self._stripe = self._disk.stripe
        self._threads = [threading.Thread(target=self._worker, name=f"{self.name}-{i}", daemon=True)
                         for i in range(self._workers)]
        if self._closed:
            self._queue.stop()
        else:
            for thread in self._threads:
                thread.start()

    def _after_fork_in_child(self) -> None:
        """A forked child gets fresh threads, locks and spool claim; the parent's jobs stay the parent's."""
        if self._spool is not None:
            self._spool.leave_to_parent()
        self._start(self._queue.max_in_memory)

    # ---------------------------------------------------------------------------------- public API

    @property
    def spool_dir(self) -> Path | S3Location | None:
        """Where this writer's spool lives (None when it runs without one)."""
        return self._spool_dir

    def submit(self, job: WriteJob, *, on_ticket: Callable[[int], None] | None = None) -> int | None:
        """Spool ``job`` (durably) and queue it; returns in about a millisecond and never blocks.

        Returns a ticket for :meth:`wait` (``None`` when the writer is closed: the job stays spooled).
        ``on_ticket`` gets the ticket before any worker can take the job (it must be quick and must
        not call the writer), so whoever tracks versions never hears of an attempt before its version.

        Never raises for spool trouble: if the file cannot be written the job is queued in memory and
        a WARNING reports the degraded durability.
        """
        if not isinstance(job, WriteJob) or not isinstance(job.payload, dict):
            raise TypeError("submit() takes a WriteJob whose payload is a dict")
        key = job_key(job.job_id)
        with self._stripe(key):
            if self._merge is not None:
                job = self._disk.merged_with_pending(key, job)
            spooled = self._disk.write(key, job)
            with self._lock:
                if self._queue.stopping:
                    self._disk.log_submit_after_close(job, spooled)
                    return None
                if not spooled:
                    self._disk.warn_if_over_capacity()
                self._counts["submitted"] += 1
                ticket, replaced = self._queue.accept(key, job, spooled)
                self._counts["replaced"] += replaced
                if on_ticket is not None:
                    on_ticket(ticket)
                return ticket

    def cancel(self, predicate: Callable[[WriteJob], bool]) -> int:
        """Remove every pending job ``predicate`` selects, from memory and from the spool.

        Used by ``forget``: a forgotten user's pending conversations must not be stored later. A job
        whose handler is running right now cannot be stopped here; a newer version waiting behind it
        is removed. Returns how many pending jobs were removed.
        """
        removed = self._disk.cancel(predicate)
        if removed:
            _log.info("%s: cancelled %d pending job(s)", self.name, removed)
        return removed

    def wait(self, tickets: set[int], timeout: float | None = None) -> bool:
        """Wait until the submissions with these ``tickets`` are done (stored, or finally failed).

        For request-scoped runtimes (Lambda): the reply returns once its own conversation is stored,
        without waiting for anyone else's.
        """
        return self._queue.flush(timeout, tickets)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted before this call has finished (succeeded or finally failed).

        Returns False if ``timeout`` seconds passed first, or the writer was closed meanwhile.
        """
        return self._queue.flush(timeout)

    def close(self, timeout: float | None = None, *, drain: bool = True) -> None:
        """Stop the workers; with ``drain`` first wait (up to ``timeout``) for pending jobs.

        Jobs still pending afterwards stay in the spool for the next start. The spool claim is only
        released once every worker has stopped, so a peer never adopts a job a stuck handler is
        still running.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            if self._closed:
                return
            self._closed = True
        if drain:
            self.flush(timeout)
        left = self._queue.stop()
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if left:
            where = f"left in the spool at {self._spool_dir} for replay" if self._spool else "LOST (no spool)"
            _log.warning("%s closed with %d job(s) still pending: %s", self.name, left, where)
        with self._lock:
            busy = self._queue.busy
        if not busy:  # idle workers leave as soon as they wake: only a running handler may hold them
            for thread in self._threads:
                thread.join(_IDLE_EXIT_TIMEOUT)
        if self._spool is not None:
            if busy:
                _log.warning("%s: a handler is still running; its spool claim is kept until exit", self.name)
            else:
                self._spool.release()
        if self._atexit_registered:
            atexit.unregister(self._at_exit)
            self._atexit_registered = False

    def adopt_orphans(self) -> int:
        """Queue the jobs of dead processes (and retried dead letters), not this writer's own failures.

        Cheap when there is nothing to adopt, so a long-running process calls it periodically: a
        crashed peer's conversations are then stored without waiting for a restart.
        """
        return self.replay_spool(own_failures=False)

    def replay_spool(self, *, own_failures: bool = True) -> int:
        """Queue the jobs left in the spool by dead processes and by earlier failures of this one.

        Returns how many jobs were queued. Safe to call from several processes at once: each job
        file is claimed by exactly one of them. Replayed jobs are read from disk when they run, so
        replaying a huge spool takes no memory for their payloads.
        """
        with self._lock:
            if self._queue.stopping:
                return 0
        return self._disk.replay(own_failures=own_failures)

    @property
    def stats(self) -> WriterStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            return WriterStats(
                **self._counts,
                pending=self._queue.pending(),
                in_memory=self._queue.in_memory(),
                overflow=self._queue.on_disk_only(),
                spooled=self._queue.spooled_count(),
            )

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --------------------------------------------------------------------------- worker internals

    def _worker(self) -> None:
        while True:
            run = self._queue.take()
            if run is None:
                return
            try:
                self._run(run)
            except Exception:  # a bug here must not kill the worker and strand the queue
                _log.exception("%s: internal error while handling job key %s", self.name, run.key)
            finally:
                self._queue.idle()

    def _run(self, run: Run) -> None:
        job = run.job if run.job is not None else self._disk.load(run)
        if job is None:
            return
        context = JobContext(self, run, job)
        try:
            self._handler(context)
        except BaseException as exc:  # even SystemExit from a handler must not strand the job
            self._failed_attempt(run, context.job, exc)
        else:
            self._succeeded(run)

    def _succeeded(self, run: Run) -> None:
        with self._stripe(run.key):
            with self._lock:
                superseded = self._queue.has_next(run.key)
            if self._spool is not None and not superseded:
                try:
                    self._spool.remove(run.key)
                except OSError as exc:  # it runs again after a restart: harmless, keys are stable
                    _log.warning("%s: could not remove the spool file of job %s: %s", self.name, run.key, exc)
            with self._lock:
                self._counts["succeeded"] += 1
                self._queue.finish(run)

    def _failed_attempt(self, run: Run, job: WriteJob, exc: BaseException) -> None:
        attempts = job.attempts + 1
        try:
            retryable = bool(self._is_retryable(exc))
        except Exception:
            _log.exception("%s: is_retryable raised; treating the error as not retryable", self.name)
            retryable = False
        age = self.retries.age(job)
        if retryable and age < self.retries.max_age:
            self._reschedule(run, job, attempts, exc)
            return
        with self._lock:
            if self._queue.has_next(run.key):
                self._counts["replaced"] += 1
                self._queue.finish(run)
                return
            spooled = self._queue.spooled(run.key)
        failed = dataclasses.replace(job, attempts=0, rounds=job.rounds + 1)
        dead = failed.rounds >= self._max_rounds or retryable
        if dead:
            where = self._disk.bury(run.key, failed, exc, self._on_dead_letter)
            if retryable:
                where = f"still failing {age:.0f}s after submission (max_age {self.retries.max_age:g}s): {where}"
        elif spooled:
            where = (
                "its spool file is kept for replay at the next start "
                f"(failed round {failed.rounds} of {self._max_rounds})"
            )
            self._disk.record_round(run, failed)
        else:
            where = "it was never spooled, so it is LOST when this process exits"
        # Log before the job counts as finished, so whoever flush()es sees the ERROR already.
        _log.error(
            "%s: write job %s (conversation_id=%s) failed after %d attempt(s)%s: %s; %s",
            self.name, job.job_id, conversation_id_of(job), attempts,
            "" if retryable else " with a non-retryable error", one_line(exc), where,
            exc_info=exc if _log.isEnabledFor(logging.DEBUG) else None,  # the traceback at DEBUG only
        )
        with self._lock:
            self._counts["failed"] += 1
            self._counts["dead_lettered"] += dead
            self._queue.finish(run)

    def _reschedule(self, run: Run, job: WriteJob, attempts: int, exc: BaseException) -> None:
        """Retry a transient failure in this process, however long it lasts (see :mod:`._writer_retries`)."""
        delay = self.retries.delay(attempts)
        with self._lock:
            if not self._queue.retry(run, dataclasses.replace(job, attempts=attempts), delay):
                self._counts["replaced"] += 1  # a newer version is waiting: run that instead
                self._queue.finish(run)
                return
            self._counts["retried"] += 1
        self.retries.log_retry(_log, self.name, job, attempts, exc, delay)

    def _at_exit(self) -> None:
        """Interpreter exit: finish what we can within exit_timeout (close() reports what is left)."""
        start = time.monotonic()
        self.flush(self._exit_timeout)
        remaining = self._exit_timeout - (time.monotonic() - start)
        self.close(timeout=max(0.1, remaining), drain=False)
