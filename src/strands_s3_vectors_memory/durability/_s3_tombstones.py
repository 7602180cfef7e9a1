"""Tombstones on S3: ``forget`` seen by every machine that shares an S3 spool.

A local tombstone lives in one machine's data directory; a job in an S3 spool may be run by any
instance. So with S3 spools the tombstones also live in the bucket, at ``<base>/.tombstones/`` where
``<base>`` is the prefix holding the agents' spools (``S3_VECTORS_MEMORY_SPOOL``), as the local ones
sit in ``<data dir>/spool/.tombstones`` beside the agents' spool directories. The objects hold the
same JSON as the local files.

A tombstone on S3 is dated by S3's own clock (its ``LastModified``), and the conversations of an
S3 spool's runtime by S3's clock too (:data:`~._s3_location.S3_CLOCK`), so ``forget`` does not depend
on the machines' clocks agreeing.

Reads are cached for :data:`~._tombstones.BOARD_TTL_SECONDS` (a listing every few seconds, and a
``GET`` only for a tombstone not seen before); ``forget`` waits that long after posting, so a write
finishing after the deletion began checks a copy that has the tombstone.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
import time

from ._s3_location import S3_CLOCK, S3Client, S3Location, S3Objects
from ._tombstones import BOARD_TTL_SECONDS, Tombstone, decode_tombstone, encode_tombstone, tombstone_name

__all__ = ["S3TombstoneBoard", "board_beside", "board_of", "on_s3_clock"]

logger = logging.getLogger(__name__)

_DIRNAME = ".tombstones"
#: S3's times (``LastModified``, ``Date``) are whole seconds: a conversation begun in a forget's second is before it.
_GRAIN = 1.0


class S3TombstoneBoard:
    """The tombstones below one S3 prefix."""

    def __init__(self, location: S3Location, client: S3Client | None = None) -> None:
        self.location = location
        self._objects = S3Objects(location.bucket, client)
        self._lock = threading.Lock()
        self._known: dict[str, tuple[str, Tombstone | None]] = {}  # object name -> (ETag, tombstone)
        self._fetched_at: float | None = None  # monotonic time the cached listing was started

    @property
    def where(self) -> str:
        return self.location.url

    def post(self, stone: Tombstone) -> None:
        name = f"{tombstone_name(stone.tenant_id, stone.user_id, stone.agent_name)}.json"
        self._objects.put(self.location.key(name), encode_tombstone(stone))
        with self._lock:
            self._fetched_at = None

    def stones(self) -> list[Tombstone]:
        """The board's tombstones, from a listing started at most ``BOARD_TTL_SECONDS`` ago.

        Raises ``OSError`` when S3 cannot be read: the caller must not assume nobody was forgotten.
        """
        with self._lock:
            if self._fetched_at is not None and time.monotonic() - self._fetched_at < BOARD_TTL_SECONDS:
                return [stone for _etag, stone in self._known.values() if stone is not None]
        started = time.monotonic()
        listed, _now = self._objects.listing(self.location.prefix)
        with self._lock:
            known = dict(self._known)
        fresh: dict[str, tuple[str, Tombstone | None]] = {}
        for item in listed:
            seen = known.get(item.name)
            if seen is not None and seen[0] == item.etag:
                fresh[item.name] = seen
                continue
            try:
                data, etag = self._objects.get(self.location.key(item.name))
            except FileNotFoundError:
                continue
            try:
                # Ordered by S3's clock, not the forgetting machine's: the object's LastModified, plus
                # its one-second grain (a conversation begun in that second counts as before the forget).
                stone = decode_tombstone(data)
                fresh[item.name] = (etag, dataclasses.replace(stone, at=item.modified.timestamp() + _GRAIN))
            except (ValueError, KeyError, TypeError) as exc:
                logger.error("unreadable tombstone %s%s (%s): it is ignored", self.location.url, item.name, exc)
                fresh[item.name] = (etag, None)
        with self._lock:
            self._known = fresh
            self._fetched_at = started
        return [stone for _etag, stone in fresh.values() if stone is not None]


def board_of(base: S3Location, client: S3Client | None = None) -> S3TombstoneBoard:
    """The board of the agents' spools below ``base`` (``S3_VECTORS_MEMORY_SPOOL``)."""
    return S3TombstoneBoard(base.child(_DIRNAME), client)


def board_beside(spool: S3Location, client: S3Client | None = None) -> S3TombstoneBoard:
    """The board of an agent's spool: in its parent prefix, beside the other agents' spools."""
    return board_of(spool.parent(), client)


def on_s3_clock(stone: Tombstone) -> Tombstone:
    """A tombstone this machine just wrote, dated on S3's clock (plus its one-second grain), as the
    jobs of S3 spools are: what ``forget`` compares them with."""
    return dataclasses.replace(stone, at=stone.at + S3_CLOCK.offset() + _GRAIN)
