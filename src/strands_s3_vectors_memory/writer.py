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
* A job that fails a whole round (a non-retryable error, or ``max_attempts`` retryable ones) keeps
  its spool file for the next start, with its count of failed rounds. After ``max_rounds`` such
  rounds it is a dead letter: ``on_dead_letter`` stores what can be stored without the failing step,
  and the file moves to ``<spool_dir>/dead/`` (the CLI lists, retries and drops dead letters).
* Memory is bounded by ``max_pending``: beyond it a submitted job is kept **on disk only** (a small
  reference stays in memory) and is loaded when the queue drains. Submit never blocks and never
  drops. If the spool cannot be written (read-only, disk full, no spool configured) the job is
  queued in memory anyway, above the bound if need be, and a WARNING says durability is degraded.

Spool layout (several processes may share one ``spool_dir``; it must be a local filesystem, because
claims rely on ``flock``)::

    <spool_dir>/owners/<owner>.lock         flock'ed by a live writer for its whole life
    <spool_dir>/claims/<owner>/<key>.json   one file per job that writer owns (key = sha256 of job_id)
    <spool_dir>/corrupt/                    unreadable job files, kept for a human to look at
    <spool_dir>/dead/<key>.json             dead letters: jobs that failed max_rounds rounds

A writer only ever runs jobs from its own ``claims`` directory, so two processes never run the same
file. Files of a dead writer (its lock is free again: the kernel drops ``flock`` locks when a process
dies) are adopted by whichever live writer replays first, one ``rename`` per file, which only one
process can win. Two live processes that both submit the same ``job_id`` each own a copy; both run
and the later ``put_vectors`` wins, which is harmless because keys are deterministic.
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import heapq
import itertools
import logging
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from types import TracebackType
from typing import Any

from .errors import ConfigurationError
from .retry import full_jitter, is_retryable_error
from .spool import Spool, WriteJob, conversation_id_of, encode_job, job_key
from .telemetry import SERVICE_NAME

__all__ = ["BackgroundWriter", "JobContext", "WriterStats"]

_log = logging.getLogger(__name__)

# --------------------------------------------------------------------------------------------------
# Public value types
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WriterStats:
    """A consistent snapshot of the writer's counters (for logs, metrics and tests)."""

    submitted: int  #: submit() calls accepted (replacements included)
    succeeded: int  #: jobs whose handler returned
    retried: int  #: retries scheduled after a retryable error
    failed: int  #: jobs given up (not retryable, or attempts exhausted); their spool files stay
    replaced: int  #: pending jobs superseded by a newer submission with the same job_id
    replayed: int  #: jobs picked up from the spool by replay_spool()
    pending: int  #: jobs not finished yet (in memory or on disk only)
    in_memory: int  #: pending jobs whose payload is held in memory (bounded by max_pending)
    overflow: int  #: pending jobs kept on disk only because the memory queue was full
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

    __slots__ = ("_generation", "_job", "_key", "_writer")

    def __init__(self, writer: BackgroundWriter, key: str, generation: int, job: WriteJob) -> None:
        self._writer = writer
        self._key = key
        self._generation = generation
        self._job = job

    @property
    def job(self) -> WriteJob:
        """The job as it stands now (with the latest checkpointed payload)."""
        return self._job

    def checkpoint(self, payload: dict[str, Any]) -> None:
        """Replace the job's payload, in memory and atomically in the spool.

        Raises ``TypeError``/``ValueError`` if the payload is not JSON-serialisable (a bug in the
        handler). Ignored on disk when a newer submission of the same ``job_id`` has arrived
        meanwhile: the newer transcript must not be overwritten with progress on the older one.
        """
        self._job = self._writer._checkpoint(self._key, self._generation, self._job, payload)


class _State(Enum):
    QUEUED = "queued"  # payload in memory, in the ready heap (now or after a backoff)
    RUNNING = "running"  # the handler has it
    OVERFLOW = "overflow"  # payload on disk only, waiting for room in memory
    LOADING = "loading"  # a worker is reading it back from disk (its memory slot is reserved)


@dataclass
class _Next:
    """A newer submission of a job that is running right now; it runs when the old one finishes."""

    job: WriteJob
    seq: int
    spooled: bool


@dataclass
class _Entry:
    key: str
    state: _State
    seq: int
    spooled: bool
    job: WriteJob | None
    generation: int = 0
    next: _Next | None = None


@dataclass(frozen=True)
class _Run:
    key: str
    generation: int
    job: WriteJob


@dataclass(frozen=True)
class _Load:
    key: str
    generation: int


_STRIPES = 64


class BackgroundWriter:
    """Runs write jobs on daemon threads with a spool, retries, backoff and flushing.

    ``handler`` does the work of one attempt and raises on failure; :func:`is_retryable_error` (or
    ``is_retryable``) decides whether another attempt is scheduled, after
    ``jitter(min(max_delay, base_delay * 2**attempt))`` seconds. Retry waits are entries in a heap
    of ready-times, so a job that is backing off never holds a worker. ``jitter`` defaults to
    :func:`full_jitter`; tests pass a deterministic one.

    ``spool_dir=None`` disables the spool (jobs live in memory only, lost on a crash).
    With ``flush_at_exit`` an ``atexit`` hook waits up to ``exit_timeout`` seconds for pending jobs;
    the threads are daemons so a hung AWS call cannot keep the interpreter alive past that.
    """

    def __init__(
        self,
        handler: Callable[[JobContext], None],
        *,
        spool_dir: str | os.PathLike[str] | None,
        max_pending: int = 10_000,
        max_attempts: int = 8,
        base_delay: float = 0.2,
        max_delay: float = 30.0,
        workers: int = 2,
        is_retryable: Callable[[BaseException], bool] = is_retryable_error,
        flush_at_exit: bool = True,
        exit_timeout: float = 10.0,
        name: str = f"{SERVICE_NAME}.writer",
        jitter: Callable[[float], float] = full_jitter,
        merge: Callable[[WriteJob, WriteJob], WriteJob] | None = None,
        max_rounds: int = 3,
        on_dead_letter: Callable[[WriteJob, BaseException], None] | None = None,
    ) -> None:
        if max_pending < 1 or max_attempts < 1 or workers < 1 or max_rounds < 1:
            raise ConfigurationError("max_pending, max_attempts, max_rounds and workers must be at least 1")
        if base_delay < 0 or max_delay < 0 or exit_timeout < 0:
            raise ConfigurationError("base_delay, max_delay and exit_timeout must not be negative")
        self._handler = handler
        self._max_pending = max_pending
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay
        self._is_retryable = is_retryable
        self._exit_timeout = exit_timeout
        self._jitter = jitter
        self._merge = merge
        self._max_rounds = max_rounds
        self._on_dead_letter = on_dead_letter
        self.name = name

        self._lock = threading.Lock()
        self._work = threading.Condition(self._lock)  # workers wait here for ready jobs
        self._done = threading.Condition(self._lock)  # flush() waits here for finished jobs
        self._stripes = tuple(threading.Lock() for _ in range(_STRIPES))  # per-job_id disk order

        self._entries: dict[str, _Entry] = {}
        self._heap: list[tuple[float, int, str, int]] = []  # (ready_at, tie, key, generation)
        self._tie = itertools.count()
        self._overflow: deque[str] = deque()
        self._in_memory = 0
        self._seq = itertools.count(1)
        self._outstanding: set[int] = set()
        self._flush_waiters: list[set[int]] = []
        self._stopping = False
        self._closed = False
        self._spool_degraded = False
        self._over_capacity_warned = False
        self._counts = dict.fromkeys(
            ("submitted", "succeeded", "retried", "failed", "replaced", "replayed", "spool_errors", "dead_lettered",
             "cancelled"),
            0,
        )

        self._spool: Spool | None = None
        self._spool_dir = Path(spool_dir).expanduser() if spool_dir is not None else None
        if self._spool_dir is not None:
            try:
                self._spool = Spool(self._spool_dir)
            except OSError as exc:
                self._spool_degraded = True
                _log.warning(
                    "%s: spool directory %s is unusable (%s); jobs are kept in memory only and are "
                    "lost if this process dies (degraded durability)",
                    name,
                    self._spool_dir,
                    exc,
                )

        self._threads = [threading.Thread(target=self._worker, name=f"{name}-{i}", daemon=True) for i in range(workers)]
        for thread in self._threads:
            thread.start()
        self._atexit_registered = flush_at_exit
        if flush_at_exit:
            atexit.register(self._at_exit)

    # ---------------------------------------------------------------------------------- public API

    @property
    def spool_dir(self) -> Path | None:
        """Where this writer's spool lives (None when it runs without one)."""
        return self._spool_dir

    def submit(self, job: WriteJob) -> None:
        """Spool ``job`` (durably) and queue it; returns in about a millisecond and never blocks.

        Never raises for spool trouble: if the file cannot be written the job is queued in memory and
        a WARNING reports the degraded durability.
        """
        if not isinstance(job, WriteJob) or not isinstance(job.payload, dict):
            raise TypeError("submit() takes a WriteJob whose payload is a dict")
        key = job_key(job.job_id)
        with self._stripe(key):
            if self._merge is not None:
                job = self._merged_with_pending(key, job)
            spooled = self._spool_write(key, job)
            with self._lock:
                if self._stopping:
                    self._log_submit_after_close(job, spooled)
                    return
                self._accept(key, job, spooled)

    def cancel(self, predicate: Callable[[WriteJob], bool]) -> int:
        """Remove every pending job ``predicate`` selects, from memory and from the spool.

        Used by ``forget``: a forgotten user's pending conversations must not be stored later. A job
        whose handler is running right now cannot be stopped here; a newer version waiting behind it
        is removed. Returns how many pending jobs were removed.
        """
        removed = 0
        with self._lock:
            keys = set(self._entries)
        if self._spool is not None:
            with contextlib.suppress(OSError):
                keys.update(self._spool.own_keys())  # failed jobs waiting for the next start
        for key in sorted(keys):
            with self._stripe(key):
                removed += self._cancel_key(key, predicate)
        if removed:
            with self._lock:
                self._counts["cancelled"] += removed
            _log.info("%s: cancelled %d pending job(s)", self.name, removed)
        return removed

    def _cancel_key(self, key: str, predicate: Callable[[WriteJob], bool]) -> int:
        """Cancel one key's pending version if ``predicate`` selects it (caller holds its stripe)."""
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.state is _State.RUNNING:
                if entry.next is not None and predicate(entry.next.job):
                    self._retire(entry.next.seq)
                    entry.next = None  # the running version removes the file when it is done
                    return 1
                return 0
            job = entry.job if entry is not None else None
        if job is None:  # on disk only (overflow, or a failure kept for the next start)
            job = self._read_own(key)
            if job is None:
                return 0
        if not predicate(job):
            return 0
        if self._spool is not None:
            with contextlib.suppress(OSError):
                self._spool.remove(key)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None and entry.state in (_State.QUEUED, _State.OVERFLOW):
                self._retire(entry.seq)
                del self._entries[key]
                if entry.state is _State.QUEUED:
                    self._in_memory -= 1
                else:
                    with contextlib.suppress(ValueError):
                        self._overflow.remove(key)
                self._work.notify()
        return 1

    def _read_own(self, key: str) -> WriteJob | None:
        if self._spool is None:
            return None
        try:
            return self._spool.read(self._spool.path(key))
        except (OSError, ValueError):
            return None

    def _merged_with_pending(self, key: str, job: WriteJob) -> WriteJob:
        """Combine ``job`` with the version of the same id still pending, wherever it is."""
        assert self._merge is not None
        with self._lock:
            entry = self._entries.get(key)
            older = None
            if entry is not None:
                older = entry.next.job if entry.next is not None else entry.job
        if older is None:  # on disk only: overflow, or a failed job kept for the next start
            older = self._read_own(key)
        if older is None:
            return job
        try:
            return self._merge(older, job)
        except Exception:
            _log.exception("%s: merging job %s with its pending version failed; the newer one wins",
                           self.name, job.job_id)
            return job

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every job submitted before this call has finished (succeeded or finally failed).

        Returns False if ``timeout`` seconds passed first, or the writer was closed meanwhile.
        """
        with self._lock:
            waiting = set(self._outstanding)
            if not waiting:
                return True
            if self._stopping:
                return False
            self._flush_waiters.append(waiting)
            try:
                self._done.wait_for(lambda: not waiting or self._stopping, timeout)
            finally:
                self._flush_waiters.remove(waiting)
            return not waiting

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
        with self._lock:
            self._stopping = True
            left = len(self._outstanding)
            self._work.notify_all()
            self._done.notify_all()
        for thread in self._threads:
            thread.join(None if deadline is None else max(0.0, deadline - time.monotonic()))
        if left:
            where = f"left in the spool at {self._spool_dir} for replay" if self._spool else "LOST (no spool)"
            _log.warning("%s closed with %d job(s) still pending: %s", self.name, left, where)
        if self._spool is not None:
            if any(thread.is_alive() for thread in self._threads):
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
        file is claimed by exactly one of them. Replayed jobs are loaded lazily, so replaying a
        huge spool respects ``max_pending`` too.
        """
        spool = self._spool
        if spool is None:
            return 0
        with self._lock:
            if self._stopping:
                return 0
        count = 0

        def place(staged: Path, key: str) -> None:
            nonlocal count
            count += self._place_adopted(spool, staged, key)

        try:
            # Our own failures are listed before adopting: an adopted job that already ran (and
            # failed again) by the time we look must not be queued a second time in this round.
            own = spool.own_keys() if own_failures else []
            spool.adopt_dead(place)
            for key in own:
                with self._stripe(key), self._lock:
                    if key not in self._entries and spool.path(key).exists():
                        self._register_on_disk(key)
                        count += 1
        except OSError as exc:
            _log.warning("%s: replaying the spool at %s failed part-way: %s", self.name, spool.root, exc)
        with self._lock:
            self._counts["replayed"] += count
        if count:
            _log.info("%s: replaying %d job(s) from the spool at %s", self.name, count, spool.root)
        return count

    @property
    def stats(self) -> WriterStats:
        """A consistent snapshot of the counters."""
        with self._lock:
            entries = list(self._entries.values())
            return WriterStats(
                **self._counts,
                pending=len(self._outstanding),
                in_memory=self._in_memory,
                overflow=sum(1 for e in entries if e.state is _State.OVERFLOW),
                spooled=sum(e.spooled for e in entries) + sum(e.next.spooled for e in entries if e.next),
            )

    def __enter__(self) -> BackgroundWriter:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --------------------------------------------------------------------------- submit internals

    @contextmanager
    def _stripe(self, key: str) -> Iterator[None]:
        """Serialise disk writes and queue updates for one job_id (lock order: stripe, then _lock)."""
        with self._stripes[int(key[:8], 16) % _STRIPES]:
            yield

    def _spool_write(self, key: str, job: WriteJob) -> bool:
        """Write the job's spool file; False (with a WARNING once per bad spell) when it cannot."""
        if self._spool is None:
            return False
        try:
            data = encode_job(job)
        except (TypeError, ValueError) as exc:
            _log.warning(
                "%s: job %s has a payload that is not JSON-serialisable (%s); kept in memory only",
                self.name,
                job.job_id,
                exc,
            )
            return False
        try:
            self._spool.write(key, data)
        except OSError as exc:
            with self._lock:
                self._counts["spool_errors"] += 1
                first = not self._spool_degraded
                self._spool_degraded = True
            log = _log.warning if first else _log.debug
            log(
                "%s: cannot write the spool at %s (%s); job %s is kept in memory only and is lost if "
                "this process dies (degraded durability)",
                self.name,
                self._spool.dir,
                exc,
                job.job_id,
            )
            return False
        if self._spool_degraded:
            with self._lock:
                self._spool_degraded = False
            _log.info("%s: the spool at %s is writable again", self.name, self._spool.dir)
        return True

    def _log_submit_after_close(self, job: WriteJob, spooled: bool) -> None:
        if spooled:
            _log.warning("%s is closed: job %s was spooled for the next start", self.name, job.job_id)
        else:
            _log.error(
                "%s is closed and has no spool: job %s (conversation_id=%s) was dropped",
                self.name,
                job.job_id,
                conversation_id_of(job),
            )

    def _accept(self, key: str, job: WriteJob, spooled: bool, *, submitted: bool = True) -> None:
        """Queue a submission, replacing any pending one with the same key (caller holds _lock)."""
        seq = next(self._seq)
        self._outstanding.add(seq)
        if submitted:  # (replayed jobs are counted by replay_spool)
            self._counts["submitted"] += 1
        entry = self._entries.get(key)
        if entry is None:
            if spooled and self._in_memory >= self._max_pending:
                self._entries[key] = _Entry(key, _State.OVERFLOW, seq, spooled, None)
                self._overflow.append(key)
            else:
                self._warn_if_over_capacity()
                entry = self._entries[key] = _Entry(key, _State.QUEUED, seq, spooled, job)
                self._in_memory += 1
                self._push(entry, 0.0)
        elif entry.state is _State.RUNNING:
            if entry.next is not None:
                self._retire(entry.next.seq)
                self._counts["replaced"] += 1
            # The running version counts as replaced only if it then fails (see _failed_attempt).
            entry.next = _Next(job, seq, spooled)
        else:
            self._retire(entry.seq)
            self._counts["replaced"] += 1
            entry.seq, entry.spooled = seq, spooled
            entry.generation += 1
            if entry.state is _State.OVERFLOW and spooled:
                pass  # the file already holds the new version; it is loaded when there is room
            else:
                if entry.state is _State.OVERFLOW:  # the disk has the old version: keep the new in memory
                    self._in_memory += 1
                # (a LOADING entry already holds its memory slot; the loader sees the new generation)
                entry.state, entry.job = _State.QUEUED, job
                self._push(entry, 0.0)
        self._work.notify()

    def _register_on_disk(self, key: str) -> None:
        """Track a spool file as a pending job loaded when there is room (caller holds _lock)."""
        seq = next(self._seq)
        self._outstanding.add(seq)
        self._entries[key] = _Entry(key, _State.OVERFLOW, seq, True, None)
        self._overflow.append(key)
        self._work.notify()

    def _warn_if_over_capacity(self) -> None:
        if self._in_memory < self._max_pending:
            self._over_capacity_warned = False
        elif not self._over_capacity_warned:
            self._over_capacity_warned = True
            _log.warning(
                "%s: more than max_pending=%d jobs and the spool is unavailable; holding them in memory "
                "rather than dropping them",
                self.name,
                self._max_pending,
            )

    def _place_adopted(self, spool: Spool, staged: Path, key: str) -> int:
        """Settle a job file just claimed from a dead writer; 1 if it was queued, else 0."""
        with self._stripe(key):
            final = spool.path(key)
            with self._lock:
                entry = self._entries.get(key)
            if entry is None and not final.exists():
                os.replace(staged, final)
                with self._lock:
                    self._register_on_disk(key)
                return 1
            # We hold a version of this job too: keep whichever was submitted last.
            try:
                adopted = spool.read(staged)
            except (OSError, ValueError) as exc:
                self._quarantine(spool, staged, exc)
                return 0
            mine = self._latest_version(spool, entry, final)
            if mine is not None and self._merge is not None:
                older, newer = (mine, adopted) if mine.created_at <= adopted.created_at else (adopted, mine)
                try:
                    adopted = self._merge(older, newer)
                except Exception:
                    _log.exception("%s: merging adopted job %s failed; the newer one wins", self.name, key)
                    adopted = newer
                spool.write(key, encode_job(adopted))
                staged.unlink(missing_ok=True)
            elif mine is not None and mine.created_at >= adopted.created_at:
                staged.unlink(missing_ok=True)
                return 0
            else:
                os.replace(staged, final)
            with self._lock:
                if key in self._entries:
                    self._accept(key, adopted, True, submitted=False)
                else:
                    self._register_on_disk(key)
            return 1

    def _latest_version(self, spool: Spool, entry: _Entry | None, final: Path) -> WriteJob | None:
        with self._lock:
            if entry is not None and entry.next is not None:
                return entry.next.job
            if entry is not None and entry.job is not None:
                return entry.job
        try:
            return spool.read(final)
        except (OSError, ValueError):
            return None

    def _quarantine(self, spool: Spool, path: Path, exc: BaseException) -> None:
        moved = spool.quarantine(path)
        _log.error(
            "%s: spool file %s is unreadable (%s); moved to %s",
            self.name,
            path,
            exc,
            moved or "nowhere (left in place)",
        )

    # --------------------------------------------------------------------------- worker internals

    def _push(self, entry: _Entry, delay: float) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._tie), entry.key, entry.generation))

    def _retire(self, seq: int) -> None:
        """Mark a submission finished (caller holds _lock) and wake the flushes waiting for it."""
        self._outstanding.discard(seq)
        if self._flush_waiters:
            for waiting in self._flush_waiters:
                waiting.discard(seq)
            self._done.notify_all()

    def _worker(self) -> None:
        while True:
            task = self._take()
            if task is None:
                return
            try:
                if isinstance(task, _Load):
                    self._load(task)
                else:
                    self._run(task)
            except Exception:  # a bug here must not kill the worker and strand the queue
                _log.exception("%s: internal error while handling job key %s", self.name, task.key)

    def _take(self) -> _Run | _Load | None:
        """Block until there is work: a job whose ready-time has come, or an overflow job to load."""
        with self._lock:
            while not self._stopping:
                while self._overflow and self._in_memory < self._max_pending:
                    key = self._overflow.popleft()
                    entry = self._entries.get(key)
                    if entry is not None and entry.state is _State.OVERFLOW:
                        entry.state = _State.LOADING
                        self._in_memory += 1
                        return _Load(key, entry.generation)
                while self._heap:
                    _, _, key, generation = self._heap[0]
                    entry = self._entries.get(key)
                    if entry is not None and entry.generation == generation and entry.state is _State.QUEUED:
                        break
                    heapq.heappop(self._heap)  # superseded by a newer submission
                if not self._heap:
                    self._work.wait()
                    continue
                ready_at, _, key, generation = self._heap[0]
                wait = ready_at - time.monotonic()
                if wait > 0:
                    self._work.wait(wait)
                    continue
                heapq.heappop(self._heap)
                entry = self._entries[key]
                entry.state = _State.RUNNING
                assert entry.job is not None
                return _Run(key, generation, entry.job)
            return None

    def _load(self, task: _Load) -> None:
        assert self._spool is not None
        path = self._spool.path(task.key)
        job: WriteJob | None = None
        error: BaseException | None = None
        try:
            job = self._spool.read(path)
            if job_key(job.job_id) != task.key:
                job, error = None, ValueError("job_id does not match the file name")
        except (OSError, ValueError) as exc:
            error = exc
        if job is not None:
            with self._lock:
                entry = self._entries.get(task.key)
                if entry is not None and entry.generation == task.generation and entry.state is _State.LOADING:
                    entry.state, entry.job = _State.QUEUED, job
                    self._push(entry, 0.0)
                    self._work.notify()
                # else: a newer submission took over this entry (and its memory slot)
            return
        with self._stripe(task.key):  # no resubmission may rewrite the file while we set it aside
            with self._lock:
                entry = self._entries.get(task.key)
                if entry is None or entry.generation != task.generation or entry.state is not _State.LOADING:
                    return
            if isinstance(error, FileNotFoundError):
                _log.error("%s: spool file %s vanished before it could be run", self.name, path)
            else:
                self._quarantine(self._spool, path, error or ValueError("unreadable"))
            with self._lock:  # only now does flush() see it finished, with the ERROR already logged
                self._counts["failed"] += 1
                self._retire(entry.seq)
                del self._entries[task.key]
                self._in_memory -= 1
                self._work.notify()

    def _run(self, task: _Run) -> None:
        ctx = JobContext(self, task.key, task.generation, task.job)
        try:
            self._handler(ctx)
        except BaseException as exc:  # even SystemExit from a handler must not strand the job
            self._failed_attempt(task, ctx.job, exc)
        else:
            self._succeeded(task)

    def _succeeded(self, task: _Run) -> None:
        with self._stripe(task.key):
            with self._lock:
                superseded = self._entries[task.key].next is not None
            if self._spool is not None and not superseded:
                try:
                    self._spool.remove(task.key)
                except OSError as exc:  # it runs again after a restart: harmless, keys are stable
                    _log.warning("%s: could not remove the spool file of job %s: %s", self.name, task.key, exc)
            with self._lock:
                entry = self._entries[task.key]
                self._counts["succeeded"] += 1
                self._retire(entry.seq)
                self._advance(entry)

    def _failed_attempt(self, task: _Run, job: WriteJob, exc: BaseException) -> None:
        attempts = job.attempts + 1
        try:
            retryable = bool(self._is_retryable(exc))
        except Exception:
            _log.exception("%s: is_retryable raised; treating the error as not retryable", self.name)
            retryable = False
        if retryable and attempts < self._max_attempts:
            cap = min(self._max_delay, self._base_delay * 2.0 ** min(attempts - 1, 60))
            delay = max(0.0, float(self._jitter(cap)))
            with self._lock:
                entry = self._entries[task.key]
                if entry.next is None:
                    entry.job = dataclasses.replace(job, attempts=attempts)
                    entry.state = _State.QUEUED
                    self._push(entry, delay)
                    self._counts["retried"] += 1
                    self._work.notify()
                    _log.debug("%s: job %s failed (%r), retry %d in %.3fs", self.name, job.job_id, exc, attempts, delay)
                    return
                self._supersede(entry)  # a newer version is waiting: run that instead
                return
        with self._lock:
            entry = self._entries[task.key]
            if entry.next is not None:
                self._supersede(entry)
                return
            spooled = entry.spooled
        failed = dataclasses.replace(job, attempts=0, rounds=job.rounds + 1)
        dead = failed.rounds >= self._max_rounds
        if dead:
            where = self._bury(task.key, failed, exc)
        elif spooled:
            where = (
                "its spool file is kept for replay at the next start "
                f"(failed round {failed.rounds} of {self._max_rounds})"
            )
            self._record_round(task.key, failed)
        else:
            where = "it was never spooled, so it is LOST when this process exits"
        # Log before the job counts as finished, so whoever flush()es sees the ERROR already.
        _log.error(
            "%s: write job %s (conversation_id=%s) failed after %d attempt(s)%s; %s",
            self.name,
            job.job_id,
            conversation_id_of(job),
            attempts,
            "" if retryable else " with a non-retryable error",
            where,
            exc_info=exc,
        )
        with self._lock:
            self._counts["failed"] += 1
            if dead:
                self._counts["dead_lettered"] += 1
            entry = self._entries[task.key]
            self._retire(entry.seq)
            self._advance(entry)

    def _record_round(self, key: str, failed: WriteJob) -> None:
        """Keep the count of failed rounds in the job's spool file (it survives restarts)."""
        assert self._spool is not None
        with self._stripe(key):
            with self._lock:
                entry = self._entries.get(key)
                if entry is None or entry.next is not None:
                    return  # a newer submission owns the file now
            with contextlib.suppress(OSError, TypeError, ValueError):
                self._spool.write(key, encode_job(failed))

    def _bury(self, key: str, failed: WriteJob, exc: BaseException) -> str:
        """A job failed its last round: store what can be stored, then make it a dead letter."""
        salvage = "nothing was salvaged"
        if self._on_dead_letter is not None:
            try:
                self._on_dead_letter(failed, exc)
                salvage = "what could be stored without the failing step was stored"
            except Exception as fallback_error:
                _log.error("%s: storing the fallback of dead job %s failed too: %r", self.name, failed.job_id,
                           fallback_error)
                salvage = f"its fallback failed too ({type(fallback_error).__name__})"
        if self._spool is None:
            return f"{salvage}; it had no spool file, so no dead letter was kept"
        try:
            with self._stripe(key):
                path = self._spool.bury(key, failed, exc)
        except (OSError, TypeError, ValueError) as bury_error:
            return f"{salvage}; moving it to the dead letters failed ({bury_error}), its spool file is kept"
        return f"it is a dead letter after {failed.rounds} failed rounds ({path}); {salvage}"

    def _supersede(self, entry: _Entry) -> None:
        """Drop a failed running version because a newer one is waiting (caller holds _lock)."""
        self._counts["replaced"] += 1
        self._retire(entry.seq)
        self._advance(entry)

    def _advance(self, entry: _Entry) -> None:
        """After a run: start the waiting newer version, or forget the job (caller holds _lock)."""
        if entry.next is not None:
            nxt, entry.next = entry.next, None
            entry.job, entry.seq, entry.spooled = nxt.job, nxt.seq, nxt.spooled
            entry.generation += 1
            entry.state = _State.QUEUED
            self._push(entry, 0.0)
        else:
            del self._entries[entry.key]
            self._in_memory -= 1
        self._work.notify()

    def _checkpoint(self, key: str, generation: int, job: WriteJob, payload: dict[str, Any]) -> WriteJob:
        updated = dataclasses.replace(job, payload=dict(payload))
        data = encode_job(updated)  # raises into the handler: a payload we could not replay is a bug
        with self._stripe(key):
            with self._lock:
                entry = self._entries.get(key)
                current = (
                    entry is not None
                    and entry.generation == generation
                    and entry.state is _State.RUNNING
                    and entry.next is None
                )
                if current and entry is not None:
                    entry.job = updated
            if current and self._spool is not None:
                try:
                    self._spool.write(key, data)
                except OSError as exc:
                    _log.warning("%s: could not checkpoint job %s to the spool: %s", self.name, job.job_id, exc)
        return updated

    def _at_exit(self) -> None:
        """Interpreter exit: finish what we can within exit_timeout (close() reports what is left)."""
        start = time.monotonic()
        self.flush(self._exit_timeout)
        remaining = self._exit_timeout - (time.monotonic() - start)
        self.close(timeout=max(0.1, remaining), drain=False)
