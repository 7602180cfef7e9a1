"""Full-index scans: ``ListVectors`` pages, read in parallel segments, matched on metadata.

S3 Vectors filters metadata only in ``QueryVectors``; ``ListVectors`` returns the index unfiltered.
Whatever must see *all* of a user's vectors (not the nearest few) therefore reads every page and
matches ``user_id`` / ``agent_name`` here, on the client, the only place a key is ever attributed
to a user.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..config import is_number
from ..index import WRITE_BATCH, IndexTarget, MemoryScope, delete_keys, list_page

#: ``ListVectors`` accepts 1-16 segments.
MAX_SEGMENTS = 16

#: ``progress(scanned, matched)``: cumulative vectors read and vectors affected so far.
ProgressCallback = Callable[[int, int], None]
Vector = Mapping[str, Any]


class Tally:
    """Thread-safe cumulative counters, reported to an optional progress callback."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()
        self.scanned = 0
        self.matched = 0

    def add(self, scanned: int, matched: int) -> None:
        with self._lock:
            self.scanned += scanned
            self.matched += matched
            snapshot = (self.scanned, self.matched)
        if self._progress is not None:
            self._progress(*snapshot)


def _scan_segment(
    target: IndexTarget,
    segment: tuple[int, int],
    visit: Callable[[list[Vector]], None],
    stop: threading.Event,
    return_data: bool,
) -> None:
    token: str | None = None
    while not stop.is_set():
        response = list_page(target, token, segment=segment, return_data=return_data)
        visit(list(response.get("vectors") or []))
        token = response.get("nextToken")
        if not token:
            return


def parallel_scan(
    target: IndexTarget, segments: int, visit: Callable[[list[Vector]], None], *, return_data: bool = False
) -> None:
    """Call ``visit`` with every page of the index, ``segments`` segments read concurrently.

    ``visit`` runs on worker threads and must be thread-safe. The first failure stops the other
    segments after their current page and is re-raised.
    """
    if not 1 <= segments <= MAX_SEGMENTS:
        raise ValueError(f"segments must be between 1 and {MAX_SEGMENTS}, got {segments}")
    stop = threading.Event()

    def run(index: int) -> None:
        try:
            _scan_segment(target, (segments, index), visit, stop, return_data)
        except BaseException:
            stop.set()
            raise

    if segments == 1:
        run(0)
        return
    with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="s3vm-scan") as pool:
        futures = [pool.submit(run, index) for index in range(segments)]
    for future in futures:
        future.result()


def sweep(
    target: IndexTarget,
    matches: Callable[[Mapping[str, Any]], bool],
    *,
    segments: int,
    delete: bool,
    tally: Tally,
) -> set[str]:
    """Scan the index for vectors whose metadata ``matches``; delete them as they are found if asked.

    Returns the distinct matching keys. Each worker deletes in full batches of 500 while it scans
    (memory stays bounded) and the remainders are deleted at the end. Deleting while listing is
    safe: a key a listing misses because of it is found by the next (verification) scan.
    """
    seen: set[str] = set()
    lock = threading.Lock()
    local = threading.local()
    buffers: list[list[str]] = []

    def pending() -> list[str]:
        buffer: list[str] | None = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = []
            with lock:
                buffers.append(buffer)
        return buffer

    def visit(page: list[Vector]) -> None:
        hits = [str(v["key"]) for v in page if matches(v.get("metadata") or {})]
        with lock:
            fresh = [key for key in dict.fromkeys(hits) if key not in seen]  # some backends overlap segments
            seen.update(fresh)
        if delete and fresh:
            buffer = pending()
            buffer.extend(fresh)
            while len(buffer) >= WRITE_BATCH:
                delete_keys(target, buffer[:WRITE_BATCH])
                del buffer[:WRITE_BATCH]
        tally.add(len(page), len(fresh))

    parallel_scan(target, segments, visit)
    for buffer in buffers:
        delete_keys(target, buffer)
        buffer.clear()
    return seen


def belongs(metadata: Mapping[str, Any], scope: MemoryScope) -> bool:
    if metadata.get("user_id") != scope.user_id:
        return False
    return scope.agent_name is None or metadata.get("agent_name") == scope.agent_name


def is_expired(metadata: Mapping[str, Any], now: float) -> bool:
    expires = metadata.get("expires_at")
    return is_number(expires) and expires <= now
