"""One S3 Vectors index as the store uses it: where it is, how it is made and checked, read and written.

The store's search and write paths and the lifecycle operations (list, forget, export...) all work
on an :class:`IndexTarget`, and meet here for what they share: the spec's index layout (float32,
cosine, the embedder's dimension, ``content``/``stored_at``/``conversation_id``/``type``
non-filterable), the service's batch limits, paging through ``ListVectors`` and batched deletes.
New indexes are also ENHANCED with ``content`` full-text searchable (:data:`TEXT_KEY`): an addition
S3 Vectors keeps beside the layout, so 0.3.0 reads and writes them as before.
Nothing here knows users, tenants or memories: that is the store's and the lifecycle's business.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from ..client import Response, S3VectorsClient
from ..config import NON_FILTERABLE_METADATA_KEYS
from ..errors import ConfigurationError, DimensionMismatchError

if TYPE_CHECKING:
    from ..embeddings import Embedder

__all__ = [
    "DATA_TYPE",
    "DISTANCE_METRIC",
    "LIST_PAGE_SIZE",
    "TEXT_KEY",
    "WRITE_BATCH",
    "IndexTarget",
    "create_index",
    "delete_keys",
    "describe_index",
    "error_code",
    "index_exists",
    "list_page",
    "open_index",
    "put_vectors",
    "text_key",
    "text_status",
]

logger = logging.getLogger(__name__)

#: Keys per ``DeleteVectors`` / vectors per ``PutVectors`` request (service limit).
WRITE_BATCH = 500
#: Vectors per ``ListVectors`` request (the service allows 1-1000; metadata can be 40 KB each).
LIST_PAGE_SIZE = 500
#: The spec's index layout, besides the embedder's dimension and :data:`NON_FILTERABLE_METADATA_KEYS`.
DATA_TYPE = "float32"
DISTANCE_METRIC = "cosine"
#: The memory text, full-text searchable with the standard analyzer (memories come in any language).
TEXT_KEY = "content"
#: The text search configuration of the memory index.
TEXT_SEARCH_CONFIGURATIONS: tuple[Mapping[str, str], ...] = ({"metadataKey": TEXT_KEY},)


@dataclass(frozen=True)
class IndexTarget:
    """One index reached through one client: what every operation needs.

    ``tenant_id`` is the tenant whose index it is (``None`` on the single-tenant store); the client
    is whatever may touch it: the store's own, or one confined to this index with the tenant's
    credentials.
    """

    client: S3VectorsClient
    bucket_name: str
    index_name: str
    tenant_id: str | None = None
    #: The full-text searchable key when the index answers hybrid queries (see :func:`text_key`).
    text_key: str | None = None


def error_code(exc: ClientError) -> str:
    """The service error code of a ``ClientError`` (``NotFoundException``, ...)."""
    return str(exc.response.get("Error", {}).get("Code", ""))


# --- making and checking -----------------------------------------------------------------------


def index_exists(target: IndexTarget) -> bool:
    """Whether the index exists (``GetIndex``); any other service error propagates."""
    try:
        target.client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            return False
        raise
    return True


def describe_index(target: IndexTarget) -> Mapping[str, Any] | None:
    """The index's description (``GetIndex``), or ``None`` if it does not exist."""
    try:
        return dict(target.client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)["index"])
    except ClientError as exc:
        if error_code(exc) == "NotFoundException":
            return None
        raise


def create_index(client: S3VectorsClient, bucket_name: str, index_name: str, *, dimension: int) -> None:
    """``CreateIndex`` with the spec's settings and ``content`` full-text searchable.

    A bucket that still creates CLASSIC indexes (made before 2026-09-30) refuses text search with a
    ``ValidationException``: the index is then made without it (the store falls back to ranking
    dense candidates itself; ``setup --upgrade`` adds it later). Other service errors
    (``ConflictException``...) propagate.
    """
    params: dict[str, Any] = {
        "vectorBucketName": bucket_name,
        "indexName": index_name,
        "dataType": DATA_TYPE,
        "dimension": dimension,
        "distanceMetric": DISTANCE_METRIC,
    }
    layout = {"nonFilterableMetadataKeys": list(NON_FILTERABLE_METADATA_KEYS)}
    try:
        client.create_index(
            **params, metadataConfiguration={**layout, "textSearchConfigurations": list(TEXT_SEARCH_CONFIGURATIONS)}
        )
    except ClientError as exc:
        if error_code(exc) != "ValidationException":
            raise
        logger.info("bucket %s creates CLASSIC indexes: %s made without full-text search", bucket_name, index_name)
        client.create_index(**params, metadataConfiguration=layout)


def text_status(index: Mapping[str, Any]) -> str | None:
    """The status of :data:`TEXT_KEY`'s text search in a ``GetIndex`` description: ``ACTIVE``,
    ``BUILDING``, or ``None`` when the key is not full-text searchable (a missing status is ACTIVE)."""
    configs = (index.get("metadataConfiguration") or {}).get("textSearchConfigurations") or []
    return next((str(c.get("status", "ACTIVE")) for c in configs if c.get("metadataKey") == TEXT_KEY), None)


def text_key(index: Mapping[str, Any]) -> str | None:
    """:data:`TEXT_KEY` when the index (a ``GetIndex`` description) serves hybrid queries on it: ENHANCED,
    with the key's text search ``ACTIVE``; ``None`` otherwise (the store then ranks dense candidates)."""
    active = index.get("indexMode") == "ENHANCED" and text_status(index) == "ACTIVE"
    return TEXT_KEY if active else None


def open_index(
    target: IndexTarget, embedder: Embedder, *, create: bool, bucket_client: S3VectorsClient | None = None
) -> Mapping[str, Any]:
    """Make sure the store can use ``target``'s index with ``embedder``, creating it if missing and ``create``.

    Returns the index's description (``GetIndex``). ``bucket_client`` (offline only) first creates
    the vector bucket, with the operator's rights a tenant's client lacks. Raises
    :class:`DimensionMismatchError` when the index holds vectors of another dimension,
    :class:`ConfigurationError` when it is missing (and may not be created) or not cosine.
    """
    index = describe_index(target)
    if index is None:
        index = _create(target, embedder, create=create, bucket_client=bucket_client)
    _check(target, index, embedder)
    return index


def _create(
    target: IndexTarget, embedder: Embedder, *, create: bool, bucket_client: S3VectorsClient | None
) -> Mapping[str, Any]:
    if not create:
        raise ConfigurationError(
            f"index {target.index_name!r} does not exist in bucket {target.bucket_name!r}; create it "
            "with `s3-vectors-memory setup` or pass create_index=True"
        )
    if bucket_client is not None:
        try:
            bucket_client.create_vector_bucket(vectorBucketName=target.bucket_name)
        except ClientError as exc:
            if error_code(exc) != "ConflictException":
                raise
    try:
        create_index(target.client, target.bucket_name, target.index_name, dimension=embedder.dimension)
        logger.info("created index %s/%s (%d-d, cosine)", target.bucket_name, target.index_name, embedder.dimension)
    except ClientError as exc:
        code = error_code(exc)
        if code == "NotFoundException":
            raise ConfigurationError(
                f"vector bucket {target.bucket_name!r} does not exist: create it with "
                "`s3-vectors-memory setup` or `aws s3vectors create-vector-bucket`"
            ) from exc
        if code != "ConflictException":  # another process created it first: fine
            raise
    return dict(target.client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)["index"])


def _check(target: IndexTarget, index: Mapping[str, Any], embedder: Embedder) -> None:
    dimension = int(index.get("dimension", 0))
    if dimension != embedder.dimension:
        raise DimensionMismatchError(
            f"index {target.index_name!r} stores {dimension}-d vectors but embedding model "
            f"{embedder.model_id!r} produces {embedder.dimension}-d vectors; use a matching "
            "model (EMBEDDING_MODEL) or another index"
        )
    metric = str(index.get("distanceMetric", DISTANCE_METRIC))
    if metric != DISTANCE_METRIC:
        raise ConfigurationError(f"index {target.index_name!r} uses {metric} distance; the store needs cosine")


# --- reading and writing -----------------------------------------------------------------------


def list_page(
    target: IndexTarget,
    token: str | None,
    *,
    segment: tuple[int, int] | None = None,
    return_data: bool = False,
) -> Response:
    """One ``ListVectors`` page with metadata, after ``token``; ``segment`` is ``(count, index)``."""
    params: dict[str, Any] = {
        "vectorBucketName": target.bucket_name,
        "indexName": target.index_name,
        "maxResults": LIST_PAGE_SIZE,
        "returnMetadata": True,
        "returnData": return_data,
    }
    if segment is not None and segment[0] > 1:
        params["segmentCount"], params["segmentIndex"] = segment
    if token:
        params["nextToken"] = token
    return target.client.list_vectors(**params)


def put_vectors(target: IndexTarget, vectors: Sequence[Mapping[str, Any]]) -> None:
    """``PutVectors`` in batches of :data:`WRITE_BATCH`, in order."""
    for start in range(0, len(vectors), WRITE_BATCH):
        target.client.put_vectors(
            vectorBucketName=target.bucket_name,
            indexName=target.index_name,
            vectors=list(vectors[start : start + WRITE_BATCH]),
        )


def delete_keys(target: IndexTarget, keys: Sequence[str]) -> None:
    """``DeleteVectors`` in batches of :data:`WRITE_BATCH` (keys that do not exist are no error)."""
    for start in range(0, len(keys), WRITE_BATCH):
        target.client.delete_vectors(
            vectorBucketName=target.bucket_name,
            indexName=target.index_name,
            keys=list(keys[start : start + WRITE_BATCH]),
        )
