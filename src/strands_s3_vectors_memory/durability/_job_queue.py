"""The background writer's queue: which job versions are pending, which run next, who waits for them.

Pure state (no threads of its own, no I/O), guarded by one lock. It is the one owner of the writer's
shared state: the lock that the writer and its spool side take, and the writer's counters (read as one
:class:`~._writer.WriterStats` snapshot). The rules it keeps:

* one pending version per job key; a newer submission replaces a queued one, and waits behind a
  running one (``next``) so a key never runs twice at once;
* retries wait in a heap of ready-times, so a job backing off never holds a worker;
* a version's payload may live in memory or only in its spool file (``job is None``): replayed
  jobs, and submissions beyond ``max_in_memory``, are read back from disk when they run, so a huge
  spool is replayed in bounded memory;
* every submission has a sequence number; ``flush`` waits for the numbers issued before it;
* jobs of one group (the conversations of one memory scope) never run at the same time, and no
  worker waits for a group: a job whose group is running is parked, keeping its place (ready-time
  and tie), and the earliest parked one goes back into the heap the moment its group frees. A job
  known only by its spool file has no group until a worker reads it; if its group is running then,
  it is parked (its payload left on disk) instead of run.
"""

from __future__ import annotations

import heapq
import itertools
import threading
import time
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Literal

from ._spool_format import WriteJob

__all__ = ["COUNTS", "Group", "JobQueue", "Run"]

State = Literal["queued", "running"]
#: What jobs that must never run at the same time share (``None``: no such constraint).
Group = Hashable | None
_Item = tuple[float, int, str, int]  # a heap entry: (ready_at, tie, key, generation)
#: The writer's counters (see :class:`~._writer.WriterStats`), kept by the queue under its lock.
COUNTS = ("submitted", "succeeded", "retried", "failed", "replaced", "replayed", "spool_errors", "dead_lettered",
          "cancelled")


@dataclass
class _Version:
    """One submitted version of a job: its payload (``None``: in the spool file) and its number."""

    job: WriteJob | None
    seq: int
    spooled: bool
    attempts: int = 0  #: failed attempts this round, when the payload is not held in memory


@dataclass
class _Entry:
    key: str
    state: State
    current: _Version
    generation: int = 0
    next: _Version | None = None  #: a newer version waiting for the running one
    group: Group = None  #: the job's group, once its payload has been seen
    held: Group = None  #: the group this entry holds while it runs
    place: tuple[float, int] = (0.0, 0)  #: its heap place when it was taken (kept if it is parked)


@dataclass(frozen=True)
class Run:
    """A job handed to a worker: ``job`` is ``None`` when it must be read from the spool first."""

    key: str
    generation: int
    job: WriteJob | None
    attempts: int = 0  #: failed attempts this round of a job read from disk (not kept in its file)
    seq: int = 0  #: the version's ticket (its submission number)


class JobQueue:
    """Pending job versions by key, ready-times, and the flushes waiting for them."""

    def __init__(self, max_in_memory: int = 10_000, group: Callable[[WriteJob], Group] | None = None) -> None:
        self.max_in_memory = max_in_memory
        self._group_of = group
        self.lock = threading.Lock()
        self._work = threading.Condition(self.lock)  # workers wait here for ready jobs
        self._done = threading.Condition(self.lock)  # flush() waits here for finished jobs
        self._entries: dict[str, _Entry] = {}
        self._heap: list[_Item] = []
        self._running_groups: set[Group] = set()
        self._parked: dict[Group, list[_Item]] = {}  # group -> heap of jobs waiting for it to free
        self._tie = itertools.count()
        self._seq = itertools.count(1)
        self._outstanding: set[int] = set()
        self._flush_waiters: list[set[int]] = []
        self._in_memory = 0  # versions whose payload is held in memory
        self.stopping = False
        self.busy = 0  #: runs handed to workers and not yet given back (:meth:`idle`)
        self.counts = dict.fromkeys(COUNTS, 0)  #: the writer's counters (caller holds lock)

    # ------------------------------------------------------------------ submissions (caller holds lock)

    def accept(self, key: str, job: WriteJob, spooled: bool) -> tuple[int, bool]:
        """Queue a version of ``key``: its ticket (for :meth:`flush`), and whether it replaced a pending one.

        Beyond ``max_in_memory`` payloads, a spooled version keeps only its file: memory stays
        bounded however long the writer is kept from storing (an outage, a slow model).
        """
        version = self._version(job if not spooled or self._in_memory < self.max_in_memory else None, spooled)
        entry = self._entries.get(key)
        replaced = False
        if entry is None:
            entry = self._entries[key] = _Entry(key, "queued", version)
            self._push(entry, 0.0)
        elif entry.state == "running":
            if entry.next is not None:
                self._drop(entry.next)
                replaced = True
            entry.next = version  # the running version counts as replaced only if it then fails
        else:
            self._drop(entry.current)
            entry.current, entry.generation = version, entry.generation + 1
            self._push(entry, 0.0)
            replaced = True
        if entry.group is None:
            entry.group = self._group(job)
        self._work.notify()
        return version.seq, replaced

    def register_on_disk(self, key: str) -> bool:
        """Queue a spool file found on disk (a replay), unless ``key`` is pending; read when it runs."""
        if key in self._entries:
            return False
        entry = self._entries[key] = _Entry(key, "queued", self._version(None, True))
        self._push(entry, 0.0)
        self._work.notify()
        return True

    def latest(self, key: str) -> tuple[bool, WriteJob | None]:
        """Whether ``key`` is pending, and its newest version's payload (``None``: only on disk)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, None
        version = entry.next if entry.next is not None else entry.current
        return True, version.job

    def state(self, key: str) -> State | None:
        entry = self._entries.get(key)
        return entry.state if entry is not None else None

    def has_next(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.next is not None

    def spooled(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and entry.current.spooled

    def drop_queued(self, key: str) -> bool:
        """Remove a queued (not running) key; True if there was one."""
        entry = self._entries.get(key)
        if entry is None or entry.state != "queued":
            return False
        self._drop(entry.current)
        del self._entries[key]
        self._unpark(entry.group)  # it may have been the parked job its group's release woke
        self._work.notify()
        return True

    def drop_next(self, key: str) -> bool:
        """Remove the version waiting behind a running one; True if there was one."""
        entry = self._entries.get(key)
        if entry is None or entry.next is None:
            return False
        self._drop(entry.next)
        entry.next = None
        return True

    def peek_next(self, key: str) -> WriteJob | None:
        entry = self._entries.get(key)
        return entry.next.job if entry is not None and entry.next is not None else None

    # ------------------------------------------------------------------ workers

    def take(self) -> Run | None:
        """Block until a job's ready-time has come; mark it running. ``None`` once stopping."""
        with self.lock:
            while not self.stopping:
                while self._heap:
                    _, _, key, generation = self._heap[0]
                    entry = self._entries.get(key)
                    if entry is not None and entry.generation == generation and entry.state == "queued":
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
                item = heapq.heappop(self._heap)
                entry = self._entries[key]
                if entry.group in self._running_groups:
                    heapq.heappush(self._parked.setdefault(entry.group, []), item)  # no worker waits for it
                    continue
                entry.state, entry.place = "running", item[:2]
                self._hold_group(entry)
                self.busy += 1
                return Run(key, generation, entry.current.job, entry.current.attempts, entry.current.seq)
            return None

    def idle(self) -> None:
        """A worker is done with the run :meth:`take` gave it, however it ended."""
        with self.lock:
            self.busy -= 1

    def loaded(self, run: Run, job: WriteJob) -> bool:
        """The worker read a running job's payload from disk (caller holds lock).

        False when the payload shows its group is running in another worker: the job is parked in
        the place it was taken from (its payload left on disk) and must not run now.
        """
        entry = self._entries.get(run.key)
        if entry is None or entry.generation != run.generation:
            return True
        if entry.held is None:
            entry.group = self._group(job)
            if entry.group in self._running_groups:
                self._park(entry)
                return False
            self._hold_group(entry)
        if entry.current.job is None:
            self._hold(entry.current, job)
        return True

    def update(self, run: Run, job: WriteJob) -> None:
        """A checkpoint of the running version: retries see it (caller holds lock)."""
        entry = self._entries.get(run.key)
        if entry is not None and entry.generation == run.generation and entry.current.job is not None:
            self._hold(entry.current, job)

    def keys(self) -> list[str]:
        return list(self._entries)

    def is_current(self, run: Run) -> bool:
        """Whether ``run`` is still the version that owns its key's spool file (caller holds lock)."""
        entry = self._entries.get(run.key)
        return entry is not None and entry.generation == run.generation and entry.next is None

    def retry(self, run: Run, job: WriteJob, delay: float) -> bool:
        """Schedule another attempt unless a newer version is waiting (then False: run that instead)."""
        entry = self._entries[run.key]
        if entry.next is not None:
            return False
        if entry.current.job is not None or not entry.current.spooled:
            self._hold(entry.current, job)  # keep the attempt count (and checkpoints) with the payload
        else:
            entry.current.attempts = job.attempts
        entry.state = "queued"
        self._release_group(entry)  # a job backing off never holds its group's other jobs
        self._push(entry, delay)
        self._work.notify()
        return True

    def finish(self, run: Run) -> None:
        """The running version is done (succeeded, failed, or superseded): start ``next`` or forget the key."""
        entry = self._entries[run.key]
        self._drop(entry.current)
        self._release_group(entry)
        if entry.next is not None:
            entry.current, entry.next = entry.next, None
            entry.generation += 1
            entry.state = "queued"
            self._push(entry, 0.0)
        else:
            del self._entries[run.key]
        self._work.notify()

    # ------------------------------------------------------------------ flush, stop, stats

    def flush(self, timeout: float | None, tickets: set[int] | None = None) -> bool:
        """Wait until every version accepted before this call (or those ``tickets``) has finished.

        False on timeout or stop.
        """
        with self.lock:
            waiting = set(self._outstanding) if tickets is None else tickets & self._outstanding
            if not waiting:
                return True
            if self.stopping:
                return False
            self._flush_waiters.append(waiting)
            try:
                self._done.wait_for(lambda: not waiting or self.stopping, timeout)
            finally:
                self._flush_waiters.remove(waiting)
            return not waiting

    def stop(self) -> int:
        """Wake every worker and flush to stop; how many versions are still pending."""
        with self.lock:
            self.stopping = True
            self._work.notify_all()
            self._done.notify_all()
            return len(self._outstanding)

    def pending(self) -> int:
        return len(self._outstanding)

    def in_memory(self) -> int:
        return self._in_memory

    def on_disk_only(self) -> int:
        return sum(1 for e in self._entries.values() for v in (e.current, e.next) if v is not None and v.job is None)

    def spooled_count(self) -> int:
        return sum(1 for e in self._entries.values() for v in (e.current, e.next) if v is not None and v.spooled)

    def _version(self, job: WriteJob | None, spooled: bool) -> _Version:
        version = _Version(None, next(self._seq), spooled)
        self._outstanding.add(version.seq)
        if job is not None:
            self._hold(version, job)
        return version

    def _hold(self, version: _Version, job: WriteJob | None) -> None:
        """Set a version's in-memory payload, keeping the count of payloads held."""
        self._in_memory += (job is not None) - (version.job is not None)
        version.job = job

    def _drop(self, version: _Version) -> None:
        """A version is finished or replaced: forget its payload and wake its flushes."""
        self._hold(version, None)
        self._retire(version.seq)

    def _push(self, entry: _Entry, delay: float) -> None:
        heapq.heappush(self._heap, (time.monotonic() + delay, next(self._tie), entry.key, entry.generation))

    # ------------------------------------------------------------------ groups (caller holds lock)

    def _group(self, job: WriteJob | None) -> Group:
        """``job``'s group (``None`` when unknown: its payload is on disk, or the function failed)."""
        if job is None or self._group_of is None:
            return None
        try:
            return self._group_of(job)
        except Exception:  # a job the handler cannot read either: it runs, and fails there
            return None

    def _hold_group(self, entry: _Entry) -> None:
        if entry.group is not None:
            entry.held = entry.group
            self._running_groups.add(entry.group)

    def _release_group(self, entry: _Entry) -> None:
        """The entry stopped running: its group is free, and the group's earliest parked job is ready."""
        group, entry.held = entry.held, None
        if group is not None:
            self._running_groups.discard(group)
            self._unpark(group)

    def _unpark(self, group: Group) -> None:
        """Put the earliest parked job of a free ``group`` back in the heap, in its old place."""
        parked = self._parked.get(group)
        while parked and group not in self._running_groups:
            item = heapq.heappop(parked)
            entry = self._entries.get(item[2])
            if entry is not None and entry.generation == item[3] and entry.state == "queued":
                heapq.heappush(self._heap, item)
                self._work.notify()
                break
        if not parked:
            self._parked.pop(group, None)

    def _park(self, entry: _Entry) -> None:
        """A job taken before its group was known, whose group turned out to be running: park it
        in the place it was taken from (a newer version waiting behind it replaces it, as when queued)."""
        if entry.next is not None:
            self._drop(entry.current)
            entry.current, entry.next = entry.next, None
            entry.generation += 1
        entry.state = "queued"
        heapq.heappush(self._parked.setdefault(entry.group, []), (*entry.place, entry.key, entry.generation))

    def _retire(self, seq: int) -> None:
        """Mark a version finished and wake the flushes waiting for it."""
        self._outstanding.discard(seq)
        if self._flush_waiters:
            for waiting in self._flush_waiters:
                waiting.discard(seq)
            self._done.notify_all()
