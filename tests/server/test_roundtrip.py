"""Every operation round-trips through a real uvicorn server and a stock boto3 client.

The parity tests run one scenario twice, once on a backend directly and once through the server
on an identical backend, and require the same answers: the server must be a transparent pipe.
The behaviour tests then check what users rely on (pagination, segments, query options).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from s3vectors_engine.server import LocalEndpoint

DIM = 4
ClientFactory = Callable[..., Any]


def _vectors(count: int, *, start: int = 0) -> list[dict[str, Any]]:
    out = []
    for i in range(start, start + count):
        data = [float(i), 1.0, float(i % 3), 0.5]
        out.append({"key": f"v{i:03d}", "data": {"float32": data}, "metadata": {"n": i, "group": f"g{i % 2}"}})
    return out


def _normalise(value: Any, bucket: str) -> Any:
    """Make two runs comparable: timestamps and pagination tokens differ by nature, bucket names by design."""
    if isinstance(value, dict):
        return {
            k: ("<token>" if k == "nextToken" else _normalise(v, bucket))
            for k, v in value.items()
            if k != "ResponseMetadata"
        }
    if isinstance(value, list):
        return [_normalise(v, bucket) for v in value]
    if isinstance(value, dt.datetime):
        assert value.tzinfo is not None, "timestamps must come back timezone-aware"
        return "<datetime>"
    if isinstance(value, str):
        return value.replace(bucket, "<bucket>")
    return value


def _scenario(client: Any, bucket: str, *, with_query: bool, with_tags: bool) -> list[Any]:
    """Call every operation the backend has (moto lacks QueryVectors, the engine tagging) once."""
    answers: list[Any] = []
    index = "memory-a"
    answers.append(client.create_vector_bucket(vectorBucketName=bucket))
    answers.append(client.get_vector_bucket(vectorBucketName=bucket))
    listed = client.list_vector_buckets()
    answers.append([b for b in listed["vectorBuckets"] if b["vectorBucketName"] == bucket])
    answers.append(
        client.create_index(
            vectorBucketName=bucket,
            indexName=index,
            dataType="float32",
            dimension=DIM,
            distanceMetric="euclidean",
            metadataConfiguration={"nonFilterableMetadataKeys": ["content"]},
        )
    )
    got_index = client.get_index(vectorBucketName=bucket, indexName=index)
    answers.append(got_index)
    answers.append(client.list_indexes(vectorBucketName=bucket))
    answers.append(client.put_vectors(vectorBucketName=bucket, indexName=index, vectors=_vectors(6)))
    answers.append(
        client.get_vectors(
            vectorBucketName=bucket,
            indexName=index,
            keys=["v001", "v004"],
            returnData=True,
            returnMetadata=True,
        )
    )
    answers.append(client.list_vectors(vectorBucketName=bucket, indexName=index, returnMetadata=True))
    if with_query:
        answers.append(
            client.query_vectors(
                vectorBucketName=bucket,
                indexName=index,
                queryVector={"float32": [2.0, 1.0, 2.0, 0.5]},
                topK=3,
                filter={"group": {"$eq": "g0"}},
                returnDistance=True,
                returnMetadata=True,
            )
        )
    if with_tags:
        arn = got_index["index"]["indexArn"]
        answers.append(client.tag_resource(resourceArn=arn, tags={"team": "memory", "env": "test"}))
        answers.append(client.untag_resource(resourceArn=arn, tagKeys=["env"]))
        answers.append(client.list_tags_for_resource(resourceArn=arn))
    answers.append(client.delete_vectors(vectorBucketName=bucket, indexName=index, keys=["v000", "v005"]))
    answers.append(client.list_vectors(vectorBucketName=bucket, indexName=index))
    answers.append(client.delete_index(vectorBucketName=bucket, indexName=index))
    answers.append(client.list_indexes(vectorBucketName=bucket))
    answers.append(client.delete_vector_bucket(vectorBucketName=bucket))
    return [_normalise(a, bucket) for a in answers]


def test_moto_backend_served_answers_like_moto_direct(moto_backend: Any, client_for: ClientFactory) -> None:
    direct = _scenario(moto_backend, "direct-bucket", with_query=False, with_tags=True)
    with LocalEndpoint(moto_backend) as endpoint:
        served = _scenario(client_for(endpoint.url), "served-bucket", with_query=False, with_tags=True)
    assert served == direct
    assert [v["key"] for v in served[-4]["vectors"]] == ["v001", "v002", "v003", "v004"]


def test_engine_served_answers_like_engine_direct(
    tmp_path: Path, engine_factory: Callable[[Path], Any], client_for: ClientFactory
) -> None:
    direct = _scenario(engine_factory(tmp_path / "direct"), "bucket-one", with_query=True, with_tags=False)
    with LocalEndpoint(tmp_path / "served") as endpoint:
        served = _scenario(client_for(endpoint.url), "bucket-one", with_query=True, with_tags=False)
    assert served == direct
    query_answer = served[9]
    keys = [v["key"] for v in query_answer["vectors"]]
    assert keys[0] == "v002"  # the exact match of the query vector
    assert all(int(k[1:]) % 2 == 0 for k in keys)  # filter on group g0
    assert query_answer["vectors"][0]["distance"] == pytest.approx(0.0, abs=1e-6)


def _seed(client: Any, bucket: str, count: int, metric: str = "euclidean") -> None:
    client.create_vector_bucket(vectorBucketName=bucket)
    client.create_index(
        vectorBucketName=bucket,
        indexName="memory-a",
        dataType="float32",
        dimension=DIM,
        distanceMetric=metric,
    )
    for start in range(0, count, 500):
        client.put_vectors(
            vectorBucketName=bucket,
            indexName="memory-a",
            vectors=_vectors(min(500, count - start), start=start),
        )


def test_list_vectors_pagination_returns_every_key_once(engine_client: Any) -> None:
    _seed(engine_client, "pages-bucket", 23)
    keys: list[str] = []
    kwargs: dict[str, Any] = {"vectorBucketName": "pages-bucket", "indexName": "memory-a", "maxResults": 5}
    pages = 0
    while True:
        page = engine_client.list_vectors(**kwargs)
        pages += 1
        assert len(page["vectors"]) <= 5
        keys.extend(v["key"] for v in page["vectors"])
        if "nextToken" not in page:
            break
        kwargs["nextToken"] = page["nextToken"]
    assert pages >= 5
    assert sorted(keys) == [f"v{i:03d}" for i in range(23)]
    assert len(set(keys)) == len(keys)

    paginator = engine_client.get_paginator("list_vectors")
    paged = [
        v["key"]
        for p in paginator.paginate(
            vectorBucketName="pages-bucket", indexName="memory-a", PaginationConfig={"PageSize": 7}
        )
        for v in p["vectors"]
    ]
    assert sorted(paged) == sorted(keys)


def test_list_vectors_segments_partition_the_index(engine_client: Any) -> None:
    _seed(engine_client, "segment-bucket", 40)
    seen: list[str] = []
    for segment in range(3):
        page = engine_client.list_vectors(
            vectorBucketName="segment-bucket",
            indexName="memory-a",
            segmentCount=3,
            segmentIndex=segment,
            maxResults=1000,
        )
        assert "nextToken" not in page
        seen.extend(v["key"] for v in page["vectors"])
    assert sorted(seen) == [f"v{i:03d}" for i in range(40)]


def test_query_options_topk_distance_metadata_and_filter(engine_client: Any) -> None:
    _seed(engine_client, "query-bucket", 30)
    query = {"float32": [10.0, 1.0, 1.0, 0.5]}  # exactly v010
    bare = engine_client.query_vectors(vectorBucketName="query-bucket", indexName="memory-a", queryVector=query, topK=4)
    assert len(bare["vectors"]) == 4
    assert bare["vectors"][0] == {"key": "v010"}  # no distance or metadata unless asked
    full = engine_client.query_vectors(
        vectorBucketName="query-bucket",
        indexName="memory-a",
        queryVector=query,
        topK=5,
        returnDistance=True,
        returnMetadata=True,
    )
    distances = [v["distance"] for v in full["vectors"]]
    assert distances == sorted(distances)
    assert full["vectors"][0]["metadata"] == {"n": 10, "group": "g0"}
    filtered = engine_client.query_vectors(
        vectorBucketName="query-bucket",
        indexName="memory-a",
        queryVector=query,
        topK=30,
        filter={"$and": [{"group": {"$eq": "g1"}}, {"n": {"$gte": 20}}]},
        returnMetadata=True,
    )
    found = sorted(v["metadata"]["n"] for v in filtered["vectors"])
    assert found == [21, 23, 25, 27, 29]


def test_large_batch_of_high_dimensional_vectors(engine_client: Any) -> None:
    engine_client.create_vector_bucket(vectorBucketName="big-bucket")
    engine_client.create_index(
        vectorBucketName="big-bucket",
        indexName="memory-big",
        dataType="float32",
        dimension=1024,
        distanceMetric="cosine",
    )
    batch: list[dict[str, Any]] = [
        {"key": f"k{i}", "data": {"float32": [((i * 7 + j) % 13) / 13.0 + 0.01 for j in range(1024)]}}
        for i in range(500)
    ]
    engine_client.put_vectors(vectorBucketName="big-bucket", indexName="memory-big", vectors=batch)
    got = engine_client.get_vectors(
        vectorBucketName="big-bucket", indexName="memory-big", keys=["k123"], returnData=True
    )
    assert got["vectors"][0]["data"]["float32"] == pytest.approx(batch[123]["data"]["float32"], rel=1e-6)
    hit = engine_client.query_vectors(
        vectorBucketName="big-bucket",
        indexName="memory-big",
        queryVector=batch[123]["data"],
        topK=1,
        returnDistance=True,
    )
    assert hit["vectors"][0]["distance"] == pytest.approx(0.0, abs=1e-5)


def test_timestamps_survive_the_wire_exactly(engine_endpoint: LocalEndpoint, engine_client: Any) -> None:
    _seed(engine_client, "time-bucket", 1)
    direct = engine_endpoint.backend.get_index(vectorBucketName="time-bucket", indexName="memory-a")
    served = engine_client.get_index(vectorBucketName="time-bucket", indexName="memory-a")
    assert served["index"]["creationTime"] == direct["index"]["creationTime"]
    listed = engine_client.list_vector_buckets()["vectorBuckets"]
    bucket = next(b for b in listed if b["vectorBucketName"] == "time-bucket")
    assert (
        bucket["creationTime"]
        == engine_endpoint.backend.get_vector_bucket(vectorBucketName="time-bucket")["vectorBucket"]["creationTime"]
    )
