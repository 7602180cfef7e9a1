"""One long-lived thread at lower CPU priority, for model work no reply is waiting for.

The bundled model embeds documents (the background writer's summaries and detail records) on two
lanes whose OpenMP threads share every core, in calls that cannot be interrupted. A user's
first-turn query runs on a handle of its own beside such calls (see :mod:`._local`), and they then
share the cores. Linux hands out CPU by each thread's niceness, and the OpenMP threads a thread
starts inherit it; so each lane's calls run on a :class:`LowPriorityThread`: on an idle machine
they still get every core, under contention the query (and the agent's own Python) get most of them.

The thread starts on first use and lives as long as the process, like the model it serves; a child
process gets a new one after ``fork``. It is a daemon that is still running while ``atexit``
handlers run, so the writer's final flush at exit can embed through it.
"""

from __future__ import annotations

import logging
import os
import queue
import sys
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, TypeVar

from ..forking import reset_in_child

__all__ = ["LowPriorityThread"]

logger = logging.getLogger(__name__)

T = TypeVar("T")
_Job = tuple[Callable[[], Any], "Future[Any]"]


def _lower_priority(niceness: int) -> None:
    """Add ``niceness`` to the calling thread (Linux only: elsewhere it would apply to the process)."""
    if niceness <= 0 or not sys.platform.startswith("linux"):
        return
    try:
        tid = threading.get_native_id()
        current = os.getpriority(os.PRIO_PROCESS, tid)
        os.setpriority(os.PRIO_PROCESS, tid, min(19, current + niceness))
    except OSError as exc:  # a sandbox may forbid it; the work still runs, at normal priority
        logger.debug("could not lower the priority of %s: %s", threading.current_thread().name, exc)


class LowPriorityThread:
    """Runs calls one at a time, in order, on one daemon thread with ``niceness`` added (Linux)."""

    def __init__(self, name: str, niceness: int) -> None:
        self.name = name
        self.niceness = niceness
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job] | None = None
        self._thread: threading.Thread | None = None
        reset_in_child(self, LowPriorityThread._forget)

    def run(self, call: Callable[[], T]) -> T:
        """Run ``call`` on the thread and return its result (or raise its exception) here."""
        if threading.current_thread() is self._thread:  # called from a call: run it now, not deadlock
            return call()
        future: Future[T] = Future()
        self._queue().put((call, future))
        return future.result()

    def _queue(self) -> queue.SimpleQueue[_Job]:
        with self._lock:
            if self._jobs is None:
                jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
                self._thread = threading.Thread(target=self._serve, args=(jobs,), name=self.name, daemon=True)
                self._thread.start()
                self._jobs = jobs
            return self._jobs

    def _serve(self, jobs: queue.SimpleQueue[_Job]) -> None:
        _lower_priority(self.niceness)
        while True:
            call, future = jobs.get()
            if not future.set_running_or_notify_cancel():
                continue
            try:
                result = call()
            except BaseException as exc:  # the caller re-raises it, in its own thread
                future.set_exception(exc)
            else:
                future.set_result(result)

    def _forget(self) -> None:
        """In a child after fork: the thread did not survive it (and the lock may look held)."""
        self._lock = threading.Lock()
        self._jobs = None
        self._thread = None
