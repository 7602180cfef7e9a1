"""``LocalS3VectorsClient``: the S3 Vectors API, embedded, on disk.

It has the method names, keyword arguments, response dicts and exceptions of
``boto3.client("s3vectors")``, so code written against boto3 runs unchanged against it. Every
call goes through the same stages as a real call: client-side validation by botocore, the
service's own checks (limits, names, metadata, filters), then the operation on
:mod:`._storage` (durable, SQLite) and :mod:`._cache` (fast, numpy).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from types import TracebackType
from typing import Any

import numpy as np
from botocore.errorfactory import BaseClientExceptions
from botocore.exceptions import ClientError, OperationNotPageableError
from botocore.model import ServiceModel
from botocore.paginate import Paginator

from . import _validation as v
from ._cache import IndexCache, TextSpec
from ._errors import (
    BUCKET_EXISTS,
    BUCKET_NOT_EMPTY,
    BUCKET_NOT_FOUND,
    INDEX_EXISTS,
    INDEX_NOT_FOUND,
    client_exceptions,
    conflict,
    not_found,
    response_metadata,
    validation_error,
)
from ._filters import Node, compile_filter
from ._model import paginator_config, service_model
from ._storage import (
    AlreadyExists,
    BucketMissing,
    BucketRow,
    IndexMissing,
    IndexRow,
    NotEmpty,
    Storage,
    TextConfig,
    VectorRecord,
)
from ._text import ANALYZER_LIBRARIES, LANGUAGES, available, best, ranked, rrf, summed

Response = dict[str, Any]

#: Default memory budget of the in-memory index copies of one client (matrices and their books).
DEFAULT_CACHE_BYTES = 4 * 1024**3
_Handler = Callable[[Mapping[str, Any]], Response]
#: How deep each ranking of a hybrid query reaches before fusion (the most ``topK`` allows).
HYBRID_WINDOW = v.MAX_TOP_K
#: How long a QueryVectors ``nextToken`` stays valid ("several minutes", says the service).
QUERY_TOKEN_SECONDS = 600.0


def _bm25_of(slot: int, per_key: Mapping[str, tuple[np.ndarray, np.ndarray]]) -> tuple[tuple[str, float], ...]:
    """``slot``'s BM25 score under each searchable key that matched it (what ``returnScores`` reports)."""
    found = []
    for key, (slots, scores) in per_key.items():
        at = int(np.searchsorted(slots, slot))
        if at < len(slots) and slots[at] == slot:
            found.append((key, float(scores[at])))
    return tuple(found)


def _partition(region: str) -> str:
    if region.startswith("cn-"):
        return "aws-cn"
    if region.startswith("us-gov-"):
        return "aws-us-gov"
    return "aws"


def _timestamp(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, tz=timezone.utc)


def _encode_token(payload: Mapping[str, Any]) -> str:
    raw = json.dumps(payload, separators=(",", ":")).encode("utf-8")
    return base64.urlsafe_b64encode(raw).decode("ascii")


def _decode_token(token: str, operation: str) -> dict[str, Any]:
    try:
        payload = json.loads(base64.urlsafe_b64decode(token.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeError):
        raise validation_error("Invalid nextToken", operation, path="/nextToken") from None
    if not isinstance(payload, dict):
        raise validation_error("Invalid nextToken", operation, path="/nextToken")
    return payload


def _classic_era(bucket: BucketRow) -> bool:
    """A bucket created before 2026-09-30 (or stored by an engine that predates index modes)."""
    return bucket.default_mode is None or bucket.created < v.ENHANCED_ONLY_FROM


def _default_mode(bucket: BucketRow) -> str:
    return bucket.default_mode or v.CLASSIC


def _index_mode(index: IndexRow) -> str:
    """An index stored before index modes existed is CLASSIC, as pre-2026-09-30 indexes are."""
    return index.mode or v.CLASSIC


def _check_mode(mode: str, bucket: BucketRow, operation: str, path: str) -> None:
    if mode == v.CLASSIC and not _classic_era(bucket):
        raise validation_error(
            "CLASSIC is only available in vector buckets created before September 30, 2026", operation, path=path
        )


def _text_configs(items: list[Mapping[str, Any]], status: str, path: str, operation: str) -> list[TextConfig]:
    """Validated (key, language, status) triples; a ``status`` the caller sent is the service's to set."""
    out: list[TextConfig] = []
    for item in items:
        language = item.get("language")
        if language is not None and language not in LANGUAGES:  # botocore leaves enums to the service
            raise validation_error(f"Unsupported text search language '{language}'", operation, path=path)
        if not available(language):
            module, extra = ANALYZER_LIBRARIES[str(language)]
            raise validation_error(
                f"The {language!r} analyzer needs {module} (pip install 'strands-s3-vectors-memory[{extra}]')",
                operation,
                path=path,
            )
        out.append((str(item["metadataKey"]), None if language is None else str(language), status))
    v.distinct_keys([c[0] for c in out], "textSearchConfigurations", path, operation)
    if len(out) > v.MAX_TEXT_SEARCH_KEYS:
        raise validation_error(
            f"An index holds at most {v.MAX_TEXT_SEARCH_KEYS} text search configurations", operation, path=path
        )
    return out


def _text_out(config: TextConfig) -> dict[str, Any]:
    key, language, status = config
    out: dict[str, Any] = {"metadataKey": key, "status": status}
    if language is not None:
        out["language"] = language
    return out


def _text_spec(index: IndexRow) -> TextSpec:
    """What an index's cache indexes for BM25: its text keys and analyzers (the status is not the cache's)."""
    return tuple((key, language) for key, language, _status in index.text_config)


def _query_digest(params: Mapping[str, Any], index_uid: str) -> str:
    """What a QueryVectors ``nextToken`` is bound to: the same index and the same query inputs."""
    inputs = {k: params.get(k) for k in ("queryVector", "queryTexts", "topK", "filter", "queryMode")}
    raw = json.dumps([index_uid, inputs], sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(raw.encode("utf-8")).hexdigest()[:32]


@dataclass(frozen=True)
class _Ranked:
    """One QueryVectors result before paging: slot identity plus whatever scores its search produced."""

    rowid: int
    key: str
    distance: float | None
    fused: float | None
    bm25: tuple[tuple[str, float], ...]


@dataclass(frozen=True)
class _ClientMeta:
    """The subset of ``client.meta`` that code written for boto3 commonly reads."""

    region_name: str
    service_model: ServiceModel
    partition: str
    endpoint_url: str | None = None


class LocalS3VectorsClient:
    """An embedded, durable, boto3-compatible ``s3vectors`` client rooted at a directory.

    Safe to share between threads, and several processes may open the same ``root`` at once.
    Call :meth:`close` (or use it as a context manager) to release the database handles.

    ``cache_bytes`` bounds the memory of the in-memory index copies: when it is exceeded, the
    least recently queried indexes are dropped (and reloaded from disk when queried again). The
    index being queried always stays, so one index larger than the budget still works.

    ``query_page_size`` is how many results one QueryVectors page holds before a ``nextToken``
    (the service does not document its page size; the default, 100, is the largest ``topK``, so a
    query fits one page unless asked otherwise). ``clock`` stamps creation times: a bucket created
    before 2026-09-30 is a CLASSIC-era bucket, as on the service.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
        query_page_size: int = v.MAX_TOP_K,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._clock = clock
        self._query_page_size = query_page_size
        self._backfills: set[tuple[str, str]] = set()
        self._region = region
        self._account_id = account_id
        self._storage = Storage(root)
        self._cache_bytes = cache_bytes
        self._caches: OrderedDict[tuple[str, str], IndexCache] = OrderedDict()
        self._caches_lock = threading.Lock()
        self.exceptions: BaseClientExceptions = client_exceptions()
        self.meta = _ClientMeta(region, service_model(), _partition(region))

    # -- lifecycle -------------------------------------------------------------------------------

    @property
    def root(self) -> str:
        """The directory holding this client's data."""
        return str(self._storage.root)

    def close(self) -> None:
        """Close database handles and drop the in-memory caches. The client is unusable afterwards."""
        self._storage.close()
        with self._caches_lock:
            self._caches.clear()

    def __enter__(self) -> LocalS3VectorsClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"LocalS3VectorsClient(root={self.root!r}, region={self._region!r})"

    # -- plumbing --------------------------------------------------------------------------------

    def _call(self, operation: str, params: Mapping[str, Any], handler: _Handler) -> Response:
        v.validate_client_side(operation, params)
        v.check_model_constraints(operation, params)
        try:
            response = handler(params)
        except BucketMissing:
            raise not_found(BUCKET_NOT_FOUND, operation) from None
        except IndexMissing:
            raise not_found(INDEX_NOT_FOUND, operation) from None
        response["ResponseMetadata"] = response_metadata()
        return response

    def _bucket_arn(self, name: str) -> str:
        return f"arn:{_partition(self._region)}:s3vectors:{self._region}:{self._account_id}:bucket/{name}"

    def _index_arn(self, bucket: str, index: str) -> str:
        return f"{self._bucket_arn(bucket)}/index/{index}"

    def _check_owner(self, region: str | None, account: str | None, operation: str, message: str) -> None:
        """An ARN naming another region or account does not address anything this client holds."""
        if region is not None and (region != self._region or account != self._account_id):
            raise not_found(message, operation)

    def _bucket(self, params: Mapping[str, Any], operation: str) -> BucketRow:
        ref = v.bucket_ref(params, operation)
        self._check_owner(ref.region, ref.account, operation, BUCKET_NOT_FOUND)
        return self._storage.get_bucket(ref.bucket)

    def _index_target(self, params: Mapping[str, Any], operation: str) -> tuple[BucketRow, str]:
        ref = v.index_ref(params, operation)
        self._check_owner(ref.region, ref.account, operation, INDEX_NOT_FOUND)
        try:
            return self._storage.get_bucket(ref.bucket), ref.index
        except BucketMissing:
            raise IndexMissing(ref.index) from None

    def _cache(self, bucket: BucketRow, index: IndexRow) -> IndexCache:
        key = (bucket.uid, index.name)
        with self._caches_lock:
            cache = self._caches.get(key)
            spec = _text_spec(index)
            if cache is None or cache.uid != index.uid or cache.text_spec != spec:
                cache = IndexCache(index.uid, index.dimension, index.metric, spec)
                self._caches[key] = cache
            self._caches.move_to_end(key)
            return cache

    def _trim(self, keep: IndexCache) -> None:
        """Drop least recently used index copies until the budget holds (never ``keep``)."""
        with self._caches_lock:
            total = sum(c.nbytes for c in self._caches.values())
            for key in list(self._caches):
                if total <= self._cache_bytes:
                    break
                victim = self._caches[key]
                if victim is keep:
                    continue
                del self._caches[key]
                total -= victim.nbytes

    def _sync(self, cache: IndexCache, bucket: BucketRow, name: str) -> bool:
        """Bring ``cache`` up to the index's latest sequence (caller holds ``cache.lock``).

        Reads inside one transaction, so the sequence number and the rows agree. Returns False
        when the index was replaced meanwhile (the cache belongs to a deleted index).
        """
        with self._storage.read(self._storage.bucket_path(bucket)) as conn:
            index = self._storage.get_index(bucket, name, conn)
            if index.uid != cache.uid or _text_spec(index) != cache.text_spec:
                return False
            if cache.seq >= index.seq:
                return True
            if cache.seq == 0 or cache.seq < index.tomb_floor:
                expected = self._storage.count_vectors(conn, index)
                cache.load(self._storage.iter_rows(conn, index), index.seq, expected)
            else:
                rows, dead = self._storage.delta(conn, index, cache.seq)
                cache.apply(rows, dead, index.seq)
        self._trim(cache)
        return True

    # -- vector buckets --------------------------------------------------------------------------

    def create_vector_bucket(self, **kwargs: Any) -> Response:
        """CreateVectorBucket: ``vectorBucketName`` (+ ``encryptionConfiguration``, ``tags``)."""
        return self._call("CreateVectorBucket", kwargs, self._create_vector_bucket)

    def _create_vector_bucket(self, params: Mapping[str, Any]) -> Response:
        op = "CreateVectorBucket"
        name = str(params["vectorBucketName"])
        v.check_bucket_name(name, op)
        v.check_encryption(params.get("encryptionConfiguration"), op)
        tags = dict(params.get("tags") or {})
        v.check_tags(tags, op)
        encryption = dict(params.get("encryptionConfiguration") or {"sseType": "AES256"})
        encryption.setdefault("sseType", "AES256")
        created = self._clock()
        mode = v.CLASSIC if created < v.ENHANCED_ONLY_FROM else v.ENHANCED
        try:
            self._storage.create_bucket(name, encryption, tags, created=created, default_mode=mode)
        except AlreadyExists:
            raise conflict(BUCKET_EXISTS, op) from None
        return {"vectorBucketArn": self._bucket_arn(name)}

    def get_vector_bucket(self, **kwargs: Any) -> Response:
        """GetVectorBucket: ``vectorBucketName`` or ``vectorBucketArn``."""
        return self._call("GetVectorBucket", kwargs, self._get_vector_bucket)

    def _get_vector_bucket(self, params: Mapping[str, Any]) -> Response:
        bucket = self._bucket(params, "GetVectorBucket")
        return {
            "vectorBucket": {
                "vectorBucketName": bucket.name,
                "vectorBucketArn": self._bucket_arn(bucket.name),
                "creationTime": _timestamp(bucket.created),
                "encryptionConfiguration": dict(bucket.encryption),
                "defaultIndexMode": _default_mode(bucket),
            }
        }

    def put_vector_bucket_default_index_mode(self, **kwargs: Any) -> Response:
        """PutVectorBucketDefaultIndexMode: the mode of indexes created from now on.

        Only a CLASSIC-era bucket (created before 2026-09-30) may choose CLASSIC.
        """
        return self._call("PutVectorBucketDefaultIndexMode", kwargs, self._put_vector_bucket_default_index_mode)

    def _put_vector_bucket_default_index_mode(self, params: Mapping[str, Any]) -> Response:
        op = "PutVectorBucketDefaultIndexMode"
        bucket = self._bucket(params, op)
        mode = str(params["defaultIndexMode"])
        _check_mode(mode, bucket, op, "/defaultIndexMode")
        self._storage.set_bucket_default_mode(bucket, mode)
        return {}

    def list_vector_buckets(self, **kwargs: Any) -> Response:
        """ListVectorBuckets: ``maxResults``, ``nextToken``, ``prefix``."""
        return self._call("ListVectorBuckets", kwargs, self._list_vector_buckets)

    def _list_vector_buckets(self, params: Mapping[str, Any]) -> Response:
        op = "ListVectorBuckets"
        limit = int(params.get("maxResults") or v.DEFAULT_LIST_MAX_RESULTS)
        after = None
        if params.get("nextToken"):
            after = str(_decode_token(str(params["nextToken"]), op).get("after", ""))
        rows = self._storage.list_buckets(params.get("prefix"), after, limit + 1)
        out: Response = {
            "vectorBuckets": [
                {
                    "vectorBucketName": b.name,
                    "vectorBucketArn": self._bucket_arn(b.name),
                    "creationTime": _timestamp(b.created),
                }
                for b in rows[:limit]
            ]
        }
        if len(rows) > limit:
            out["nextToken"] = _encode_token({"after": rows[limit - 1].name})
        return out

    def delete_vector_bucket(self, **kwargs: Any) -> Response:
        """DeleteVectorBucket: the bucket must hold no index (else ``ConflictException``)."""
        return self._call("DeleteVectorBucket", kwargs, self._delete_vector_bucket)

    def _delete_vector_bucket(self, params: Mapping[str, Any]) -> Response:
        op = "DeleteVectorBucket"
        ref = v.bucket_ref(params, op)
        self._check_owner(ref.region, ref.account, op, BUCKET_NOT_FOUND)
        try:
            self._storage.delete_bucket(ref.bucket)
        except NotEmpty:
            raise conflict(BUCKET_NOT_EMPTY, op) from None
        return {}

    # -- indexes ---------------------------------------------------------------------------------

    def create_index(self, **kwargs: Any) -> Response:
        """CreateIndex: ``indexName``, ``dataType``, ``dimension``, ``distanceMetric``, ..."""
        return self._call("CreateIndex", kwargs, self._create_index)

    def _create_index(self, params: Mapping[str, Any]) -> Response:
        op = "CreateIndex"
        name = str(params["indexName"])
        v.check_index_name(name, op)
        bucket = self._bucket(params, op)
        config = params.get("metadataConfiguration") or {}
        non_filterable = list(config["nonFilterableMetadataKeys"]) if "nonFilterableMetadataKeys" in config else None
        if non_filterable is not None:
            v.distinct_keys(non_filterable, "nonFilterableMetadataKeys", "/metadataConfiguration", op)
        mode = _default_mode(bucket)
        text = _text_configs(config.get("textSearchConfigurations") or [], "ACTIVE", "/metadataConfiguration", op)
        if text and mode != v.ENHANCED:
            raise validation_error(
                "Full-text search requires an ENHANCED index; this bucket creates CLASSIC indexes", op,
                path="/metadataConfiguration/textSearchConfigurations",
            )
        v.check_encryption(params.get("encryptionConfiguration"), op)
        v.check_tags(dict(params.get("tags") or {}), op)
        try:
            self._storage.create_index(
                bucket,
                name,
                data_type=str(params["dataType"]),
                dimension=int(params["dimension"]),
                metric=str(params["distanceMetric"]),
                non_filterable=non_filterable,
                encryption=dict(params["encryptionConfiguration"]) if params.get("encryptionConfiguration") else None,
                tags=dict(params.get("tags") or {}),
                mode=mode,
                text_config=text,
            )
        except AlreadyExists:
            raise conflict(INDEX_EXISTS, op) from None
        return {"indexArn": self._index_arn(bucket.name, name)}

    def get_index(self, **kwargs: Any) -> Response:
        """GetIndex: ``indexArn``, or ``vectorBucketName`` and ``indexName``."""
        return self._call("GetIndex", kwargs, self._get_index)

    def _get_index(self, params: Mapping[str, Any]) -> Response:
        bucket, name = self._index_target(params, "GetIndex")
        index = self._storage.get_index(bucket, name)
        out: dict[str, Any] = {
            "vectorBucketName": bucket.name,
            "indexName": index.name,
            "indexArn": self._index_arn(bucket.name, index.name),
            "creationTime": _timestamp(index.created),
            "dataType": index.data_type,
            "dimension": index.dimension,
            "distanceMetric": index.metric,
        }
        metadata: dict[str, Any] = {}
        if index.non_filterable is not None:
            metadata["nonFilterableMetadataKeys"] = list(index.non_filterable)
        if index.text_config:
            metadata["textSearchConfigurations"] = [_text_out(c) for c in index.text_config]
            self._start_backfill(bucket, index)
        if metadata:
            out["metadataConfiguration"] = metadata
        out["encryptionConfiguration"] = dict(index.encryption or bucket.encryption)
        out["indexMode"] = _index_mode(index)
        return {"index": out}

    def update_index_mode(self, **kwargs: Any) -> Response:
        """UpdateIndexMode: ENHANCED for any index, in place; CLASSIC only in a CLASSIC-era bucket."""
        return self._call("UpdateIndexMode", kwargs, self._update_index_mode)

    def _update_index_mode(self, params: Mapping[str, Any]) -> Response:
        op = "UpdateIndexMode"
        bucket, name = self._index_target(params, op)
        index = self._storage.get_index(bucket, name)
        mode = str(params["indexMode"])
        _check_mode(mode, bucket, op, "/indexMode")
        if mode == v.CLASSIC and index.text_config:
            raise validation_error(
                "An index with text search configurations must stay ENHANCED: delete them first", op,
                path="/indexMode",
            )
        self._storage.update_index(bucket, index, mode=mode)
        return {}

    def update_metadata_configuration(self, **kwargs: Any) -> Response:
        """UpdateMetadataConfiguration: add (backfilled: BUILDING, then ACTIVE) or delete text search keys."""
        return self._call("UpdateMetadataConfiguration", kwargs, self._update_metadata_configuration)

    def _update_metadata_configuration(self, params: Mapping[str, Any]) -> Response:
        op = "UpdateMetadataConfiguration"
        add = (params.get("add") or {}).get("textSearchConfigurations")
        delete = (params.get("delete") or {}).get("textSearchConfigurations")
        if (add is None) == (delete is None):
            raise validation_error("Specify either add or delete, but not both", op)
        bucket, name = self._index_target(params, op)
        index = self._storage.get_index(bucket, name)
        if _index_mode(index) != v.ENHANCED:
            raise validation_error("UpdateMetadataConfiguration requires an ENHANCED index", op)
        current = list(index.text_config)
        held = {c[0] for c in current}
        if add is not None:
            added = _text_configs(add, "BUILDING", "/add/textSearchConfigurations", op)
            for key, _lang, _status in added:
                if key in held:
                    raise validation_error(f"Metadata key '{key}' is already full-text searchable", op,
                                           path="/add/textSearchConfigurations")
            updated = current + list(added)
        else:
            keys = [str(item["metadataKey"]) for item in delete or []]
            v.distinct_keys(keys, "textSearchConfigurations", "/delete/textSearchConfigurations", op)
            for key in keys:
                if key not in held:
                    raise validation_error(f"Metadata key '{key}' is not full-text searchable", op,
                                           path="/delete/textSearchConfigurations")
            updated = [c for c in current if c[0] not in keys]
        if len(updated) > v.MAX_TEXT_SEARCH_KEYS:
            raise validation_error(
                f"An index holds at most {v.MAX_TEXT_SEARCH_KEYS} text search configurations", op,
                path="/add/textSearchConfigurations",
            )
        if not self._storage.update_index(bucket, index, text_config=updated, expect_config=current):
            raise conflict("The index's metadata configuration changed concurrently; retry", op)
        if add is not None:
            self._start_backfill(bucket, self._storage.get_index(bucket, name))
        return {"indexArn": self._index_arn(bucket.name, name)}

    def _start_backfill(self, bucket: BucketRow, index: IndexRow) -> None:
        """Build the BM25 postings of BUILDING keys in the background, then mark them ACTIVE.

        Any client that sees a BUILDING key starts it (once per index and process), so a backfill
        whose process died is finished by the next reader.
        """
        if all(status == "ACTIVE" for _k, _l, status in index.text_config):
            return
        job = (bucket.uid, index.uid)
        with self._caches_lock:
            if job in self._backfills:
                return
            self._backfills.add(job)
        threading.Thread(target=self._backfill, args=(bucket, index, job), daemon=True,
                         name=f"s3vectors-backfill-{index.name}").start()

    def _backfill(self, bucket: BucketRow, index: IndexRow, job: tuple[str, str]) -> None:
        try:
            cache = self._cache(bucket, index)
            with cache.lock:
                if cache.seq < index.seq and not self._sync(cache, bucket, index.name):
                    return
            active = [(key, lang, "ACTIVE") for key, lang, _status in index.text_config]
            self._storage.update_index(bucket, index, text_config=active, expect_config=index.text_config)
        except (IndexMissing, BucketMissing):  # deleted meanwhile: nothing left to build
            return
        finally:
            with self._caches_lock:
                self._backfills.discard(job)

    def list_indexes(self, **kwargs: Any) -> Response:
        """ListIndexes: by bucket name or ARN, with ``maxResults``, ``nextToken`` and ``prefix``."""
        return self._call("ListIndexes", kwargs, self._list_indexes)

    def _list_indexes(self, params: Mapping[str, Any]) -> Response:
        op = "ListIndexes"
        bucket = self._bucket(params, op)
        limit = int(params.get("maxResults") or v.DEFAULT_LIST_MAX_RESULTS)
        after = None
        if params.get("nextToken"):
            after = str(_decode_token(str(params["nextToken"]), op).get("after", ""))
        rows = self._storage.list_indexes(bucket, params.get("prefix"), after, limit + 1)
        out: Response = {
            "indexes": [
                {
                    "vectorBucketName": bucket.name,
                    "indexName": r.name,
                    "indexArn": self._index_arn(bucket.name, r.name),
                    "creationTime": _timestamp(r.created),
                }
                for r in rows[:limit]
            ]
        }
        if len(rows) > limit:
            out["nextToken"] = _encode_token({"after": rows[limit - 1].name})
        return out

    def delete_index(self, **kwargs: Any) -> Response:
        """DeleteIndex: removes the index and all its vectors."""
        return self._call("DeleteIndex", kwargs, self._delete_index)

    def _delete_index(self, params: Mapping[str, Any]) -> Response:
        bucket, name = self._index_target(params, "DeleteIndex")
        self._storage.delete_index(bucket, name)
        with self._caches_lock:
            self._caches.pop((bucket.uid, name), None)
        return {}

    # -- vectors ---------------------------------------------------------------------------------

    def put_vectors(self, **kwargs: Any) -> Response:
        """PutVectors: up to 500 vectors, upserted atomically (all or nothing)."""
        return self._call("PutVectors", kwargs, self._put_vectors)

    def _put_vectors(self, params: Mapping[str, Any]) -> Response:
        op = "PutVectors"
        vectors = params["vectors"]
        v.check_count(vectors, v.MAX_PUT_VECTORS, "vectors", op)
        bucket, name = self._index_target(params, op)
        index = self._storage.get_index(bucket, name)
        v.check_unique_keys([str(item["key"]) for item in vectors], op)
        non_filterable = frozenset(index.non_filterable or ())
        records: list[VectorRecord] = []
        for item in vectors:
            key = str(item["key"])
            data = item["data"].get("float32")
            if data is None:
                raise validation_error(f"Invalid record for key '{key}': data must be float32", op)
            arr = v.as_float32(data, index.dimension, key, op)
            if index.metric == "cosine":
                v.check_not_zero(arr, key, op)
            meta, fmeta = v.split_metadata(key, item.get("metadata"), non_filterable, op)
            records.append((key, arr.tobytes(), meta, fmeta))
        seq, rowids = self._storage.put_vectors(bucket, index, records)
        cache = self._caches.get((bucket.uid, index.name))
        if cache is not None and cache.uid == index.uid:
            with cache.lock:
                if cache.seq == seq - 1:  # nobody else wrote in between: apply our batch directly
                    full = bool(cache.text_spec)
                    cache.apply([(rowids[k], k, d, f, m if full else "") for k, d, m, f in records], (), seq)
            self._trim(cache)
        return {}

    def get_vectors(self, **kwargs: Any) -> Response:
        """GetVectors: up to 100 keys; missing keys are simply absent from the result."""
        return self._call("GetVectors", kwargs, self._get_vectors)

    def _get_vectors(self, params: Mapping[str, Any]) -> Response:
        op = "GetVectors"
        keys = [str(k) for k in params["keys"]]
        v.check_count(keys, v.MAX_GET_VECTORS, "keys", op)
        bucket, name = self._index_target(params, op)
        unique = list(dict.fromkeys(keys))
        with self._storage.read(self._storage.bucket_path(bucket)) as conn:
            index = self._storage.get_index(bucket, name, conn)
            found = {k: (d, m) for k, d, m in self._storage.get_vectors(conn, index, unique)}
        out = []
        for key in unique:
            if key not in found:
                continue
            data, meta = found[key]
            out.append(self._vector_out(key, data, meta, params))
        return {"vectors": out}

    @staticmethod
    def _vector_out(key: str, data: bytes, meta: str, params: Mapping[str, Any]) -> dict[str, Any]:
        item: dict[str, Any] = {"key": key}
        if params.get("returnData"):
            item["data"] = {"float32": np.frombuffer(data, dtype=np.float32).tolist()}
        if params.get("returnMetadata"):
            item["metadata"] = json.loads(meta)
        return item

    def list_vectors(self, **kwargs: Any) -> Response:
        """ListVectors: pages of up to 1000 (``maxResults``), optionally one of ``segmentCount`` segments."""
        return self._call("ListVectors", kwargs, self._list_vectors)

    def _list_vectors(self, params: Mapping[str, Any]) -> Response:
        op = "ListVectors"
        count = params.get("segmentCount")
        seg = params.get("segmentIndex")
        if (count is None) != (seg is None):
            raise validation_error("segmentCount and segmentIndex must be specified together", op)
        count = int(count) if count is not None else 1
        seg = int(seg) if seg is not None else 0
        if seg >= count:
            raise validation_error("segmentIndex must be less than segmentCount", op, path="/segmentIndex")
        after = 0
        if params.get("nextToken"):
            token = _decode_token(str(params["nextToken"]), op)
            if token.get("c") != count or token.get("s") != seg or not isinstance(token.get("id"), int):
                raise validation_error("Invalid nextToken", op, path="/nextToken")
            after = int(token["id"])
        limit = int(params.get("maxResults") or v.DEFAULT_LIST_MAX_RESULTS)
        bucket, name = self._index_target(params, op)
        with self._storage.read(self._storage.bucket_path(bucket)) as conn:
            index = self._storage.get_index(bucket, name, conn)
            rows = self._storage.list_vectors(
                conn, index, after_id=after, limit=limit + 1, segment_count=count, segment_index=seg
            )
        out: Response = {"vectors": [self._vector_out(k, d, m, params) for _i, k, d, m in rows[:limit]]}
        if len(rows) > limit:
            out["nextToken"] = _encode_token({"id": rows[limit - 1][0], "c": count, "s": seg})
        return out

    def delete_vectors(self, **kwargs: Any) -> Response:
        """DeleteVectors: up to 500 keys, atomically; unknown keys are ignored."""
        return self._call("DeleteVectors", kwargs, self._delete_vectors)

    def _delete_vectors(self, params: Mapping[str, Any]) -> Response:
        op = "DeleteVectors"
        keys = list(dict.fromkeys(str(k) for k in params["keys"]))
        v.check_count(params["keys"], v.MAX_DELETE_VECTORS, "keys", op)
        bucket, name = self._index_target(params, op)
        index = self._storage.get_index(bucket, name)
        self._storage.delete_vectors(bucket, index, keys)
        return {}

    def query_vectors(self, **kwargs: Any) -> Response:
        """QueryVectors: exact top-``topK`` (<= 100) nearest neighbours, optionally filtered."""
        return self._call("QueryVectors", kwargs, self._query_vectors)

    def _query_vectors(self, params: Mapping[str, Any]) -> Response:
        op = "QueryVectors"
        top_k = int(params["topK"])
        v.check_top_k(top_k, op)
        texts = [(str(t["metadataKey"]), str(t["text"])) for t in params.get("queryTexts") or []]
        query = None
        if params.get("queryVector") is not None:
            query = params["queryVector"].get("float32")
            if query is None:
                raise validation_error("Invalid query vector: queryVector must be float32", op)
        elif not texts:
            raise validation_error("Specify queryVector, queryTexts or both", op)
        v.distinct_keys([k for k, _t in texts], "queryTexts", "/queryTexts", op)
        bucket, name = self._index_target(params, op)
        conn = self._storage.connection(self._storage.bucket_path(bucket))
        for _attempt in range(3):
            index = self._storage.get_index(bucket, name, conn)
            offset = self._query_offset(params, index, op)
            enhanced = self._query_enhanced(params, index, bool(texts), op)
            vec = None
            if query is not None:
                vec = v.as_float32(query, index.dimension, None, op)
                if index.metric == "cosine":
                    v.check_not_zero(vec, None, op)
            node: Node | None = None
            if params.get("filter") is not None:
                node = compile_filter(params["filter"], index.non_filterable or (), op, enhanced=enhanced)
            cache = self._cache(bucket, index)
            with cache.lock:
                if cache.seq < index.seq and not self._sync(cache, bucket, name):
                    continue  # the index was deleted and recreated under us: start over
                results = self._rank(cache, vec, texts, top_k, node)
            break
        else:  # pragma: no cover - only if the index is recreated three times during one query
            raise not_found(INDEX_NOT_FOUND, op)
        page = results[offset : offset + self._query_page_size]
        metadata: dict[int, str] = {}
        if params.get("returnMetadata"):
            metadata = self._storage.metadata_for(conn, [r.rowid for r in page])
            # A hit deleted since the scan has no row any more: it is gone, so drop it.
            page = [r for r in page if r.rowid in metadata]
        out = [self._result_out(r, params, metadata, hybrid=vec is not None and bool(texts)) for r in page]
        response: Response = {"vectors": out, "distanceMetric": index.metric}
        if offset + self._query_page_size < len(results):
            response["nextToken"] = _encode_token(
                {"o": offset + self._query_page_size, "q": _query_digest(params, index.uid), "t": self._clock()}
            )
        return response

    def _query_offset(self, params: Mapping[str, Any], index: IndexRow, op: str) -> int:
        """Where the page a ``nextToken`` asks for starts (0 without one)."""
        if not params.get("nextToken"):
            return 0
        token = _decode_token(str(params["nextToken"]), op)
        offset = token.get("o")
        if not isinstance(offset, int) or offset < 0 or token.get("q") != _query_digest(params, index.uid):
            raise validation_error(
                "Invalid nextToken: continue with the same index, queryVector, queryTexts, topK, filter and queryMode",
                op, path="/nextToken",
            )
        issued = token.get("t")
        if not isinstance(issued, int | float) or self._clock() - float(issued) > QUERY_TOKEN_SECONDS:
            raise validation_error("The nextToken has expired: issue the query again", op, path="/nextToken")
        return offset

    @staticmethod
    def _query_enhanced(params: Mapping[str, Any], index: IndexRow, has_texts: bool, op: str) -> bool:
        """Whether the query runs with ENHANCED behaviour, after checking its text keys are servable."""
        mode = _index_mode(index)
        asked = params.get("queryMode")
        if asked == v.CLASSIC and mode == v.ENHANCED:
            raise validation_error("queryMode CLASSIC cannot be used on an ENHANCED index", op, path="/queryMode")
        enhanced = mode == v.ENHANCED or asked == v.ENHANCED
        if not has_texts:
            return enhanced
        if mode != v.ENHANCED:
            raise validation_error("Full-text and hybrid search require an ENHANCED index", op, path="/queryTexts")
        configured = {key: status for key, _lang, status in index.text_config}
        for item in params.get("queryTexts") or []:
            key = str(item["metadataKey"])
            if key not in configured:
                raise validation_error(f"Metadata key '{key}' is not full-text searchable", op, path="/queryTexts")
            if configured[key] != "ACTIVE":
                raise validation_error(
                    f"Metadata key '{key}' is still BUILDING and is not yet serving queries", op, path="/queryTexts"
                )
        return enhanced

    @staticmethod
    def _rank(
        cache: IndexCache, vec: np.ndarray | None, texts: list[tuple[str, str]], top_k: int, node: Node | None
    ) -> list[_Ranked]:
        """Vector (by distance), full-text (by summed BM25) or hybrid (RRF) ranking (caller holds the lock)."""
        rows = cache.matching(node)
        if not texts:
            assert vec is not None
            return [_Ranked(*cache.hit(s), d, None, ()) for s, d in cache.nearest(vec, top_k, rows)]
        window = max(top_k, HYBRID_WINDOW) if vec is not None else top_k
        per_key = {key: cache.text[key].scores(text, rows) for key, text in texts}
        if vec is None:
            chosen = best(*summed(list(per_key.values())), top_k)
            return [_Ranked(*cache.hit(s), None, None, _bm25_of(s, per_key)) for s in chosen]
        nearest = dict(cache.nearest(vec, window, rows))
        rankings = [list(nearest)] + [best(slots, scores, window) for slots, scores in per_key.values()]
        fused = rrf(rankings)
        return [
            _Ranked(*cache.hit(s), nearest.get(s), fused[s], _bm25_of(s, per_key))
            for s in ranked(fused)[:top_k]
        ]

    @staticmethod
    def _result_out(r: _Ranked, params: Mapping[str, Any], metadata: Mapping[int, str], *, hybrid: bool) -> Response:
        item: dict[str, Any] = {"key": r.key}
        if params.get("returnDistance") and r.distance is not None:
            item["distance"] = r.distance
        if params.get("returnScores") and (hybrid or r.bm25):
            scores: dict[str, Any] = {}
            if r.fused is not None:
                scores["fused"] = r.fused
            if r.bm25:
                scores["bm25Scores"] = [{"metadataKey": k, "score": score} for k, score in r.bm25]
            if hybrid and r.distance is not None:
                scores["vectorDistance"] = r.distance
            item["scores"] = scores
        if params.get("returnMetadata"):
            item["metadata"] = json.loads(metadata[r.rowid])
        return item

    # -- bucket policies and tags ---------------------------------------------------------------

    def put_vector_bucket_policy(self, **kwargs: Any) -> Response:
        """PutVectorBucketPolicy: stores the policy document (it is not enforced offline)."""
        return self._call("PutVectorBucketPolicy", kwargs, self._put_vector_bucket_policy)

    def _put_vector_bucket_policy(self, params: Mapping[str, Any]) -> Response:
        op = "PutVectorBucketPolicy"
        bucket = self._bucket(params, op)
        try:
            document = json.loads(str(params["policy"]))
        except ValueError:
            raise validation_error("Policy is not valid JSON", op, path="/policy") from None
        if not isinstance(document, dict):
            raise validation_error("Policy must be a JSON object", op, path="/policy")
        self._storage.set_bucket_policy(bucket, str(params["policy"]))
        return {}

    def get_vector_bucket_policy(self, **kwargs: Any) -> Response:
        """GetVectorBucketPolicy: ``NotFoundException`` when the bucket has none."""
        return self._call("GetVectorBucketPolicy", kwargs, self._get_vector_bucket_policy)

    def _get_vector_bucket_policy(self, params: Mapping[str, Any]) -> Response:
        op = "GetVectorBucketPolicy"
        policy = self._storage.bucket_policy(self._bucket(params, op))
        if policy is None:
            raise not_found("The specified vector bucket policy could not be found", op)
        return {"policy": policy}

    def delete_vector_bucket_policy(self, **kwargs: Any) -> Response:
        """DeleteVectorBucketPolicy."""
        return self._call("DeleteVectorBucketPolicy", kwargs, self._delete_vector_bucket_policy)

    def _delete_vector_bucket_policy(self, params: Mapping[str, Any]) -> Response:
        self._storage.set_bucket_policy(self._bucket(params, "DeleteVectorBucketPolicy"), None)
        return {}

    def _resource(self, arn: str, operation: str) -> tuple[BucketRow, str | None]:
        """(bucket, index name or None) named by a bucket or index ARN of this client."""
        ref: v.BucketRef | v.IndexRef
        try:
            ref = v.index_ref({"indexArn": arn}, operation)
        except ClientError:
            try:
                ref = v.bucket_ref({"vectorBucketArn": arn}, operation)
            except ClientError:
                raise validation_error("Invalid resource ARN", operation, path="/resourceArn") from None
        if ref.region != self._region or ref.account != self._account_id:
            raise not_found("The specified resource could not be found", operation)
        try:
            bucket = self._storage.get_bucket(ref.bucket)
        except BucketMissing:
            raise not_found("The specified resource could not be found", operation) from None
        return bucket, ref.index if isinstance(ref, v.IndexRef) else None

    def _tags(self, bucket: BucketRow, index: str | None) -> dict[str, str]:
        return dict(bucket.tags) if index is None else self._storage.index_tags(bucket, index)

    def _set_tags(self, bucket: BucketRow, index: str | None, tags: dict[str, str]) -> None:
        if index is None:
            self._storage.set_bucket_tags(bucket, tags)
        else:
            self._storage.set_index_tags(bucket, index, tags)

    def list_tags_for_resource(self, **kwargs: Any) -> Response:
        """ListTagsForResource: the tags of a vector bucket or index, by ARN."""
        return self._call("ListTagsForResource", kwargs, self._list_tags_for_resource)

    def _list_tags_for_resource(self, params: Mapping[str, Any]) -> Response:
        bucket, index = self._resource(str(params["resourceArn"]), "ListTagsForResource")
        return {"tags": self._tags(bucket, index)}

    def tag_resource(self, **kwargs: Any) -> Response:
        """TagResource: adds or replaces tags on a vector bucket or index."""
        return self._call("TagResource", kwargs, self._tag_resource)

    def _tag_resource(self, params: Mapping[str, Any]) -> Response:
        bucket, index = self._resource(str(params["resourceArn"]), "TagResource")
        tags = {**self._tags(bucket, index), **dict(params["tags"])}
        v.check_tags(tags, "TagResource")
        self._set_tags(bucket, index, tags)
        return {}

    def untag_resource(self, **kwargs: Any) -> Response:
        """UntagResource: removes tag keys from a vector bucket or index."""
        return self._call("UntagResource", kwargs, self._untag_resource)

    def _untag_resource(self, params: Mapping[str, Any]) -> Response:
        bucket, index = self._resource(str(params["resourceArn"]), "UntagResource")
        drop = set(params["tagKeys"])
        self._set_tags(bucket, index, {k: val for k, val in self._tags(bucket, index).items() if k not in drop})
        return {}

    # -- boto3 conveniences ----------------------------------------------------------------------

    def can_paginate(self, operation_name: str) -> bool:
        """Whether :meth:`get_paginator` supports ``operation_name`` (snake_case, as boto3)."""
        return operation_name in _PAGINATED

    def get_paginator(self, operation_name: str) -> Paginator:
        """A botocore paginator over ``list_vector_buckets``, ``list_indexes``, ``list_vectors``, ``query_vectors``."""
        if operation_name not in _PAGINATED:
            raise OperationNotPageableError(operation_name=operation_name)
        api_name = _PAGINATED[operation_name]
        config = paginator_config(api_name)
        method = getattr(self, operation_name)
        return Paginator(method, config, service_model().operation_model(api_name))


_PAGINATED = {
    "list_vector_buckets": "ListVectorBuckets",
    "list_indexes": "ListIndexes",
    "list_vectors": "ListVectors",
    "query_vectors": "QueryVectors",
}

