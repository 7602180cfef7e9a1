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
import json
import os
import threading
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
from ._cache import IndexCache
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
    VectorRecord,
)

Response = dict[str, Any]

#: Default memory budget of the in-memory index copies of one client (matrices and their books).
DEFAULT_CACHE_BYTES = 4 * 1024**3
_Handler = Callable[[Mapping[str, Any]], Response]


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
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        region: str = "us-east-1",
        account_id: str = "000000000000",
        cache_bytes: int = DEFAULT_CACHE_BYTES,
    ) -> None:
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
            if cache is None or cache.uid != index.uid:
                cache = IndexCache(index.uid, index.dimension, index.metric)
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
            if index.uid != cache.uid:
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
        encryption = dict(params.get("encryptionConfiguration") or {"sseType": "AES256"})
        encryption.setdefault("sseType", "AES256")
        try:
            self._storage.create_bucket(name, encryption, dict(params.get("tags") or {}))
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
            }
        }

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
        config = params.get("metadataConfiguration")
        non_filterable = list(config["nonFilterableMetadataKeys"]) if config else None
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
        if index.non_filterable is not None:
            out["metadataConfiguration"] = {"nonFilterableMetadataKeys": list(index.non_filterable)}
        out["encryptionConfiguration"] = dict(index.encryption or bucket.encryption)
        return {"index": out}

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
                    cache.apply([(rowids[k], k, d, f) for k, d, _m, f in records], (), seq)
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
        query = params["queryVector"].get("float32")
        if query is None:
            raise validation_error("Invalid query vector: queryVector must be float32", op)
        bucket, name = self._index_target(params, op)
        conn = self._storage.connection(self._storage.bucket_path(bucket))
        for _attempt in range(3):
            index = self._storage.get_index(bucket, name, conn)
            vec = v.as_float32(query, index.dimension, None, op)
            if index.metric == "cosine":
                v.check_not_zero(vec, None, op)
            node: Node | None = None
            if params.get("filter") is not None:
                node = compile_filter(params["filter"], index.non_filterable or (), op)
            cache = self._cache(bucket, index)
            with cache.lock:
                if cache.seq < index.seq and not self._sync(cache, bucket, name):
                    continue  # the index was deleted and recreated under us: start over
                hits = cache.search(vec, top_k, node)
            break
        else:  # pragma: no cover - only if the index is recreated three times during one query
            raise not_found(INDEX_NOT_FOUND, op)
        metadata: dict[int, str] = {}
        if params.get("returnMetadata"):
            metadata = self._storage.metadata_for(conn, [rowid for rowid, _k, _d in hits])
            # A hit deleted since the scan has no row any more: it is gone, so drop it.
            hits = [h for h in hits if h[0] in metadata]
        out = []
        for rowid, key, dist in hits:
            item: dict[str, Any] = {"key": key}
            if params.get("returnDistance"):
                item["distance"] = dist
            if params.get("returnMetadata"):
                item["metadata"] = json.loads(metadata[rowid])
            out.append(item)
        return {"vectors": out, "distanceMetric": index.metric}

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
        self._set_tags(bucket, index, {**self._tags(bucket, index), **dict(params["tags"])})
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
        """A botocore paginator over ``list_vector_buckets``, ``list_indexes`` or ``list_vectors``."""
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
}

