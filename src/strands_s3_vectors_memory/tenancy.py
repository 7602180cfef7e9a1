"""Tenant isolation: tenant id rules, per-tenant index names, the Token Vending Machine.

Multi-tenant memory keeps one S3 Vectors index per tenant (``memory-{tenantId}``) and reaches it
only with credentials vended for that tenant: STS ``AssumeRole`` on the TVM role with a
``TenantID`` session tag, which the role's policy (see :mod:`strands_s3_vectors_memory.iam`)
turns into access to exactly ``index/memory-${aws:PrincipalTag/TenantID}``.

Two rules keep tenants apart even when something goes wrong:

* tenant ids are validated, never normalised: two different ids can never name the same
  index, and no id can spell another resource;
* when credentials cannot be vended, :class:`~strands_s3_vectors_memory.IsolationError` is
  raised; nothing ever falls back to the process's ambient credentials.

:func:`scope_client` adds the same guarantee in code, for the local backend (which has no IAM)
and as defence in depth on AWS.
"""

from __future__ import annotations

import re
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError
from cachetools import LRUCache, TLRUCache

from .arns import is_role_arn, parse_bucket_arn, parse_index_arn
from .client import Response, S3VectorsClient
from .config import TENANT_INDEX_PREFIX, resolve_region
from .errors import ConfigurationError, InvalidIdentityError, IsolationError

__all__ = [
    "SCOPED_OPERATIONS",
    "TENANT_ID_PATTERN",
    "TENANT_ID_RULE",
    "TENANT_TAG_KEY",
    "ScopedClient",
    "TenantCredentials",
    "TokenVendingMachine",
    "scope_client",
    "tenant_id_from_context",
    "tenant_index_name",
    "validate_tenant_id",
]

# --- tenant ids -------------------------------------------------------------------------------

#: 1-56 characters so that ``memory-{tenantId}`` fits the 63-character index name limit.
TENANT_ID_PATTERN = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,54}[a-z0-9])?")
TENANT_ID_RULE = (
    "a tenant id must be 1-56 characters of lower-case letters a-z, digits 0-9 and hyphens, "
    "starting and ending with a letter or digit"
)
#: Key of the STS session tag carrying the tenant id (the IAM policies refer to it).
TENANT_TAG_KEY = "TenantID"


def _shorten(value: object, limit: int = 80) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def validate_tenant_id(tenant_id: object) -> str:
    """Return ``tenant_id`` unchanged if it follows :data:`TENANT_ID_RULE`, else raise.

    Nothing is lower-cased or trimmed on purpose: ``"Acme"`` and ``"acme"`` must not silently
    share one index.
    """
    if not isinstance(tenant_id, str) or TENANT_ID_PATTERN.fullmatch(tenant_id) is None:
        raise InvalidIdentityError(f"invalid tenant id {_shorten(tenant_id)}: {TENANT_ID_RULE}")
    return tenant_id


def tenant_index_name(tenant_id: object) -> str:
    """The S3 Vectors index holding one tenant's memories: ``memory-{tenantId}``."""
    return f"{TENANT_INDEX_PREFIX}{validate_tenant_id(tenant_id)}"


def tenant_id_from_context(tenant_context: object) -> str:
    """Extract and validate the tenant id from ``invocation_state["tenant_context"]``.

    The spec's shape is ``{"tenantId": "tenant-001"}``.
    """
    if not isinstance(tenant_context, Mapping):
        raise InvalidIdentityError(
            "invocation_state['tenant_context'] must be a dict with a 'tenantId' key, "
            f"got {type(tenant_context).__name__}"
        )
    if "tenantId" not in tenant_context:
        raise InvalidIdentityError("invocation_state['tenant_context'] has no 'tenantId' key")
    return validate_tenant_id(tenant_context["tenantId"])


# --- Token Vending Machine --------------------------------------------------------------------

#: RoleSessionName allows ``[\w+=,.@-]`` and 64 characters; a tenant id takes up to 56 of them.
_SESSION_PREFIX_PATTERN = re.compile(r"[\w+=,.@-]{1,7}")
_LOCK_STRIPES = 64


@dataclass(frozen=True)
class TenantCredentials:
    """Temporary credentials for one tenant, as returned by STS (secrets hidden from repr)."""

    access_key_id: str
    secret_access_key: str = field(repr=False)
    session_token: str = field(repr=False)
    expiration: datetime


@dataclass(frozen=True)
class _Failure:
    """A cached STS failure, re-raised without calling STS until its short TTL runs out."""

    cause: BaseException
    message: str


def _aware(value: object) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"Expiration is {type(value).__name__}, not a datetime")
    return value if value.tzinfo is not None else value.replace(tzinfo=timezone.utc)


def _text(credentials: Mapping[str, Any], key: str) -> str:
    value = credentials[key]
    if not isinstance(value, str) or not value:
        raise TypeError(f"{key} is missing or empty")
    return value


def _standard_retries(total_attempts: int) -> Config:
    return Config(retries={"mode": "standard", "total_max_attempts": total_attempts})


class TokenVendingMachine:
    """Vends, caches and refreshes tenant-scoped AWS credentials.

    Credentials are cached per tenant until ``expiration - refresh_margin_seconds``; concurrent
    requests for one tenant share a single STS call. A failure is remembered for
    ``failure_ttl_seconds`` so a broken tenant (or STS outage) fails fast instead of hammering
    STS. ``sts_client`` defaults to a client built from the ambient credentials, which are the
    TVM caller's identity and are never handed out for tenant work. ``clock`` returns epoch
    seconds; tests inject one to step past expirations.
    """

    def __init__(
        self,
        role_arn: str,
        region_name: str | None = None,
        *,
        region: str | None = None,
        sts_client: Any | None = None,
        duration_seconds: int = 3600,
        refresh_margin_seconds: int = 300,
        failure_ttl_seconds: float = 30,
        session_name_prefix: str = "s3vm",
        max_tenants: int = 10_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not is_role_arn(role_arn):
            raise ConfigurationError(
                f"invalid TVM role ARN {_shorten(role_arn)}: expected arn:aws:iam::<12-digit account id>:role/<name>"
            )
        if not 900 <= duration_seconds <= 43_200:
            raise ConfigurationError(f"duration_seconds must be 900-43200 (STS limits), got {duration_seconds}")
        if not 0 <= refresh_margin_seconds < duration_seconds:
            raise ConfigurationError("refresh_margin_seconds must be >= 0 and shorter than duration_seconds")
        if failure_ttl_seconds < 0:
            raise ConfigurationError("failure_ttl_seconds must be >= 0")
        if _SESSION_PREFIX_PATTERN.fullmatch(session_name_prefix) is None:
            raise ConfigurationError(
                "session_name_prefix must be 1-7 characters of letters, digits and +=,.@_- "
                "(RoleSessionName is limited to 64 characters)"
            )
        self._role_arn = role_arn
        self._region = resolve_region(region or region_name)
        self._sts_client = sts_client
        self._duration = duration_seconds
        self._margin = refresh_margin_seconds
        self._failure_ttl = failure_ttl_seconds
        self._prefix = session_name_prefix
        self._lock = threading.Lock()
        self._stripes = [threading.Lock() for _ in range(_LOCK_STRIPES)]
        self._cache: TLRUCache[str, TenantCredentials | _Failure] = TLRUCache(
            maxsize=max_tenants, ttu=self._time_to_use, timer=clock
        )
        #: (tenant, service, endpoint, region, access key id, config) -> client: the one cache of tenant clients.
        self._clients: LRUCache[tuple[str, str, str, str, str, Config | None], Any] = LRUCache(maxsize=256)

    @property
    def role_arn(self) -> str:
        return self._role_arn

    @property
    def region(self) -> str:
        return self._region

    def credentials_for(self, tenant_id: str) -> TenantCredentials:
        """Return valid credentials for ``tenant_id``, assuming the TVM role if needed.

        Raises :class:`IsolationError` if STS fails in any way, and
        :class:`InvalidIdentityError` for a malformed tenant id.
        """
        tenant = validate_tenant_id(tenant_id)
        entry = self._lookup(tenant)
        if entry is None:
            # One STS call per tenant at a time; others wait here and then hit the cache.
            with self._stripes[zlib.crc32(tenant.encode()) % _LOCK_STRIPES]:
                entry = self._lookup(tenant)
                if entry is None:
                    entry = self._assume(tenant)
                    with self._lock:
                        self._cache[tenant] = entry
        if isinstance(entry, _Failure):
            raise IsolationError(entry.message) from entry.cause
        return entry

    def session_for(self, tenant_id: str) -> boto3.Session:
        """A boto3 session holding only ``tenant_id``'s vended credentials."""
        return self._session(self.credentials_for(tenant_id))

    def client_for(
        self,
        tenant_id: str,
        service_name: str = "s3vectors",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        config: Config | None = None,
    ) -> Any:
        """A client for ``service_name`` signed with ``tenant_id``'s credentials.

        Clients are reused while the tenant's credentials are unchanged, so calling this per
        operation is cheap and always yields unexpired credentials. ``config`` is botocore's client
        configuration (default: standard retries, 5 attempts); clients with different ones are kept
        apart.
        """
        credentials = self.credentials_for(tenant_id)
        region_name = region or self._region
        key = (tenant_id, service_name, endpoint_url or "", region_name, credentials.access_key_id, config)
        with self._lock:
            client = self._clients.get(key)
        if client is None:
            client = self._session(credentials).client(
                service_name, region_name=region_name, endpoint_url=endpoint_url,
                config=config if config is not None else _standard_retries(5),
            )
            with self._lock:
                self._clients[key] = client
        return client

    def discard_clients(self, tenant_id: str) -> None:
        """Drop the clients kept for ``tenant_id`` (its credentials stay cached), e.g. once its index is gone."""
        with self._lock:
            for key in [key for key in self._clients if key[0] == tenant_id]:
                del self._clients[key]

    @property
    def region_name(self) -> str:
        """The region (0.3.0 attribute name)."""
        return self._region

    def get_session(self, tenant_context: Mapping[str, Any] | None) -> boto3.Session:
        """0.3.0 API: the tenant-scoped session for ``tenant_context`` (``{"tenantId": ...}``)."""
        return self.session_for(tenant_id_from_context(tenant_context))

    def get_client(self, service_name: str, tenant_context: Mapping[str, Any] | None) -> Any:
        """0.3.0 API: a client of ``service_name`` with the tenant's credentials only."""
        return self.client_for(tenant_id_from_context(tenant_context), service_name)

    def forget(self, tenant_id: str) -> None:
        """Drop ``tenant_id``'s cached credentials or failure, so the next call asks STS again."""
        with self._lock:
            self._cache.pop(tenant_id, None)

    def _lookup(self, tenant: str) -> TenantCredentials | _Failure | None:
        with self._lock:
            return self._cache.get(tenant)

    def _time_to_use(self, _tenant: str, entry: TenantCredentials | _Failure, now: float) -> float:
        if isinstance(entry, _Failure):
            return now + self._failure_ttl
        return entry.expiration.timestamp() - self._margin

    def _sts(self) -> Any:
        with self._lock:
            if self._sts_client is None:
                self._sts_client = boto3.client("sts", region_name=self._region, config=_standard_retries(3))
            return self._sts_client

    def _assume(self, tenant: str) -> TenantCredentials | _Failure:
        try:
            response = self._sts().assume_role(
                RoleArn=self._role_arn,
                RoleSessionName=f"{self._prefix}-{tenant}",
                DurationSeconds=self._duration,
                Tags=[{"Key": TENANT_TAG_KEY, "Value": tenant}],
            )
            credentials = response["Credentials"]
            return TenantCredentials(
                access_key_id=_text(credentials, "AccessKeyId"),
                secret_access_key=_text(credentials, "SecretAccessKey"),
                session_token=_text(credentials, "SessionToken"),
                expiration=_aware(credentials["Expiration"]),
            )
        except Exception as exc:  # any failure at all must stop the request, never fall back
            return _Failure(
                cause=exc,
                message=(
                    f"cannot obtain credentials for tenant {tenant!r} from {self._role_arn}, "
                    f"so the request was refused: {type(exc).__name__}: {exc}"
                ),
            )

    def _session(self, credentials: TenantCredentials) -> boto3.Session:
        return boto3.Session(
            aws_access_key_id=credentials.access_key_id,
            aws_secret_access_key=credentials.secret_access_key,
            aws_session_token=credentials.session_token,
            region_name=self._region,
        )

    def __repr__(self) -> str:
        return f"TokenVendingMachine(role_arn={self._role_arn!r}, region={self._region!r})"


# --- scoped client ----------------------------------------------------------------------------

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
    }
)


def _operation_name(method: str) -> str:
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

    # --- bucket-level operations of the seam: always refused (the others: __getattr__) -------------

    def create_vector_bucket(self, **_params: Any) -> Response:
        raise self._outside_rights("create_vector_bucket")

    def get_vector_bucket(self, **_params: Any) -> Response:
        raise self._outside_rights("get_vector_bucket")

    def delete_index(self, **_params: Any) -> Response:
        raise self._outside_rights("delete_index")

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
        return self._denied(operation, f"{_operation_name(operation)} is outside a tenant-scoped client's rights")

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
        return error_class(response, _operation_name(operation))

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
