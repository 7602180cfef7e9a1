"""The Token Vending Machine: tenant-scoped credentials from STS, cached, refreshed, never a fallback."""

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
from cachetools import LRUCache, TLRUCache

from ..config import resolve_region
from ..errors import ConfigurationError, IsolationError
from ._arns import is_role_arn
from ._ids import TENANT_TAG_KEY, _shorten, tenant_id_from_context, validate_tenant_id

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
