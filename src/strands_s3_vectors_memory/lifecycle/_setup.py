"""Creating the vector bucket and index with the spec's settings (the ``setup`` command)."""

from __future__ import annotations

from botocore.exceptions import ClientError

from ..client import S3VectorsClient
from ..config import NON_FILTERABLE_METADATA_KEYS
from ..errors import ConfigurationError
from ..index import DATA_TYPE, DISTANCE_METRIC, create_index, error_code
from ._results import SetupResult


def setup_index(
    client: S3VectorsClient, bucket_name: str, index_name: str, *, dimension: int, create_bucket: bool = True
) -> SetupResult:
    """Create the vector bucket and an index with the spec's settings, or check the existing ones.

    Idempotent: existing resources are left alone, but an existing index with another dimension,
    metric, data type or non-filterable keys raises :class:`ConfigurationError`, because the store
    could not use it (a wrong non-filterable set would make ``content`` count against the 2 KB
    filterable metadata limit).
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
    return SetupResult(
        bucket_name=bucket_name,
        index_name=index_name,
        bucket_created=bucket_created,
        index_created=index_created,
        dimension=found[0],
        distance_metric=found[1],
        data_type=found[2],
        non_filterable_metadata_keys=keys,
    )
