"""Objects that own threads, made to work in a child after ``fork``.

Threads do not survive ``fork`` (gunicorn ``--preload``, Celery prefork, ``multiprocessing`` with
fork), and a lock one of them held stays held in the child. An object with threads registers a
reset here: in each forked child it is called to build fresh threads and locks, for as long as the
object lives (a weak reference: registering never keeps an object alive).
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Callable
from types import TracebackType
from typing import TypeVar

__all__ = ["ForkSafeLock", "reset_in_child"]

T = TypeVar("T")


def reset_in_child(owner: T, reset: Callable[[T], None]) -> None:
    """Call ``reset(owner)`` in every child forked from now on while ``owner`` is alive."""
    if not hasattr(os, "register_at_fork"):  # pragma: no cover - POSIX has it
        return
    ref = weakref.ref(owner)

    def hook() -> None:
        alive = ref()
        if alive is not None:
            reset(alive)

    os.register_at_fork(after_in_child=hook)


class ForkSafeLock:
    """A process-wide lock that is free in a forked child (a parent's thread may hold it at the fork)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        reset_in_child(self, ForkSafeLock._renew)

    def _renew(self) -> None:
        self._lock = threading.Lock()

    def __enter__(self) -> bool:
        return self._lock.acquire()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._lock.release()
