"""Creating the vector bucket and index with the spec's settings (the ``setup`` command), and upgrading it.

``setup --upgrade`` moves an index made before full-text search (by 0.3.0, an earlier version of this
package, or in a bucket from before 2026-09-30) to ENHANCED and makes ``content`` full-text
searchable, then waits until the service has backfilled it (``BUILDING`` -> ``ACTIVE``). Each step is
skipped when already done, so running it twice is harmless. Nothing in the vectors changes: 0.3.0
reads and writes the index as before.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError

from ..client import S3VectorsClient
from ..config import NON_FILTERABLE_METADATA_KEYS
from ..errors import ConfigurationError
from ..index import (
    DATA_TYPE,
    DISTANCE_METRIC,
    TEXT_SEARCH_CONFIGURATIONS,
    create_index,
    error_code,
    text_status,
)
from ._results import SetupResult

#: How long ``--upgrade`` waits for the service to backfill ``content`` before giving up.
UPGRADE_TIMEOUT_SECONDS = 3600.0


def upgrade_index(
    client: S3VectorsClient,
    bucket_name: str,
    index_name: str,
    *,
    timeout: float = UPGRADE_TIMEOUT_SECONDS,
    sleep: Callable[[float], None] = time.sleep,
) -> tuple[dict[str, Any], list[str]]:
    """Make the index ENHANCED with ``content`` full-text searchable and wait for ``ACTIVE``.

    Returns the final ``GetIndex`` description and what was changed (``["index_mode", "full_text"]``
    at most; empty when it was already upgraded). Raises :class:`ConfigurationError` when the
    service has no index modes or the backfill outlasts ``timeout``.
    """
    where: dict[str, Any] = {"vectorBucketName": bucket_name, "indexName": index_name}
    index = dict(client.get_index(**where)["index"])
    if "indexMode" not in index:
        raise ConfigurationError(
            f"the service behind this client reports no index mode for {index_name!r}: it predates "
            "S3 Vectors' index modes and full-text search, so there is nothing to upgrade to"
        )
    changed: list[str] = []
    if index["indexMode"] != "ENHANCED":
        client.update_index_mode(**where, indexMode="ENHANCED")
        changed.append("index_mode")
    if text_status(index) is None:
        try:
            client.update_metadata_configuration(
                **where, add={"textSearchConfigurations": list(TEXT_SEARCH_CONFIGURATIONS)}
            )
            changed.append("full_text")
        except ClientError as exc:  # a concurrent upgrade added it first: fine, wait for it below
            if error_code(exc) not in ("ValidationException", "ConflictException"):
                raise
    deadline = time.monotonic() + timeout
    delay = 0.05
    while True:
        index = dict(client.get_index(**where)["index"])
        if text_status(index) == "ACTIVE":
            return index, changed
        if time.monotonic() >= deadline:
            raise ConfigurationError(
                f"full-text search on {index_name!r} is still {text_status(index)} after {timeout:.0f} s; "
                "run `s3-vectors-memory setup --upgrade` again later"
            )
        sleep(delay)
        delay = min(delay * 2, 5.0)


def setup_index(
    client: S3VectorsClient,
    bucket_name: str,
    index_name: str,
    *,
    dimension: int,
    create_bucket: bool = True,
    upgrade: bool = False,
) -> SetupResult:
    """Create the vector bucket and an index with the spec's settings, or check the existing ones.

    Idempotent: existing resources are left alone, but an existing index with another dimension,
    metric, data type or non-filterable keys raises :class:`ConfigurationError`, because the store
    could not use it (a wrong non-filterable set would make ``content`` count against the 2 KB
    filterable metadata limit). With ``upgrade`` the index is then moved to ENHANCED with
    ``content`` full-text searchable (see :func:`upgrade_index`).
    """
    if not 1 <= dimension <= 4096:
        raise ConfigurationError(f"dimension must be between 1 and 4096, got {dimension}")
    bucket_created = False
    if create_bucket:
        try:
            client.create_vector_bucket(vectorBucketName=bucket_name)
            bucket_created = True
        except ClientError as exc:
            if error_code(exc) != "ConflictException":
                raise
    expected_keys = sorted(NON_FILTERABLE_METADATA_KEYS)
    index_created = False
    try:
        create_index(client, bucket_name, index_name, dimension=dimension)
        index_created = True
    except ClientError as exc:
        if error_code(exc) != "ConflictException":
            raise
    index = client.get_index(vectorBucketName=bucket_name, indexName=index_name)["index"]
    keys = sorted((index.get("metadataConfiguration") or {}).get("nonFilterableMetadataKeys") or [])
    found = (int(index.get("dimension", 0)), str(index.get("distanceMetric")), str(index.get("dataType")), keys)
    wanted = (dimension, DISTANCE_METRIC, DATA_TYPE, expected_keys)
    if found != wanted:
        raise ConfigurationError(
            f"index {index_name!r} in bucket {bucket_name!r} already exists with dimension={found[0]}, "
            f"distanceMetric={found[1]}, dataType={found[2]}, nonFilterableMetadataKeys={found[3]}; "
            f"expected dimension={dimension}, cosine, float32, {expected_keys}. Use another index "
            "name or delete it first"
        )
    upgraded: list[str] = []
    if upgrade:
        index, upgraded = upgrade_index(client, bucket_name, index_name)
    return SetupResult(
        bucket_name=bucket_name,
        index_name=index_name,
        bucket_created=bucket_created,
        index_created=index_created,
        dimension=found[0],
        distance_metric=found[1],
        data_type=found[2],
        non_filterable_metadata_keys=keys,
        index_mode=None if index.get("indexMode") is None else str(index["indexMode"]),
        full_text=text_status(index),
        upgraded=upgraded,
    )
