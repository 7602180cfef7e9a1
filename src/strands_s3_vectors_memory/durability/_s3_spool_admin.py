"""An S3 spool seen from outside any writer: the CLI's replay and dead-letter commands, and ``forget``.

The local spool's counterparts are at the end of :mod:`._spool`; the layout and who counts as
alive are in :mod:`._s3_spool_layout`, shared with the writers (:mod:`._s3_spool`), so a job a live
writer holds is never touched from here.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace

from ._s3_location import S3Client, S3Location, S3Objects
from ._s3_spool_layout import DEAD, JOBS, claim_owner, job_key_of, live_owners
from ._spool_backend import SpoolConflictError
from ._spool_format import DeadLetter, WriteJob, decode_dead_letter, decode_job, encode_job

__all__ = [
    "PendingObject",
    "agent_spools",
    "dead_letters",
    "drop_dead_letter",
    "erase_forgotten",
    "pending_jobs",
    "retry_dead_letter",
]

_log = logging.getLogger(__name__.rpartition(".")[0] + ".writer")


@dataclass(frozen=True)
class PendingObject:
    """A pending job object, its ETag, and whether the writer that claims it is alive."""

    key: str
    etag: str
    data: bytes
    owner_alive: bool


def pending_jobs(location: S3Location, client: S3Client | None = None) -> Iterator[PendingObject]:
    """Every pending job of the spool (claimed or not), with its owner's liveness."""
    objects = S3Objects(location.bucket, client)
    live = live_owners(objects, location)
    for item in objects.listing(location.key(JOBS))[0]:
        key = job_key_of(item.name)
        if key is None:
            continue
        try:
            data, etag = objects.get(location.key(JOBS, item.name))
        except FileNotFoundError:
            continue  # finished meanwhile
        owner, _claim_etag = claim_owner(objects, location, key)
        yield PendingObject(key, etag, data, owner is not None and owner in live)


def agent_spools(base: S3Location, client: S3Client | None = None) -> list[S3Location]:
    """The agents' spools below a base prefix (``S3_VECTORS_MEMORY_SPOOL``), as ``<data dir>/spool/*``."""
    objects = S3Objects(base.bucket, client)
    return [base.child(name) for name in sorted(objects.folders(base.prefix)) if not name.startswith(".")]


def dead_letters(location: S3Location, client: S3Client | None = None) -> list[DeadLetter]:
    """The dead letters of the spool, oldest first (unreadable ones are skipped)."""
    objects = S3Objects(location.bucket, client)
    letters = []
    for item in objects.listing(location.key(DEAD))[0]:
        key = job_key_of(item.name)
        if key is None:
            continue
        where = f"s3://{location.bucket}/{location.key(DEAD, item.name)}"
        try:
            data, _etag = objects.get(location.key(DEAD, item.name))
            letters.append(decode_dead_letter(where, key, data))
        except (OSError, ValueError):
            continue
    return sorted(letters, key=lambda letter: letter.dead_at)


def retry_dead_letter(location: S3Location, key: str, client: S3Client | None = None) -> str:
    """Put a dead letter back as an unclaimed job with a fresh count of rounds (the next adoption runs it).

    Raises ``FileExistsError`` if the conversation has a pending job again: retry once it is stored.
    """
    objects = S3Objects(location.bucket, client)
    source = location.key(DEAD, f"{key}.json")
    data, _etag = objects.get(source)
    job = decode_job(data)
    try:
        objects.put(location.key(JOBS, f"{key}.json"), encode_job(replace(job, rounds=0, attempts=0)), if_absent=True)
    except SpoolConflictError as exc:
        raise FileExistsError(f"{location.url}: job {key} is pending again; retry its dead letter later") from exc
    objects.delete(source)
    return f"s3://{location.bucket}/{location.key(JOBS, f'{key}.json')}"


def drop_dead_letter(location: S3Location, key: str, client: S3Client | None = None) -> None:
    """Delete a dead letter for good."""
    objects = S3Objects(location.bucket, client)
    source = location.key(DEAD, f"{key}.json")
    objects.head(source)  # FileNotFoundError for a key that is not a dead letter
    objects.delete(source)


def erase_forgotten(
    base: S3Location, forgotten: Callable[[WriteJob], bool], client: S3Client | None = None
) -> int:
    """Delete the forgotten jobs of dead writers in every agent spool below ``base``; how many.

    Jobs of live writers are left to them: the tombstone makes them drop the job (or delete what
    they just stored). A job changed since it was read is left too (``If-Match``).
    """
    objects = S3Objects(base.bucket, client)
    erased = 0
    for spool in agent_spools(base, client):
        for pending in pending_jobs(spool, client):
            if pending.owner_alive:
                continue
            try:
                job = decode_job(pending.data)
            except ValueError:
                continue
            if not forgotten(job):
                continue
            try:
                objects.delete(spool.key(JOBS, f"{pending.key}.json"), if_match=pending.etag)
            except (SpoolConflictError, FileNotFoundError):
                continue
            erased += 1
            _log.info("forget: erased the pending write %s left in %s", job.job_id, spool)
    return erased
