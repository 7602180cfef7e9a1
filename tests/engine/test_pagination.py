"""ListVectors / ListIndexes / ListVectorBuckets paging: every item exactly once."""

from __future__ import annotations

import itertools
from collections import Counter

from engine_support import BUCKET, expect_error, make_index
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3vectors_engine import LocalS3VectorsClient

_names = itertools.count()


def _walk(engine: LocalS3VectorsClient, names: dict[str, str], page: int, count: int | None) -> list[str]:
    keys: list[str] = []
    segments = range(count) if count else [None]
    for segment in segments:
        kwargs: dict[str, object] = {"maxResults": page, **names}
        if segment is not None:
            kwargs.update(segmentCount=count, segmentIndex=segment)
        while True:
            out = engine.list_vectors(**kwargs)
            assert len(out["vectors"]) <= page
            keys.extend(v["key"] for v in out["vectors"])
            if "nextToken" not in out:
                break
            kwargs["nextToken"] = out["nextToken"]
    return keys


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    total=st.integers(0, 60),
    deleted=st.sets(st.integers(0, 59), max_size=20),
    page=st.integers(1, 25),
    count=st.one_of(st.none(), st.integers(1, 16)),
)
def test_pages_and_segments_cover_each_key_once(
    engine: LocalS3VectorsClient, total: int, deleted: set[int], page: int, count: int | None
) -> None:
    names = make_index(engine, dimension=2, index=f"page-{next(_names)}")
    if total:
        engine.put_vectors(
            vectors=[{"key": f"k{i}", "data": {"float32": [1.0, float(i)]}} for i in range(total)], **names
        )
    gone = [f"k{i}" for i in deleted if i < total]
    if gone:
        engine.delete_vectors(keys=gone, **names)
    keys = _walk(engine, names, page, count)
    expected = {f"k{i}" for i in range(total)} - set(gone)
    assert Counter(keys) == Counter(expected)
    engine.delete_index(**names)


def test_segments_partition_a_larger_index(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, dimension=2)
    for start in range(0, 2500, 500):
        engine.put_vectors(
            vectors=[{"key": f"k{i}", "data": {"float32": [1.0, float(i)]}} for i in range(start, start + 500)],
            **names,
        )
    assert len(_walk(engine, names, 1000, None)) == 2500
    seen: Counter[str] = Counter()
    for segment in range(7):
        out = engine.list_vectors(segmentCount=7, segmentIndex=segment, maxResults=1000, **names)
        assert "nextToken" not in out
        assert 250 < len(out["vectors"]) < 470  # roughly even
        seen.update(v["key"] for v in out["vectors"])
    assert seen == Counter(f"k{i}" for i in range(2500))


def test_default_page_size_and_bad_tokens(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, dimension=2)
    engine.put_vectors(vectors=[{"key": f"k{i}", "data": {"float32": [1.0, 0.0]}} for i in range(500)], **names)
    engine.put_vectors(vectors=[{"key": f"x{i}", "data": {"float32": [1.0, 0.0]}} for i in range(10)], **names)
    first = engine.list_vectors(**names)
    assert len(first["vectors"]) == 500 and "nextToken" in first
    expect_error("ValidationException", 400, engine.list_vectors, nextToken="not-a-token", **names)
    segmented = engine.list_vectors(segmentCount=2, segmentIndex=0, maxResults=1, **names)
    expect_error(
        "ValidationException",
        400,
        engine.list_vectors,
        segmentCount=2,
        segmentIndex=1,
        nextToken=segmented["nextToken"],
        **names,
    )


def test_list_indexes_pages_with_prefix(engine: LocalS3VectorsClient) -> None:
    engine.create_vector_bucket(vectorBucketName=BUCKET)
    wanted = [f"memory-{i:02d}" for i in range(12)]
    for name in [*wanted, "other-1", "zzz-2"]:
        engine.create_index(
            vectorBucketName=BUCKET, indexName=name, dataType="float32", dimension=2, distanceMetric="cosine"
        )
    pages = engine.get_paginator("list_indexes").paginate(
        vectorBucketName=BUCKET, prefix="memory-", PaginationConfig={"PageSize": 5}
    )
    got = [i["indexName"] for p in pages for i in p["indexes"]]
    assert got == wanted


def test_list_vector_buckets_pages_with_prefix(engine: LocalS3VectorsClient) -> None:
    for name in ["team-a", "team-b", "team-c", "solo"]:
        engine.create_vector_bucket(vectorBucketName=name)
    first = engine.list_vector_buckets(prefix="team-", maxResults=2)
    assert [b["vectorBucketName"] for b in first["vectorBuckets"]] == ["team-a", "team-b"]
    rest = engine.list_vector_buckets(prefix="team-", maxResults=2, nextToken=first["nextToken"])
    assert [b["vectorBucketName"] for b in rest["vectorBuckets"]] == ["team-c"]
    assert "nextToken" not in rest
