"""Durable records of ``forget``: a forgotten memory never comes back.

Deleting a user's vectors is not enough while a write of that user is still on its way: a job in
the spool, one a writer is running right now in this or another process, or one a crashed process
left behind for the next start. ``forget_user`` / ``forget_tenant`` therefore also write a tombstone
(one small JSON file per forgotten scope) next to the spools of the data directory. Every write
checks the tombstones before it stores a conversation and again after it, and drops (or deletes
again) a conversation that began before a matching tombstone. Tombstones are kept: they are tiny,
and a spool may be replayed months later.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from .spool import _write_atomic

__all__ = ["Tombstone", "Tombstones", "tombstones_dir"]

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


class Tombstones:
    """The tombstones of one data directory (shared by every process that uses it)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._lock = threading.Lock()
        self._seen: tuple[int, list[Tombstone]] | None = None  # (directory mtime_ns, tombstones)

    def add(self, *, tenant_id: str | None, user_id: str | None, agent_name: str | None) -> Tombstone:
        """Record (durably, before returning) that a scope was forgotten now."""
        stone = Tombstone(tenant_id, user_id, agent_name, time.time())
        name = hashlib.sha256(
            json.dumps([tenant_id, user_id, agent_name], ensure_ascii=False).encode("utf-8")
        ).hexdigest()
        self.root.mkdir(parents=True, exist_ok=True)
        record = {"tenant_id": tenant_id, "user_id": user_id, "agent_name": agent_name, "at": stone.at}
        _write_atomic(self.root / f"{name}.json", json.dumps(record, ensure_ascii=False).encode("utf-8"))
        with self._lock:
            self._seen = None
        return stone

    def find(self, tenant_id: str | None, user_id: str, agent_name: str | None, since: float) -> Tombstone | None:
        """A tombstone covering the scope, written at or after ``since`` (the conversation's start)."""
        for stone in self._all():
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
                record = json.loads(path.read_bytes())
                stones.append(
                    Tombstone(record["tenant_id"], record["user_id"], record["agent_name"], float(record["at"]))
                )
            except (OSError, ValueError, KeyError, TypeError) as exc:
                logger.error("unreadable tombstone %s (%s): it is ignored", path, exc)
        with self._lock:
            self._seen = (mtime, stones)
        return stones
