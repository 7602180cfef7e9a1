"""Whole-index upkeep, across users: TTL pruning, fact history pruning and statistics (full scans)."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Mapping
from typing import Any

from ..errors import ConfigurationError
from ..index import (
    EXTRACTIVE_KEY,
    FACT_STATUS_KEY,
    FACT_SUPERSEDED,
    SUMMARIZED_BY_KEY,
    TYPE_FACT,
    TYPE_SUMMARY,
    VALID_TO_KEY,
    utc_timestamp,
)
from ._results import IndexStats
from ._scan import ProgressCallback, Tally, Vector, is_expired, parallel_scan, sweep
from ._target import IndexLocator, existing_target


def prune_expired(
    locate: IndexLocator, *, now: float | None = None, segments: int = 4, progress: ProgressCallback | None = None
) -> int:
    """Delete every memory whose ``expires_at`` has passed (any user); returns how many.

    Searches already ignore expired memories; pruning reclaims their storage. Idempotent.
    """
    target = existing_target(locate)
    if target is None:
        return 0
    moment = time.time() if now is None else now
    pruned = sweep(
        target, lambda metadata: is_expired(metadata, moment), segments=segments, delete=True,
        tally=Tally(progress),
    )
    return len(pruned)


def prune_superseded_facts(
    locate: IndexLocator, *, before: float, segments: int = 4, progress: ProgressCallback | None = None
) -> int:
    """Delete every superseded fact (any user) that stopped being true before ``before`` (epoch seconds).

    Superseded facts are kept for history (export, temporal questions) until this trims it; current
    facts are never touched. Returns how many were deleted. Idempotent.
    """
    target = existing_target(locate)
    if target is None:
        return 0
    cutoff = utc_timestamp(before)  # ISO-8601 UTC strings of one shape order as their times do

    def ended_before(metadata: Mapping[str, Any]) -> bool:
        valid_to = metadata.get(VALID_TO_KEY)
        return (
            metadata.get("type") == TYPE_FACT
            and metadata.get(FACT_STATUS_KEY) == FACT_SUPERSEDED
            and isinstance(valid_to, str)
            and valid_to < cutoff
        )

    return len(sweep(target, ended_before, segments=segments, delete=True, tally=Tally(progress)))


def index_stats(locate: IndexLocator, *, segments: int = 4, progress: ProgressCallback | None = None) -> IndexStats:
    """Count the index's vectors by type, user and agent (a full scan) and report its configuration.

    Raises :class:`ConfigurationError` when the index does not exist: unlike a listing, statistics
    of nothing would hide a wrong bucket or tenant.
    """
    target = existing_target(locate)
    if target is None:
        missing = locate()
        raise ConfigurationError(f"index {missing.index_name!r} does not exist in bucket {missing.bucket_name!r}")
    index = target.client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)["index"]
    by_type: Counter[str] = Counter()
    by_user: Counter[str] = Counter()
    by_agent: Counter[str] = Counter()
    facts: Counter[str] = Counter()
    summaries: Counter[str] = Counter()
    expired = 0
    lock = threading.Lock()
    tally = Tally(progress)
    now = time.time()

    def visit(page: list[Vector]) -> None:
        nonlocal expired
        metas = [v.get("metadata") or {} for v in page]
        with lock:
            for metadata in metas:
                by_type[str(metadata.get("type", "unknown"))] += 1
                by_user[str(metadata.get("user_id", "unknown"))] += 1
                by_agent[str(metadata.get("agent_name", "unknown"))] += 1
                if metadata.get("type") == TYPE_FACT:
                    facts[str(metadata.get(FACT_STATUS_KEY, "unknown"))] += 1
                elif metadata.get("type") == TYPE_SUMMARY:
                    summaries[_summarized_by(metadata)] += 1
                expired += is_expired(metadata, now)
        tally.add(len(page), len(page))

    parallel_scan(target, segments, visit)
    return IndexStats(
        bucket_name=target.bucket_name,
        index_name=target.index_name,
        tenant_id=target.tenant_id,
        dimension=int(index.get("dimension", 0)),
        distance_metric=str(index.get("distanceMetric", "")),
        data_type=str(index.get("dataType", "")),
        non_filterable_metadata_keys=list(
            (index.get("metadataConfiguration") or {}).get("nonFilterableMetadataKeys") or []
        ),
        total=sum(by_type.values()),
        expired=expired,
        by_type=dict(by_type.most_common()),
        by_user=dict(by_user.most_common()),
        by_agent=dict(by_agent.most_common()),
        facts=dict(facts.most_common()),
        summaries=dict(summaries.most_common()),
    )


def _summarized_by(metadata: Mapping[str, Any]) -> str:
    """How a stored summary was written (see :attr:`IndexStats.summaries`)."""
    if metadata.get(EXTRACTIVE_KEY):
        return "extractive"
    return str(metadata.get(SUMMARIZED_BY_KEY) or "unrecorded")
