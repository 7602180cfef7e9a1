"""The background writer's side of its spool: durable writes, merges, cancels, replays and adoptions.

:class:`WriterSpool` is everything the writer does to disk on behalf of its queue
(:mod:`._job_queue`): writing a job's file before it is queued (degrading to memory, with a warning,
when the disk refuses), combining a re-submitted job with the version still pending wherever it is,
removing the pending jobs ``forget`` cancels, and replaying what dead writers and earlier failures
left behind. Per-key stripe locks keep the file and the queue of one job in step.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from ._job_queue import JobQueue, Run
from ._s3_location import S3Location
from ._s3_spool import S3Spool
from ._spool import Spool
from ._spool_backend import AdoptedJob, Location, SpoolBackend
from ._spool_format import WriteJob, conversation_id_of, encode_job, job_key

__all__ = ["WriterSpool"]

_log = logging.getLogger(__name__.rpartition(".")[0] + ".writer")

_STRIPES = 64

Merge = Callable[[WriteJob, WriteJob], WriteJob]


def _reconcile(mine: WriteJob | None, adopted: WriteJob, merge: Merge | None) -> WriteJob | None:
    """Which version of a job to keep when a dead writer's file meets a version this writer holds.

    Without ``merge`` the later submission wins (``None``: keep ``mine``); with it, the two are
    combined, older first, so neither's content is lost.
    """
    if mine is None:
        return adopted
    older, newer = (mine, adopted) if mine.created_at <= adopted.created_at else (adopted, mine)
    if merge is None:
        return None if newer is mine else adopted
    return merge(older, newer)


class WriterSpool:
    """A writer's spool (or its absence) and the disk side of every queue change.

    The spool is a local directory (:class:`~._spool.Spool`) or, for a location that is an ``s3://``
    URL (also when it arrives folded into a ``Path``), an S3 prefix shared by a fleet
    (:class:`~._s3_spool.S3Spool`). On a shared spool a job has one object for every instance, so a
    submission is merged with whatever version is there now, compare-and-swap, instead of with this
    writer's own file: another instance may have re-ended the same conversation.
    """

    def __init__(self, spool_dir: Path | S3Location | None, queue: JobQueue, *, name: str,
                 merge: Merge | None) -> None:
        self.spool: SpoolBackend | None = None
        self._shared: S3Spool | None = None
        self.dir = spool_dir
        self.name = name
        self._queue = queue
        self._lock = queue.lock
        self._counts = queue.counts  # the writer's counters: the queue owns them, under its lock
        self._merge = merge
        self._stripes = tuple(threading.Lock() for _ in range(_STRIPES))
        self._published: dict[str, WriteJob] = {}  # key -> the submission merged_with_pending just wrote
        self._degraded = False
        self._over_capacity_warned = False
        if spool_dir is not None:
            remote = spool_dir if isinstance(spool_dir, S3Location) else S3Location.of(spool_dir)
            try:
                if remote is not None:
                    self.spool = self._shared = S3Spool(remote)
                else:
                    assert isinstance(spool_dir, Path)
                    self.spool = Spool(spool_dir)
            except OSError as exc:
                self._degraded = True
                _log.warning(
                    "%s: spool directory %s is unusable (%s); jobs are kept in memory only and are "
                    "lost if this process dies (degraded durability)", name, remote or spool_dir, exc,
                )

    @contextmanager
    def stripe(self, key: str) -> Iterator[None]:
        """Serialise disk writes and queue updates for one job_id (lock order: stripe, then the queue's)."""
        with self._stripes[int(key[:8], 16) % _STRIPES]:
            yield

    def read(self, key: str) -> WriteJob | None:
        """This writer's file of ``key`` (``None`` when absent or unreadable)."""
        if self.spool is None:
            return None
        try:
            return self.spool.read(self.spool.path(key))
        except (OSError, ValueError):
            return None

    def merged_with_pending(self, key: str, job: WriteJob) -> WriteJob:
        """Combine ``job`` with the version of the same id still pending, wherever it is (caller holds stripe).

        On a shared spool the combined job is written here too, compare-and-swap (merging with the
        version another instance wrote, if one did), and the :meth:`write` that follows finds it done.
        """
        assert self._merge is not None
        if self._shared is not None:
            return self._publish(key, job)
        with self._lock:
            _pending, older = self._queue.latest(key)
        if older is None:  # on disk only: not loaded yet, or a failed job kept for the next start
            older = self.read(key)
        return self._merged(older, job)

    def _cancel_key(self, key: str, predicate: Callable[[WriteJob], bool]) -> int:
        """Cancel one key's pending version if ``predicate`` selects it (caller holds its stripe)."""
        with self._lock:
            state = self._queue.state(key)
            if state == "running":
                waiting = self._queue.peek_next(key)
                if waiting is None and self._queue.has_next(key):
                    waiting = self.read(key)  # the file holds the waiting version
                if waiting is not None and predicate(waiting):
                    return int(self._queue.drop_next(key))  # the running version removes the file when done
                return 0
            _pending, job = self._queue.latest(key)
        job = job or self.read(key)
        if job is None or not predicate(job):
            return 0
        if self.spool is not None:
            with contextlib.suppress(OSError):
                self.spool.remove(key)
        with self._lock:
            self._queue.drop_queued(key)
        return 1

    def _merged(self, older: WriteJob | None, job: WriteJob) -> WriteJob:
        if older is None or self._merge is None:
            return job
        try:
            return self._merge(older, job)
        except Exception:
            _log.exception("%s: merging job %s with its pending version failed; the newer one wins",
                           self.name, job.job_id)
            return job

    def _publish(self, key: str, job: WriteJob) -> WriteJob:
        """Submit ``job`` to the shared spool, merged with the pending version (caller holds stripe).

        The pending version is the one another instance wrote, if any, else this writer's own in
        memory. Returns the job to queue; when the spool cannot take it, the in-memory merge (and
        :meth:`write` then reports the degraded durability).
        """
        assert self._shared is not None
        with self._lock:
            _pending, mine = self._queue.latest(key)

        def make(theirs: WriteJob | None) -> WriteJob:
            return self._merged(theirs if theirs is not None else mine, job)

        try:
            published = self._shared.publish(key, make)
        except (OSError, TypeError, ValueError):
            return make(None)  # write() tries again, and warns if it still cannot
        self._published[key] = published
        return published

    def write(self, key: str, job: WriteJob) -> bool:
        """Write the job's spool file; False (with a WARNING once per bad spell) when it cannot."""
        if self.spool is None:
            return False
        if self._shared is not None and self._published.pop(key, None) is job:
            self._writable_again()  # merged_with_pending has just written it
            return True
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
            if self._shared is not None:
                self._shared.publish(key, lambda theirs: self._merged(theirs, job))
            else:
                self.spool.write(key, data)
        except OSError as exc:
            with self._lock:
                self._counts["spool_errors"] += 1
                first = not self._degraded
                self._degraded = True
            log = _log.warning if first else _log.debug
            log(
                "%s: cannot write the spool at %s (%s); job %s is kept in memory only and is lost if "
                "this process dies (degraded durability)",
                self.name,
                self.spool.dir,
                exc,
                job.job_id,
            )
            return False
        self._writable_again()
        return True

    def _writable_again(self) -> None:
        if self._degraded and self.spool is not None:
            with self._lock:
                self._degraded = False
            _log.info("%s: the spool at %s is writable again", self.name, self.spool.dir)

    def _place_adopted(self, spool: SpoolBackend, adopted: AdoptedJob) -> int:
        """Settle a job just claimed from a dead writer; 1 if it was queued, else 0."""
        key = adopted.key
        with self.stripe(key):
            with self._lock:
                pending, mine = self._queue.latest(key)
            collides = adopted.collides()
            if not pending and not collides:
                adopted.keep()
                with self._lock:
                    return int(self._queue.register_on_disk(key))
            # We hold a version of this job too: keep the later one, or merge them.
            try:
                theirs = adopted.read()
            except (OSError, ValueError) as exc:
                self.quarantine(adopted.location, exc)
                return 0
            try:
                kept = _reconcile(mine or (self.read(key) if collides else None), theirs, self._merge)
            except Exception:
                _log.exception("%s: merging adopted job %s failed; the newer one wins", self.name, key)
                kept = theirs
            adopted.discard()
            if kept is None:
                return 0
            spool.write(key, encode_job(kept))
            with self._lock:
                if pending:
                    self._queue.accept(key, kept, True)
                    return 1
                return int(self._queue.register_on_disk(key))

    def quarantine(self, path: Location, exc: BaseException) -> None:
        """Set an unreadable job file aside (never deleted) with an ERROR saying where it went."""
        assert self.spool is not None
        moved = self.spool.quarantine(path)
        _log.error("%s: spool file %s is unreadable (%s); moved to %s", self.name, path, exc,
                   moved or "nowhere (left in place)")

    def replay(self, *, own_failures: bool = True) -> int:
        """Queue the jobs left in the spool by dead processes and by earlier failures of this one.

        Returns how many jobs were queued. Safe to call from several processes at once: each job
        file is claimed by exactly one of them. Replayed jobs are read from disk when they run, so
        replaying a huge spool takes no memory for their payloads.
        """
        spool = self.spool
        if spool is None:
            return 0
        count = 0

        def place(adopted: AdoptedJob) -> None:
            nonlocal count
            count += self._place_adopted(spool, adopted)

        try:
            # Our own failures are listed before adopting: an adopted job that already ran (and
            # failed again) by the time we look must not be queued a second time in this round.
            own = spool.own_keys() if own_failures else []
            spool.adopt(place)
            for key in own:
                with self.stripe(key):
                    if spool.exists(key):
                        with self._lock:
                            count += int(self._queue.register_on_disk(key))
        except OSError as exc:
            _log.warning("%s: replaying the spool at %s failed part-way: %s", self.name, spool.root, exc)
        with self._lock:
            self._counts["replayed"] += count
        if count:
            _log.info("%s: replaying %d job(s) from the spool at %s", self.name, count, spool.root)
        return count

    def cancel(self, predicate: Callable[[WriteJob], bool]) -> int:
        """Remove every pending job ``predicate`` selects, from memory and from the spool.

        Used by ``forget``: a forgotten user's pending conversations must not be stored later. A job
        whose handler is running right now cannot be stopped here; a newer version waiting behind it
        is removed. Returns how many pending jobs were removed.
        """
        with self._lock:
            keys = set(self._queue.keys())
        if self.spool is not None:
            with contextlib.suppress(OSError):
                keys.update(self.spool.own_keys())  # failed jobs waiting for the next start
        removed = 0
        for key in sorted(keys):
            with self.stripe(key):
                removed += self._cancel_key(key, predicate)
        with self._lock:
            self._counts["cancelled"] += removed
        return removed

    def log_submit_after_close(self, job: WriteJob, spooled: bool) -> None:
        if spooled:
            _log.warning("%s is closed: job %s was spooled for the next start", self.name, job.job_id)
        else:
            _log.error(
                "%s is closed and has no spool: job %s (conversation_id=%s) was dropped",
                self.name,
                job.job_id,
                conversation_id_of(job),
            )

    def warn_if_over_capacity(self) -> None:
        """Caller holds the queue's lock; a job that cannot be spooled is about to be held in memory."""
        if self._queue.in_memory() < self._queue.max_in_memory:
            self._over_capacity_warned = False
        elif not self._over_capacity_warned:
            self._over_capacity_warned = True
            _log.warning(
                "%s: more than max_pending=%d jobs and the spool is unavailable; holding them in memory "
                "rather than dropping them",
                self.name,
                self._queue.max_in_memory,
            )

    def load(self, run: Run) -> WriteJob | None:
        """Read a running job's payload from its spool file; quarantine it (a finished failure) if unreadable.

        ``None``: nothing to run (unreadable, or parked because its group turned out to be running).
        """
        assert self.spool is not None
        path = self.spool.path(run.key)
        error: BaseException
        try:
            job = self.spool.read(path)
            if job_key(job.job_id) == run.key:
                job = dataclasses.replace(job, attempts=run.attempts)
                with self._lock:
                    runs_now = self._queue.loaded(run, job)  # else parked: its group is running
                return job if runs_now else None
            error = ValueError("job_id does not match the file name")
        except (OSError, ValueError) as exc:
            error = exc
        with self.stripe(run.key):
            if isinstance(error, FileNotFoundError):
                _log.error("%s: spool file %s vanished before it could be run", self.name, path)
            else:
                self.quarantine(path, error)
            with self._lock:  # only now does flush() see it finished, with the ERROR already logged
                self._counts["failed"] += 1
                self._queue.finish(run)
        return None

    def checkpoint(self, run: Run, job: WriteJob, payload: dict[str, Any]) -> WriteJob:
        """A running job's new payload, in the queue and atomically in its spool file (see ``JobContext``)."""
        updated = dataclasses.replace(job, payload=dict(payload))
        data = encode_job(updated)  # raises into the handler: a payload we could not replay is a bug
        with self.stripe(run.key):
            with self._lock:
                current = self._queue.is_current(run)
                if current:
                    self._queue.update(run, updated)
            if current and self.spool is not None:
                try:
                    self.spool.write(run.key, data)
                except OSError as exc:
                    _log.warning("%s: could not checkpoint job %s to the spool: %s", self.name, job.job_id, exc)
        return updated

    def record_round(self, run: Run, failed: WriteJob) -> None:
        """Keep the count of failed rounds in the job's spool file (it survives restarts)."""
        assert self.spool is not None
        with self.stripe(run.key):
            with self._lock:
                if not self._queue.is_current(run):
                    return  # a newer submission owns the file now
            with contextlib.suppress(OSError, TypeError, ValueError):
                self.spool.write(run.key, encode_job(failed))

    def bury(
        self, key: str, failed: WriteJob, exc: BaseException,
        salvage_with: Callable[[WriteJob, BaseException], None] | None,
    ) -> str:
        """A job failed its last round: store what can be stored, then make it a dead letter."""
        salvage = "nothing was salvaged"
        if salvage_with is not None:
            try:
                salvage_with(failed, exc)
                salvage = "what could be stored without the failing step was stored"
            except Exception as fallback_error:
                _log.error("%s: storing the fallback of dead job %s failed too: %r", self.name, failed.job_id,
                           fallback_error)
                salvage = f"its fallback failed too ({type(fallback_error).__name__})"
        if self.spool is None:
            return f"{salvage}; it had no spool file, so no dead letter was kept"
        try:
            with self.stripe(key):
                path = self.spool.bury(key, failed, exc)
        except (OSError, TypeError, ValueError) as bury_error:
            return f"{salvage}; moving it to the dead letters failed ({bury_error}), its spool file is kept"
        return f"it is a dead letter after {failed.rounds} failed rounds ({path}); {salvage}"
