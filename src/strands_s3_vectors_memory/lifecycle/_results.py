"""Result types of the lifecycle operations (plain dataclasses, JSON-ready through ``as_dict``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ..errors import S3VectorMemoryError
from ..index import Memory

#: Refused import lines an :class:`ImportReport` details (all are counted): enough to see the pattern.
MAX_REPORTED_REJECTIONS = 100


@dataclass(frozen=True)
class MemoryPage:
    """One page of a user's memories and the token of the next page (``None`` on the last one).

    A page holds at most ``page_size`` memories; because the index is scanned and filtered, the
    last page can be empty.
    """

    memories: list[Memory]
    next_token: str | None


@dataclass(frozen=True)
class ForgetReport:
    """What :meth:`~strands_s3_vectors_memory.S3VectorMemory.forget_user` did, after verification.

    ``found`` counts the user's vectors seen by the first scan, ``deleted`` the distinct keys
    deleted by this run (more than ``found`` only if writes raced the scan), ``scans`` the full
    scans made (the last one found nothing), ``scanned`` the vectors read across them.
    """

    user_id: str
    agent_name: str | None
    index_name: str
    tenant_id: str | None
    found: int
    deleted: int
    remaining: int
    scans: int
    scanned: int
    seconds: float
    #: What of the user was on its way and will not be stored: in this process, open conversations
    #: dropped, queued writes cancelled and writes being stored right now (the tombstone makes them
    #: store nothing, or delete what they stored); and jobs left in the data directory's spools by
    #: processes that died. Writes in another live process are stopped by the tombstone too, but
    #: cannot be counted from here.
    pending_cancelled: int = 0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class TenantForgetReport:
    """What :meth:`~strands_s3_vectors_memory.MultiTenantS3VectorMemory.forget_tenant` did.

    True when the tenant's index existed (0.3.0 returned a bool).
    """

    tenant_id: str
    index_name: str
    existed: bool
    pending_cancelled: int = 0

    def __bool__(self) -> bool:
        return self.existed

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ForgetIncompleteError(S3VectorMemoryError):
    """Memories of the user were still found after every verification scan; running again continues."""

    def __init__(self, message: str, report: ForgetReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class ImportRejection:
    """A line :meth:`~strands_s3_vectors_memory.S3VectorMemory.import_memories` refused to write, and why."""

    line: int
    key: str
    reason: str


@dataclass(frozen=True)
class ImportReport:
    """What :meth:`~strands_s3_vectors_memory.S3VectorMemory.import_memories` wrote, and how each got its vector.

    ``rejected`` counts the lines refused because their key does not belong to the user, agent and
    conversation of their metadata (never written); ``rejections`` details the first
    :data:`MAX_REPORTED_REJECTIONS` of them.
    """

    imported: int
    re_embedded: int
    kept_vectors: int
    rejected: int = 0
    rejections: tuple[ImportRejection, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IndexStats:
    """Counts over one index (by type, user and agent) and the index's configuration."""

    bucket_name: str
    index_name: str
    tenant_id: str | None
    dimension: int
    distance_metric: str
    data_type: str
    non_filterable_metadata_keys: list[str]
    total: int
    expired: int
    by_type: dict[str, int] = field(default_factory=dict)
    by_user: dict[str, int] = field(default_factory=dict)
    by_agent: dict[str, int] = field(default_factory=dict)
    #: Facts by ``fact_status``: ``current`` (injected) and ``superseded`` (history).
    facts: dict[str, int] = field(default_factory=dict)
    #: Summaries by how they were written: ``structured`` (the model's structured output), ``salvaged``
    #: (its answer read without a second call), ``text`` (the text protocol), ``extractive`` (no model:
    #: the user's own words), ``unrecorded`` (stored by a version that did not record it).
    summaries: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SetupResult:
    """What :func:`setup_index` found or created."""

    bucket_name: str
    index_name: str
    bucket_created: bool
    index_created: bool
    dimension: int
    distance_metric: str
    data_type: str
    non_filterable_metadata_keys: list[str]
    #: ``CLASSIC`` or ``ENHANCED`` (``None``: the service reports no index modes, e.g. moto).
    index_mode: str | None = None
    #: Status of ``content``'s full-text search: ``ACTIVE``, ``BUILDING`` or ``None`` (not searchable).
    full_text: str | None = None
    #: What ``--upgrade`` changed this time (nothing when the index was already upgraded).
    upgraded: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)
