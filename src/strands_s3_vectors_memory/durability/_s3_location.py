"""Where an S3 spool is: an ``s3://bucket/prefix`` URL, the setting that selects it, and its client.

One setting moves the spools to S3: ``S3_VECTORS_MEMORY_SPOOL=s3://bucket/prefix/`` (each agent's
spool is then ``<prefix>/<agent name>/``, as ``<data dir>/spool/<agent name>`` is locally), or a
plugin's ``spool_dir="s3://bucket/prefix/agent"`` for one agent. The bucket is the operator's (a
general-purpose bucket, never the vector bucket), so the client uses the ambient credentials, with
the region from ``AWS_REGION`` and boto3's own ``AWS_ENDPOINT_URL_S3`` for an S3-compatible endpoint.

Why a location also travels as a :class:`~pathlib.Path`: the writer and the plugin take a spool
directory and turn it into a ``Path``, which folds ``s3://b/p`` into ``s3:/b/p``; :meth:`S3Location.of`
reads that form back, so the URL reaches the spool intact whichever layer it went through.
"""

from __future__ import annotations

import errno
import re
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path, PurePath
from typing import Any, Protocol, cast

from botocore.exceptions import BotoCoreError, ClientError

from ..config import resolve_region, resolve_spool_url
from ..errors import ConfigurationError
from ..index import aws_client
from ._spool_backend import SpoolConflictError

__all__ = ["S3_CLOCK", "Listed", "S3Client", "S3Location", "S3Objects", "ServerClock", "s3_client", "spool_location"]

_SCHEME = "s3:"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")


@dataclass(frozen=True)
class S3Location:
    """A prefix of an S3 bucket (``prefix`` has no leading or trailing slash; empty: the bucket)."""

    bucket: str
    prefix: str = ""

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket[/prefix[/]]`` (raises :class:`ConfigurationError` for anything else)."""
        if not url.startswith("s3://"):
            raise ConfigurationError(f"not an s3:// URL: {url!r}")
        bucket, _, prefix = url[len("s3://"):].partition("/")
        return cls._checked(bucket, prefix)

    @classmethod
    def of(cls, where: str | PurePath) -> S3Location | None:
        """The location ``where`` names (a URL, or a ``Path`` made of one), or ``None`` if it is local."""
        if isinstance(where, str):
            return cls.parse(where) if where.startswith("s3://") else None
        parts = where.parts
        if not parts or parts[0] != _SCHEME:
            return None
        if len(parts) < 2:
            raise ConfigurationError(f"an s3:// spool needs a bucket: {where}")
        return cls._checked(parts[1], "/".join(parts[2:]))

    @classmethod
    def _checked(cls, bucket: str, prefix: str) -> S3Location:
        if not _BUCKET.match(bucket):
            raise ConfigurationError(f"not an S3 bucket name: {bucket!r}")
        prefix = "/".join(part for part in prefix.split("/") if part)
        if any(part in (".", "..") for part in prefix.split("/")):
            raise ConfigurationError(f"an S3 spool prefix cannot hold '.' or '..': {prefix!r}")
        return cls(bucket, prefix)

    @property
    def url(self) -> str:
        return f"s3://{self.bucket}/{self.prefix + '/' if self.prefix else ''}"

    @property
    def name(self) -> str:
        """The last part of the prefix (the agent's name for an agent's spool), as ``Path.name``."""
        return self.prefix.rpartition("/")[2] or self.bucket

    def key(self, *parts: str) -> str:
        """The object key of ``parts`` below this prefix."""
        return "/".join(p for p in (self.prefix, *parts) if p)

    def child(self, name: str) -> S3Location:
        return S3Location(self.bucket, self.key(name))

    def parent(self) -> S3Location:
        return S3Location(self.bucket, self.prefix.rpartition("/")[0])

    def __str__(self) -> str:
        return self.url


def spool_location(spool_dir: Path | S3Location, data_dir: Path) -> Path | S3Location:
    """Where the spool a plugin asked for really is, normalised (the key of its runtime).

    An ``s3://`` spool stays one. A local spool at the default place (``<data dir>/spool/<agent>``)
    moves to ``<S3_VECTORS_MEMORY_SPOOL>/<agent>/`` when that is set; any other is resolved.
    """
    if isinstance(spool_dir, S3Location):
        return spool_dir
    remote = S3Location.of(spool_dir)
    if remote is not None:
        return remote
    local = spool_dir.expanduser().resolve()
    base = resolve_spool_url()
    if base is not None and local.parent == data_dir.expanduser().resolve() / "spool":
        return S3Location.parse(base).child(local.name)
    return local


Response = Mapping[str, Any]


class S3Client(Protocol):
    """The S3 operations an S3 spool uses (``boto3.client("s3")`` has them, with these arguments).

    Errors are botocore ``ClientError`` s: ``PreconditionFailed`` (412) when a conditional write or
    delete lost, ``ConditionalRequestConflict`` (409) when two raced, ``NoSuchKey``/404 when absent.
    """

    def put_object(
        self, *, Bucket: str, Key: str, Body: bytes, ContentType: str = ..., IfMatch: str = ...,
        IfNoneMatch: str = ...,
    ) -> Response: ...

    def get_object(self, *, Bucket: str, Key: str) -> Response: ...

    def head_object(self, *, Bucket: str, Key: str) -> Response: ...

    def delete_object(self, *, Bucket: str, Key: str, IfMatch: str = ...) -> Response: ...

    def list_objects_v2(
        self, *, Bucket: str, Prefix: str = ..., Delimiter: str = ..., ContinuationToken: str = ...
    ) -> Response: ...


def s3_client() -> S3Client:
    """A boto3 S3 client with the library's retries and timeouts (ambient credentials, ``AWS_REGION``).

    boto3 builds its methods at run time, so mypy cannot see them: they are the very operations
    :class:`S3Client` spells out.
    """
    return cast(S3Client, aws_client("s3", region=resolve_region()))


@dataclass(frozen=True)
class Listed:
    """One object of a listing: its key (below the listed prefix), ETag and last modification."""

    name: str
    etag: str
    modified: datetime


class ServerClock:
    """S3's clock as this machine sees it: the authority that orders forgets and conversations.

    Machines sharing an S3 spool need not agree on the time; S3's ``Date`` answers (and objects'
    ``LastModified``) are one clock for all of them, as the spool's leases already use. Each answer
    tells how far S3's clock is from this one: ``Date`` is truncated to the second and arrives after
    it was stamped, so each observation is at most the true offset; the largest of the recent ones is
    kept. Until S3 has answered once, the offset is 0 (this machine's clock).
    """

    _KEPT = 32

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seen: deque[float] = deque(maxlen=self._KEPT)

    def observe(self, response: Response) -> None:
        """Learn from an S3 answer's ``Date`` header (answers without one are ignored)."""
        date = ((response.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}).get("date")
        if not isinstance(date, str):
            return
        try:
            server = parsedate_to_datetime(date).timestamp()
        except (TypeError, ValueError):
            return
        with self._lock:
            self._seen.append(server - time.time())

    def offset(self) -> float:
        """Seconds to add to this machine's ``time.time()`` to read S3's clock (never more than the truth)."""
        with self._lock:
            return max(self._seen, default=0.0)


#: S3's clock, learned from every answer of this process's S3 spools and tombstone boards.
S3_CLOCK = ServerClock()


class S3Objects:
    """The objects of one bucket, with S3's errors as the ``OSError`` s a spool speaks.

    ``PreconditionFailed`` (412) and ``ConditionalRequestConflict`` (409) become
    :class:`SpoolConflictError`, an absent object ``FileNotFoundError``, anything else (throttling
    after botocore's retries, no credentials, no bucket) a plain ``OSError`` chained to the cause.
    """

    def __init__(self, bucket: str, client: S3Client | None = None) -> None:
        self.bucket = bucket
        self.client = client if client is not None else s3_client()

    def put(self, key: str, body: bytes, *, if_match: str | None = None, if_absent: bool = False) -> str:
        """Write ``key``; with ``if_match`` only over that version, with ``if_absent`` only if it is new."""
        if if_match is not None:
            response = self._call("put", key, lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", IfMatch=if_match))
        elif if_absent:
            response = self._call("put", key, lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json", IfNoneMatch="*"))
        else:
            response = self._call("put", key, lambda: self.client.put_object(
                Bucket=self.bucket, Key=key, Body=body, ContentType="application/json"))
        return str(response["ETag"])

    def get(self, key: str) -> tuple[bytes, str]:
        """The object's bytes and ETag."""
        response = self._call("get", key, lambda: self.client.get_object(Bucket=self.bucket, Key=key))
        body = response["Body"]
        try:
            data = body.read()
        except (BotoCoreError, OSError) as exc:
            raise OSError(errno.EIO, f"reading s3://{self.bucket}/{key} failed: {exc}") from exc
        return bytes(data), str(response["ETag"])

    def head(self, key: str) -> str:
        """The object's ETag (``FileNotFoundError`` if absent)."""
        return str(self._call("head", key, lambda: self.client.head_object(Bucket=self.bucket, Key=key))["ETag"])

    def delete(self, key: str, *, if_match: str | None = None) -> None:
        """Delete ``key`` (with ``if_match``, only that version: a newer one is left alone)."""
        if if_match is None:
            self._call("delete", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=key))
        else:
            self._call("delete", key, lambda: self.client.delete_object(Bucket=self.bucket, Key=key, IfMatch=if_match))

    def listing(self, prefix: str) -> tuple[list[Listed], datetime]:
        """Every object below ``prefix/`` (names relative to it), and S3's clock at the first page."""
        start = prefix + "/" if prefix else ""
        found: list[Listed] = []
        now: datetime | None = None
        token: str | None = None
        while True:
            page = self._list_page(start, token)
            now = now or _server_time(page)
            for item in page.get("Contents") or []:
                found.append(Listed(str(item["Key"])[len(start):], str(item["ETag"]), item["LastModified"]))
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return found, now

    def folders(self, prefix: str) -> list[str]:
        """The names of the "folders" right below ``prefix/`` (common prefixes)."""
        start = prefix + "/" if prefix else ""
        names: list[str] = []
        token: str | None = None
        while True:
            page = self._list_page(start, token, delimiter="/")
            names.extend(str(p["Prefix"])[len(start):].rstrip("/") for p in page.get("CommonPrefixes") or [])
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return names

    def _list_page(self, start: str, token: str | None, delimiter: str | None = None) -> Response:
        def call() -> Response:
            if token is not None and delimiter is not None:
                return self.client.list_objects_v2(Bucket=self.bucket, Prefix=start, Delimiter=delimiter,
                                                   ContinuationToken=token)
            if token is not None:
                return self.client.list_objects_v2(Bucket=self.bucket, Prefix=start, ContinuationToken=token)
            if delimiter is not None:
                return self.client.list_objects_v2(Bucket=self.bucket, Prefix=start, Delimiter=delimiter)
            return self.client.list_objects_v2(Bucket=self.bucket, Prefix=start)

        return self._call("list", start, call)

    def _call(self, what: str, key: str, call: Callable[[], Response]) -> Response:
        try:
            response = call()
        except ClientError as exc:
            raise _translated(exc, f"{what} s3://{self.bucket}/{key}") from exc
        except BotoCoreError as exc:
            raise OSError(errno.EIO, f"{what} s3://{self.bucket}/{key} failed: {exc}") from exc
        S3_CLOCK.observe(response)
        return response


def _translated(exc: ClientError, what: str) -> OSError:
    response: Mapping[str, Any] = getattr(exc, "response", None) or {}
    code = str((response.get("Error") or {}).get("Code") or "")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    if code in ("PreconditionFailed", "ConditionalRequestConflict") or status in (409, 412):
        return SpoolConflictError(errno.EAGAIN, f"{what}: changed by another writer ({code or status})")
    if code == "NoSuchBucket":
        return OSError(errno.ENOENT, f"{what}: the bucket does not exist")
    if code in ("NoSuchKey", "NotFound", "404") or status == 404:
        return FileNotFoundError(errno.ENOENT, f"{what}: no such object")
    return OSError(errno.EIO, f"{what} failed: {code or status}: {exc}")


def _server_time(page: Response) -> datetime:
    """S3's clock (the response's Date), so leases never depend on this machine's clock."""
    date = ((page.get("ResponseMetadata") or {}).get("HTTPHeaders") or {}).get("date")
    if isinstance(date, str):
        try:
            return parsedate_to_datetime(date)
        except (TypeError, ValueError):
            pass
    return datetime.now(timezone.utc)
