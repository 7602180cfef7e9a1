"""Durable storage of the embedded engine: SQLite in WAL mode, one database per vector bucket.

Layout under ``root``::

    catalog.sqlite3                   vector buckets (name -> uid, creation time, encryption)
    buckets/<name>-<uid>.sqlite3      that bucket's indexes, vectors and tombstones

Every write is one ``BEGIN IMMEDIATE`` transaction (a PutVectors batch is all or nothing) with
``synchronous=FULL``, so an acknowledged write survives a crash. Each write bumps the index's
``seq`` and stamps the rows it touches with it; deletes leave a tombstone with the same stamp. A
reader holding a cache at sequence ``s`` therefore catches up by reading only rows and tombstones
with ``seq > s``; this is what keeps many processes on one directory consistent cheaply.

Connections are per thread (SQLite connections must not be shared mid-transaction) and wait on
locks with ``busy_timeout``; lock errors that still escape are retried with backoff.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import random
import sqlite3
import threading
import time
import uuid
import weakref
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

_T = TypeVar("_T")

#: How long one statement waits for a lock held by another connection before SQLite gives up.
BUSY_TIMEOUT_MS = 30_000
#: Extra attempts after SQLite itself gave up on a lock.
_LOCK_RETRIES = 8
#: When an index holds more tombstones than this, the older half is pruned (readers behind the
#: prune point reload the index instead of applying a delta).
TOMBSTONE_LIMIT = 20_000

_CATALOG_SCHEMA = """
CREATE TABLE IF NOT EXISTS buckets (
    name TEXT PRIMARY KEY,
    uid TEXT NOT NULL,
    created REAL NOT NULL,
    encryption TEXT NOT NULL,
    tags TEXT NOT NULL,
    default_mode TEXT
);
CREATE TABLE IF NOT EXISTS bucket_policies (uid TEXT PRIMARY KEY, policy TEXT NOT NULL);
"""

_BUCKET_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS indexes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    name TEXT NOT NULL UNIQUE,
    uid TEXT NOT NULL,
    created REAL NOT NULL,
    data_type TEXT NOT NULL,
    dimension INTEGER NOT NULL,
    metric TEXT NOT NULL,
    non_filterable TEXT,
    encryption TEXT,
    tags TEXT NOT NULL,
    seq INTEGER NOT NULL DEFAULT 0,
    tomb_floor INTEGER NOT NULL DEFAULT 0,
    mode TEXT,
    text_config TEXT
);
CREATE TABLE IF NOT EXISTS vectors (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    index_id INTEGER NOT NULL,
    key TEXT NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    metadata TEXT NOT NULL,
    fmeta TEXT NOT NULL,
    UNIQUE (index_id, key)
);
CREATE INDEX IF NOT EXISTS vectors_by_seq ON vectors (index_id, seq);
CREATE INDEX IF NOT EXISTS vectors_by_id ON vectors (index_id, id);
CREATE TABLE IF NOT EXISTS tombstones (index_id INTEGER NOT NULL, seq INTEGER NOT NULL, key TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS tombstones_by_seq ON tombstones (index_id, seq);
"""


#: Columns added after the first release, per table: databases written by an older engine gain them
#: (NULL) when first opened. A NULL mode marks a bucket or index made before index modes existed.
_ADDED_COLUMNS = {"buckets": ("default_mode",), "indexes": ("mode", "text_config")}


def _add_missing_columns(conn: sqlite3.Connection, table: str) -> None:
    present = {str(r[1]) for r in conn.execute(f"PRAGMA table_info({table})")}
    for column in _ADDED_COLUMNS[table]:
        if column not in present:
            conn.execute(f"ALTER TABLE {table} ADD COLUMN {column} TEXT")


class StorageError(Exception):
    """Base of the storage-level outcomes the client maps to service errors."""


class BucketMissing(StorageError):
    """The vector bucket does not exist (or was deleted meanwhile)."""


class IndexMissing(StorageError):
    """The index does not exist (or was deleted/recreated meanwhile)."""


class AlreadyExists(StorageError):
    """A bucket or index with that name exists."""


class NotEmpty(StorageError):
    """The bucket still holds indexes."""


@dataclass(frozen=True)
class BucketRow:
    """One vector bucket as stored in the catalog."""

    name: str
    uid: str
    created: float
    encryption: dict[str, Any]
    tags: dict[str, str]
    default_mode: str | None = None


TextConfig = tuple[str, str | None, str]
"""(metadata key, analyzer language or None for the standard analyzer, ``ACTIVE``/``BUILDING``)."""


@dataclass(frozen=True)
class IndexRow:
    """One index as stored in its bucket database."""

    id: int
    name: str
    uid: str
    created: float
    data_type: str
    dimension: int
    metric: str
    non_filterable: tuple[str, ...] | None
    encryption: dict[str, Any] | None
    seq: int
    tomb_floor: int
    mode: str | None = None
    text_config: tuple[TextConfig, ...] = ()


VectorRecord = tuple[str, bytes, str, str]
"""(key, float32 bytes, full metadata JSON, filterable metadata JSON) as written by PutVectors."""


def _is_lock_error(exc: sqlite3.OperationalError) -> bool:
    text = str(exc).lower()
    return "locked" in text or "busy" in text


def _retry(fn: Callable[[], _T]) -> _T:
    """Run ``fn``, retrying with jittered backoff when SQLite reports a lock it could not wait out."""
    for attempt in range(_LOCK_RETRIES + 1):
        try:
            return fn()
        except sqlite3.OperationalError as exc:
            if not _is_lock_error(exc) or attempt == _LOCK_RETRIES:
                raise
            time.sleep(min(2.0, 0.01 * 2**attempt) * (0.5 + random.random()))
    raise AssertionError("unreachable")  # pragma: no cover


@functools.lru_cache(maxsize=1024)
def _json_keys(raw: str | None) -> tuple[str, ...] | None:
    return tuple(json.loads(raw)) if raw is not None else None


@functools.lru_cache(maxsize=1024)
def _json_object(raw: str | None) -> dict[str, Any] | None:
    """Parsed JSON objects are cached (rows are read on every call); callers must not mutate them."""
    return dict(json.loads(raw)) if raw is not None else None


def _index_row(row: Sequence[Any]) -> IndexRow:
    return IndexRow(
        id=int(row[0]),
        name=str(row[1]),
        uid=str(row[2]),
        created=float(row[3]),
        data_type=str(row[4]),
        dimension=int(row[5]),
        metric=str(row[6]),
        non_filterable=_json_keys(row[7]),
        encryption=_json_object(row[8]),
        seq=int(row[9]),
        tomb_floor=int(row[10]),
        mode=None if row[11] is None else str(row[11]),
        text_config=_text_config(row[12]),
    )


@functools.lru_cache(maxsize=1024)
def _text_config(raw: str | None) -> tuple[TextConfig, ...]:
    if not raw:
        return ()
    return tuple((str(c[0]), None if c[1] is None else str(c[1]), str(c[2])) for c in json.loads(raw))


def text_config_json(config: Sequence[TextConfig]) -> str | None:
    """How a text search configuration is stored (None when there is none)."""
    return json.dumps([list(c) for c in config]) if config else None


def _bucket_row(row: Sequence[Any]) -> BucketRow:
    return BucketRow(
        str(row[0]),
        str(row[1]),
        float(row[2]),
        _json_object(row[3]) or {},
        _json_object(row[4]) or {},
        None if row[5] is None else str(row[5]),
    )


_BUCKET_COLUMNS = "name, uid, created, encryption, tags, default_mode"
_INDEX_COLUMNS = (
    "id, name, uid, created, data_type, dimension, metric, non_filterable, encryption, seq, tomb_floor,"
    " mode, text_config"
)


def _close_all(conns: dict[str, sqlite3.Connection]) -> None:
    for conn in list(conns.values()):
        with contextlib.suppress(sqlite3.Error):
            conn.close()
    conns.clear()


class _ThreadConnections:
    """One thread's open connections, closed when the thread ends (or the client closes).

    Without this, a server spawning a thread per request would leak a connection per thread.
    """

    def __init__(self) -> None:
        self.conns: dict[str, sqlite3.Connection] = {}
        self._finalizer = weakref.finalize(self, _close_all, self.conns)

    def close(self) -> None:
        self._finalizer()

    def abandon(self) -> None:
        """Forget the connections without closing them (they belong to the parent of a fork)."""
        self._finalizer.detach()
        _FORK_ORPHANS.extend(self.conns.values())  # closing them in the child could disturb the parent
        self.conns = {}


class Storage:
    """All SQLite access of one client: catalog, bucket databases, per-thread connections."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root)
        (self.root / "buckets").mkdir(parents=True, exist_ok=True)
        self._local = threading.local()
        self._lock = threading.Lock()
        self._holders: weakref.WeakSet[_ThreadConnections] = weakref.WeakSet()
        self._closed = False
        _LIVE_STORAGES.add(self)
        self._catalog_path = self.root / "catalog.sqlite3"
        with self.write(self._catalog_path) as conn:
            for stmt in _statements(_CATALOG_SCHEMA):
                conn.execute(stmt)
            _add_missing_columns(conn, "buckets")

    # -- connections -------------------------------------------------------------------------

    def connection(self, path: Path) -> sqlite3.Connection:
        """This thread's connection to ``path`` (opened, WAL-configured and schema'd on first use)."""
        if self._closed:
            raise RuntimeError("the LocalS3VectorsClient is closed")
        holder: _ThreadConnections | None = getattr(self._local, "holder", None)
        if holder is None:
            holder = _ThreadConnections()
            self._local.holder = holder
            with self._lock:
                self._holders.add(holder)
        key = str(path)
        conn = holder.conns.get(key)
        if conn is None:
            conn = _retry(lambda: self._open(path))
            holder.conns[key] = conn
        return conn

    def _open(self, path: Path) -> sqlite3.Connection:
        conn = sqlite3.connect(str(path), timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
                conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=FULL")
            if path != self._catalog_path:
                conn.execute("BEGIN IMMEDIATE")
                try:
                    for stmt in _statements(_BUCKET_SCHEMA):
                        conn.execute(stmt)
                    _add_missing_columns(conn, "indexes")
                    conn.execute("COMMIT")
                except BaseException:
                    conn.execute("ROLLBACK")
                    raise
        except BaseException:
            conn.close()
            raise
        return conn

    def _after_fork(self) -> None:
        """In a forked child: start with no connections (SQLite handles must not cross a fork)."""
        for holder in list(self._holders):
            holder.abandon()
        self._holders = weakref.WeakSet()
        self._local = threading.local()
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every connection this client opened, from any thread."""
        with self._lock:
            self._closed = True
            holders = list(self._holders)
        for holder in holders:
            holder.close()

    @contextlib.contextmanager
    def write(self, path: Path) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``), committed on success, rolled back on error."""
        conn = self.connection(path)
        _retry(lambda: conn.execute("BEGIN IMMEDIATE"))
        try:
            yield conn
            _retry(lambda: conn.execute("COMMIT"))
        except BaseException:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise

    @contextlib.contextmanager
    def read(self, path: Path) -> Iterator[sqlite3.Connection]:
        """One read transaction: every statement inside sees the same snapshot."""
        conn = self.connection(path)
        _retry(lambda: conn.execute("BEGIN"))
        try:
            yield conn
        finally:
            conn.execute("COMMIT")

    def bucket_path(self, bucket: BucketRow) -> Path:
        return self.root / "buckets" / f"{bucket.name}-{bucket.uid}.sqlite3"

    # -- buckets -----------------------------------------------------------------------------

    def create_bucket(
        self, name: str, encryption: dict[str, Any], tags: dict[str, str], *, created: float, default_mode: str
    ) -> BucketRow:
        row = BucketRow(name, uuid.uuid4().hex, created, encryption, tags, default_mode)
        with self.write(self._catalog_path) as conn:
            try:
                conn.execute(
                    "INSERT INTO buckets (name, uid, created, encryption, tags, default_mode)"
                    " VALUES (?, ?, ?, ?, ?, ?)",
                    (name, row.uid, row.created, json.dumps(encryption), json.dumps(tags), default_mode),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(name) from None
        return row

    def get_bucket(self, name: str) -> BucketRow:
        conn = self.connection(self._catalog_path)
        found = _retry(
            lambda: conn.execute(
                f"SELECT {_BUCKET_COLUMNS} FROM buckets WHERE name = ?", (name,)
            ).fetchone()
        )
        if found is None:
            raise BucketMissing(name)
        return _bucket_row(found)

    def list_buckets(self, prefix: str | None, after: str | None, limit: int) -> list[BucketRow]:
        conn = self.connection(self._catalog_path)
        rows = _retry(
            lambda: conn.execute(
                f"SELECT {_BUCKET_COLUMNS} FROM buckets WHERE name > ? ORDER BY name",
                (after or "",),
            ).fetchall()
        )
        out = [_bucket_row(r) for r in rows]
        if prefix:
            out = [b for b in out if b.name.startswith(prefix)]
        return out[:limit]

    def set_bucket_tags(self, bucket: BucketRow, tags: dict[str, str]) -> None:
        with self.write(self._catalog_path) as conn:
            changed = conn.execute(
                "UPDATE buckets SET tags = ? WHERE name = ? AND uid = ?", (json.dumps(tags), bucket.name, bucket.uid)
            ).rowcount
        if not changed:
            raise BucketMissing(bucket.name)

    def set_bucket_default_mode(self, bucket: BucketRow, mode: str) -> None:
        with self.write(self._catalog_path) as conn:
            changed = conn.execute(
                "UPDATE buckets SET default_mode = ? WHERE name = ? AND uid = ?", (mode, bucket.name, bucket.uid)
            ).rowcount
        if not changed:
            raise BucketMissing(bucket.name)

    def bucket_policy(self, bucket: BucketRow) -> str | None:
        conn = self.connection(self._catalog_path)
        found = conn.execute("SELECT policy FROM bucket_policies WHERE uid = ?", (bucket.uid,)).fetchone()
        return str(found[0]) if found is not None else None

    def set_bucket_policy(self, bucket: BucketRow, policy: str | None) -> None:
        """Store (or with None, remove) the bucket's policy document."""
        with self.write(self._catalog_path) as conn:
            if policy is None:
                conn.execute("DELETE FROM bucket_policies WHERE uid = ?", (bucket.uid,))
            else:
                conn.execute("INSERT OR REPLACE INTO bucket_policies (uid, policy) VALUES (?, ?)", (bucket.uid, policy))

    def delete_bucket(self, name: str) -> None:
        bucket = self.get_bucket(name)
        path = self.bucket_path(bucket)
        with self.write(path) as conn:
            if conn.execute("SELECT 1 FROM indexes LIMIT 1").fetchone() is not None:
                raise NotEmpty(name)
            conn.execute("INSERT OR REPLACE INTO meta (k, v) VALUES ('deleted', '1')")
        with self.write(self._catalog_path) as conn:
            conn.execute("DELETE FROM buckets WHERE name = ? AND uid = ?", (name, bucket.uid))
            conn.execute("DELETE FROM bucket_policies WHERE uid = ?", (bucket.uid,))
        self._drop_connection(path)
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(OSError):
                os.unlink(f"{path}{suffix}")

    def _drop_connection(self, path: Path) -> None:
        holder: _ThreadConnections | None = getattr(self._local, "holder", None)
        conn = holder.conns.pop(str(path), None) if holder is not None else None
        if conn is not None:
            conn.close()

    # -- indexes -----------------------------------------------------------------------------

    def create_index(
        self,
        bucket: BucketRow,
        name: str,
        *,
        data_type: str,
        dimension: int,
        metric: str,
        non_filterable: Sequence[str] | None,
        encryption: dict[str, Any] | None,
        tags: dict[str, str],
        mode: str,
        text_config: Sequence[TextConfig] = (),
    ) -> IndexRow:
        with self.write(self.bucket_path(bucket)) as conn:
            if conn.execute("SELECT 1 FROM meta WHERE k = 'deleted'").fetchone() is not None:
                raise BucketMissing(bucket.name)
            try:
                conn.execute(
                    "INSERT INTO indexes (name, uid, created, data_type, dimension, metric, non_filterable,"
                    " encryption, tags, mode, text_config) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    (
                        name,
                        uuid.uuid4().hex,
                        time.time(),
                        data_type,
                        dimension,
                        metric,
                        json.dumps(list(non_filterable)) if non_filterable is not None else None,
                        json.dumps(encryption) if encryption is not None else None,
                        json.dumps(tags),
                        mode,
                        text_config_json(text_config),
                    ),
                )
            except sqlite3.IntegrityError:
                raise AlreadyExists(name) from None
            row = conn.execute(f"SELECT {_INDEX_COLUMNS} FROM indexes WHERE name = ?", (name,)).fetchone()
        return _index_row(row)

    def get_index(self, bucket: BucketRow, name: str, conn: sqlite3.Connection | None = None) -> IndexRow:
        conn = conn or self.connection(self.bucket_path(bucket))
        found = conn.execute(f"SELECT {_INDEX_COLUMNS} FROM indexes WHERE name = ?", (name,)).fetchone()
        if found is None:
            raise IndexMissing(name)
        return _index_row(found)

    def list_indexes(self, bucket: BucketRow, prefix: str | None, after: str | None, limit: int) -> list[IndexRow]:
        conn = self.connection(self.bucket_path(bucket))
        lo = max(prefix or "", after or "")
        rows = conn.execute(f"SELECT {_INDEX_COLUMNS} FROM indexes WHERE name >= ? ORDER BY name", (lo,)).fetchall()
        out = [_index_row(r) for r in rows if r[1] != after]
        if prefix:
            out = [r for r in out if r.name.startswith(prefix)]
        return out[:limit]

    def index_tags(self, bucket: BucketRow, name: str) -> dict[str, str]:
        conn = self.connection(self.bucket_path(bucket))
        found = conn.execute("SELECT tags FROM indexes WHERE name = ?", (name,)).fetchone()
        if found is None:
            raise IndexMissing(name)
        return dict(json.loads(found[0]))

    def set_index_tags(self, bucket: BucketRow, name: str, tags: dict[str, str]) -> None:
        with self.write(self.bucket_path(bucket)) as conn:
            if not conn.execute("UPDATE indexes SET tags = ? WHERE name = ?", (json.dumps(tags), name)).rowcount:
                raise IndexMissing(name)

    def update_index(
        self,
        bucket: BucketRow,
        index: IndexRow,
        *,
        mode: str | None = None,
        text_config: Sequence[TextConfig] | None = None,
        expect_config: Sequence[TextConfig] | None = None,
    ) -> bool:
        """Set the index's mode and/or text search configuration, if it is still the same index.

        With ``expect_config`` the change applies only while the stored configuration still equals
        it (a compare-and-set: a backfill must not resurrect a key deleted meanwhile). Returns
        whether it applied; a configuration change bumps ``seq`` so every cache reloads.
        """
        with self.write(self.bucket_path(bucket)) as conn:
            found = conn.execute("SELECT uid, seq, text_config FROM indexes WHERE id = ?", (index.id,)).fetchone()
            if found is None or found[0] != index.uid:
                raise IndexMissing(index.name)
            if expect_config is not None and _text_config(found[2]) != tuple(expect_config):
                return False
            if mode is not None:
                conn.execute("UPDATE indexes SET mode = ? WHERE id = ?", (mode, index.id))
            if text_config is not None:
                conn.execute(
                    "UPDATE indexes SET text_config = ?, seq = ? WHERE id = ?",
                    (text_config_json(text_config), int(found[1]) + 1, index.id),
                )
        return True

    def delete_index(self, bucket: BucketRow, name: str) -> None:
        with self.write(self.bucket_path(bucket)) as conn:
            found = conn.execute("SELECT id FROM indexes WHERE name = ?", (name,)).fetchone()
            if found is None:
                raise IndexMissing(name)
            conn.execute("DELETE FROM vectors WHERE index_id = ?", (found[0],))
            conn.execute("DELETE FROM tombstones WHERE index_id = ?", (found[0],))
            conn.execute("DELETE FROM indexes WHERE id = ?", (found[0],))

    # -- vectors -----------------------------------------------------------------------------

    @contextlib.contextmanager
    def _index_write(self, bucket: BucketRow, index: IndexRow) -> Iterator[tuple[sqlite3.Connection, int]]:
        """A write transaction on ``index``, which must still be the same index (same uid)."""
        with self.write(self.bucket_path(bucket)) as conn:
            found = conn.execute("SELECT uid, seq FROM indexes WHERE id = ?", (index.id,)).fetchone()
            if found is None or found[0] != index.uid:
                raise IndexMissing(index.name)
            yield conn, int(found[1]) + 1

    def put_vectors(
        self, bucket: BucketRow, index: IndexRow, records: Sequence[VectorRecord]
    ) -> tuple[int, dict[str, int]]:
        """Upsert a batch atomically; return the sequence number stamped on it and each key's rowid."""
        with self._index_write(bucket, index) as (conn, seq):
            conn.executemany(
                "INSERT INTO vectors (index_id, key, seq, data, metadata, fmeta) VALUES (?, ?, ?, ?, ?, ?)"
                " ON CONFLICT (index_id, key) DO UPDATE SET seq = excluded.seq, data = excluded.data,"
                " metadata = excluded.metadata, fmeta = excluded.fmeta",
                [(index.id, key, seq, data, meta, fmeta) for key, data, meta, fmeta in records],
            )
            conn.execute("UPDATE indexes SET seq = ? WHERE id = ?", (seq, index.id))
            ids = {
                str(r[1]): int(r[0])
                for r in conn.execute("SELECT id, key FROM vectors WHERE index_id = ? AND seq = ?", (index.id, seq))
            }
        return seq, ids

    def delete_vectors(self, bucket: BucketRow, index: IndexRow, keys: Sequence[str]) -> None:
        """Delete keys atomically (missing keys are ignored, as by the service), leaving tombstones."""
        with self._index_write(bucket, index) as (conn, seq):
            marks = ",".join("?" * len(keys))
            present = [
                r[0]
                for r in conn.execute(
                    f"SELECT key FROM vectors WHERE index_id = ? AND key IN ({marks})", (index.id, *keys)
                )
            ]
            if not present:
                return
            conn.executemany("DELETE FROM vectors WHERE index_id = ? AND key = ?", [(index.id, k) for k in present])
            conn.executemany(
                "INSERT INTO tombstones (index_id, seq, key) VALUES (?, ?, ?)",
                [(index.id, seq, k) for k in present],
            )
            conn.execute("UPDATE indexes SET seq = ? WHERE id = ?", (seq, index.id))
            self._prune_tombstones(conn, index.id)

    @staticmethod
    def _prune_tombstones(conn: sqlite3.Connection, index_id: int) -> None:
        count = conn.execute("SELECT COUNT(*) FROM tombstones WHERE index_id = ?", (index_id,)).fetchone()[0]
        if count <= TOMBSTONE_LIMIT:
            return
        floor = conn.execute(
            "SELECT seq FROM tombstones WHERE index_id = ? ORDER BY seq LIMIT 1 OFFSET ?",
            (index_id, count // 2),
        ).fetchone()[0]
        conn.execute("DELETE FROM tombstones WHERE index_id = ? AND seq <= ?", (index_id, floor))
        conn.execute("UPDATE indexes SET tomb_floor = MAX(tomb_floor, ?) WHERE id = ?", (floor, index_id))

    @staticmethod
    def get_vectors(conn: sqlite3.Connection, index: IndexRow, keys: Sequence[str]) -> list[tuple[str, bytes, str]]:
        marks = ",".join("?" * len(keys))
        rows = conn.execute(
            f"SELECT key, data, metadata FROM vectors WHERE index_id = ? AND key IN ({marks})",
            (index.id, *keys),
        ).fetchall()
        return [(str(r[0]), bytes(r[1]), str(r[2])) for r in rows]

    @staticmethod
    def metadata_for(conn: sqlite3.Connection, rowids: Sequence[int]) -> dict[int, str]:
        """Full metadata JSON by rowid (primary-key lookups: the cheapest read SQLite has)."""
        if not rowids:
            return {}
        marks = ",".join("?" * len(rowids))
        rows = conn.execute(f"SELECT id, metadata FROM vectors WHERE id IN ({marks})", tuple(rowids)).fetchall()
        return {int(r[0]): str(r[1]) for r in rows}

    @staticmethod
    def list_vectors(
        conn: sqlite3.Connection,
        index: IndexRow,
        *,
        after_id: int,
        limit: int,
        segment_count: int,
        segment_index: int,
    ) -> list[tuple[int, str, bytes, str]]:
        """One page in id order; a segment is the rows whose id is ``segment_index`` mod ``segment_count``."""
        rows = conn.execute(
            "SELECT id, key, data, metadata FROM vectors WHERE index_id = ? AND id > ? AND id % ? = ?"
            " ORDER BY id LIMIT ?",
            (index.id, after_id, segment_count, segment_index, limit),
        ).fetchall()
        return [(int(r[0]), str(r[1]), bytes(r[2]), str(r[3])) for r in rows]

    @staticmethod
    def count_vectors(conn: sqlite3.Connection, index: IndexRow) -> int:
        return int(conn.execute("SELECT COUNT(*) FROM vectors WHERE index_id = ?", (index.id,)).fetchone()[0])

    @staticmethod
    def iter_rows(
        conn: sqlite3.Connection, index: IndexRow, chunk: int = 50_000
    ) -> Iterator[list[tuple[int, str, bytes, str, str]]]:
        """Every row of the index, ``chunk`` rows at a time (bounded memory while loading).

        The full metadata comes along only for an index with searchable text ('' otherwise).
        """
        cursor = conn.execute(
            f"SELECT id, key, data, fmeta, {_full_meta(index)} FROM vectors WHERE index_id = ?", (index.id,)
        )
        while rows := cursor.fetchmany(chunk):
            yield rows

    @staticmethod
    def delta(
        conn: sqlite3.Connection, index: IndexRow, since: int
    ) -> tuple[list[tuple[int, str, bytes, str, str]], list[str]]:
        """Rows written and keys deleted after sequence ``since`` (everything when ``since`` is 0)."""
        rows = conn.execute(
            f"SELECT id, key, data, fmeta, {_full_meta(index)} FROM vectors WHERE index_id = ? AND seq > ?",
            (index.id, since),
        ).fetchall()
        dead: list[str] = []
        if since:
            dead = [
                str(r[0])
                for r in conn.execute(
                    "SELECT key FROM tombstones WHERE index_id = ? AND seq > ? ORDER BY seq",
                    (index.id, since),
                )
            ]
        return rows, dead


def _full_meta(index: IndexRow) -> str:
    """The SQL expression of the metadata column a cache reads: the full JSON only when text is searchable."""
    return "metadata" if index.text_config else "''"


#: Every open Storage, so a forked child can drop the handles it inherited.
_LIVE_STORAGES: weakref.WeakSet[Storage] = weakref.WeakSet()
#: Connections inherited through fork: kept referenced so they are never closed in the child.
_FORK_ORPHANS: list[sqlite3.Connection] = []


def _reset_after_fork() -> None:
    for storage in list(_LIVE_STORAGES):
        storage._after_fork()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_reset_after_fork)


def _statements(script: str) -> list[str]:
    return [s.strip() for s in script.split(";") if s.strip()]
