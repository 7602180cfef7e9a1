"""Objects that own threads, made to work in a child after ``fork``.

Threads do not survive ``fork`` (gunicorn ``--preload``, Celery prefork, ``multiprocessing`` with
fork), and a lock one of them held stays held in the child. An object with threads registers a
reset here: in each forked child it is called to build fresh threads and locks, for as long as the
object lives (a weak reference: registering never keeps an object alive).
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Callable
from typing import TypeVar

__all__ = ["reset_in_child"]

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
