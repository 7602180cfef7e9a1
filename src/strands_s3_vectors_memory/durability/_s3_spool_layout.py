"""An S3 spool's layout and leases: where each thing is, and which writers are alive.

Layout below the spool's prefix (one spool per agent, like ``<data dir>/spool/<agent>``)::

    jobs/<key>.json      the job, the same JSON as a local spool file (key = sha256 of job_id)
    claims/<key>.json    who runs it: {"owner", "nonce", "at"}; created with If-None-Match: *,
                         taken over with If-Match: <its ETag>, so one claimant wins any race
    owners/<owner>.json  a live writer's heartbeat, rewritten every lease/4 seconds
    dead/<key>.json      dead letters (the job, its error, when it died)
    corrupt/<key>.*      unreadable job objects, kept for a human

Claims and leases, as the local spool's ``flock`` ed owner locks: a claim names its owner, and an
owner is alive while its heartbeat is younger than the lease (judged on S3's clock: the listing's
``Date`` against the heartbeat's ``LastModified``, never this machine's). The writer's side of the
protocol is :mod:`._s3_spool`; what the CLI and ``forget`` do from outside a writer is
:mod:`._s3_spool_admin`. Both read the spool through this module, so they agree on who is alive.
"""

from __future__ import annotations

import json
import os
import re
import socket
import time
import uuid

from ._s3_location import S3Location, S3Objects

__all__ = [
    "CLAIMS",
    "CORRUPT",
    "DEAD",
    "DEFAULT_LEASE_SECONDS",
    "JOBS",
    "OWNERS",
    "claim_body",
    "claim_owner",
    "job_key_of",
    "live_owners",
    "new_owner_id",
    "resolve_lease",
]

#: How long an owner's heartbeat stays valid: a writer silent for longer is dead and its jobs are
#: adopted. Long enough for a pause (GC, a frozen Lambda environment), short enough that a vanished
#: machine's conversations are stored within minutes.
DEFAULT_LEASE_SECONDS = 60.0
#: The spool's folders (see the module docstring).
JOBS, CLAIMS, OWNERS, DEAD, CORRUPT = "jobs", "claims", "owners", "dead", "corrupt"
_KEY = re.compile(r"^[0-9a-f]{64}$")
_CLOCK_GRAIN_SECONDS = 1.0


def resolve_lease(lease_seconds: float | None = None) -> float:
    """``lease_seconds``, or :data:`DEFAULT_LEASE_SECONDS` as it is now (a test may shorten it)."""
    return float(lease_seconds if lease_seconds is not None else DEFAULT_LEASE_SECONDS)


def new_owner_id() -> str:
    """A writer's name in the spool: its host and process, made unique (a restarted pid is a new owner)."""
    host = re.sub(r"[^A-Za-z0-9-]+", "-", socket.gethostname())[:40].strip("-") or "host"
    return f"{host}-{os.getpid()}-{uuid.uuid4().hex[:16]}"


def claim_body(owner: str) -> bytes:
    """A new claim's content.

    The nonce makes every claim's ETag unique (ETags are content hashes): no ABA on ``If-Match``.
    """
    return json.dumps({"owner": owner, "nonce": uuid.uuid4().hex, "at": time.time()}).encode("utf-8")


def job_key_of(name: str) -> str | None:
    """The job key an object's name (``<key>.json``) carries, or ``None`` for anything else."""
    key = name.removesuffix(".json")
    return key if name.endswith(".json") and _KEY.match(key) else None


def live_owners(objects: S3Objects, location: S3Location, lease_seconds: float | None = None) -> set[str]:
    """Owners whose heartbeat is younger than the lease, on S3's clock.

    S3's clocks have a one-second grain (``Date`` and ``LastModified`` are truncated), so an owner
    counts as alive for one more second: it is never declared dead before its lease is over.
    """
    lease = resolve_lease(lease_seconds)
    beats, now = objects.listing(location.key(OWNERS))
    return {
        beat.name.removesuffix(".json") for beat in beats
        if (now - beat.modified).total_seconds() < lease + _CLOCK_GRAIN_SECONDS
    }


def claim_owner(objects: S3Objects, location: S3Location, key: str) -> tuple[str | None, str | None]:
    """Who a job's claim names and the claim's ETag (``(None, None)``: no claim)."""
    try:
        data, etag = objects.get(location.key(CLAIMS, f"{key}.json"))
    except FileNotFoundError:
        return None, None
    try:
        owner = json.loads(data).get("owner")
    except (ValueError, AttributeError):
        owner = None
    return (owner if isinstance(owner, str) else ""), etag

