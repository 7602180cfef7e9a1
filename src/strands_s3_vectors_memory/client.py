"""What an S3-Vectors-shaped client is: the operations the memory store and its lifecycle call.

The store is written against this seam, never against a concrete client. Three satisfy it:
``boto3.client("s3vectors")`` (untyped, so :mod:`.index._clients` vouches for it where it is built), the
tenant-scoped :class:`~strands_s3_vectors_memory.tenancy.ScopedClient`, and the embedded engine's
client. Like httpx's transport base class, the seam names operations and their arguments but no
behaviour: errors are botocore ``ClientError`` s with the service's codes, whichever client raised
them.

Arguments are keyword-only and named as in the S3 Vectors API (and boto3): an index is named by
``vectorBucketName`` and ``indexName``, or by ``indexArn``. Responses are the API's JSON documents;
the store reads the few fields it needs with ``.get``, so a client may return any mapping.
:mod:`.index._clients` is where clients come from; this module is only what they look like.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

__all__ = [
    "Response",
    "S3VectorsClient",
]

#: An S3 Vectors response document (``{"vectors": [...], "nextToken": ...}``, ``{"index": {...}}``...).
Response = Mapping[str, Any]


class S3VectorsClient(Protocol):
    """The S3 Vectors operations the memory store uses: seven on its index, five operator actions.

    The operator actions (:meth:`create_vector_bucket`, :meth:`get_vector_bucket`,
    :meth:`delete_index`, and :meth:`update_index_mode` / :meth:`update_metadata_configuration` of
    ``setup --upgrade``) are called only through the store's own, unscoped client (creating the
    bucket offline, checking it exists, forgetting a tenant, upgrading an index); a tenant-scoped
    client has them too, and refuses them as IAM would.
    """

    # --- one index ------------------------------------------------------------------------------

    def get_index(
        self, *, vectorBucketName: str = ..., indexName: str = ..., indexArn: str = ...
    ) -> Response: ...

    def create_index(
        self,
        *,
        indexName: str,
        dataType: str,
        dimension: int,
        distanceMetric: str,
        vectorBucketName: str = ...,
        vectorBucketArn: str = ...,
        metadataConfiguration: Mapping[str, Any] = ...,
        encryptionConfiguration: Mapping[str, Any] = ...,
        tags: Mapping[str, str] = ...,
    ) -> Response: ...

    def put_vectors(
        self,
        *,
        vectors: Sequence[Mapping[str, Any]],
        vectorBucketName: str = ...,
        indexName: str = ...,
        indexArn: str = ...,
    ) -> Response: ...

    def get_vectors(
        self,
        *,
        keys: Sequence[str],
        vectorBucketName: str = ...,
        indexName: str = ...,
        indexArn: str = ...,
        returnData: bool = ...,
        returnMetadata: bool = ...,
    ) -> Response: ...

    def list_vectors(
        self,
        *,
        vectorBucketName: str = ...,
        indexName: str = ...,
        indexArn: str = ...,
        maxResults: int = ...,
        nextToken: str = ...,
        segmentCount: int = ...,
        segmentIndex: int = ...,
        returnData: bool = ...,
        returnMetadata: bool = ...,
    ) -> Response: ...

    def delete_vectors(
        self, *, keys: Sequence[str], vectorBucketName: str = ..., indexName: str = ..., indexArn: str = ...
    ) -> Response: ...

    def query_vectors(
        self,
        *,
        topK: int,
        queryVector: Mapping[str, Any] = ...,
        vectorBucketName: str = ...,
        indexName: str = ...,
        indexArn: str = ...,
        filter: Mapping[str, Any] = ...,
        returnMetadata: bool = ...,
        returnDistance: bool = ...,
        queryTexts: Sequence[Mapping[str, str]] = ...,
        returnScores: bool = ...,
    ) -> Response: ...


    # --- the bucket (operator actions) ----------------------------------------------------------

    def create_vector_bucket(
        self,
        *,
        vectorBucketName: str,
        encryptionConfiguration: Mapping[str, Any] = ...,
        tags: Mapping[str, str] = ...,
    ) -> Response: ...

    def get_vector_bucket(self, *, vectorBucketName: str = ..., vectorBucketArn: str = ...) -> Response: ...

    def delete_index(
        self, *, vectorBucketName: str = ..., indexName: str = ..., indexArn: str = ...
    ) -> Response: ...

    def update_index_mode(
        self, *, indexMode: str, vectorBucketName: str = ..., indexName: str = ..., indexArn: str = ...
    ) -> Response: ...

    def update_metadata_configuration(
        self,
        *,
        vectorBucketName: str = ...,
        indexName: str = ...,
        indexArn: str = ...,
        add: Mapping[str, Any] = ...,
        delete: Mapping[str, Any] = ...,
    ) -> Response: ...
