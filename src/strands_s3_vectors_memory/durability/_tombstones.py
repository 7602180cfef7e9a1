"""Durable records of ``forget``: a forgotten memory never comes back.

Deleting a user's vectors is not enough while a write of that user is still on its way: a job in
the spool, one a writer is running right now in this or another process, or one a crashed process
left behind for the next start. ``forget_user`` / ``forget_tenant`` therefore also write a tombstone
(one small JSON file per forgotten scope) next to the spools of the data directory. Every write
checks the tombstones before it stores a conversation and again after it, and drops (or deletes
again) a conversation that began before a matching tombstone. Tombstones are kept: they are tiny,
and a spool may be replayed months later.

A spool shared by many machines (an S3 spool) needs tombstones every machine sees: a
:class:`TombstoneBoard` beside it. The runtime of such a spool registers its board for the data
directory (:func:`register_board`); ``forget`` posts to the boards, and :meth:`Tombstones.find`
reads them too. A board may answer from a copy up to :data:`BOARD_TTL_SECONDS` old (one listing per
few seconds, not one per job), so ``forget`` waits that long after posting before it deletes what
is stored: a write that finishes after the deletion began checks a view that has the tombstone.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from ._spool import write_atomic

__all__ = [
    "BOARD_TTL_SECONDS",
    "Tombstone",
    "TombstoneBoard",
    "Tombstones",
    "boards_for",
    "decode_tombstone",
    "encode_tombstone",
    "register_board",
    "tombstone_name",
    "tombstones_dir",
]

#: How old a board's copy of its tombstones may be when a write checks it.
BOARD_TTL_SECONDS = 2.0

logger = logging.getLogger(__name__)

#: Directory (inside ``<data dir>/spool``) holding the tombstones; a dot keeps it apart from the
#: per-agent spool directories, whose names never start with one.
_DIRNAME = ".tombstones"


def tombstones_dir(data_dir: Path) -> Path:
    """Where the tombstones of a data directory live."""
    return data_dir / "spool" / _DIRNAME


@dataclass(frozen=True)
class Tombstone:
    """Everything of ``user_id`` (all users when ``None``) of ``agent_name`` (all agents when
    ``None``) in ``tenant_id``'s index (the single-tenant index when ``None``) was forgotten at ``at``."""

    tenant_id: str | None
    user_id: str | None
    agent_name: str | None
    at: float

    def covers(self, tenant_id: str | None, user_id: str, agent_name: str | None) -> bool:
        return (
            self.tenant_id == tenant_id
            and (self.user_id is None or self.user_id == user_id)
            and (self.agent_name is None or self.agent_name == agent_name)
        )


def tombstone_name(tenant_id: str | None, user_id: str | None, agent_name: str | None) -> str:
    """The file (or object) name of a scope's tombstone: one per scope, rewritten by a new forget."""
    return hashlib.sha256(json.dumps([tenant_id, user_id, agent_name], ensure_ascii=False).encode("utf-8")).hexdigest()


def encode_tombstone(stone: Tombstone) -> bytes:
    record = {"tenant_id": stone.tenant_id, "user_id": stone.user_id, "agent_name": stone.agent_name, "at": stone.at}
    return json.dumps(record, ensure_ascii=False).encode("utf-8")


def decode_tombstone(data: bytes) -> Tombstone:
    """Raises ``ValueError``/``KeyError``/``TypeError`` for anything that is not a tombstone."""
    record = json.loads(data)
    return Tombstone(record["tenant_id"], record["user_id"], record["agent_name"], float(record["at"]))


class TombstoneBoard(Protocol):
    """Tombstones kept where every machine sharing a spool sees them (e.g. beside an S3 spool)."""

    @property
    def where(self) -> str:
        """Where the board is (it names the board: one per place)."""

    def post(self, stone: Tombstone) -> None:
        """Record ``stone`` durably before returning (raises when it cannot)."""

    def stones(self) -> list[Tombstone]:
        """Every tombstone on the board, as seen at most :data:`BOARD_TTL_SECONDS` ago."""


_BOARDS: dict[Path, dict[str, TombstoneBoard]] = {}
_BOARDS_LOCK = threading.Lock()


def register_board(data_dir: Path, board: TombstoneBoard) -> None:
    """Make ``board`` part of the tombstones of ``data_dir`` in this process (for reads and forgets)."""
    with _BOARDS_LOCK:
        _BOARDS.setdefault(tombstones_dir(data_dir).expanduser().resolve(), {}).setdefault(board.where, board)


def boards_for(data_dir: Path) -> list[TombstoneBoard]:
    """The boards registered for ``data_dir``."""
    return _boards_at(tombstones_dir(data_dir))


def _boards_at(root: Path) -> list[TombstoneBoard]:
    with _BOARDS_LOCK:
        return list(_BOARDS.get(root.expanduser().resolve(), {}).values())


class Tombstones:
    """The tombstones of one data directory (shared by every process that uses it), and its boards."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._seen: tuple[int, list[Tombstone]] | None = None  # (directory mtime_ns, tombstones)

    def add(self, *, tenant_id: str | None, user_id: str | None, agent_name: str | None) -> Tombstone:
        """Record (durably, before returning) that a scope was forgotten now."""
        stone = Tombstone(tenant_id, user_id, agent_name, time.time())
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.root / f"{tombstone_name(tenant_id, user_id, agent_name)}.json", encode_tombstone(stone))
        with self._lock:
            self._seen = None
        return stone

    def find(self, tenant_id: str | None, user_id: str, agent_name: str | None, since: float) -> Tombstone | None:
        """A tombstone covering the scope, written at or after ``since`` (the conversation's start).

        The boards of the data directory are read too; one that cannot be read raises (a write is
        not stored while it cannot know whether its user was forgotten; the writer retries it).
        """
        for stone in self._all():
            if stone.at >= since and stone.covers(tenant_id, user_id, agent_name):
                return stone
        for board in _boards_at(self.root):
            for stone in board.stones():
                if stone.at >= since and stone.covers(tenant_id, user_id, agent_name):
                    return stone
        return None

    def _all(self) -> list[Tombstone]:
        try:
            mtime = self.root.stat().st_mtime_ns
        except FileNotFoundError:
            return []
        settled = time.time_ns() - mtime > 2_000_000_000  # coarse file system clocks: re-read fresh changes
        with self._lock:
            if settled and self._seen is not None and self._seen[0] == mtime:
                return self._seen[1]
        stones = []
        for path in sorted(self.root.glob("*.json")):
            try:
                stones.append(decode_tombstone(path.read_bytes()))
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.error("unreadable tombstone %s (%s): it is ignored", path, exc)
        with self._lock:
            self._seen = (mtime, stones)
        return stones
