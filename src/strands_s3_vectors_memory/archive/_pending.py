"""Writes on their way to the index, as the rest of the process sees them.

Two process-wide registries, shared by every plugin instance (many servers build an agent and a
plugin per request, so per-instance state would not hold across requests):

* :class:`PendingWrites` tracks which users have a conversation being stored, so a user's next
  conversation can wait (bounded) until the previous one is searchable: read your own writes. It
  can be awaited from an event loop without holding a thread (:func:`wait_for_own_writes`).
* :func:`cancel_pending` is what ``forget`` calls: it writes a durable tombstone, asks every writer
  of this process to drop the scope's pending jobs (the runtimes register themselves with
  :func:`register_canceller`), and erases the job files crashed processes left in the data
  directory's spools, so the next start cannot bring the memory back. With S3 spools (those of
  this process's runtimes, and ``S3_VECTORS_MEMORY_SPOOL``) the tombstone is also posted beside
  them for every other instance, and the jobs dead instances left there are erased too.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path

from ..config import resolve_spool_url
from ..durability import (
    BOARD_TTL_SECONDS,
    S3Location,
    Tombstone,
    TombstoneBoard,
    Tombstones,
    WriteJob,
    board_of,
    boards_for,
    decode_job,
    erase_forgotten,
    on_s3_clock,
    pending_files,
    tombstones_dir,
)
from ..forking import ForkSafeLock, reset_in_child
from ..identity import Invocation, ScopeKey, scope_key
from ._jobs import ConversationJob

__all__ = ["PENDING_WRITES", "PendingWrites", "cancel_pending", "register_canceller", "wait_for_own_writes"]

logger = logging.getLogger(__name__)


class PendingWrites:
    """Which scopes have writes in flight; waits until a scope has none (threads or coroutines).

    Tracked per version: a job id (one conversation) may be submitted again while an older version
    runs, and a returning user must wait for the newest one. Versions are the writer's tickets, in
    submission order; a job is in flight while its newest ticket has not ended an attempt.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._jobs: dict[ScopeKey, dict[str, list[int]]] = {}  # scope -> job id -> [newest, settled up to]
        self._idle: dict[ScopeKey, concurrent.futures.Future[None]] = {}

    def forget_all(self) -> None:
        """In a forked child: the parent's writes stay the parent's, nobody here waits for them."""
        self._lock = threading.Lock()
        self._jobs = {}
        self._idle = {}

    def submitted(self, scope: ScopeKey, job_id: str, ticket: int) -> None:
        """Version ``ticket`` of ``job_id`` was queued (called before any attempt of it can end)."""
        with self._lock:
            self._in_flight(scope, job_id, ticket)

    def running(self, scope: ScopeKey, job_id: str, ticket: int) -> None:
        """An attempt of version ``ticket`` started (also for jobs replayed from the spool)."""
        with self._lock:
            versions = self._in_flight(scope, job_id, ticket)
            versions[1] = min(versions[1], ticket - 1)

    def _in_flight(self, scope: ScopeKey, job_id: str, ticket: int) -> list[int]:
        """Version ``ticket`` of ``job_id`` is on its way: its ``[newest, settled up to]`` (caller holds lock)."""
        versions = self._jobs.setdefault(scope, {}).setdefault(job_id, [0, 0])
        versions[0] = max(versions[0], ticket)
        self._idle.setdefault(scope, concurrent.futures.Future())
        return versions

    def done(self, scope: ScopeKey, job_id: str, ticket: int | None = None) -> None:
        """An attempt of version ``ticket`` ended (``None``: every version; the job will not run here).

        Between retries nobody waits on a job: a backing-off write never stalls a reply.
        """
        with self._lock:
            jobs = self._jobs.get(scope)
            versions = None if jobs is None else jobs.get(job_id)
            if jobs is None or versions is None:
                return
            if ticket is not None:
                versions[1] = max(versions[1], ticket)
                if versions[0] > versions[1]:
                    return  # a newer version of the same conversation is still on its way
            del jobs[job_id]
            if jobs:
                return
            del self._jobs[scope]
            idle = self._idle.pop(scope, None)
        if idle is not None:
            idle.set_result(None)

    def has(self, scope: ScopeKey) -> bool:
        with self._lock:
            return scope in self._jobs

    def _idle_future(self, scope: ScopeKey) -> concurrent.futures.Future[None] | None:
        with self._lock:
            return self._idle.get(scope)

    def wait(self, scope: ScopeKey, timeout: float) -> bool:
        """Block until ``scope`` has no pending write or ``timeout`` passed; True if none is left."""
        idle = self._idle_future(scope)
        if idle is None or timeout <= 0:
            return idle is None
        with contextlib.suppress(concurrent.futures.TimeoutError):
            idle.result(timeout)
        return idle.done()

    async def wait_async(self, scope: ScopeKey, timeout: float) -> bool:
        """:meth:`wait` for a coroutine: the event loop keeps running other requests meanwhile."""
        idle = self._idle_future(scope)
        if idle is None or timeout <= 0:
            return idle is None
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(idle)), timeout)
        return idle.done()


#: The registry of this process.
PENDING_WRITES = PendingWrites()


async def wait_for_own_writes(invocation: Invocation, timeout: float) -> None:
    """Let a user's new conversation see that user's just-ended one (bounded, never blocks the loop).

    Only the same scope's pending writes are waited for, at most ``timeout`` seconds (``0``: never):
    other users never wait, and a write still pending after that is logged, not awaited.
    """
    key = scope_key(invocation.scope)
    if timeout <= 0 or not PENDING_WRITES.has(key):
        return
    if not await PENDING_WRITES.wait_async(key, timeout):
        logger.warning(
            "conversation %s starts before this user's previous memory was stored (still pending)",
            invocation.conversation_id,
        )

#: ``(data dir, tombstone) -> number of pending jobs dropped``, one per live runtime.
Canceller = Callable[[Path, Tombstone], int]
_CANCELLERS: dict[int, Canceller] = {}
_CANCELLERS_LOCK = ForkSafeLock()
reset_in_child(PENDING_WRITES, PendingWrites.forget_all)


def register_canceller(owner: object, canceller: Canceller) -> None:
    """Let ``forget`` reach the pending jobs ``owner`` (a runtime) holds in this process."""
    with _CANCELLERS_LOCK:
        _CANCELLERS[id(owner)] = canceller


def unregister_canceller(owner: object) -> None:
    with _CANCELLERS_LOCK:
        _CANCELLERS.pop(id(owner), None)


def job_is_forgotten(job: ConversationJob, stone: Tombstone) -> bool:
    """Whether ``stone`` covers ``job``: same scope, and the conversation began before the forget."""
    scope = job.scope
    return job.started_at <= stone.at and stone.covers(scope.tenant_id, scope.user_id, scope.agent_name)


def cancel_pending(
    data_dir: Path, *, tenant_id: str | None, user_id: str | None, agent_name: str | None
) -> int:
    """Forget a scope's writes still on their way: tombstone, this process's writers, dead processes' files.

    Returns how many pending jobs were dropped. Jobs a live process is running right now cannot be
    counted from here; the tombstone makes that process drop them (or delete what it just stored).

    With S3 spools the tombstone is posted beside them first, then this waits until every
    instance's cached copy of the tombstones has it (:data:`~..durability._tombstones.BOARD_TTL_SECONDS`), so
    what the caller deletes next cannot be stored again by a write that checked an older copy.
    """
    stone = Tombstones(tombstones_dir(data_dir)).add(tenant_id=tenant_id, user_id=user_id, agent_name=agent_name)
    boards = _boards(data_dir)
    for board in boards:
        board.post(stone)
    if boards:
        time.sleep(BOARD_TTL_SECONDS + _BOARD_MARGIN_SECONDS)
    with _CANCELLERS_LOCK:
        cancellers = list(_CANCELLERS.values())
    dropped = sum(canceller(data_dir, stone) for canceller in cancellers)
    erased = _erase_orphaned(data_dir / "spool", stone)
    on_s3 = on_s3_clock(stone)  # the jobs of S3 spools are on S3's clock
    for base in _s3_bases(boards):
        erased += erase_forgotten(base, lambda job: _covers(job, on_s3))
    return dropped + erased


#: Beyond a board's TTL: a listing is timed from its start, and clocks of machines run at slightly different rates.
_BOARD_MARGIN_SECONDS = 0.5


def _boards(data_dir: Path) -> list[TombstoneBoard]:
    """The boards of the data dir's S3 spools in this process, and of ``S3_VECTORS_MEMORY_SPOOL``."""
    boards = {board.where: board for board in boards_for(data_dir)}
    url = resolve_spool_url()
    if url is not None:
        board = board_of(S3Location.parse(url))
        boards.setdefault(board.where, board)
    return list(boards.values())


def _s3_bases(boards: list[TombstoneBoard]) -> list[S3Location]:
    """The prefixes holding the agents' S3 spools, one per board (a board sits among them)."""
    return [S3Location.parse(board.where).parent() for board in boards if board.where.startswith("s3://")]


def _covers(write_job: WriteJob, stone: Tombstone) -> bool:
    try:
        return job_is_forgotten(ConversationJob.from_write_job(write_job), stone)
    except (ValueError, TypeError):
        return False


def _erase_orphaned(spool_root: Path, stone: Tombstone) -> int:
    """Delete the matching job files of dead writers under every spool of a data directory."""
    if not spool_root.is_dir():
        return 0
    erased = 0
    for spool_dir in sorted(p for p in spool_root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        for pending in pending_files(spool_dir):
            if pending.owner_alive:
                continue  # its writer is alive: the tombstone (and its canceller, if in this process) stop it
            try:
                job = ConversationJob.from_write_job(decode_job(pending.path.read_bytes()))
            except (OSError, ValueError):
                continue
            if job_is_forgotten(job, stone):
                with contextlib.suppress(FileNotFoundError):
                    pending.path.unlink()
                    erased += 1
                    logger.info("forget: erased the pending write of conversation %s left in %s",
                                job.conversation_id, spool_dir)
    return erased
