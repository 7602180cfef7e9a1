"""Memory lifecycle: listing, scoped get/delete, forgetting users and tenants, export/import, TTL, dedupe, stats."""

from __future__ import annotations

import io
import json
import re
import time
import zlib
from collections import Counter
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import boto3
import numpy as np
import pytest
from botocore.exceptions import ClientError
from hypothesis import given, settings
from hypothesis import strategies as st
from moto import mock_aws

from s3vectors_engine import LocalS3VectorsClient
from s3vectors_engine.server import LocalEndpoint
from strands_s3_vectors_memory import IsolationError, MultiTenantS3VectorMemory, S3VectorMemory, lifecycle
from strands_s3_vectors_memory.durability._tombstones import Tombstones, tombstones_dir
from strands_s3_vectors_memory.errors import ConfigurationError
from strands_s3_vectors_memory.index._index import IndexTarget
from strands_s3_vectors_memory.index._records import TYPE_SUMMARY, MemoryScope, build_metadata
from strands_s3_vectors_memory.lifecycle import (
    DEFAULT_DEDUPE_THRESHOLD,
    ForgetIncompleteError,
    setup_index,
)
from strands_s3_vectors_memory.lifecycle._cursor import ListCursor

BUCKET = "lifecycle-bucket"


class BagOfWordsEmbedder:
    """Deterministic bag-of-words hashing embedder: same words, same vector; fast for thousands of texts."""

    def __init__(self, dimension: int = 64, model_id: str | None = None) -> None:
        self._dimension = dimension
        self._model_id = model_id or f"hash-{dimension}"
        self.calls = 0

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    def _vector(self, text: str) -> list[float]:
        vector = np.zeros(self._dimension)
        for token in re.findall(r"\w+", text.lower()):
            digest = zlib.crc32(token.encode("utf-8"))
            vector[digest % self._dimension] += 1.0 if (digest >> 20) & 1 else -1.0
        if not vector.any():
            vector[0] = 1.0
        return [float(x) for x in vector / np.linalg.norm(vector)]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        self.calls += len(texts)
        return [self._vector(t) for t in texts]


def _store(data_dir: Path, *, dimension: int = 64, client: Any = None, bucket: str = BUCKET) -> S3VectorMemory:
    return S3VectorMemory(
        bucket_name=bucket, backend="local", data_dir=data_dir, embedder=BagOfWordsEmbedder(dimension), client=client
    )


def _populate(
    store: S3VectorMemory,
    user_id: str,
    count: int,
    *,
    agent_name: str = "assistant",
    tenant_context: dict[str, str] | None = None,
    expires_at: float | None = None,
) -> list[str]:
    """Write ``count`` distinct summaries for one user quickly (dedupe off: they are all distinct anyway)."""
    scope = MemoryScope(user_id, agent_name)
    records = []
    for i in range(count):
        text = f"{user_id} note {i} topic{i % 97} item{i}"
        metadata = build_metadata(scope, text, memory_type=TYPE_SUMMARY, conversation_id=f"c{i}", expires_at=expires_at)
        records.append((f"{user_id}-{agent_name}-{i:05d}", text, metadata))
    previous, store.dedupe_threshold = store.dedupe_threshold, None
    try:
        return store.put_records(tenant_context, records)
    finally:
        store.dedupe_threshold = previous


def _count_by_user(client: Any, bucket: str, index: str) -> Counter[str]:
    """Ground truth straight from the engine, independent of the code under test."""
    counts: Counter[str] = Counter()
    token = None
    while True:
        params: dict[str, Any] = {"vectorBucketName": bucket, "indexName": index, "returnMetadata": True}
        if token:
            params["nextToken"] = token
        page = client.list_vectors(**params)
        counts.update(str(v["metadata"]["user_id"]) for v in page["vectors"])
        token = page.get("nextToken")
        if not token:
            return counts


@pytest.fixture
def store(tmp_path: Path) -> S3VectorMemory:
    return _store(tmp_path / "data")


# --- listing ---------------------------------------------------------------------------------------


def test_list_pages_hold_exactly_page_size_and_cover_the_user_once(store: S3VectorMemory) -> None:
    # Interleave users so each ListVectors page (500) mixes them and listing must resume mid-page.
    alice_keys: list[str] = []
    for batch in range(4):
        alice_keys += _populate(store, "alice", 65, agent_name=f"a{batch}")
        _populate(store, f"bob{batch}", 100)
    pages = []
    token = None
    while True:
        page = store.list_memories("alice", page_size=100, next_token=token)
        pages.append(page.memories)
        token = page.next_token
        if token is None:
            break
    assert [len(p) for p in pages] == [100, 100, 60]
    listed = [m.key for p in pages for m in p]
    assert sorted(listed) == sorted(alice_keys)
    assert all(m.user_id == "alice" for p in pages for m in p)
    assert sorted(m.key for m in store.iter_memories("alice", page_size=7)) == sorted(alice_keys)


def test_list_filters_by_agent_and_hides_expired_unless_asked(store: S3VectorMemory) -> None:
    _populate(store, "alice", 5, agent_name="chef")
    _populate(store, "alice", 3, agent_name="travel")
    expired = store.store_memory("alice", "my old passport number", agent_name="travel", ttl_seconds=-1)["key"]
    assert len(store.list_memories("alice", agent_name="chef").memories) == 5
    travel = store.list_memories("alice", agent_name="travel")
    assert len(travel.memories) == 3 and travel.next_token is None
    with_expired = store.list_memories("alice", agent_name="travel", include_expired=True).memories
    assert expired in {m.key for m in with_expired}


def test_listing_resumes_correctly_after_deleting_what_was_listed(store: S3VectorMemory) -> None:
    keys = _populate(store, "alice", 30)
    first = store.list_memories("alice", page_size=10)
    for memory in first.memories:
        assert store.delete_memory(memory.key, "alice")
    rest = list(store.iter_memories("alice", page_size=10))
    assert len(rest) == 20
    assert {m.key for m in rest} | {m.key for m in first.memories} == set(keys)


def test_list_of_a_missing_index_or_unknown_user_is_empty(tmp_path: Path) -> None:
    store = _store(tmp_path / "data")
    assert store.list_memories("nobody").memories == []
    _populate(store, "alice", 3)
    page = store.list_memories("nobody")
    assert page.memories == [] and page.next_token is None


def test_a_tampered_next_token_is_rejected(store: S3VectorMemory) -> None:
    _populate(store, "alice", 3)
    with pytest.raises(ValueError, match="next_token"):
        store.list_memories("alice", next_token="not-a-token")
    with pytest.raises(ValueError, match="page_size"):
        store.list_memories("alice", page_size=0)


@settings(max_examples=40, deadline=None)
@given(
    token=st.none() | st.text(max_size=40),
    key=st.none() | st.text(max_size=40),
    index=st.integers(min_value=0, max_value=10_000),
)
def test_cursor_round_trips(token: str | None, key: str | None, index: int) -> None:
    cursor = ListCursor(token, key, index)
    assert ListCursor.decode(cursor.encode()) == cursor


# --- get / delete scoped to the user ----------------------------------------------------------------


def test_get_and_delete_never_reach_another_users_memory(store: S3VectorMemory) -> None:
    mine = store.store_memory("alice", "Alice prefers window seats")["key"]
    theirs = store.store_memory("bob", "Bob's bank PIN hint is his cat")["key"]
    memory = store.get_memory(mine, "alice")
    assert memory is not None and memory.content == "Alice prefers window seats"
    assert store.get_memory(theirs, "alice") is None
    assert store.delete_memory(theirs, "alice") is False
    assert store.get_memory(theirs, "bob") is not None  # still there
    assert store.get_memory(mine, "alice", agent_name="another-agent") is None
    assert store.delete_memory(mine, "alice") is True
    assert store.get_memory(mine, "alice") is None
    assert store.delete_memory(mine, "alice") is False
    assert store.get_memory("no-such-key", "alice") is None


def test_expired_memories_are_hidden_from_get_but_can_be_deleted(store: S3VectorMemory) -> None:
    key = store.store_memory("alice", "temporary door code 4321", ttl_seconds=-1)["key"]
    assert store.get_memory(key, "alice") is None
    assert store.delete_memory(key, "alice") is True
    assert store.list_memories("alice", include_expired=True).memories == []


# --- forget a user ----------------------------------------------------------------------------------


def test_forgetting_a_user_with_5000_memories_leaves_none_and_spares_everyone_else(store: S3VectorMemory) -> None:
    _populate(store, "victim", 2500, agent_name="one")
    _populate(store, "alice", 300)
    _populate(store, "victim", 2500, agent_name="two")
    _populate(store, "victim-2", 200)  # a lookalike id must not match
    _populate(store, "bob", 150, agent_name="one")
    client = store._base_client()
    before = _count_by_user(client, BUCKET, "memory")
    assert before["victim"] == 5000
    seen: list[tuple[int, int]] = []
    report = store.forget_user("victim", segments=4, progress=lambda s, m: seen.append((s, m)))
    after = _count_by_user(client, BUCKET, "memory")
    assert "victim" not in after
    assert after == Counter({k: v for k, v in before.items() if k != "victim"})
    assert (report.found, report.deleted, report.remaining) == (5000, 5000, 0)
    assert report.scans == 2 and report.index_name == "memory"
    assert seen and seen[-1][1] == 5000 and seen[-1][0] >= sum(before.values())
    assert [s for s, _ in seen] == sorted(s for s, _ in seen)
    again = store.forget_user("victim")
    assert (again.found, again.deleted, again.remaining) == (0, 0, 0)


def test_forgetting_one_agents_memories_keeps_the_users_other_agents(store: S3VectorMemory) -> None:
    _populate(store, "alice", 40, agent_name="chef")
    _populate(store, "alice", 25, agent_name="travel")
    report = store.forget_user("alice", agent_name="chef")
    assert report.found == 40
    assert len(list(store.iter_memories("alice"))) == 25
    assert {m.agent_name for m in store.iter_memories("alice")} == {"travel"}


class _FlakyClient:
    """The local engine with injectable failures on delete_vectors (what a network cut looks like)."""

    def __init__(self, inner: LocalS3VectorsClient) -> None:
        self.inner = inner
        self.fail_after: int | None = None
        self.never_delete: set[str] = set()
        self.drop_once: bool = False
        self.deletes = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def delete_vectors(self, **kwargs: Any) -> Any:
        self.deletes += 1
        if self.fail_after is not None and self.deletes > self.fail_after:
            raise ConnectionError("network cut")
        keys = [k for k in kwargs["keys"] if k not in self.never_delete]
        if self.drop_once and len(keys) > 1:
            self.drop_once = False
            keys = keys[:-1]
        return self.inner.delete_vectors(**{**kwargs, "keys": keys}) if keys else {}


@pytest.fixture
def flaky(tmp_path: Path) -> Iterator[tuple[S3VectorMemory, _FlakyClient]]:
    inner = LocalS3VectorsClient(tmp_path / "flaky")
    client = _FlakyClient(inner)
    yield _store(tmp_path / "unused", client=client), client
    inner.close()


def test_an_interrupted_forget_is_finished_by_running_it_again(flaky: tuple[S3VectorMemory, _FlakyClient]) -> None:
    store, client = flaky
    _populate(store, "victim", 2000)
    _populate(store, "alice", 400)
    client.fail_after = 2
    with pytest.raises(ConnectionError):
        store.forget_user("victim", segments=2)
    left = _count_by_user(client.inner, BUCKET, "memory")["victim"]
    assert 0 < left < 2000
    client.fail_after = None
    report = store.forget_user("victim", segments=2)
    assert report.found == left and report.remaining == 0
    assert _count_by_user(client.inner, BUCKET, "memory") == Counter({"alice": 400})


def test_memories_missed_by_the_first_pass_are_caught_by_verification(
    flaky: tuple[S3VectorMemory, _FlakyClient],
) -> None:
    store, client = flaky
    _populate(store, "victim", 700)
    client.drop_once = True  # one delete request silently loses a key
    report = store.forget_user("victim", segments=1)
    assert (report.found, report.deleted, report.remaining, report.scans) == (700, 700, 0, 3)
    assert _count_by_user(client.inner, BUCKET, "memory")["victim"] == 0


def test_forget_raises_when_memories_survive_every_verification(flaky: tuple[S3VectorMemory, _FlakyClient]) -> None:
    store, client = flaky
    keys = _populate(store, "victim", 10)
    client.never_delete = {keys[3]}
    with pytest.raises(ForgetIncompleteError, match="1 memories") as caught:
        store.forget_user("victim")
    assert caught.value.report.remaining == 1 and caught.value.report.found == 10


# --- tenants ----------------------------------------------------------------------------------------


def test_forget_tenant_drops_only_that_tenants_index_and_the_tenant_can_start_over(tmp_path: Path) -> None:
    store = MultiTenantS3VectorMemory(
        bucket_name=BUCKET, backend="local", data_dir=tmp_path / "mt", embedder=BagOfWordsEmbedder()
    )
    acme, globex = {"tenantId": "acme"}, {"tenantId": "globex"}
    _populate(store, "alice", 20, tenant_context=acme)
    _populate(store, "alice", 15, tenant_context=globex)
    report = store.forget_user("alice", tenant_context=globex, segments=2)
    assert report.found == 15 and report.tenant_id == "globex" and report.index_name == "memory-globex"
    assert len(list(store.iter_memories("alice", tenant_context=acme))) == 20
    _populate(store, "bob", 5, tenant_context=globex)

    assert store.forget_tenant(acme)
    assert store.list_memories("alice", tenant_context=acme).memories == []
    with pytest.raises(ClientError, match="NotFound"):
        store._base_client().get_index(vectorBucketName=BUCKET, indexName="memory-acme")
    assert len(list(store.iter_memories("bob", tenant_context=globex))) == 5
    assert not store.forget_tenant(acme)
    store.store_memory("alice", "fresh start at acme", tenant_context=acme)  # index recreated on demand
    assert [m.content for m in store.iter_memories("alice", tenant_context=acme)] == ["fresh start at acme"]


# --- export / import --------------------------------------------------------------------------------


def test_export_writes_only_the_users_unexpired_memories_as_json_lines(store: S3VectorMemory) -> None:
    _populate(store, "alice", 12)
    _populate(store, "bob", 9)
    store.store_memory("alice", "gone soon", ttl_seconds=-1)
    buffer = io.StringIO()
    assert store.export_memories("alice", buffer) == 12
    lines = [json.loads(line) for line in buffer.getvalue().splitlines()]
    assert len(lines) == 12
    assert all(set(r) == {"key", "content", "metadata"} for r in lines)
    assert all(r["metadata"]["user_id"] == "alice" and "content" not in r["metadata"] for r in lines)


def test_export_import_round_trip_keeps_keys_metadata_and_vectors(tmp_path: Path) -> None:
    source = _store(tmp_path / "a")
    keys = _populate(source, "alice", 30)
    source.store_memory("alice", "Alice's sister is called Maya", conversation_id="c-sis")
    buffer = io.StringIO()
    source.export_memories("alice", buffer, include_vectors=True)

    target = _store(tmp_path / "b")
    embedder = target.embedder
    assert isinstance(embedder, BagOfWordsEmbedder)
    report = target.import_memories(io.StringIO(buffer.getvalue()), keep_vectors=True)
    assert (report.imported, report.kept_vectors, report.re_embedded) == (31, 31, 0)
    assert embedder.calls == 0
    original = {m.key: m for m in source.iter_memories("alice")}
    copied = {m.key: m for m in target.iter_memories("alice")}
    assert set(copied) == set(original) and set(keys) <= set(copied)
    for key, memory in original.items():
        assert copied[key].metadata == memory.metadata
    want = source._base_client().get_vectors(vectorBucketName=BUCKET, indexName="memory", keys=keys[:5],
                                              returnData=True)
    got = target._base_client().get_vectors(vectorBucketName=BUCKET, indexName="memory", keys=keys[:5],
                                             returnData=True)
    assert sorted(map(str, want["vectors"])) == sorted(map(str, got["vectors"]))
    assert target.search("alice", "sister Maya", top_k=1, similarity_threshold=0.0)[0].content.endswith("Maya")

    again = target.import_memories(io.StringIO(buffer.getvalue()))  # idempotent; re-embeds by default
    assert (again.imported, again.re_embedded) == (31, 31)
    assert len(list(target.iter_memories("alice"))) == 31


def test_import_into_another_dimension_re_embeds_the_content(tmp_path: Path) -> None:
    source = _store(tmp_path / "a", dimension=16)
    _populate(source, "alice", 8)
    buffer = io.StringIO()
    source.export_memories("alice", buffer, include_vectors=True)
    target = _store(tmp_path / "b", dimension=48)
    report = target.import_memories(io.StringIO(buffer.getvalue()), keep_vectors=True)
    assert (report.imported, report.kept_vectors, report.re_embedded) == (8, 0, 8)
    got = target._base_client().list_vectors(vectorBucketName=BUCKET, indexName="memory", returnData=True)
    assert {len(v["data"]["float32"]) for v in got["vectors"]} == {48}
    hit = target.search("alice", "alice note 3 topic3 item3", top_k=1, similarity_threshold=0.0)
    assert hit[0].key == "alice-assistant-00003"


def test_import_keeps_vectors_only_from_the_same_model(tmp_path: Path) -> None:
    line = json.dumps({
        "key": "k1", "content": "likes jazz", "metadata": {"user_id": "u", "agent_name": "a", "type": "memory"},
        "vector": [1.0] + [0.0] * 63, "embedding_model": "some-other-model",
    })
    report = _store(tmp_path / "d").import_memories([line], keep_vectors=True)
    assert (report.kept_vectors, report.re_embedded) == (0, 1)


def test_import_rejects_a_malformed_line_naming_it_and_writes_nothing_of_its_batch(tmp_path: Path) -> None:
    store = _store(tmp_path / "d")
    good = json.dumps({"key": "k1", "content": "hello", "metadata": {"user_id": "u"}})
    for bad, reason in [
        ("{not json", "not valid JSON"),
        (json.dumps({"key": "k2", "content": "", "metadata": {"user_id": "u"}}), "content"),
        (json.dumps({"key": "k2", "content": "x", "metadata": {"user_id": ""}}), "user_id"),
        (json.dumps({"key": "k2", "content": "x", "metadata": {"user_id": "u"}, "vector": "no"}), "vector"),
    ]:
        with pytest.raises(ValueError, match=f"line 2: .*{reason}"):
            store.import_memories([good, bad])
    assert store.list_memories("u").memories == []


# --- TTL --------------------------------------------------------------------------------------------


def test_prune_deletes_expired_memories_only(store: S3VectorMemory) -> None:
    now = time.time()
    _populate(store, "alice", 30, expires_at=now - 10)
    _populate(store, "bob", 20, expires_at=now + 3600)
    _populate(store, "carol", 10)
    assert store.prune_expired() == 30
    assert store.prune_expired() == 0
    counts = _count_by_user(store._base_client(), BUCKET, "memory")
    assert counts == Counter({"bob": 20, "carol": 10})
    assert store.prune_expired(now=now + 7200, segments=3) == 20
    assert _count_by_user(store._base_client(), BUCKET, "memory") == Counter({"carol": 10})


# --- dedupe -----------------------------------------------------------------------------------------


def test_a_near_identical_summary_updates_the_existing_memory(store: S3VectorMemory) -> None:
    first = store.store_conversation("alice", "conv-1", "Alice loves green tea and mountain hiking.")
    second = store.store_conversation("alice", "conv-2", "Alice loves green tea and mountain hiking!")
    assert second == first
    memories = list(store.iter_memories("alice"))
    assert len(memories) == 1
    # the newer wording wins, under the key of the conversation that first said it (a key names its
    # conversation: exports of deduped memories import again)
    assert memories[0].conversation_id == "conv-1" and memories[0].content.endswith("hiking!")
    different = store.store_conversation("alice", "conv-3", "Alice is learning to play the cello.")
    assert different != first
    assert len(list(store.iter_memories("alice"))) == 2


def test_dedupe_stays_within_one_user_and_agent(store: S3VectorMemory) -> None:
    text = "Prefers aisle seats on long flights."
    keys = {
        store.store_conversation("alice", "c1", text, agent_name="travel")[0],
        store.store_conversation("bob", "c1", text, agent_name="travel")[0],
        store.store_conversation("alice", "c2", text, agent_name="chef")[0],
    }
    assert len(keys) == 3
    again = store.store_conversation("alice", "c3", text + "!", agent_name="chef")[0]
    assert again in keys  # a restatement by the same user and agent: deduped
    memory = store.store_memory("alice", text, agent_name="chef")["key"]
    assert memory not in keys  # another kind of memory: a summary key never turns into an ad-hoc memory


def test_dedupe_never_merges_into_details_and_can_be_disabled(store: S3VectorMemory) -> None:
    store.store_conversation("alice", "c1", "Trip planning for Kyoto.", details=["Alice is allergic to shellfish."])
    key = store.store_conversation("alice", "c2", "Alice is allergic to shellfish.")[0]
    assert key.startswith("sum-")
    assert len(list(store.iter_memories("alice"))) == 3
    store.dedupe_threshold = None
    store.store_conversation("alice", "c3", "Alice is allergic to shellfish.")
    assert len(list(store.iter_memories("alice"))) == 4
    assert 0.9 < DEFAULT_DEDUPE_THRESHOLD < 1.0


def test_dedupe_threshold_is_a_constructor_argument(tmp_path: Path) -> None:
    assert _store(tmp_path / "default").dedupe_threshold == DEFAULT_DEDUPE_THRESHOLD
    plain = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=tmp_path / "off",
                           embedder=BagOfWordsEmbedder(), dedupe_threshold=None)
    text = "Alice loves green tea and mountain hiking."
    assert plain.store_conversation("alice", "c1", text) != plain.store_conversation("alice", "c2", text + "!")
    tenants = MultiTenantS3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=tmp_path / "mt",
                                        embedder=BagOfWordsEmbedder(), dedupe_threshold=0.99)
    assert tenants.dedupe_threshold == 0.99
    with pytest.raises(ConfigurationError, match="dedupe_threshold"):
        S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=tmp_path / "bad", embedder=BagOfWordsEmbedder(),
                       dedupe_threshold=1.5)


# --- the operations as functions of (where the index is, whose memories) ----------------------------


def test_lifecycle_functions_need_only_a_target_and_a_scope(tmp_path: Path) -> None:
    store = _store(tmp_path / "data")
    _populate(store, "alice", 7)
    target = IndexTarget(LocalS3VectorsClient(tmp_path / "data"), BUCKET, "memory")
    alice = MemoryScope("alice", "assistant")
    page = lifecycle.list_memories(lambda: target, alice, page_size=5)
    assert len(page.memories) == 5 and page.next_token is not None
    assert len(list(lifecycle.iter_memories(lambda: target, alice))) == 7
    key = page.memories[0].key
    assert lifecycle.get_memory(lambda: target, MemoryScope("bob", "assistant"), key) is None
    assert lifecycle.delete_memory(lambda: target, alice, key)
    assert lifecycle.index_stats(lambda: target).by_user == {"alice": 6}
    missing = IndexTarget(target.client, BUCKET, "no-such-index")
    assert lifecycle.list_memories(lambda: missing, alice).memories == []


def test_arguments_are_checked_and_forget_recorded_before_the_index_is_located(tmp_path: Path) -> None:
    """Locating a tenant's index vends its credentials (STS): a bad argument must not need that, and a
    forget must leave its tombstone even when the credentials cannot be had."""
    located: list[str] = []

    def unreachable() -> IndexTarget:
        located.append("asked")
        raise IsolationError("no credentials for this tenant")

    alice = MemoryScope("alice", "assistant", "acme")
    with pytest.raises(ValueError, match="page_size"):
        lifecycle.list_memories(unreachable, alice, page_size=0)
    with pytest.raises(ValueError, match="next_token"):
        lifecycle.list_memories(unreachable, alice, next_token="not-a-token")
    with pytest.raises(ValueError, match="key"):
        lifecycle.get_memory(unreachable, alice, "")
    assert located == []
    with pytest.raises(IsolationError):
        lifecycle.forget_user(unreachable, alice, data_dir=tmp_path)
    assert located == ["asked"]
    assert Tombstones(tombstones_dir(tmp_path)).find("acme", "alice", "assistant", since=0.0) is not None


# --- stats ------------------------------------------------------------------------------------------


def test_stats_count_by_type_user_and_agent_and_report_the_index(store: S3VectorMemory) -> None:
    _populate(store, "alice", 12, agent_name="chef")
    _populate(store, "bob", 7, agent_name="travel")
    store.store_conversation("alice", "c-x", "Alice adopted a cat called Miso.", details=["cat named Miso", "vet"])
    store.store_memory("bob", "short-lived note", ttl_seconds=-1)
    stats = store.stats(segments=3)
    assert stats.total == 12 + 7 + 3 + 1
    assert stats.by_user == {"alice": 15, "bob": 8}
    assert stats.by_type == {"summary": 20, "detail": 2, "memory": 1}
    assert stats.by_agent == {"chef": 12, "travel": 7, "default": 4}
    assert stats.expired == 1
    assert (stats.dimension, stats.distance_metric, stats.data_type) == (64, "cosine", "float32")
    assert sorted(stats.non_filterable_metadata_keys) == ["content", "conversation_id", "stored_at", "type"]
    assert json.loads(json.dumps(stats.as_dict()))["by_user"]["alice"] == 15


def test_stats_of_a_missing_index_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="does not exist"):
        _store(tmp_path / "empty").stats()


# --- through boto3 (the AWS code path): the local endpoint over HTTP, and moto ------------------------


@pytest.fixture
def endpoint_client(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3VECTORS", raising=False)
    with LocalEndpoint(tmp_path / "served") as endpoint:
        yield boto3.client("s3vectors", endpoint_url=endpoint.url, region_name="us-east-1",
                           aws_access_key_id="x", aws_secret_access_key="y")


def test_setup_index_is_idempotent_and_refuses_an_incompatible_index(endpoint_client: Any) -> None:
    first = setup_index(endpoint_client, BUCKET, "memory", dimension=1024)
    assert (first.bucket_created, first.index_created, first.dimension) == (True, True, 1024)
    again = setup_index(endpoint_client, BUCKET, "memory", dimension=1024)
    assert (again.bucket_created, again.index_created) == (False, False)
    index = endpoint_client.get_index(vectorBucketName=BUCKET, indexName="memory")["index"]
    assert (index["dataType"], index["distanceMetric"]) == ("float32", "cosine")
    assert sorted(index["metadataConfiguration"]["nonFilterableMetadataKeys"]) == [
        "content", "conversation_id", "stored_at", "type"]
    with pytest.raises(ConfigurationError, match="dimension=1024"):
        setup_index(endpoint_client, BUCKET, "memory", dimension=384)
    endpoint_client.create_index(vectorBucketName=BUCKET, indexName="plain", dataType="float32", dimension=8,
                                 distanceMetric="cosine")
    with pytest.raises(ConfigurationError, match="nonFilterableMetadataKeys=\\[\\]"):
        setup_index(endpoint_client, BUCKET, "plain", dimension=8)


def test_lifecycle_over_boto3_and_http(endpoint_client: Any) -> None:
    setup_index(endpoint_client, BUCKET, "memory", dimension=64)
    store = S3VectorMemory(bucket_name=BUCKET, backend="aws", client=endpoint_client, embedder=BagOfWordsEmbedder(),
                           create_index=False)
    _populate(store, "alice", 620)
    _populate(store, "bob", 40)
    page = store.list_memories("alice", page_size=600)
    assert len(page.memories) == 600 and page.next_token is not None
    assert len(store.list_memories("alice", page_size=600, next_token=page.next_token).memories) == 20
    assert store.get_memory("bob-assistant-00001", "alice") is None
    deduped = store.store_conversation("bob", "c9", "bob note 1 topic1 item1", agent_name="assistant")
    assert deduped == ["bob-assistant-00001"]
    report = store.forget_user("alice", segments=3)
    assert (report.found, report.remaining) == (620, 0)
    assert store.stats().by_user == {"bob": 40}


@pytest.fixture
def moto_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3VECTORS", raising=False)
    with mock_aws():
        yield boto3.client("s3vectors", region_name="us-east-1")


def test_forget_counts_each_key_once_when_segments_overlap(moto_client: Any) -> None:
    # moto ignores segmentCount: every segment lists the whole index, as a buggy backend might.
    moto_client.create_vector_bucket(vectorBucketName=BUCKET)
    moto_client.create_index(vectorBucketName=BUCKET, indexName="memory", dataType="float32", dimension=16,
                             distanceMetric="cosine")
    store = S3VectorMemory(bucket_name=BUCKET, backend="aws", client=moto_client, embedder=BagOfWordsEmbedder(16),
                           create_index=False)
    embedder = store.embedder
    for user, count in (("alice", 30), ("bob", 12)):
        scope = MemoryScope(user, "assistant")
        vectors = [
            {"key": f"{user}-{i}", "data": {"float32": embedder.embed_query(f"{user} fact {i}")},
             "metadata": build_metadata(scope, f"{user} fact {i}", memory_type=TYPE_SUMMARY)}
            for i in range(count)
        ]
        moto_client.put_vectors(vectorBucketName=BUCKET, indexName="memory", vectors=vectors)
    assert store.get_memory("bob-1", "alice") is None and store.delete_memory("bob-1", "alice") is False
    report = store.forget_user("alice", segments=4)
    assert (report.found, report.deleted, report.remaining) == (30, 30, 0)
    remaining = moto_client.list_vectors(vectorBucketName=BUCKET, indexName="memory")["vectors"]
    assert sorted(v["key"] for v in remaining) == sorted(f"bob-{i}" for i in range(12))
