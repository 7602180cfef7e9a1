"""What the background writer needs from a spool, wherever the spool is: the seam between them.

Two spools satisfy it: :class:`~._spool.Spool`, a local directory whose files each belong to one
process (claims are ``flock`` ed owner locks), and :class:`~._s3_spool.S3Spool`, a prefix of a
general-purpose S3 bucket shared by every instance of a fleet (claims are conditional writes).
:class:`~._writer_spool.WriterSpool` is written against this seam and the writer above it never asks
which one it has. Both store a job in the same format (:func:`~._spool_format.encode_job`), so a job can be
read by the CLI, retried or replayed whichever spool held it.

Errors are ``OSError`` s on both: a spool that cannot be reached (a read-only disk, an S3 outage)
degrades the writer to memory with a warning, exactly as a full disk does; ``FileNotFoundError``
means the job is not there (any more).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Protocol

from ._spool_format import WriteJob

__all__ = ["AdoptedJob", "Location", "SpoolBackend", "SpoolConflictError"]

#: Where a job is, for reading it back and for log lines: a file, or an ``s3://`` URL.
Location = Path | str


class SpoolConflictError(OSError):
    """Another writer changed the job (or its claim) since this one last saw it: nothing was written.

    Only a shared spool raises it. Where the writer records progress (a checkpoint, a failed round)
    it is reported like any spool error and the other writer's newer version is left intact.
    """


class AdoptedJob(Protocol):
    """A job just claimed from a dead writer, not yet part of the adopting writer's queue."""

    @property
    def key(self) -> str:
        """The job's key (:func:`~._spool_format.job_key` of its id)."""

    @property
    def location(self) -> Location:
        """Where the claimed copy is now (quarantined from there if unreadable)."""

    def collides(self) -> bool:
        """Whether the adopting writer also has a spooled version of the same job beside this one."""

    def read(self) -> WriteJob:
        """The claimed job (``OSError``/``ValueError`` when it cannot be read)."""

    def keep(self) -> None:
        """Make the claimed copy this writer's spooled version as it is."""

    def discard(self) -> None:
        """Drop the claimed copy: its content was reconciled into this writer's own version."""


class SpoolBackend(Protocol):
    """One writer's claim on a spool: its own jobs, and the jobs it adopts from dead writers.

    A writer only runs the jobs it owns (submitted itself, or adopted one by one with an operation
    exactly one claimant can win), removes a job only after its handler succeeded, and releases
    what is left when it closes so the next start, or a peer, adopts it.
    """

    @property
    def root(self) -> Location:
        """The spool (for log lines)."""

    @property
    def dir(self) -> Location:
        """Where this writer's own jobs are (for log lines)."""

    def path(self, key: str) -> Location:
        """Where this writer's version of job ``key`` is (it may not exist)."""

    def read(self, location: Location) -> WriteJob:
        """Read a job (``FileNotFoundError`` if absent, ``ValueError`` if unreadable)."""

    def exists(self, key: str) -> bool:
        """Whether this writer's version of job ``key`` is in the spool."""

    def write(self, key: str, data: bytes) -> None:
        """Durably replace this writer's version of job ``key`` (``encode_job`` bytes) before returning."""

    def remove(self, key: str) -> None:
        """The job is done (or cancelled): remove this writer's version and its claim."""

    def own_keys(self) -> list[str]:
        """The keys of the jobs this writer holds in the spool (failed jobs waiting for a replay)."""

    def adopt(self, place: Callable[[AdoptedJob], None]) -> None:
        """Claim every job of dead writers, one by one, handing each to ``place``."""

    def bury(self, key: str, job: WriteJob, error: BaseException | str) -> Location:
        """Set a job that keeps failing aside as a dead letter (with its error); where it went."""

    def quarantine(self, location: Location) -> Location | None:
        """Move an unreadable job aside (never delete it); where it went, or ``None``."""

    def release(self) -> None:
        """Give up the claim: the jobs left become adoptable by the next start or a peer."""

    def leave_to_parent(self) -> None:
        """In a forked child: drop this copy of the parent's claim without touching it (it stays the parent's)."""
