"""The memory runtime: one per process and spool, shared by every plugin instance that uses it.

Many servers build an ``Agent`` and its plugin per request. If each plugin owned its writer, a
hundred requests would leave hundreds of threads and open files behind, and a user's next request
would not see what the previous plugin instance was still storing. So the services live here, once
per spool directory, for the life of the process:

* the **background writer** (threads, spool, retries, dead letters), handing each job to the
  archiver of the plugin that ended the conversation (or, for jobs replayed after a crash, of the
  plugin attached most recently);
* the **conversation book** with every open conversation, and a **reaper** thread that ends
  conversations left idle (stored like any other, logged at INFO), adopts the spool files of
  crashed processes, and, at interpreter exit, ends every conversation still open before the
  writer's final flush;
* a thread pool that runs blocking memory work (embedding, queries, the spool write) off the
  caller's event loop under ``invoke_async`` / ``stream_async``.
"""

from __future__ import annotations

import atexit
import concurrent.futures
import contextvars
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from ..archive import (
    PENDING_WRITES,
    Archiver,
    ConversationJob,
    job_is_forgotten,
    job_scope,
    merge_write_jobs,
    register_canceller,
)
from ..durability import (
    S3_CLOCK,
    BackgroundWriter,
    JobContext,
    S3Location,
    Tombstone,
    TurnBuffer,
    WriteJob,
    board_beside,
    is_retryable_error,
    on_s3_clock,
    register_board,
    spool_location,
    turn_buffer_for,
)
from ..errors import ConfigurationError
from ..forking import ForkSafeLock, reset_in_child
from ..identity import Invocation, ScopeKey, scope_key
from ..telemetry import SERVICE_NAME, attached_context, capture_context
from ._book import Conversation, ConversationBook, EndedConversation
from ._settings import DEFAULT_IDLE_TIMEOUT_SECONDS, DEFAULT_WRITER_WORKERS

if TYPE_CHECKING:
    import asyncio

    from strands.models import Model

    from ..durability import WriterStats
    from ..store import S3VectorMemory

__all__ = ["MemoryRuntime", "StoreIdentity", "replay", "runtime_for"]

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

#: How often the reaper looks for idle conversations at most (it also wakes at the next deadline).
_REAPER_MAX_SLEEP = 30.0
#: How often the reaper adopts job files of crashed processes sharing the spool.
_ADOPT_INTERVAL = 60.0
#: Threads running memory work off the caller's event loop (they mostly wait on the network).
_OFFLOAD_WORKERS = 32


@dataclass(frozen=True)
class StoreIdentity:
    """What a spool's jobs are written to; plugins sharing a spool must agree on it."""

    backend: str
    bucket_name: str
    index_name: str
    multi_tenant: bool
    data_dir: Path

    @classmethod
    def of(cls, store: S3VectorMemory) -> StoreIdentity:
        from ..store import MultiTenantS3VectorMemory

        return cls(store.backend.value, store.bucket_name, store.index_name,
                   isinstance(store, MultiTenantS3VectorMemory), store.data_dir.expanduser().resolve())


class MemoryRuntime:
    """Writer, conversation book and reaper of one spool directory in this process."""

    def __init__(
        self,
        spool_dir: Path | S3Location,
        identity: StoreIdentity,
        *,
        workers: int = DEFAULT_WRITER_WORKERS,
        flush_at_exit: bool = True,
        is_retryable: Callable[[BaseException], bool] = is_retryable_error,
    ) -> None:
        self.spool_dir = spool_dir
        self.identity = identity
        self._closed = self._replayed = False
        self._default: Archiver | None = None
        self.turn_buffer: TurnBuffer | None = None  #: open conversations' turns on the S3 spool (opt-in)
        self._buffer_idle = 0.0  # a buffered conversation without a new turn for this long is swept
        self.writer = BackgroundWriter(
            self._handle,
            spool_dir=spool_dir if isinstance(spool_dir, Path) else spool_dir.url,
            workers=workers,
            is_retryable=is_retryable,
            flush_at_exit=flush_at_exit,
            name=f"{SERVICE_NAME}[{spool_dir.name}]",
            merge=merge_write_jobs,
            on_dead_letter=self._salvage,
            group=job_scope,  # one user's conversations one at a time, never holding a worker
        )
        self._start(ConversationBook())  # after the writer: the reaper uses it
        register_canceller(self, self._cancel)
        if flush_at_exit:
            atexit.register(self._at_exit)  # runs before the writer's own flush (atexit is LIFO)
        # A forked child starts with an empty book: the parent's open conversations, like its jobs, stay its own.
        reset_in_child(self, lambda runtime: runtime._start(ConversationBook(max_open=runtime.book.max_open)))

    def _start(self, book: ConversationBook) -> None:
        self.book, self._lock, self._wake = book, threading.Lock(), threading.Event()  # also in a forked child
        self._archivers: dict[str, Archiver] = {}  # job id -> the archiver of the plugin that ended it
        self._waited: dict[str, ScopeKey] = {}  # job id -> the scope whose new conversations wait for it
        self._running: dict[str, ScopeKey] = {}  # job id -> its scope, while a worker archives it
        name = f"{SERVICE_NAME}[{self.spool_dir.name}]"
        self._offload = concurrent.futures.ThreadPoolExecutor(_OFFLOAD_WORKERS, f"{name}-io")
        self._reaper = threading.Thread(target=self._reap, name=f"{name}-reaper", daemon=True)
        self._reaper.start()  # it stops at once in the child of a closed runtime

    # ------------------------------------------------------------------ plugins

    def attach(self, archiver: Archiver) -> None:
        """A plugin attached: its archiver stores replayed jobs; the first attach replays the spool."""
        with self._lock:
            self._default = archiver
            first = not self._replayed
            self._replayed = True
        if first:
            replayed = self.writer.replay_spool()
            if replayed:
                logger.info("replaying %d pending memory write(s) from %s", replayed, self.spool_dir)

    def enable_turn_buffer(self, idle_seconds: float) -> TurnBuffer:
        """Buffer open conversations' turns on this runtime's S3 spool (``durable_turns=True``)."""
        with self._lock:
            self.turn_buffer = self.turn_buffer or turn_buffer_for(self.spool_dir)
            self._buffer_idle = max(self._buffer_idle, idle_seconds)
            return self.turn_buffer

    def sweep_turn_buffer(self, idle_seconds: float | None = None) -> int:
        """End the buffered conversations with no new turn for ``idle_seconds`` (default: the plugins'
        idle timeout), whichever environment saw them; how many were ended."""
        archiver = self._default
        if self.turn_buffer is None or archiver is None:
            return 0
        idle = self._buffer_idle if idle_seconds is None else idle_seconds
        return self.turn_buffer.sweep(idle, lambda t: self._submit(
            EndedConversation(t.invocation, archiver, t.transcript, t.has_text, t.started_at, "idle",
                              last_turn_at=t.last_turn_at), archiver))

    # ------------------------------------------------------------------ ending conversations

    def finish_turn(self, conversation: Conversation, text: str, *, has_text: bool, history: list[Any], end: bool,
                    recorded_through: int = 0, durable: bool = False) -> EndedConversation | None:
        """Record a finished turn in the book, or (``durable``) in the turn buffer, where whichever
        environment ends the conversation finds it; returns the conversation if the turn ended it."""
        buffer = self.turn_buffer if durable else None
        if buffer is not None and text and buffer.record(conversation.invocation, text, has_text=has_text):
            text, has_text = "", False
        ended = self.book.finish_turn(conversation, text, has_text=has_text, history=history, end=end,
                                      recorded_through=recorded_through)
        self.wake()  # the reaper re-reads the idle deadlines
        return ended

    def end(self, ended: EndedConversation, archiver: Archiver) -> int | None:
        """Hand an ended conversation to the writer (spooled before this returns), with its buffered turns.

        Returns the writer's ticket for it (:meth:`BackgroundWriter.wait`), ``None`` when there was
        nothing to store.
        """
        buffer = self.turn_buffer
        taken = buffer.take_for(ended.invocation) if buffer is not None else None
        if taken is not None:
            ended = replace(ended, transcript="\n".join(t for t in (taken.transcript, ended.transcript) if t),
                            has_text=taken.has_text or ended.has_text,
                            started_at=min(taken.started_at, ended.started_at),
                            last_turn_at=max(taken.last_turn_at or 0.0, ended.last_turn_at or 0.0) or None)
        ticket = self._submit(ended, archiver)
        if taken is not None and buffer is not None:
            buffer.discard(taken)  # spooled: the turns are safe in the job
        return ticket

    def _submit(self, ended: EndedConversation, archiver: Archiver) -> int | None:
        invocation = ended.invocation
        if not ended.has_text:
            logger.info("conversation %s ended with no text to remember", invocation.conversation_id)
            _handed(ended)
            return None
        offset = S3_CLOCK.offset()  # S3's clock when an S3 spool is used: forget's order (one reading for both)
        job = ConversationJob(
            scope=invocation.scope,
            conversation_id=invocation.conversation_id,
            transcript=ended.transcript,
            started_at=ended.started_at + offset,  # ended_at: when it happened (its last turn), not when stored
            ended_at=(ended.last_turn_at if ended.last_turn_at is not None else time.time()) + offset,
            reason=ended.reason,
            trace=capture_context(),  # the background spans nest under the turn that ended it
        )
        if ended.reason != "end_session":
            logger.info(
                "conversation %s of user %r was left open (%s): ending and storing it",
                invocation.conversation_id,
                invocation.user_id,
                {"idle": "idle too long", "evicted": "too many open conversations",
                 "exit": "the process is exiting"}.get(ended.reason, ended.reason),
            )
        with self._lock:
            self._archivers[job.job_id] = archiver
            self._waited[job.job_id] = key = scope_key(invocation.scope)
        ticket = self.writer.submit(job.to_write_job(), on_ticket=partial(PENDING_WRITES.submitted, key, job.job_id))
        self._wake.set()
        _handed(ended)
        return ticket

    def end_all(self, ended: list[EndedConversation]) -> None:
        for conversation in ended:
            archiver = conversation.owner if isinstance(conversation.owner, Archiver) else self._default
            if archiver is not None:
                self.end(conversation, archiver)
            else:  # pragma: no cover - a conversation is always opened by a plugin's archiver
                logger.error("conversation %s has no archiver: not stored", conversation.invocation.conversation_id)

    def _archiver_for(self, job_id: str) -> Archiver:
        with self._lock:
            archiver = self._archivers.get(job_id) or self._default
        if archiver is None:
            raise ConfigurationError("no plugin is attached to store this spool's jobs")
        return archiver

    def _handle(self, context: JobContext) -> None:
        """Writer handler: one attempt at archiving a job (checkpointing the model's work)."""
        job = ConversationJob.from_write_job(context.job)
        key = scope_key(job.scope)
        PENDING_WRITES.running(key, job.job_id, context.ticket)
        with self._lock:
            self._running[job.job_id] = key
        try:
            with attached_context(job.trace):
                self._archiver_for(job.job_id).archive(job, lambda j: context.checkpoint(j.to_payload()))
        finally:
            # Between retries nobody waits on this job: a backing-off write never stalls a reply.
            PENDING_WRITES.done(key, job.job_id, context.ticket)
            with self._lock:
                self._waited.pop(job.job_id, None)
                self._running.pop(job.job_id, None)
        with self._lock:
            self._archivers.pop(job.job_id, None)

    def _stop_waiting(self, covered: Callable[[ScopeKey], bool]) -> None:
        """Jobs that will not run here (cancelled, or left in the spool at close): nobody waits for them."""
        with self._lock:
            gone = [(job_id, key) for job_id, key in self._waited.items() if covered(key)]
            for job_id, _key in gone:
                del self._waited[job_id]
        for job_id, key in gone:
            PENDING_WRITES.done(key, job_id)

    def _salvage(self, write_job: WriteJob, _error: BaseException) -> None:
        job = ConversationJob.from_write_job(write_job)
        archiver = self._archiver_for(job.job_id)
        with self._lock:
            self._archivers.pop(job.job_id, None)
        archiver.salvage(job)

    def _cancel(self, data_dir: Path, stone: Tombstone) -> int:
        """``forget`` in this process: drop open conversations and pending jobs the tombstone covers; how
        many it stopped, jobs a worker is archiving right now included (the tombstone stops those)."""
        if data_dir.resolve() != self.identity.data_dir.resolve():
            return 0
        stone = on_s3_clock(stone) if isinstance(self.spool_dir, S3Location) else stone  # its jobs' clock

        def covered(invocation: Invocation) -> bool:
            scope = invocation.scope
            return stone.covers(scope.tenant_id, scope.user_id, scope.agent_name)

        dropped = self.book.drop(covered)
        if dropped:
            logger.info("forget: dropped %d open conversation(s) of the forgotten scope", dropped)
        cancelled = self.writer.cancel(lambda job: _forgotten(job, stone))
        if self.turn_buffer is not None:  # open conversations' turns buffered on S3, by any environment
            cancelled += self.turn_buffer.erase(lambda turns: turns.started_at <= stone.at and stone.covers(
                turns.invocation.tenant_id, turns.invocation.user_id, turns.invocation.scope.agent_name))

        def covers(key: ScopeKey) -> bool:
            return stone.covers(key[0] or None, key[1], key[2] or None)
        with self._lock:
            in_flight = sum(1 for key in self._running.values() if covers(key))
        self._stop_waiting(covers)
        return dropped + cancelled + in_flight

    # ------------------------------------------------------------------ off the event loop

    async def run(self, loop: asyncio.AbstractEventLoop, function: Callable[P, R], *args: P.args,
                  **kwargs: P.kwargs) -> R:
        """Run blocking ``function`` on the runtime's threads, in the caller's context (spans nest)."""
        context = contextvars.copy_context()
        call = partial(context.run, function, *args, **kwargs)
        return await loop.run_in_executor(self._offload, call)

    # ------------------------------------------------------------------ reaper and exit

    def sweep(self) -> int:
        """End the conversations that have been idle too long now; how many were ended."""
        ended = self.book.abandoned()
        self.end_all(ended)
        return len(ended)

    def _reap(self) -> None:
        next_adopt = time.monotonic() + _ADOPT_INTERVAL
        while not self._closed:
            deadline = self.book.next_deadline()
            now = time.monotonic()
            sleep = _REAPER_MAX_SLEEP if deadline is None else min(_REAPER_MAX_SLEEP, max(0.0, deadline - now))
            self._wake.wait(max(sleep, 0.01))
            self._wake.clear()
            if self._closed:
                return
            try:
                self.sweep()
                if time.monotonic() >= next_adopt and self._replayed:
                    next_adopt = time.monotonic() + _ADOPT_INTERVAL
                    self.writer.adopt_orphans()
                    self.sweep_turn_buffer()
            except Exception:  # the reaper must outlive any one failure
                logger.exception("the idle-conversation reaper failed; it keeps running")

    def wake(self) -> None:
        """Let the reaper re-read the deadlines (a conversation's idle timeout changed)."""
        self._wake.set()

    def end_open_conversations(self, reason: str = "exit") -> int:
        """End and hand to the writer every conversation still open; how many were ended."""
        ended = self.book.close_all(reason)
        self.end_all(ended)
        return len(ended)

    def _at_exit(self) -> None:
        count = self.end_open_conversations("exit")
        if count:
            logger.info("interpreter exit: %d open conversation(s) ended and handed to the writer", count)

    def close(self, timeout: float | None = None) -> None:
        """End open conversations, flush and stop the writer (tests, and the CLI's replay)."""
        self.end_open_conversations("exit")
        self._closed = True
        self._wake.set()
        self.writer.close(timeout)
        self._stop_waiting(lambda _key: True)
        self._offload.shutdown(wait=False)
        atexit.unregister(self._at_exit)


def _handed(ended: EndedConversation) -> None:
    """Tell the conversation's owner it is spooled; a failure there costs a duplicate later, never a loss."""
    if ended.handed is None:
        return
    try:
        ended.handed(ended.recorded_through)
    except Exception:
        logger.warning("conversation %s is spooled, but marking it so failed (a later end may repeat its turns)",
                       ended.invocation.conversation_id, exc_info=True)


def _forgotten(write_job: WriteJob, stone: Tombstone) -> bool:
    try:
        return job_is_forgotten(ConversationJob.from_write_job(write_job), stone)
    except (ValueError, TypeError):
        return False


_RUNTIMES: dict[Path | S3Location, MemoryRuntime] = {}
_RUNTIMES_LOCK = ForkSafeLock()


def runtime_for(
    spool_dir: Path | S3Location,
    identity: StoreIdentity,
    *,
    workers: int = DEFAULT_WRITER_WORKERS,
    flush_at_exit: bool = True,
    is_retryable: Callable[[BaseException], bool] = is_retryable_error,
) -> MemoryRuntime:
    """The runtime of ``spool_dir`` in this process, created on first use.

    Raises :class:`ConfigurationError` when plugins whose stores write to different indexes would
    share one spool (a job would be stored by the wrong plugin): give them distinct ``spool_dir``.
    The spool is on S3 for an ``s3://`` location, and for a default one when ``S3_VECTORS_MEMORY_SPOOL``
    is set; its runtime then also reads (and ``forget`` posts) the tombstones beside it.
    """
    path = spool_location(spool_dir, identity.data_dir)
    with _RUNTIMES_LOCK:
        runtime = _RUNTIMES.get(path)
        if runtime is not None and not runtime._closed:
            if runtime.identity != identity:
                raise ConfigurationError(
                    f"two memory plugins with different stores ({runtime.identity.bucket_name}/"
                    f"{runtime.identity.index_name} and {identity.bucket_name}/{identity.index_name}) share the "
                    f"spool {path}; give each its own spool_dir"
                )
            return runtime
        if isinstance(path, S3Location):
            register_board(identity.data_dir, board_beside(path))
        runtime = MemoryRuntime(path, identity, workers=workers, flush_at_exit=flush_at_exit,
                                is_retryable=is_retryable)
        _RUNTIMES[path] = runtime
        return runtime


def replay(
    spool_dir: Path | S3Location, store: S3VectorMemory, model: Model | None = None, *, timeout: float | None = None
) -> WriterStats:
    """Store what a spool holds, without an agent (``s3-vectors-memory replay``).

    Jobs of dead processes (and retried dead letters) are adopted and stored with ``model``; without
    one, each conversation gets an extractive summary marked as such (its model summary, when it was
    checkpointed before the crash, is used as is). Jobs of live processes are left to them. On an S3
    spool, buffered conversations (``durable_turns``) idle for the default idle timeout are ended too.
    """
    runtime = runtime_for(spool_dir, StoreIdentity.of(store), flush_at_exit=False)
    runtime.attach(Archiver(store, lambda: model))
    if isinstance(runtime.spool_dir, S3Location):  # conversations left open in buffers of environments now gone
        runtime.enable_turn_buffer(DEFAULT_IDLE_TIMEOUT_SECONDS)
        runtime.sweep_turn_buffer()
    runtime.writer.flush(timeout)
    stats = runtime.writer.stats
    runtime.close(timeout=0)
    return stats
