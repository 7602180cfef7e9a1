"""The write spool on S3: pending jobs that outlive the machine, shared by every instance of a fleet.

Why: on Lambda or an autoscaled fleet a machine vanishes without cleanup, and with it a local spool.
Here a job is an object in the operator's general-purpose bucket, written before ``end_session``
returns, and any instance (or ``s3-vectors-memory replay --spool s3://...``) can finish it.

The spool's layout and its leases are in :mod:`._s3_spool_layout`. One heartbeat per writer, not
one renewal per job, so a long outage with thousands of pending jobs costs nothing more; and none
while a writer holds no claim (an idle fleet writes nothing): a writer about to claim renews a
heartbeat older than a quarter lease first, and adopters list the claims before the heartbeats, so
a claim they see always has its owner's fresh heartbeat behind it.

* **Submit** (:meth:`S3Spool.publish`): take the job's claim (a new one, or over anyone's: the
  submitter now holds the newest version), then write the job compare-and-swap: ``If-Match`` the
  version this writer last saw, or ``If-None-Match: *``; when another instance changed it meanwhile,
  read theirs, merge, try again. Claim first, so a job without a claim is never a live submit.
* **Adopt** (:meth:`S3Spool.adopt`): a job whose claim is missing or whose owner's lease ran out is
  claimed with a conditional write, which exactly one racing instance wins; the loser skips it.
* **Done**: the job is deleted ``If-Match`` the version this writer ran, then its claim ``If-Match``
  its own claim. A newer version (a re-ended conversation written by another instance) is never
  deleted by the owner of an older one; that instance runs it.
* **A slow owner** whose lease ran out while its handler was still running: the job is adopted
  and run again. Both store the same deterministic keys, so the index holds it once (the later
  ``put_vectors`` wins, as with two local processes). Its checkpoints and its delete are
  conditional on the version it ran, so it can never overwrite or delete the adopter's version.
* **Release**: a closing writer deletes its claims and heartbeat; what is left is adoptable at once.

S3 behaviour relied on: strong read-after-write consistency (listings included), conditional
``PutObject`` (``If-None-Match: *`` and ``If-Match``) and ``DeleteObject`` with ``If-Match`` on a
general-purpose bucket. Use an unversioned bucket (or expire noncurrent versions).
"""

from __future__ import annotations

import json
import logging
import threading
import time
import uuid
from collections.abc import Callable
from contextlib import suppress

from ._s3_location import Listed, S3Client, S3Location, S3Objects
from ._s3_spool_layout import (
    CLAIMS,
    CORRUPT,
    DEAD,
    JOBS,
    OWNERS,
    claim_body,
    claim_owner,
    job_key_of,
    live_owners,
    new_owner_id,
    resolve_lease,
)
from ._spool_backend import AdoptedJob, Location, SpoolConflictError
from ._spool_format import WriteJob, decode_job, encode_dead_letter, encode_job

__all__ = ["S3Spool"]

_log = logging.getLogger(__name__.rpartition(".")[0] + ".writer")

#: Attempts of a compare-and-swap submit before giving up (degraded durability, with a warning).
_CAS_ATTEMPTS = 5
#: Attempts at taking over a claim that keeps changing under us (the job stays durable without it).
_TAKEOVER_ATTEMPTS = 3
#: Heartbeats of owners dead this many leases are swept (a live owner rewrites its own at once).
_SWEEP_AFTER_LEASES = 10


class _ClaimedObject:
    """A job object just claimed from a dead owner: it stays where it is, the claim is what moved."""

    def __init__(self, spool: S3Spool, key: str) -> None:
        self._spool = spool
        self._key = key

    @property
    def key(self) -> str:
        return self._key

    @property
    def location(self) -> Location:
        return self._spool.path(self._key)

    def collides(self) -> bool:
        return False  # one object per job: there is no second copy to reconcile

    def read(self) -> WriteJob:
        return self._spool.read(self.location)

    def keep(self) -> None:
        pass

    def discard(self) -> None:
        pass


class S3Spool:
    """One writer's claim on an S3 spool (see the module docstring for the layout and protocol)."""

    def __init__(
        self, location: S3Location, client: S3Client | None = None, *, lease_seconds: float | None = None,
        heartbeat: bool = True,
    ) -> None:
        self.location = location
        self.lease_seconds = resolve_lease(lease_seconds)
        self.owner = new_owner_id()
        self._s3 = S3Objects(location.bucket, client)
        self._lock = threading.Lock()
        self._versions: dict[str, str] = {}  # key -> ETag of the job version this writer holds
        self._claims: dict[str, str] = {}  # key -> ETag of this writer's claim on it
        self._claim_owners: dict[str, str] = {}  # claim ETag -> owner (a claim's content never changes)
        self._stop = threading.Event()
        self._released = False
        self._last_beat = 0.0  # monotonic time of the last heartbeat written
        self._beat()  # raises OSError when the bucket cannot be written: the writer degrades
        self._heartbeat: threading.Thread | None = None
        if heartbeat:
            self._heartbeat = threading.Thread(target=self._beating, name=f"s3-spool-heartbeat-{self.owner}",
                                               daemon=True)
            self._heartbeat.start()

    # ------------------------------------------------------------------ where things are

    @property
    def root(self) -> Location:
        return self.location.url

    @property
    def dir(self) -> Location:
        return self.location.url

    def path(self, key: str) -> Location:
        return f"s3://{self.location.bucket}/{self._job(key)}"

    def _job(self, key: str) -> str:
        return self.location.key(JOBS, f"{key}.json")

    def _claim(self, key: str) -> str:
        return self.location.key(CLAIMS, f"{key}.json")

    def _key_at(self, location: Location) -> str:
        key = job_key_of(str(location).rpartition("/")[2])
        if key is None:
            raise FileNotFoundError(f"not a job of this spool: {location}")
        return key

    # ------------------------------------------------------------------ the heartbeat (lease)

    def _beat(self) -> None:
        started = time.monotonic()
        body = json.dumps({"owner": self.owner, "at": time.time(), "lease_seconds": self.lease_seconds})
        self._s3.put(self.location.key(OWNERS, f"{self.owner}.json"), body.encode("utf-8"))
        self._last_beat = started

    def _fresh_beat(self) -> None:
        """Before claiming: renew a heartbeat the idle writer let age (raises ``OSError``)."""
        if time.monotonic() - self._last_beat > self.lease_seconds / 4:
            self._beat()

    def _beating(self) -> None:
        failing = False
        while not self._stop.wait(self.lease_seconds / 4):
            with self._lock:
                holding = bool(self._claims)
            if not holding:
                continue  # nobody looks at the heartbeat of a writer that claims nothing
            try:
                self._beat()
            except OSError as exc:
                if not failing:
                    _log.warning("S3 spool %s: cannot renew this writer's lease (%s); if it stays so, peers "
                                 "adopt its jobs and both run them (stored once: keys are deterministic)",
                                 self.location, exc)
                failing = True
            else:
                failing = False

    def abandon(self) -> None:
        """Stop renewing the lease without releasing anything: what a process that dies leaves behind.

        Peers adopt this writer's jobs once its lease has run out.
        """
        self._stop.set()

    # ------------------------------------------------------------------ one job

    def read(self, location: Location) -> WriteJob:
        """Read a job; the version read is the one this writer holds (its later writes are conditional on it)."""
        key = self._key_at(location)
        data, etag = self._s3.get(self._job(key))
        job = decode_job(data)
        with self._lock:
            self._versions[key] = etag
        return job

    def exists(self, key: str) -> bool:
        try:
            self._s3.head(self._job(key))
        except FileNotFoundError:
            return False
        return True

    def write(self, key: str, data: bytes) -> None:
        """Replace the version this writer holds (a checkpoint, a failed round), never a newer one.

        Raises :class:`SpoolConflictError` when another instance changed or finished the job since.
        """
        with self._lock:
            etag = self._versions.get(key)
        try:
            new = self._s3.put(self._job(key), data, if_match=etag, if_absent=etag is None)
        except FileNotFoundError as exc:  # If-Match on a job another instance already finished
            raise SpoolConflictError(f"{self.path(key)} was finished by another writer") from exc
        with self._lock:
            self._versions[key] = new

    def publish(self, key: str, make: Callable[[WriteJob | None], WriteJob]) -> WriteJob:
        """A new submission of job ``key``: claim it, then write ``make(theirs)`` compare-and-swap.

        ``make`` gets ``None`` first (the spool holds this writer's own version, or nothing) and,
        after a conflict, the version another instance wrote meanwhile, to merge with. Returns the
        job written. ``OSError`` when S3 cannot be reached (the writer then degrades to memory).
        """
        self._take_claim(key)
        with self._lock:
            etag = self._versions.get(key)
        theirs: WriteJob | None = None
        for _attempt in range(_CAS_ATTEMPTS):
            job = make(theirs)
            data = encode_job(job)
            try:
                new = self._s3.put(self._job(key), data, if_match=etag, if_absent=etag is None)
            except (SpoolConflictError, FileNotFoundError):
                theirs, etag = self._current(key)
                continue
            with self._lock:
                self._versions[key] = new
            return job
        raise SpoolConflictError(f"{self.path(key)} kept changing under {_CAS_ATTEMPTS} attempts to write it")

    def _current(self, key: str) -> tuple[WriteJob | None, str | None]:
        """The version in the bucket now and its ETag; an unreadable one is copied aside first."""
        try:
            data, etag = self._s3.get(self._job(key))
        except FileNotFoundError:
            return None, None
        try:
            return decode_job(data), etag
        except ValueError:
            self._s3.put(self.location.key(CORRUPT, f"{key}.{uuid.uuid4().hex}.json"), data)
            return None, etag

    def _take_claim(self, key: str) -> None:
        """Claim ``key`` for a submit: a new claim, or take over whoever's (best effort)."""
        with self._lock:
            if key in self._claims:
                return
        current: str | None = None
        for _attempt in range(_TAKEOVER_ATTEMPTS):
            if self._try_claim(key, current):
                return
            try:
                current = self._s3.head(self._claim(key))
            except FileNotFoundError:
                current = None
        _log.info("S3 spool %s: job %s is claimed by a writer that keeps renewing it; submitted without the claim "
                  "(it is durable; at worst it runs twice, stored once)", self.location, key)

    def _try_claim(self, key: str, etag: str | None) -> bool:
        """One conditional claim write: over ``etag``, or only if there is no claim; True if it won."""
        self._fresh_beat()
        try:
            new = self._s3.put(self._claim(key), claim_body(self.owner), if_match=etag, if_absent=etag is None)
        except (SpoolConflictError, FileNotFoundError):
            return False
        with self._lock:
            self._claims[key] = new
        return True

    def remove(self, key: str) -> None:
        """Delete the version this writer ran (not a newer one another instance wrote), then its claim."""
        with self._lock:
            etag = self._versions.pop(key, None)
            claim = self._claims.pop(key, None)
        if etag is not None:
            try:
                self._s3.delete(self._job(key), if_match=etag)
            except (SpoolConflictError, FileNotFoundError):
                pass  # another instance wrote a newer version (it runs it), or finished this one
            except OSError:
                with self._lock:
                    self._versions.setdefault(key, etag)
                    if claim is not None:
                        self._claims.setdefault(key, claim)
                raise
        if claim is not None:
            with suppress(OSError):  # a claim left behind names a writer that no longer has the job
                self._s3.delete(self._claim(key), if_match=claim)

    def own_keys(self) -> list[str]:
        with self._lock:
            return sorted(set(self._versions) | set(self._claims))

    def bury(self, key: str, job: WriteJob, error: BaseException | str) -> Location:
        """Write the dead letter (the whole job, its error), then remove the job as done."""
        target = self.location.key(DEAD, f"{key}.json")
        self._s3.put(target, encode_dead_letter(job, error))
        self.remove(key)
        return f"s3://{self.location.bucket}/{target}"

    def quarantine(self, location: Location) -> Location | None:
        """Copy an unreadable job object to ``corrupt/`` and delete it; a readable one is released.

        A job that reads fine now failed to load for a passing reason (S3 was unreachable): it is
        released, so the next adoption (this writer's or a peer's) runs it. Never raises.
        """
        try:
            key = self._key_at(location)
            data, etag = self._s3.get(self._job(key))
            try:
                decode_job(data)
            except ValueError:
                target = self.location.key(CORRUPT, f"{key}.{uuid.uuid4().hex}.json")
                self._s3.put(target, data)
                with self._lock:
                    self._versions[key] = etag
                self.remove(key)
                return f"s3://{self.location.bucket}/{target}"
            with self._lock:
                self._versions.pop(key, None)
                claim = self._claims.pop(key, None)
            if claim is not None:
                self._s3.delete(self._claim(key), if_match=claim)
        except OSError:
            pass
        return None

    # ------------------------------------------------------------------ dead writers

    def adopt(self, place: Callable[[AdoptedJob], None]) -> None:
        """Claim every job whose claim is missing or whose owner's lease ran out; one instance wins each.

        The listings only say which jobs to try: the conditional claim write decides, so two
        instances adopting at once never both get a job.
        """
        claims = {key: item for item in self._s3.listing(self.location.key(CLAIMS))[0]
                  if (key := job_key_of(item.name)) is not None}
        jobs = [key for item in self._s3.listing(self.location.key(JOBS))[0] if (key := job_key_of(item.name))]
        live = live_owners(self._s3, self.location, self.lease_seconds)  # after the claims (module docstring)
        live.add(self.owner)
        for key in jobs:
            if self._released:
                return
            with self._lock:
                if key in self._claims:
                    continue
            claim = claims.get(key)
            if claim is None:
                won = self._try_claim(key, None)
            else:
                owner, etag = self._owner_of(key, claim.etag)
                if etag is not None and (etag != claim.etag or owner in live):
                    continue  # a live owner's, or claimed since the listing (by a writer the listing may miss)
                won = self._try_claim(key, etag)
            if won and not self.exists(key):
                # Finished by its owner between our listing and our claim (it deletes the job, then
                # its claim): give the claim back rather than run a job that is gone.
                self.remove(key)
                continue
            if won:
                place(_ClaimedObject(self, key))
        self._sweep(claims, set(jobs), live)

    def _owner_of(self, key: str, etag: str) -> tuple[str | None, str | None]:
        with self._lock:
            owner = self._claim_owners.get(etag)
        if owner is not None:
            return owner, etag
        owner, current = claim_owner(self._s3, self.location, key)
        if owner is not None and current is not None:
            with self._lock:
                self._claim_owners[current] = owner
        return owner, current

    def _sweep(self, claims: dict[str, Listed], jobs: set[str], live: set[str]) -> None:
        """Best effort: claims of dead owners whose job is gone, and heartbeats long stopped."""
        with suppress(OSError):
            for key, claim in claims.items():
                if key in jobs:
                    continue
                owner, etag = self._owner_of(key, claim.etag)
                if owner not in live and etag == claim.etag:
                    with suppress(SpoolConflictError, FileNotFoundError):
                        self._s3.delete(self._claim(key), if_match=etag)
            beats, now = self._s3.listing(self.location.key(OWNERS))
            for beat in beats:
                if (now - beat.modified).total_seconds() > _SWEEP_AFTER_LEASES * self.lease_seconds:
                    with suppress(SpoolConflictError, FileNotFoundError):
                        self._s3.delete(self.location.key(OWNERS, beat.name), if_match=beat.etag)

    def release(self) -> None:
        """Delete this writer's claims and heartbeat: its leftover jobs are adoptable at once."""
        if self._released:
            return
        self._released = True
        self._stop.set()
        with self._lock:
            claims = dict(self._claims)
            self._claims.clear()
        for key, etag in sorted(claims.items()):
            with suppress(OSError):
                self._s3.delete(self._claim(key), if_match=etag)
        with suppress(OSError):
            self._s3.delete(self.location.key(OWNERS, f"{self.owner}.json"))

    def leave_to_parent(self) -> None:
        """A forked child's copy: never release or beat for the parent (its heartbeat thread stayed there)."""
        self._released = True
        self._stop.set()
