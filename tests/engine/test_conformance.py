"""Conformance: the engine, embedded and through its REST endpoint, against botocore's whole s3vectors model.

One scenario drives every operation with every input member (nested ones included) and checks what
each member does. A recorder notes the member paths of every call that succeeded; the test then walks
botocore's model and requires each operation and each input member path to have been exercised. A
member AWS adds later (a newer botocore) is therefore a failing test here, never a silent drop.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import boto3
import botocore.session
import pytest
from botocore import xform_name
from botocore.config import Config
from botocore.exceptions import ClientError
from engine_support import assert_conforms, expect_error, vec

from s3vectors_engine import LocalS3VectorsClient
from s3vectors_engine.server import LocalEndpoint

REGION = "us-east-1"
ACCOUNT = "123456789012"
BEFORE_CUTOFF = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()
AFTER_CUTOFF = datetime(2026, 12, 1, tzinfo=timezone.utc).timestamp()
NO_RETRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})


def _model() -> Any:
    return botocore.session.get_session().get_service_model("s3vectors")


def _shape_paths(shape: Any, prefix: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Every member path of an input shape: ``a``, ``a.b`` for nested structures (lists see through)."""
    out: set[str] = set()
    if shape.type_name == "list":
        return _shape_paths(shape.member, prefix, seen)
    if shape.type_name != "structure" or shape.metadata.get("document") or shape.name in seen:
        return out
    for name, member in shape.members.items():
        path = f"{prefix}.{name}" if prefix else name
        out.add(path)
        out |= _shape_paths(member, path, seen | {shape.name})
    return out


def _value_paths(value: Any, shape: Any, prefix: str) -> set[str]:
    out: set[str] = set()
    if shape.type_name == "list" and isinstance(value, list):
        for item in value:
            out |= _value_paths(item, shape.member, prefix)
        return out
    if shape.type_name != "structure" or shape.metadata.get("document") or not isinstance(value, dict):
        return out
    for name, item in value.items():
        if name in shape.members:
            path = f"{prefix}.{name}" if prefix else name
            out.add(path)
            out |= _value_paths(item, shape.members[name], path)
    return out


class Recorder:
    """Wraps a boto3-shaped client; records (operation, member path) of every call that succeeded."""

    def __init__(self, client: Any, embedded: bool) -> None:
        self.client = client
        self.embedded = embedded
        self.seen: set[tuple[str, str]] = set()
        self.operations: set[str] = set()
        self._names = {xform_name(op): op for op in _model().operation_names}

    def __getattr__(self, method: str) -> Callable[..., Any]:
        operation = self._names.get(method)
        call = getattr(self.client, method)
        if operation is None:
            return call  # type: ignore[no-any-return]

        def recorded(**kwargs: Any) -> Any:
            response = call(**kwargs)
            self.operations.add(operation)
            shape = _model().operation_model(operation).input_shape
            self.seen |= {(operation, p) for p in _value_paths(kwargs, shape, "")}
            if self.embedded:
                assert_conforms(operation, response)
            return response

        return recorded


class Clock:
    """The engine's clock: a bucket made before 2026-09-30 is a CLASSIC-era bucket."""

    def __init__(self) -> None:
        self.now = BEFORE_CUTOFF

    def __call__(self) -> float:
        return self.now


@pytest.fixture(params=["embedded", "rest"])
def recorder(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Recorder, Clock]]:
    clock = Clock()
    engine = LocalS3VectorsClient(
        tmp_path / "engine", region=REGION, account_id=ACCOUNT, query_page_size=2, clock=clock
    )
    if request.param == "embedded":
        yield Recorder(engine, embedded=True), clock
        engine.close()
        return
    with LocalEndpoint(engine) as endpoint:
        client = boto3.client(
            "s3vectors",
            endpoint_url=endpoint.url,
            region_name=REGION,
            aws_access_key_id="AKIDTEST",
            aws_secret_access_key="secret",
            config=NO_RETRY,
        )
        yield Recorder(client, embedded=False), clock


def _wait_active(c: Recorder, **where: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + 30
    while True:
        index = c.get_index(**where)["index"]
        configs: list[dict[str, Any]] = index["metadataConfiguration"]["textSearchConfigurations"]
        if all(t["status"] == "ACTIVE" for t in configs):
            return configs
        assert {t["status"] for t in configs} <= {"ACTIVE", "BUILDING"}
        assert time.monotonic() < deadline, configs
        time.sleep(0.02)


def _exercise(c: Recorder, clock: Clock) -> None:  # one scenario, every member
    arn = f"arn:aws:s3vectors:{REGION}:{ACCOUNT}:bucket/"
    # -- buckets: a CLASSIC-era one (before 2026-09-30) and a new one ---------------------------------
    c.create_vector_bucket(
        vectorBucketName="old-bucket",
        encryptionConfiguration={"sseType": "aws:kms", "kmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k1"},
        tags={"team": "memory"},
    )
    clock.now = AFTER_CUTOFF
    c.create_vector_bucket(vectorBucketName="new-bucket")
    old = c.get_vector_bucket(vectorBucketName="old-bucket")["vectorBucket"]
    assert old["defaultIndexMode"] == "CLASSIC"
    assert old["encryptionConfiguration"]["sseType"] == "aws:kms"
    assert c.get_vector_bucket(vectorBucketArn=arn + "new-bucket")["vectorBucket"]["defaultIndexMode"] == "ENHANCED"
    assert [b["vectorBucketName"] for b in c.list_vector_buckets(prefix="ol")["vectorBuckets"]] == ["old-bucket"]
    page = c.list_vector_buckets(maxResults=1)
    assert [b["vectorBucketName"] for b in page["vectorBuckets"]] == ["new-bucket"]
    rest = c.list_vector_buckets(maxResults=1, nextToken=page["nextToken"])
    assert [b["vectorBucketName"] for b in rest["vectorBuckets"]] == ["old-bucket"]
    # -- bucket default mode: CLASSIC only for a CLASSIC-era bucket -----------------------------------
    expect_error(
        "ValidationException", 400, c.put_vector_bucket_default_index_mode,
        vectorBucketName="new-bucket", defaultIndexMode="CLASSIC",
    )
    c.put_vector_bucket_default_index_mode(vectorBucketArn=arn + "old-bucket", defaultIndexMode="ENHANCED")
    c.put_vector_bucket_default_index_mode(vectorBucketName="old-bucket", defaultIndexMode="CLASSIC")
    # -- indexes ---------------------------------------------------------------------------------
    c.create_index(
        vectorBucketArn=arn + "old-bucket", indexName="classic-idx", dataType="float32", dimension=4,
        distanceMetric="euclidean", tags={"kind": "classic"},
        encryptionConfiguration={"sseType": "aws:kms", "kmsKeyArn": f"arn:aws:kms:{REGION}:{ACCOUNT}:key/k2"},
    )
    c.create_index(
        vectorBucketName="new-bucket",
        indexName="mem-idx",
        dataType="float32",
        dimension=4,
        distanceMetric="cosine",
        metadataConfiguration={
            "nonFilterableMetadataKeys": ["text"],
            "textSearchConfigurations": [{"metadataKey": "text", "language": "en", "status": "BUILDING"}],
        },
    )
    classic = c.get_index(vectorBucketName="old-bucket", indexName="classic-idx")["index"]
    assert classic["indexMode"] == "CLASSIC"
    assert classic["encryptionConfiguration"]["kmsKeyArn"].endswith("key/k2")
    mem = c.get_index(indexArn=arn + "new-bucket/index/mem-idx")["index"]
    assert mem["indexMode"] == "ENHANCED"
    assert mem["metadataConfiguration"]["textSearchConfigurations"] == [
        {"metadataKey": "text", "language": "en", "status": "ACTIVE"}  # nothing to backfill at creation
    ]
    names = c.list_indexes(vectorBucketArn=arn + "old-bucket", maxResults=5, prefix="cl")["indexes"]
    assert [i["indexName"] for i in names] == ["classic-idx"]
    c.create_index(vectorBucketName="new-bucket", indexName="tmp-idx", dataType="float32", dimension=2,
                   distanceMetric="cosine")
    first = c.list_indexes(vectorBucketName="new-bucket", maxResults=1)
    second = c.list_indexes(vectorBucketName="new-bucket", maxResults=1, nextToken=first["nextToken"])
    assert [i["indexName"] for i in first["indexes"] + second["indexes"]] == ["mem-idx", "tmp-idx"]
    c.delete_index(vectorBucketName="new-bucket", indexName="tmp-idx")
    c.create_index(vectorBucketName="new-bucket", indexName="tmp-idx", dataType="float32", dimension=2,
                   distanceMetric="cosine")
    c.delete_index(indexArn=arn + "new-bucket/index/tmp-idx")
    # -- index mode: in place, CLASSIC only in a CLASSIC-era bucket ------------------------------------
    c.update_index_mode(vectorBucketName="old-bucket", indexName="classic-idx", indexMode="ENHANCED")
    assert c.get_index(vectorBucketName="old-bucket", indexName="classic-idx")["index"]["indexMode"] == "ENHANCED"
    c.update_index_mode(indexArn=arn + "old-bucket/index/classic-idx", indexMode="CLASSIC")
    expect_error("ValidationException", 400, c.update_index_mode,
                 vectorBucketName="new-bucket", indexName="mem-idx", indexMode="CLASSIC")
    # -- vectors ---------------------------------------------------------------------------------
    where = {"vectorBucketName": "new-bucket", "indexName": "mem-idx"}
    texts = {
        "a": "Order ORD-77812 shipped to Lisbon on Monday",
        "b": "The user prefers running shoes in size 43",
        "c": "Meeting notes about the quarterly budget",
        "d": "She runs every morning before work",
        "e": "Order ORD-55120 was cancelled",
    }
    c.put_vectors(
        **where,
        vectors=[
            {"key": k, "data": {"float32": vec(i)}, "metadata": {"text": t, "user": "u-1" if i < 4 else "v-2"}}
            for i, (k, t) in enumerate(texts.items())
        ],
    )
    c.put_vectors(indexArn=arn + "old-bucket/index/classic-idx",
                  vectors=[{"key": "z", "data": {"float32": vec(9)}, "metadata": {"tag": "x"}}])
    got = c.get_vectors(**where, keys=["a", "missing"], returnData=True, returnMetadata=True)["vectors"]
    assert [g["key"] for g in got] == ["a"] and got[0]["metadata"]["user"] == "u-1"
    assert len(got[0]["data"]["float32"]) == 4
    assert "data" not in c.get_vectors(indexArn=arn + "new-bucket/index/mem-idx", keys=["a"])["vectors"][0]
    listed = c.list_vectors(
        **where, maxResults=2, segmentCount=1, segmentIndex=0, returnData=False, returnMetadata=True
    )
    more = c.list_vectors(indexArn=arn + "new-bucket/index/mem-idx", maxResults=10, nextToken=listed["nextToken"],
                          segmentCount=1, segmentIndex=0, returnData=True)
    assert len(listed["vectors"]) + len(more["vectors"]) == 5
    # -- queries: vector, full-text, hybrid, filters, scores, paging ----------------------------------
    vector_only = c.query_vectors(**where, topK=3, queryVector={"float32": vec(1)}, returnDistance=True)
    assert vector_only["vectors"][0]["key"] == "b"
    assert vector_only["vectors"][0]["distance"] == pytest.approx(0, abs=1e-6)
    assert "nextToken" in vector_only  # page size 2 < topK 3
    tail = c.query_vectors(indexArn=arn + "new-bucket/index/mem-idx", topK=3, queryVector={"float32": vec(1)},
                           returnDistance=True, nextToken=vector_only["nextToken"])
    assert len(vector_only["vectors"]) + len(tail["vectors"]) == 3 and "nextToken" not in tail
    code = c.query_vectors(**where, topK=2, queryTexts=[{"metadataKey": "text", "text": "where is ORD-77812?"}],
                           returnScores=True, returnMetadata=True)["vectors"]
    assert code[0]["key"] == "a" and code[0]["metadata"]["text"] == texts["a"]
    assert code[0]["scores"]["bm25Scores"][0]["metadataKey"] == "text" and "fused" not in code[0]["scores"]
    stemmed = c.query_vectors(**where, topK=2, queryTexts=[{"metadataKey": "text", "text": "running"}])["vectors"]
    assert {v["key"] for v in stemmed} == {"b", "d"}  # the English analyzer stems runs/running
    hybrid = c.query_vectors(
        **where, topK=2, queryVector={"float32": vec(2)}, queryTexts=[{"metadataKey": "text", "text": "ORD-55120"}],
        returnScores=True, returnDistance=True, filter={"user": {"$startsWith": "v-"}},
    )["vectors"]
    assert [v["key"] for v in hybrid] == ["e"]
    assert set(hybrid[0]["scores"]) == {"fused", "bm25Scores", "vectorDistance"}
    assert hybrid[0]["scores"]["fused"] == pytest.approx(2 / 61)
    # CLASSIC: no $startsWith, unless the query asks for ENHANCED behaviour
    classic_where = {"vectorBucketName": "old-bucket", "indexName": "classic-idx"}
    expect_error("ValidationException", 400, c.query_vectors, **classic_where, topK=1,
                 queryVector={"float32": vec(9)}, filter={"tag": {"$startsWith": "x"}})
    found = c.query_vectors(**classic_where, topK=1, queryVector={"float32": vec(9)},
                            filter={"tag": {"$startsWith": "x"}}, queryMode="ENHANCED", returnMetadata=False)
    assert [v["key"] for v in found["vectors"]] == ["z"]
    # -- text search configuration: add (BUILDING -> ACTIVE, backfilled), delete ---------------------------
    added = [{"metadataKey": "user", "language": "fr", "status": "ACTIVE"}]  # status is the service's to set
    c.update_metadata_configuration(**where, add={"textSearchConfigurations": added})
    assert _wait_active(c, **where) == [
        {"metadataKey": "text", "language": "en", "status": "ACTIVE"},
        {"metadataKey": "user", "language": "fr", "status": "ACTIVE"},
    ]
    by_user = c.query_vectors(**where, topK=5, queryTexts=[{"metadataKey": "user", "text": "v-2"}])["vectors"]
    assert by_user[0]["key"] == "e"  # rows written before the key was added are searchable (backfill)
    c.update_metadata_configuration(indexArn=arn + "new-bucket/index/mem-idx",
                                    delete={"textSearchConfigurations": [{"metadataKey": "user"}]})
    expect_error("ValidationException", 400, c.query_vectors, **where, topK=1,
                 queryTexts=[{"metadataKey": "user", "text": "v-2"}])
    # -- deletes, policies and tags ----------------------------------------------------------------
    c.delete_vectors(**where, keys=["c"])
    c.delete_vectors(indexArn=arn + "new-bucket/index/mem-idx", keys=["nope"])
    assert c.get_vectors(**where, keys=["c"])["vectors"] == []
    policy = json.dumps({"Version": "2012-10-17", "Statement": []})
    c.put_vector_bucket_policy(vectorBucketName="new-bucket", policy=policy)
    c.put_vector_bucket_policy(vectorBucketArn=arn + "old-bucket", policy=policy)
    assert json.loads(c.get_vector_bucket_policy(vectorBucketName="new-bucket")["policy"]) == json.loads(policy)
    assert json.loads(c.get_vector_bucket_policy(vectorBucketArn=arn + "old-bucket")["policy"]) == json.loads(policy)
    c.delete_vector_bucket_policy(vectorBucketName="new-bucket")
    c.delete_vector_bucket_policy(vectorBucketArn=arn + "old-bucket")
    expect_error("NotFoundException", 404, c.get_vector_bucket_policy, vectorBucketName="new-bucket")
    c.tag_resource(resourceArn=arn + "old-bucket", tags={"env": "test"})
    assert c.list_tags_for_resource(resourceArn=arn + "old-bucket")["tags"] == {"team": "memory", "env": "test"}
    c.untag_resource(resourceArn=arn + "old-bucket", tagKeys=["team"])
    assert c.list_tags_for_resource(resourceArn=arn + "old-bucket")["tags"] == {"env": "test"}
    # -- teardown ----------------------------------------------------------------------------------
    c.delete_index(vectorBucketName="new-bucket", indexName="mem-idx")
    c.delete_vector_bucket(vectorBucketName="new-bucket")
    c.delete_index(vectorBucketName="old-bucket", indexName="classic-idx")
    c.delete_vector_bucket(vectorBucketArn=arn + "old-bucket")


def test_every_operation_and_input_member_of_the_model_works(recorder: tuple[Recorder, Clock]) -> None:
    client, clock = recorder
    _exercise(client, clock)
    model = _model()
    assert client.operations == set(model.operation_names), set(model.operation_names) - client.operations
    expected = {
        (op, path)
        for op in model.operation_names
        for path in _shape_paths(model.operation_model(op).input_shape, "")
    }
    missing = sorted(expected - client.seen)
    assert not missing, f"model members never exercised (a newer botocore added them?): {missing}"


def test_the_model_has_the_2026_operations() -> None:
    """The installed botocore is the one the engine follows (index modes, full-text, hybrid)."""
    names = set(_model().operation_names)
    assert {"UpdateIndexMode", "PutVectorBucketDefaultIndexMode", "UpdateMetadataConfiguration"} <= names
    assert len(names) == 22


def test_errors_are_client_errors_never_crashes(recorder: tuple[Recorder, Clock]) -> None:
    """The documented validation of the new members: 400s with the service's codes, over both transports."""
    c, clock = recorder
    clock.now = AFTER_CUTOFF
    c.create_vector_bucket(vectorBucketName="bkt")
    where = {"vectorBucketName": "bkt", "indexName": "idx"}
    base = {**where, "dataType": "float32", "dimension": 2, "distanceMetric": "cosine"}
    many = {f"k{i}": "v" for i in range(51)}
    expect_error("ValidationException", 400, c.create_vector_bucket, vectorBucketName="b-tags", tags=many)
    expect_error("ValidationException", 400, c.create_index, **base, tags=many)
    expect_error("ValidationException", 400, c.create_vector_bucket, vectorBucketName="b-kms",
                 encryptionConfiguration={"sseType": "aws:kms"})
    twice = [{"metadataKey": "t"}, {"metadataKey": "t", "language": "fr"}]
    expect_error("ValidationException", 400, c.create_index, **base,
                 metadataConfiguration={"textSearchConfigurations": twice})
    c.create_index(**base, metadataConfiguration={"textSearchConfigurations": [{"metadataKey": "t"}]})
    c.put_vectors(**where, vectors=[{"key": "k", "data": {"float32": [1.0, 0.0]}, "metadata": {"t": "hello world"}}])
    arn = f"arn:aws:s3vectors:{REGION}:{ACCOUNT}:bucket/bkt/index/idx"
    c.tag_resource(resourceArn=arn, tags={f"k{i}": "v" for i in range(50)})
    expect_error("ValidationException", 400, c.tag_resource, resourceArn=arn, tags={"one-more": "v"})
    # QueryVectors: neither input, a key twice, an unknown key, CLASSIC on ENHANCED, a foreign token
    expect_error("ValidationException", 400, c.query_vectors, **where, topK=1)
    same = [{"metadataKey": "t", "text": "hello"}, {"metadataKey": "t", "text": "world"}]
    expect_error("ValidationException", 400, c.query_vectors, **where, topK=1, queryTexts=same)
    expect_error("ValidationException", 400, c.query_vectors, **where, topK=1,
                 queryTexts=[{"metadataKey": "nope", "text": "x"}])
    expect_error("ValidationException", 400, c.query_vectors, **where, topK=1, queryMode="CLASSIC",
                 queryVector={"float32": [1.0, 0.0]})
    expect_error("ValidationException", 400, c.query_vectors, **where, topK=1,
                 queryVector={"float32": [1.0, 0.0]}, nextToken="bm90LWEtdG9rZW4=")
    wide = {"$or": [{"n": i} for i in range(101)]}
    expect_error("ValidationException", 400, c.query_vectors, **where, topK=1,
                 queryVector={"float32": [1.0, 0.0]}, filter=wide)
    # UpdateMetadataConfiguration: neither/both, existing key, unknown key
    expect_error("ValidationException", 400, c.update_metadata_configuration, **where)
    expect_error("ValidationException", 400, c.update_metadata_configuration, **where,
                 add={"textSearchConfigurations": [{"metadataKey": "u"}]},
                 delete={"textSearchConfigurations": [{"metadataKey": "t"}]})
    expect_error("ValidationException", 400, c.update_metadata_configuration, **where,
                 add={"textSearchConfigurations": [{"metadataKey": "t"}]})
    expect_error("ValidationException", 400, c.update_metadata_configuration, **where,
                 delete={"textSearchConfigurations": [{"metadataKey": "u"}]})
    expect_error("NotFoundException", 404, c.update_index_mode, vectorBucketName="bkt", indexName="nope",
                 indexMode="ENHANCED")


def test_a_classic_index_has_no_text_search(tmp_path: Path) -> None:
    clock = Clock()
    with LocalS3VectorsClient(tmp_path, clock=clock) as c:
        c.create_vector_bucket(vectorBucketName="old")
        base = {"vectorBucketName": "old", "indexName": "idx", "dataType": "float32", "dimension": 2,
                "distanceMetric": "cosine"}
        expect_error("ValidationException", 400, c.create_index, **base,
                     metadataConfiguration={"textSearchConfigurations": [{"metadataKey": "t"}]})
        c.create_index(**base)
        where = {"vectorBucketName": "old", "indexName": "idx"}
        expect_error("ValidationException", 400, c.update_metadata_configuration, **where,
                     add={"textSearchConfigurations": [{"metadataKey": "t"}]})
        expect_error("ValidationException", 400, c.query_vectors, **where, topK=1,
                     queryTexts=[{"metadataKey": "t", "text": "x"}])
        c.update_index_mode(**where, indexMode="ENHANCED")
        c.update_metadata_configuration(**where, add={"textSearchConfigurations": [{"metadataKey": "t"}]})
        _wait_active(Recorder(c, embedded=True), **where)
        with pytest.raises(ClientError, match="stay ENHANCED"):
            c.update_index_mode(**where, indexMode="CLASSIC")
