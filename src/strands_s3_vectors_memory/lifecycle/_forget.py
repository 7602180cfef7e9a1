"""Forgetting: every memory of a user in an index, or a tenant's whole index.

Both first stop what is still on its way (:func:`~strands_s3_vectors_memory.archive._pending.cancel_pending`:
a tombstone, this process's writers, dead processes' spool files), then delete what is stored, so
a write racing the deletion deletes itself again. Forgetting a user is idempotent: an interrupted
run is finished by running it again, and its result is verified by fresh scans.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from botocore.exceptions import ClientError

from ..archive import cancel_pending
from ..index import MemoryScope, delete_keys, error_code, index_exists
from ._results import ForgetIncompleteError, ForgetReport, TenantForgetReport
from ._scan import ProgressCallback, Tally, belongs, sweep
from ._target import IndexLocator

logger = logging.getLogger(__name__)

#: Full scans :func:`forget_user` makes to verify (and finish) a deletion.
FORGET_VERIFY_SCANS = 3


def forget_user(
    locate: IndexLocator,
    scope: MemoryScope,
    *,
    data_dir: Path,
    segments: int = 4,
    progress: ProgressCallback | None = None,
) -> ForgetReport:
    """Delete every vector of ``scope``'s user (of its agent only, if it names one) in the index.

    The index is scanned in ``segments`` parallel ``ListVectors`` segments and the user's keys are
    deleted in batches as they are found; then fresh scans verify that none is left (deleting
    stragglers, e.g. memories written during the scan). A key is deleted only after its own
    metadata named this user. Raises :class:`ForgetIncompleteError` if memories remain after
    :data:`FORGET_VERIFY_SCANS` verification scans.
    """
    started = time.monotonic()
    cancelled = cancel_pending(
        data_dir, tenant_id=scope.tenant_id, user_id=scope.user_id, agent_name=scope.agent_name
    )
    target = locate()

    def report(found: int, deleted: int, remaining: int, scans: int, scanned: int) -> ForgetReport:
        return ForgetReport(
            user_id=scope.user_id, agent_name=scope.agent_name, index_name=target.index_name,
            tenant_id=scope.tenant_id, found=found, deleted=deleted, remaining=remaining, scans=scans,
            scanned=scanned, seconds=round(time.monotonic() - started, 3), pending_cancelled=cancelled,
        )

    if not index_exists(target):
        return report(0, 0, 0, 0, 0)
    tally = Tally(progress)

    def matches(metadata: Mapping[str, Any]) -> bool:
        return belongs(metadata, scope)

    deleted = sweep(target, matches, segments=segments, delete=True, tally=tally)
    found = len(deleted)
    scans = 1
    remaining: set[str] = set()
    for attempt in range(FORGET_VERIFY_SCANS):
        remaining = sweep(target, matches, segments=segments, delete=False, tally=Tally(None))
        scans += 1
        if not remaining or attempt == FORGET_VERIFY_SCANS - 1:
            break
        logger.info("forget_user: %d memories appeared during the scan; deleting them", len(remaining))
        delete_keys(target, sorted(remaining))
        deleted |= remaining
    result = report(found, len(deleted - remaining), len(remaining), scans, tally.scanned)
    if remaining:
        raise ForgetIncompleteError(
            f"{len(remaining)} memories of the user remain in index {target.index_name!r} after {scans} scans "
            "(memories are being written concurrently?); run forget again",
            result,
        )
    return result


def forget_tenant(locate: IndexLocator, tenant_id: str, *, data_dir: Path) -> TenantForgetReport:
    """Delete ``tenant_id``'s whole index and every memory in it; the report is false if it did not exist.

    ``locate`` must give the tenant's index with the operator's client: deleting an index is not a
    tenant's right (its vended credentials cannot do it). The tenant's pending writes are cancelled
    first and counted, as :func:`forget_user` does.
    """
    cancelled = cancel_pending(data_dir, tenant_id=tenant_id, user_id=None, agent_name=None)
    target = locate()
    try:
        target.client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)
        target.client.delete_index(vectorBucketName=target.bucket_name, indexName=target.index_name)
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            return TenantForgetReport(tenant_id, target.index_name, False, cancelled)
        raise
    logger.info("deleted index %s/%s of tenant %s", target.bucket_name, target.index_name, tenant_id)
    return TenantForgetReport(tenant_id, target.index_name, True, cancelled)
