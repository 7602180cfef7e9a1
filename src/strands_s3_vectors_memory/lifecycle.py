"""Memory lifecycle: list, get, delete, forget, export/import, TTL pruning, stats and dedupe.

S3 Vectors can filter metadata in ``QueryVectors`` only; ``ListVectors`` returns an index in
storage order with no filter. So everything here that must see *all* of a user's memories (not the
nearest few) is a scan: ``ListVectors`` pages with metadata, matched client-side on ``user_id`` /
``agent_name``. Long scans run ``segmentCount`` segments in parallel, as the S3 Vectors
documentation recommends for full-index reads.

Three rules keep these operations safe to use on a shared index:

* a memory belongs to a user only if its metadata says so: a key alone never reveals or removes
  another user's vector (:meth:`MemoryLifecycleMixin.get_memory` answers "not found");
* destructive scans are idempotent: an interrupted :meth:`~MemoryLifecycleMixin.forget_user` is
  finished by running it again, and its result is verified by a fresh scan;
* reads never need the embedder, so an index written with another model can still be listed,
  exported or forgotten (only import and dedupe embed).

:class:`MemoryLifecycleMixin` is mixed into :class:`~strands_s3_vectors_memory.S3VectorMemory`;
:class:`TenantLifecycleMixin` adds :meth:`~TenantLifecycleMixin.forget_tenant` to the multi-tenant
store.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from typing import IO, TYPE_CHECKING, Any

from botocore.exceptions import ClientError

from .config import NON_FILTERABLE_METADATA_KEYS
from .errors import ConfigurationError, S3VectorMemoryError
from .records import TYPE_DETAIL, TYPE_MEMORY, TYPE_SUMMARY, Memory, MemoryScope, validate_id
from .tenancy import tenant_id_from_context, tenant_index_name

if TYPE_CHECKING:
    from .embeddings import Embedder
    from .store import IndexTarget

logger = logging.getLogger(__name__)

#: Vectors per ``ListVectors`` request (the service allows 1-1000; metadata can be 40 KB each).
LIST_PAGE_SIZE = 500
#: Keys per ``DeleteVectors`` / vectors per ``PutVectors`` request (service limit).
WRITE_BATCH = 500
#: ``ListVectors`` accepts 1-16 segments.
MAX_SEGMENTS = 16
#: Full scans :meth:`MemoryLifecycleMixin.forget_user` makes to verify (and finish) a deletion.
FORGET_VERIFY_SCANS = 3
#: Cosine similarity (``1 - cosine distance``) at or above which a new summary or memory is treated
#: as a restatement of an existing memory of the same user and agent, and overwrites that memory
#: instead of being added. 0.97 was chosen on the bundled e5 model: rewordings of one fact score
#: 0.98-0.999, while two different facts about one topic ("vegetarian, allergic to peanuts" vs
#: "vegan, allergic to nuts") score about 0.96. Set ``store.dedupe_threshold = None`` to disable.
DEFAULT_DEDUPE_THRESHOLD = 0.97
#: Nearest neighbours examined per dedupe check: finer-grained ``detail`` records are never merged
#: into, so a few candidates let a matching summary be found behind a detail of the same text.
_DEDUPE_CANDIDATES = 4
_DEDUPED_TYPES = frozenset({TYPE_SUMMARY, TYPE_MEMORY})
_MAX_KEY_BYTES = 1024

#: ``progress(scanned, matched)``: cumulative vectors read and vectors affected so far.
ProgressCallback = Callable[[int, int], None]
Vector = Mapping[str, Any]


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


# --- results ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MemoryPage:
    """One page of a user's memories and the token of the next page (``None`` on the last one).

    A page holds at most ``page_size`` memories; because the index is scanned and filtered, the
    last page can be empty.
    """

    memories: list[Memory]
    next_token: str | None


@dataclass(frozen=True)
class ForgetReport:
    """What :meth:`MemoryLifecycleMixin.forget_user` did, after verification.

    ``found`` counts the user's vectors seen by the first scan, ``deleted`` the distinct keys
    deleted by this run (more than ``found`` only if writes raced the scan), ``scans`` the full
    scans made (the last one found nothing), ``scanned`` the vectors read across them.
    """

    user_id: str
    agent_name: str | None
    index_name: str
    tenant_id: str | None
    found: int
    deleted: int
    remaining: int
    scans: int
    scanned: int
    seconds: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class ForgetIncompleteError(S3VectorMemoryError):
    """Memories of the user were still found after every verification scan; running again continues."""

    def __init__(self, message: str, report: ForgetReport) -> None:
        super().__init__(message)
        self.report = report


@dataclass(frozen=True)
class ImportReport:
    """What :meth:`MemoryLifecycleMixin.import_memories` wrote: every record, and how it got its vector."""

    imported: int
    re_embedded: int
    kept_vectors: int

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class IndexStats:
    """Counts over one index (by type, user and agent) and the index's configuration."""

    bucket_name: str
    index_name: str
    tenant_id: str | None
    dimension: int
    distance_metric: str
    data_type: str
    non_filterable_metadata_keys: list[str]
    total: int
    expired: int
    by_type: dict[str, int] = field(default_factory=dict)
    by_user: dict[str, int] = field(default_factory=dict)
    by_agent: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class SetupResult:
    """What :func:`setup_index` found or created."""

    bucket_name: str
    index_name: str
    bucket_created: bool
    index_created: bool
    dimension: int
    distance_metric: str
    data_type: str
    non_filterable_metadata_keys: list[str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- setup --------------------------------------------------------------------------------------


def setup_index(
    client: Any, bucket_name: str, index_name: str, *, dimension: int, create_bucket: bool = True
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
            if _error_code(exc) != "ConflictException":
                raise
    expected_keys = sorted(NON_FILTERABLE_METADATA_KEYS)
    index_created = False
    try:
        client.create_index(
            vectorBucketName=bucket_name,
            indexName=index_name,
            dataType="float32",
            dimension=dimension,
            distanceMetric="cosine",
            metadataConfiguration={"nonFilterableMetadataKeys": list(NON_FILTERABLE_METADATA_KEYS)},
        )
        index_created = True
    except ClientError as exc:
        if _error_code(exc) != "ConflictException":
            raise
    index = client.get_index(vectorBucketName=bucket_name, indexName=index_name)["index"]
    keys = sorted((index.get("metadataConfiguration") or {}).get("nonFilterableMetadataKeys") or [])
    found = (int(index.get("dimension", 0)), str(index.get("distanceMetric")), str(index.get("dataType")), keys)
    wanted = (dimension, "cosine", "float32", expected_keys)
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


# --- scanning -----------------------------------------------------------------------------------


class _Tally:
    """Thread-safe cumulative counters, reported to an optional progress callback."""

    def __init__(self, progress: ProgressCallback | None) -> None:
        self._progress = progress
        self._lock = threading.Lock()
        self.scanned = 0
        self.matched = 0

    def add(self, scanned: int, matched: int) -> None:
        with self._lock:
            self.scanned += scanned
            self.matched += matched
            snapshot = (self.scanned, self.matched)
        if self._progress is not None:
            self._progress(*snapshot)


def _list_page(
    target: IndexTarget,
    token: str | None,
    *,
    segment: tuple[int, int] | None = None,
    return_data: bool = False,
) -> Mapping[str, Any]:
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
    response: Mapping[str, Any] = target.client.list_vectors(**params)
    return response


def _scan_segment(
    target: IndexTarget,
    segment: tuple[int, int],
    visit: Callable[[list[Vector]], None],
    stop: threading.Event,
    return_data: bool,
) -> None:
    token: str | None = None
    while not stop.is_set():
        response = _list_page(target, token, segment=segment, return_data=return_data)
        visit(list(response.get("vectors") or []))
        token = response.get("nextToken")
        if not token:
            return


def _parallel_scan(
    target: IndexTarget, segments: int, visit: Callable[[list[Vector]], None], *, return_data: bool = False
) -> None:
    """Call ``visit`` with every page of the index, ``segments`` segments read concurrently.

    ``visit`` runs on worker threads and must be thread-safe. The first failure stops the other
    segments after their current page and is re-raised.
    """
    if not 1 <= segments <= MAX_SEGMENTS:
        raise ValueError(f"segments must be between 1 and {MAX_SEGMENTS}, got {segments}")
    stop = threading.Event()

    def run(index: int) -> None:
        try:
            _scan_segment(target, (segments, index), visit, stop, return_data)
        except BaseException:
            stop.set()
            raise

    if segments == 1:
        run(0)
        return
    with ThreadPoolExecutor(max_workers=segments, thread_name_prefix="s3vm-scan") as pool:
        futures = [pool.submit(run, index) for index in range(segments)]
    for future in futures:
        future.result()


def _delete_keys(target: IndexTarget, keys: Sequence[str]) -> None:
    for start in range(0, len(keys), WRITE_BATCH):
        batch = list(keys[start : start + WRITE_BATCH])
        target.client.delete_vectors(vectorBucketName=target.bucket_name, indexName=target.index_name, keys=batch)


def _sweep(
    target: IndexTarget,
    matches: Callable[[Mapping[str, Any]], bool],
    *,
    segments: int,
    delete: bool,
    tally: _Tally,
) -> set[str]:
    """Scan the index for vectors whose metadata ``matches``; delete them as they are found if asked.

    Returns the distinct matching keys. Each worker deletes in full batches of 500 while it scans
    (memory stays bounded) and the remainders are deleted at the end. Deleting while listing is
    safe: a key a listing misses because of it is found by the next (verification) scan.
    """
    seen: set[str] = set()
    lock = threading.Lock()
    local = threading.local()
    buffers: list[list[str]] = []

    def pending() -> list[str]:
        buffer: list[str] | None = getattr(local, "buffer", None)
        if buffer is None:
            buffer = local.buffer = []
            with lock:
                buffers.append(buffer)
        return buffer

    def visit(page: list[Vector]) -> None:
        hits = [str(v["key"]) for v in page if matches(v.get("metadata") or {})]
        with lock:
            fresh = [key for key in dict.fromkeys(hits) if key not in seen]  # some backends overlap segments
            seen.update(fresh)
        if delete and fresh:
            buffer = pending()
            buffer.extend(fresh)
            while len(buffer) >= WRITE_BATCH:
                _delete_keys(target, buffer[:WRITE_BATCH])
                del buffer[:WRITE_BATCH]
        tally.add(len(page), len(fresh))

    _parallel_scan(target, segments, visit)
    for buffer in buffers:
        _delete_keys(target, buffer)
        buffer.clear()
    return seen


def _belongs(metadata: Mapping[str, Any], scope: MemoryScope) -> bool:
    if metadata.get("user_id") != scope.user_id:
        return False
    return scope.agent_name is None or metadata.get("agent_name") == scope.agent_name


def _expired(metadata: Mapping[str, Any], now: float) -> bool:
    expires = metadata.get("expires_at")
    return isinstance(expires, int | float) and not isinstance(expires, bool) and expires <= now


# --- list cursors -------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Cursor:
    """Where a memory listing stopped: a ``ListVectors`` page token and the position to resume at in it.

    The position is the key of the first vector not yet examined (with its index as a fallback if
    that vector was deleted meanwhile), so a listing can stop and resume inside a ``ListVectors``
    page and every page of a user's memories but the last holds exactly ``page_size``.
    """

    token: str | None
    resume_key: str | None = None
    resume_index: int = 0

    def encode(self) -> str:
        raw = json.dumps({"t": self.token, "k": self.resume_key, "n": self.resume_index}, separators=(",", ":"))
        return base64.urlsafe_b64encode(raw.encode("utf-8")).decode("ascii").rstrip("=")

    @classmethod
    def decode(cls, text: str) -> _Cursor:
        try:
            padded = text + "=" * (-len(text) % 4)
            payload = json.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
            token, key, count = payload["t"], payload["k"], payload["n"]
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeError):
            raise ValueError("invalid next_token: pass the next_token of a previous page unchanged") from None
        if not (token is None or isinstance(token, str)) or not (key is None or isinstance(key, str)):
            raise ValueError("invalid next_token: pass the next_token of a previous page unchanged")
        if not isinstance(count, int) or count < 0:
            raise ValueError("invalid next_token: pass the next_token of a previous page unchanged")
        return cls(token, key, count)

    def resume_position(self, keys: Sequence[str]) -> int:
        if self.resume_key is not None and self.resume_key in keys:
            return keys.index(self.resume_key)
        return min(self.resume_index, len(keys))


# --- export / import records --------------------------------------------------------------------


def _export_record(vector: Vector, embedder: Embedder | None) -> dict[str, Any]:
    metadata = dict(vector.get("metadata") or {})
    record: dict[str, Any] = {"key": str(vector["key"]), "content": str(metadata.pop("content", ""))}
    record["metadata"] = metadata
    data = (vector.get("data") or {}).get("float32")
    if data is not None:
        record["vector"] = [float(x) for x in data]
        if embedder is not None and len(record["vector"]) == embedder.dimension:
            record["embedding_model"] = embedder.model_id
    return record


@dataclass(frozen=True)
class _ImportRecord:
    key: str
    content: str
    metadata: dict[str, Any]
    vector: list[float] | None
    model: str | None


def _parse_import_line(line: str, number: int) -> _ImportRecord:
    def bad(reason: str) -> ValueError:
        return ValueError(f"line {number}: {reason}")

    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise bad(f"not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise bad("expected a JSON object")
    key, content, metadata = record.get("key"), record.get("content"), record.get("metadata")
    if not isinstance(key, str) or not key or len(key.encode("utf-8")) > _MAX_KEY_BYTES:
        raise bad(f"'key' must be a non-empty string of at most {_MAX_KEY_BYTES} bytes")
    if not isinstance(content, str) or not content.strip():
        raise bad("'content' must be a non-empty string")
    if not isinstance(metadata, dict):
        raise bad("'metadata' must be an object")
    try:
        validate_id(metadata.get("user_id"), "metadata.user_id")
        if "agent_name" in metadata:
            validate_id(metadata["agent_name"], "metadata.agent_name")
    except S3VectorMemoryError as exc:
        raise bad(str(exc)) from None
    vector = record.get("vector")
    if vector is not None and (
        not isinstance(vector, list) or not vector or not all(isinstance(x, int | float) for x in vector)
    ):
        raise bad("'vector' must be a list of numbers")
    model = record.get("embedding_model")
    return _ImportRecord(
        key=key,
        content=content,
        metadata={**metadata, "content": content},
        vector=[float(x) for x in vector] if vector is not None else None,
        model=model if isinstance(model, str) else None,
    )


# --- the mixins ---------------------------------------------------------------------------------


class MemoryLifecycleMixin:
    """Lifecycle operations of a memory store (mixed into :class:`~strands_s3_vectors_memory.S3VectorMemory`).

    Every operation takes the same ``tenant_context`` as the rest of the store: on the multi-tenant
    store it selects the tenant's index and credentials.
    """

    #: See :data:`DEFAULT_DEDUPE_THRESHOLD`; ``None`` disables dedupe-on-write.
    dedupe_threshold: float | None = DEFAULT_DEDUPE_THRESHOLD

    if TYPE_CHECKING:
        embedder: Embedder
        bucket_name: str

        def _target(self, tenant_context: Mapping[str, Any] | None = None) -> IndexTarget: ...

        def _ready_target(self, tenant_context: Mapping[str, Any] | None) -> IndexTarget: ...

        def _embed_documents(self, texts: Sequence[str]) -> list[list[float]]: ...

        def scope(
            self, user_id: str, agent_name: str | None = None, tenant_context: Mapping[str, Any] | None = None
        ) -> MemoryScope: ...

    # ------------------------------------------------------------------ helpers

    def _existing_target(self, tenant_context: Mapping[str, Any] | None) -> IndexTarget | None:
        """The target if its index exists, else ``None`` (reads of a missing index find nothing).

        Unlike writes, reads do not check the index dimension against the embedder, so an index
        written with another model can still be listed, exported and forgotten.
        """
        target = self._target(tenant_context)
        try:
            target.client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)
        except ClientError as exc:
            if _error_code(exc) == "NotFoundException":
                return None
            raise
        return target

    # ------------------------------------------------------------------ list / get / delete

    def list_memories(
        self,
        user_id: str,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
        page_size: int = 100,
        next_token: str | None = None,
        include_expired: bool = False,
    ) -> MemoryPage:
        """One page of ``user_id``'s memories (of ``agent_name`` only, if given), in storage order.

        Pass the returned ``next_token`` back to get the next page; ``None`` means there is none.
        Expired memories (still stored until :meth:`prune_expired`) are skipped unless
        ``include_expired``.
        """
        if not 1 <= page_size <= 1000:
            raise ValueError(f"page_size must be between 1 and 1000, got {page_size}")
        scope = self.scope(user_id, agent_name, tenant_context)
        cursor = _Cursor.decode(next_token) if next_token else _Cursor(None)
        target = self._existing_target(tenant_context)
        if target is None:
            return MemoryPage([], None)
        now = time.time()

        def wanted(vector: Vector) -> bool:
            metadata = vector.get("metadata") or {}
            return _belongs(metadata, scope) and (include_expired or not _expired(metadata, now))

        memories: list[Memory] = []
        while True:
            response = _list_page(target, cursor.token)
            vectors = list(response.get("vectors") or [])
            keys = [str(v["key"]) for v in vectors]
            following = response.get("nextToken") or None
            for position in range(cursor.resume_position(keys), len(vectors)):
                if not wanted(vectors[position]):
                    continue
                memories.append(Memory.from_vector(vectors[position]))
                if len(memories) < page_size:
                    continue
                rest = vectors[position + 1 :]
                if any(wanted(v) for v in rest):
                    resume = _Cursor(cursor.token, keys[position + 1], position + 1)
                    return MemoryPage(memories, resume.encode())
                return MemoryPage(memories, _Cursor(following).encode() if following else None)
            if following is None:
                return MemoryPage(memories, None)
            cursor = _Cursor(following)

    def iter_memories(
        self,
        user_id: str,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
        page_size: int = 100,
        include_expired: bool = False,
    ) -> Iterator[Memory]:
        """Every memory of ``user_id`` (lazily, page by page); see :meth:`list_memories`."""
        token: str | None = None
        while True:
            page = self.list_memories(
                user_id, agent_name=agent_name, tenant_context=tenant_context, page_size=page_size,
                next_token=token, include_expired=include_expired,
            )
            yield from page.memories
            if page.next_token is None:
                return
            token = page.next_token

    def _owned_vector(
        self, key: str, scope: MemoryScope, tenant_context: Mapping[str, Any] | None
    ) -> tuple[IndexTarget, Vector] | None:
        if not isinstance(key, str) or not key or len(key.encode("utf-8")) > _MAX_KEY_BYTES:
            raise ValueError(f"key must be a non-empty string of at most {_MAX_KEY_BYTES} bytes")
        target = self._existing_target(tenant_context)
        if target is None:
            return None
        response = target.client.get_vectors(
            vectorBucketName=target.bucket_name, indexName=target.index_name, keys=[key], returnMetadata=True
        )
        for vector in response.get("vectors") or []:
            if vector.get("key") == key and _belongs(vector.get("metadata") or {}, scope):
                return target, vector
        return None

    def get_memory(
        self,
        key: str,
        user_id: str,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
    ) -> Memory | None:
        """The memory stored under ``key`` if it belongs to ``user_id`` and has not expired, else ``None``.

        Another user's key is indistinguishable from a missing one.
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        found = self._owned_vector(key, scope, tenant_context)
        if found is None:
            return None
        memory = Memory.from_vector(found[1])
        return None if memory.is_expired() else memory

    def delete_memory(
        self,
        key: str,
        user_id: str,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
    ) -> bool:
        """Delete the memory under ``key`` if it belongs to ``user_id``; ``False`` if there was none.

        Expired memories can be deleted too. Another user's key is left alone and reported as absent.
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        found = self._owned_vector(key, scope, tenant_context)
        if found is None:
            return False
        _delete_keys(found[0], [key])
        return True

    # ------------------------------------------------------------------ forget

    def forget_user(
        self,
        user_id: str,
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
        segments: int = 4,
        progress: ProgressCallback | None = None,
    ) -> ForgetReport:
        """Delete every vector of ``user_id`` (of ``agent_name`` only, if given) in the index.

        The index is scanned in ``segments`` parallel ``ListVectors`` segments and the user's keys
        are deleted in batches of 500 as they are found; then fresh scans verify that none is left
        (deleting stragglers, e.g. memories written during the scan). Safe to re-run: if it is
        interrupted, running it again finishes the job. Vectors of other users are never deleted:
        a key is deleted only after its own metadata named this user.

        Raises :class:`ForgetIncompleteError` if memories remain after :data:`FORGET_VERIFY_SCANS`
        verification scans.
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        started = time.monotonic()
        target = self._existing_target(tenant_context)
        index_name = target.index_name if target is not None else self._target(tenant_context).index_name
        tenant_id = target.tenant_id if target is not None else None

        def report(found: int, deleted: int, remaining: int, scans: int, scanned: int) -> ForgetReport:
            return ForgetReport(
                user_id=user_id, agent_name=agent_name, index_name=index_name, tenant_id=tenant_id, found=found,
                deleted=deleted, remaining=remaining, scans=scans, scanned=scanned,
                seconds=round(time.monotonic() - started, 3),
            )

        if target is None:
            return report(0, 0, 0, 0, 0)
        tally = _Tally(progress)

        def matches(metadata: Mapping[str, Any]) -> bool:
            return _belongs(metadata, scope)

        deleted = _sweep(target, matches, segments=segments, delete=True, tally=tally)
        found = len(deleted)
        scans = 1
        remaining: set[str] = set()
        for attempt in range(FORGET_VERIFY_SCANS):
            remaining = _sweep(target, matches, segments=segments, delete=False, tally=_Tally(None))
            scans += 1
            if not remaining or attempt == FORGET_VERIFY_SCANS - 1:
                break
            logger.info("forget_user: %d memories appeared during the scan; deleting them", len(remaining))
            _delete_keys(target, sorted(remaining))
            deleted |= remaining
        result = report(found, len(deleted - remaining), len(remaining), scans, tally.scanned)
        if remaining:
            raise ForgetIncompleteError(
                f"{len(remaining)} memories of the user remain in index {index_name!r} after {scans} scans "
                "(memories are being written concurrently?); run forget again",
                result,
            )
        return result

    # ------------------------------------------------------------------ TTL, stats

    def prune_expired(
        self,
        *,
        tenant_context: Mapping[str, Any] | None = None,
        now: float | None = None,
        segments: int = 4,
        progress: ProgressCallback | None = None,
    ) -> int:
        """Delete every memory whose ``expires_at`` has passed (any user); returns how many.

        Searches already ignore expired memories; pruning reclaims their storage. Idempotent.
        """
        target = self._existing_target(tenant_context)
        if target is None:
            return 0
        moment = time.time() if now is None else now
        pruned = _sweep(
            target, lambda metadata: _expired(metadata, moment), segments=segments, delete=True,
            tally=_Tally(progress),
        )
        return len(pruned)

    def stats(
        self,
        *,
        tenant_context: Mapping[str, Any] | None = None,
        segments: int = 4,
        progress: ProgressCallback | None = None,
    ) -> IndexStats:
        """Count the index's vectors by type, user and agent (a full scan) and report its configuration."""
        target = self._existing_target(tenant_context)
        if target is None:
            missing = self._target(tenant_context)
            raise ConfigurationError(
                f"index {missing.index_name!r} does not exist in bucket {missing.bucket_name!r}"
            )
        index = target.client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)["index"]
        by_type: Counter[str] = Counter()
        by_user: Counter[str] = Counter()
        by_agent: Counter[str] = Counter()
        expired = 0
        lock = threading.Lock()
        tally = _Tally(progress)
        now = time.time()

        def visit(page: list[Vector]) -> None:
            nonlocal expired
            metas = [v.get("metadata") or {} for v in page]
            with lock:
                for metadata in metas:
                    by_type[str(metadata.get("type", "unknown"))] += 1
                    by_user[str(metadata.get("user_id", "unknown"))] += 1
                    by_agent[str(metadata.get("agent_name", "unknown"))] += 1
                    expired += _expired(metadata, now)
            tally.add(len(page), len(page))

        _parallel_scan(target, segments, visit)
        return IndexStats(
            bucket_name=target.bucket_name,
            index_name=target.index_name,
            tenant_id=target.tenant_id,
            dimension=int(index.get("dimension", 0)),
            distance_metric=str(index.get("distanceMetric", "")),
            data_type=str(index.get("dataType", "")),
            non_filterable_metadata_keys=list(
                (index.get("metadataConfiguration") or {}).get("nonFilterableMetadataKeys") or []
            ),
            total=sum(by_type.values()),
            expired=expired,
            by_type=dict(by_type.most_common()),
            by_user=dict(by_user.most_common()),
            by_agent=dict(by_agent.most_common()),
        )

    # ------------------------------------------------------------------ export / import

    def export_memories(
        self,
        user_id: str,
        fp: IO[str],
        *,
        agent_name: str | None = None,
        tenant_context: Mapping[str, Any] | None = None,
        include_vectors: bool = False,
        include_expired: bool = False,
        progress: ProgressCallback | None = None,
    ) -> int:
        """Write ``user_id``'s memories to ``fp`` as JSON Lines; returns how many.

        Each line is ``{"key", "content", "metadata"}`` (metadata without the content), plus
        ``"vector"`` and ``"embedding_model"`` with ``include_vectors``: the format
        :meth:`import_memories` reads, and a portable copy of what the store holds about the user.
        """
        scope = self.scope(user_id, agent_name, tenant_context)
        target = self._existing_target(tenant_context)
        if target is None:
            return 0
        tally = _Tally(progress)
        now = time.time()
        written = 0
        token: str | None = None
        while True:
            response = _list_page(target, token, return_data=include_vectors)
            page = list(response.get("vectors") or [])
            chosen = [
                v for v in page
                if _belongs(v.get("metadata") or {}, scope)
                and (include_expired or not _expired(v.get("metadata") or {}, now))
            ]
            for vector in chosen:
                fp.write(json.dumps(_export_record(vector, self.embedder), ensure_ascii=False) + "\n")
            written += len(chosen)
            tally.add(len(page), len(chosen))
            token = response.get("nextToken") or None
            if token is None:
                return written

    def import_memories(
        self,
        fp: Iterable[str],
        *,
        tenant_context: Mapping[str, Any] | None = None,
        keep_vectors: bool = False,
        progress: ProgressCallback | None = None,
    ) -> ImportReport:
        """Write the memories of a JSON Lines export into this store's index, keys and metadata kept.

        Content is re-embedded with this store's embedder, unless ``keep_vectors`` and the record
        carries a vector of this embedder's dimension (and, when recorded, of the same model).
        Records are validated and written in batches of 500; re-running an import is idempotent,
        since keys are preserved. Raises ``ValueError`` naming the line of a malformed record.
        """
        target = self._ready_target(tenant_context)
        tally = _Tally(progress)
        totals = {"imported": 0, "re_embedded": 0, "kept": 0}
        batch: list[_ImportRecord] = []
        for number, line in enumerate(fp, start=1):
            if line.strip():
                batch.append(_parse_import_line(line, number))
            if len(batch) >= WRITE_BATCH:
                self._import_batch(target, batch, keep_vectors, totals, tally)
                batch = []
        if batch:
            self._import_batch(target, batch, keep_vectors, totals, tally)
        return ImportReport(imported=totals["imported"], re_embedded=totals["re_embedded"], kept_vectors=totals["kept"])

    def _reusable(self, record: _ImportRecord) -> bool:
        return (
            record.vector is not None
            and len(record.vector) == self.embedder.dimension
            and record.model in (None, self.embedder.model_id)
        )

    def _import_batch(
        self,
        target: IndexTarget,
        batch: Sequence[_ImportRecord],
        keep_vectors: bool,
        totals: dict[str, int],
        tally: _Tally,
    ) -> None:
        keep = [keep_vectors and self._reusable(r) for r in batch]
        fresh = iter(self._embed_documents([r.content for r, k in zip(batch, keep, strict=True) if not k]))
        vectors = [r.vector if k and r.vector is not None else next(fresh) for r, k in zip(batch, keep, strict=True)]
        unique = {r.key: (r, v) for r, v in zip(batch, vectors, strict=True)}  # a repeated key: last one wins
        target.client.put_vectors(
            vectorBucketName=target.bucket_name,
            indexName=target.index_name,
            vectors=[{"key": k, "data": {"float32": v}, "metadata": r.metadata} for k, (r, v) in unique.items()],
        )
        kept = sum(keep)
        totals["imported"] += len(batch)
        totals["kept"] += kept
        totals["re_embedded"] += len(batch) - kept
        tally.add(len(batch), len(batch))

    # ------------------------------------------------------------------ dedupe on write

    def _dedupe_keys(
        self,
        target: IndexTarget,
        records: Sequence[tuple[str, str, Mapping[str, Any]]],
        vectors: Sequence[Sequence[float]],
    ) -> list[str]:
        """The key each record should be written under: its own, or a near-duplicate's.

        A ``summary`` or ``memory`` record whose nearest existing memory of the same user and agent
        has cosine similarity >= :attr:`dedupe_threshold` replaces that memory instead of adding a
        second copy. One filtered top-k query per such record; other records keep their keys.
        """
        threshold = self.dedupe_threshold
        keys: list[str] = []
        for (key, _text, metadata), vector in zip(records, vectors, strict=True):
            chosen = key
            if threshold is not None and metadata.get("type") in _DEDUPED_TYPES:
                existing = self._near_duplicate(target, key, metadata, vector, threshold)
                if existing is not None and existing not in keys:
                    logger.debug("dedupe: %s replaces near-identical memory %s", key, existing)
                    chosen = existing
            keys.append(chosen)
        return keys

    def _near_duplicate(
        self,
        target: IndexTarget,
        key: str,
        metadata: Mapping[str, Any],
        vector: Sequence[float],
        threshold: float,
    ) -> str | None:
        scope = MemoryScope(str(metadata.get("user_id")), str(metadata.get("agent_name")))
        response = target.client.query_vectors(
            vectorBucketName=target.bucket_name,
            indexName=target.index_name,
            queryVector={"float32": list(vector)},
            topK=_DEDUPE_CANDIDATES,
            filter=scope.metadata_filter(),
            returnMetadata=True,
            returnDistance=True,
        )
        for hit in response.get("vectors") or []:
            hit_metadata = hit.get("metadata") or {}
            if hit_metadata.get("type") == TYPE_DETAIL or not _belongs(hit_metadata, scope):
                continue
            if hit.get("key") == key or 1.0 - float(hit.get("distance", 2.0)) < threshold:
                return None
            return str(hit["key"])
        return None


class TenantLifecycleMixin:
    """Operations on a whole tenant (mixed into :class:`~strands_s3_vectors_memory.MultiTenantS3VectorMemory`)."""

    if TYPE_CHECKING:
        bucket_name: str
        _ready: set[tuple[str, str]]
        _ready_lock: threading.Lock
        _tenant_lock: threading.Lock
        _tenant_clients: Any

        def _base_client(self) -> Any: ...

    def forget_tenant(self, tenant_context: Mapping[str, Any]) -> bool:
        """Delete the tenant's whole index (``memory-{tenantId}``) and every memory in it.

        Returns ``False`` if the index did not exist. Deleting an index is an operator action, not a
        tenant one: it uses the store's own client (ambient credentials on AWS, which need
        ``s3vectors:DeleteIndex``), never the tenant's vended credentials, which cannot do it.
        """
        tenant_id = tenant_id_from_context(tenant_context)
        index_name = tenant_index_name(tenant_id)
        client = self._base_client()
        try:
            client.get_index(vectorBucketName=self.bucket_name, indexName=index_name)
            client.delete_index(vectorBucketName=self.bucket_name, indexName=index_name)
        except ClientError as exc:
            if _error_code(exc) == "NotFoundException":
                return False
            raise
        finally:
            with self._ready_lock:
                self._ready.discard((self.bucket_name, index_name))
            with self._tenant_lock:
                self._tenant_clients.pop(tenant_id, None)
        logger.info("deleted index %s/%s of tenant %s", self.bucket_name, index_name, tenant_id)
        return True
