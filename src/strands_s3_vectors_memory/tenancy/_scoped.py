"""A client confined to one tenant's index: the same guarantee as IAM, in code (offline, and in depth)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from botocore.exceptions import ClientError

from ..client import Response, S3VectorsClient
from ..errors import ConfigurationError
from ._arns import parse_bucket_arn, parse_index_arn
from ._ids import _shorten

#: The S3 Vectors operations the memory store needs on its one index.
SCOPED_OPERATIONS = frozenset(
    {
        "get_index",
        "create_index",
        "put_vectors",
        "get_vectors",
        "list_vectors",
        "delete_vectors",
        "query_vectors",
    }
)
#: Every other S3 Vectors operation: bucket-level, listing and policy calls, all refused.
_DENIED_OPERATIONS = frozenset(
    {
        "create_vector_bucket",
        "delete_vector_bucket",
        "get_vector_bucket",
        "list_vector_buckets",
        "list_indexes",
        "delete_index",
        "get_vector_bucket_policy",
        "put_vector_bucket_policy",
        "delete_vector_bucket_policy",
        "list_tags_for_resource",
        "tag_resource",
        "untag_resource",
        "put_vector_bucket_default_index_mode",
        "update_index_mode",
        "update_metadata_configuration",
    }
)


def operation_name(method: str) -> str:
    return "".join(part.capitalize() for part in method.split("_"))


class ScopedClient:
    """An S3-Vectors-shaped client confined to one bucket and one index.

    Created by :func:`scope_client`. Allowed operations are forwarded unchanged when every
    bucket/index identifier in the request names the scope; anything else raises the same
    ``AccessDeniedException`` (HTTP 403) that IAM would. It is an
    :class:`~strands_s3_vectors_memory.client.S3VectorsClient` like the client it wraps, so the store
    uses a tenant's client exactly as its own: what is out of scope is refused here (and by IAM).
    """

    def __init__(self, client: S3VectorsClient, *, bucket_name: str, index_name: str) -> None:
        if not bucket_name or not index_name:
            raise ConfigurationError("scope_client needs a bucket_name and an index_name")
        self._client = client
        self._bucket = bucket_name
        self._index = index_name

    @property
    def bucket_name(self) -> str:
        return self._bucket

    @property
    def index_name(self) -> str:
        return self._index

    # --- the scoped index: checked, then forwarded unchanged (see SCOPED_OPERATIONS) ---------------

    def get_index(self, **params: Any) -> Response:
        self.check("get_index", params)
        return self._client.get_index(**params)

    def create_index(self, **params: Any) -> Response:
        self.check("create_index", params)
        return self._client.create_index(**params)

    def put_vectors(self, **params: Any) -> Response:
        self.check("put_vectors", params)
        return self._client.put_vectors(**params)

    def get_vectors(self, **params: Any) -> Response:
        self.check("get_vectors", params)
        return self._client.get_vectors(**params)

    def list_vectors(self, **params: Any) -> Response:
        self.check("list_vectors", params)
        return self._client.list_vectors(**params)

    def delete_vectors(self, **params: Any) -> Response:
        self.check("delete_vectors", params)
        return self._client.delete_vectors(**params)

    def query_vectors(self, **params: Any) -> Response:
        self.check("query_vectors", params)
        return self._client.query_vectors(**params)

    # --- operator actions of the seam: always refused (the others: __getattr__) ---------------------

    def create_vector_bucket(self, **_params: Any) -> Response:
        raise self._outside_rights("create_vector_bucket")

    def get_vector_bucket(self, **_params: Any) -> Response:
        raise self._outside_rights("get_vector_bucket")

    def delete_index(self, **_params: Any) -> Response:
        raise self._outside_rights("delete_index")

    def update_index_mode(self, **_params: Any) -> Response:
        raise self._outside_rights("update_index_mode")

    def update_metadata_configuration(self, **_params: Any) -> Response:
        raise self._outside_rights("update_metadata_configuration")

    def __getattr__(self, name: str) -> Any:
        """The other S3 Vectors operations are refused; anything else (``meta``, ``close``...) is forwarded."""
        if name in ("_client", "_bucket", "_index"):  # not yet set (copy/pickle): do not recurse
            raise AttributeError(name)
        if name in _DENIED_OPERATIONS:

            def denied_call(**_kwargs: Any) -> Any:
                raise self._outside_rights(name)

            denied_call.__name__ = name
            return denied_call
        return self._extra(name)

    def get_paginator(self, operation_name: str) -> Any:
        """Paginators are scoped too: only ``list_vectors``, only on the scoped index."""
        if operation_name != "list_vectors":
            raise self._denied(operation_name, f"paginating {operation_name} is not allowed")
        return _ScopedPaginator(self, self._extra("get_paginator")(operation_name))

    def check(self, operation: str, params: Mapping[str, Any]) -> None:
        """Raise ``AccessDeniedException`` unless ``params`` target exactly the scoped index.

        Every identifier present must name the scope, and together they must name both the
        bucket and the index: a request the client cannot attribute is refused.
        """
        names_bucket = names_index = False
        if "vectorBucketName" in params:
            self._require(operation, "vectorBucketName", params, params["vectorBucketName"] == self._bucket)
            names_bucket = True
        if "indexName" in params:
            self._require(operation, "indexName", params, params["indexName"] == self._index)
            names_index = True
        if "indexArn" in params:
            in_scope = parse_index_arn(str(params["indexArn"])) == (self._bucket, self._index)
            self._require(operation, "indexArn", params, in_scope)
            names_bucket = names_index = True
        if "vectorBucketArn" in params:
            in_scope = parse_bucket_arn(str(params["vectorBucketArn"])) == self._bucket
            self._require(operation, "vectorBucketArn", params, in_scope)
            names_bucket = True
        if not (names_bucket and names_index):
            raise self._denied(operation, "the request must name this client's bucket and index")

    def _extra(self, name: str) -> Any:
        """An attribute of the wrapped client beyond the seam's operations, forwarded as it is."""
        return getattr(self._client, name)

    def _outside_rights(self, operation: str) -> ClientError:
        return self._denied(operation, f"{operation_name(operation)} is outside a tenant-scoped client's rights")

    def _require(self, operation: str, key: str, params: Mapping[str, Any], in_scope: bool) -> None:
        if not in_scope:
            raise self._denied(operation, f"{key} {_shorten(params[key])} is outside this client's scope")

    def _denied(self, operation: str, reason: str) -> ClientError:
        exceptions = getattr(self._client, "exceptions", None)
        error_class = getattr(exceptions, "AccessDeniedException", None)
        if not (isinstance(error_class, type) and issubclass(error_class, ClientError)):
            error_class = ClientError
        message = f"Access denied: {reason} (scope: bucket {self._bucket!r}, index {self._index!r})"
        response: Any = {
            "Error": {"Code": "AccessDeniedException", "Message": message},
            "ResponseMetadata": {"HTTPStatusCode": 403},
        }
        return error_class(response, operation_name(operation))

    def __repr__(self) -> str:
        return f"ScopedClient(bucket_name={self._bucket!r}, index_name={self._index!r})"


class _ScopedPaginator:
    """A paginator whose every page request is checked against the scope first."""

    def __init__(self, scoped: ScopedClient, paginator: Any) -> None:
        self._scoped = scoped
        self._paginator = paginator

    def paginate(self, **kwargs: Any) -> Any:
        self._scoped.check("list_vectors", kwargs)
        return self._paginator.paginate(**kwargs)


def scope_client(client: S3VectorsClient, *, bucket_name: str, index_name: str) -> ScopedClient:
    """Confine an S3 Vectors client (boto3 or the local engine) to one bucket and index.

    Allowed: ``get_index``, ``create_index``, ``put_vectors``, ``get_vectors``,
    ``list_vectors`` (and its paginator), ``delete_vectors`` and ``query_vectors``, each only when
    ``vectorBucketName``/``indexName``/``indexArn``/``vectorBucketArn`` name the scope. Every
    other S3 Vectors operation raises ``AccessDeniedException``. Attributes that are not
    S3 Vectors operations (``meta``, ``exceptions``, ``close``, ...) are forwarded.
    """
    return ScopedClient(client, bucket_name=bucket_name, index_name=index_name)
