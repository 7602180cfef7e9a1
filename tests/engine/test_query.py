"""QueryVectors: exact distances as the service reports them, ordering, flags, consistency."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from engine_support import BUCKET, INDEX, make_index

from s3vectors_engine import LocalS3VectorsClient


def _reference(data: np.ndarray, query: np.ndarray, metric: str) -> np.ndarray:
    """Distances computed independently in float64: 1 - cos, or the L2 norm."""
    x = data.astype(np.float64)
    q = query.astype(np.float64)
    if metric == "cosine":
        return 1.0 - (x @ q) / (np.linalg.norm(x, axis=1) * np.linalg.norm(q))
    return np.asarray(np.linalg.norm(x - q, axis=1))


@pytest.mark.parametrize("metric", ["cosine", "euclidean"])
@pytest.mark.parametrize("top_k", [1, 7, 100])
def test_distances_and_order_match_numpy(engine: LocalS3VectorsClient, metric: str, top_k: int) -> None:
    rng = np.random.default_rng(42)
    data = rng.standard_normal((300, 16)).astype(np.float32)
    names = make_index(engine, dimension=16, metric=metric)
    for start in range(0, 300, 150):
        engine.put_vectors(
            vectors=[{"key": f"k{i}", "data": {"float32": data[i].tolist()}} for i in range(start, start + 150)],
            **names,
        )
    for trial in range(3):
        query = rng.standard_normal(16).astype(np.float32)
        out = engine.query_vectors(topK=top_k, queryVector={"float32": query.tolist()}, returnDistance=True, **names)
        assert out["distanceMetric"] == metric
        ref = _reference(data, query, metric)
        expected = np.argsort(ref, kind="stable")[:top_k]
        assert [v["key"] for v in out["vectors"]] == [f"k{i}" for i in expected], trial
        np.testing.assert_allclose([v["distance"] for v in out["vectors"]], ref[expected], rtol=1e-5, atol=1e-6)


def test_identical_vector_is_at_distance_zero(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, dimension=3, metric="cosine")
    engine.put_vectors(vectors=[{"key": "same", "data": {"float32": [0.1, 0.2, 0.3]}}], **names)
    out = engine.query_vectors(topK=1, queryVector={"float32": [0.2, 0.4, 0.6]}, returnDistance=True, **names)
    assert out["vectors"][0]["distance"] == pytest.approx(0.0, abs=1e-7)


def test_flags_control_returned_fields(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, dimension=2)
    engine.put_vectors(vectors=[{"key": "a", "data": {"float32": [1.0, 0.0]}, "metadata": {"m": "x"}}], **names)
    base = {"topK": 1, "queryVector": {"float32": [1.0, 0.5]}, **names}
    assert engine.query_vectors(**base)["vectors"] == [{"key": "a"}]
    with_meta = engine.query_vectors(returnMetadata=True, **base)["vectors"]
    assert with_meta == [{"key": "a", "metadata": {"m": "x"}}]
    with_dist = engine.query_vectors(returnDistance=True, **base)["vectors"]
    assert set(with_dist[0]) == {"key", "distance"}


def test_writes_are_immediately_visible(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, dimension=2, metric="euclidean")
    query: dict[str, Any] = {"topK": 5, "queryVector": {"float32": [0.0, 0.0]}, "returnDistance": True, **names}
    assert engine.query_vectors(**query)["vectors"] == []
    engine.put_vectors(vectors=[{"key": "a", "data": {"float32": [3.0, 4.0]}}], **names)
    assert engine.query_vectors(**query)["vectors"] == [{"key": "a", "distance": 5.0}]
    engine.put_vectors(vectors=[{"key": "a", "data": {"float32": [0.0, 1.0]}}], **names)  # upsert
    assert engine.query_vectors(**query)["vectors"] == [{"key": "a", "distance": 1.0}]
    engine.put_vectors(vectors=[{"key": "b", "data": {"float32": [0.0, 2.0]}}], **names)
    assert [v["key"] for v in engine.query_vectors(**query)["vectors"]] == ["a", "b"]
    engine.delete_vectors(keys=["a"], **names)
    assert [v["key"] for v in engine.query_vectors(**query)["vectors"]] == ["b"]


def test_upsert_moves_a_vector_between_filter_values(engine: LocalS3VectorsClient) -> None:
    names = make_index(engine, dimension=2)
    put = engine.put_vectors
    put(vectors=[{"key": "a", "data": {"float32": [1.0, 0.0]}, "metadata": {"user_id": "u1"}}], **names)
    put(vectors=[{"key": "a", "data": {"float32": [1.0, 0.0]}, "metadata": {"user_id": "u2"}}], **names)
    query: dict[str, Any] = {"topK": 5, "queryVector": {"float32": [1.0, 0.0]}, **names}
    assert engine.query_vectors(filter={"user_id": "u1"}, **query)["vectors"] == []
    assert engine.query_vectors(filter={"user_id": "u2"}, **query)["vectors"] == [{"key": "a"}]


def test_query_by_arn_and_missing_index(engine: LocalS3VectorsClient) -> None:
    make_index(engine, dimension=2)
    arn = engine.get_index(vectorBucketName=BUCKET, indexName=INDEX)["index"]["indexArn"]
    engine.put_vectors(indexArn=arn, vectors=[{"key": "a", "data": {"float32": [1.0, 0.0]}}])
    assert engine.query_vectors(indexArn=arn, topK=1, queryVector={"float32": [1.0, 0.0]})["vectors"] == [{"key": "a"}]
    with pytest.raises(engine.exceptions.NotFoundException):
        engine.query_vectors(vectorBucketName=BUCKET, indexName="other", topK=1, queryVector={"float32": [1.0, 0.0]})


def test_many_deletes_keep_results_exact(engine: LocalS3VectorsClient) -> None:
    """Deleting most rows (which compacts the in-memory matrix) never resurrects or loses a key."""
    rng = np.random.default_rng(3)
    data = rng.standard_normal((3000, 4)).astype(np.float32)
    names = make_index(engine, dimension=4, metric="euclidean")
    for s in range(0, 3000, 500):
        engine.put_vectors(
            vectors=[
                {"key": f"k{i}", "data": {"float32": data[i].tolist()}, "metadata": {"g": i % 3}}
                for i in range(s, s + 500)
            ],
            **names,
        )
    query = {"topK": 100, "queryVector": {"float32": [0.0, 0.0, 0.0, 0.0]}, **names}
    engine.query_vectors(**query)  # load the cache before deleting
    for s in range(0, 2700, 500):
        engine.delete_vectors(keys=[f"k{i}" for i in range(s, min(s + 500, 2700))], **names)
    survivors = np.arange(2700, 3000)
    out = engine.query_vectors(filter={"g": 1}, **query)["vectors"]
    ref = np.linalg.norm(data[survivors], axis=1)
    expected = [f"k{survivors[i]}" for i in np.argsort(ref, kind="stable") if survivors[i] % 3 == 1][:100]
    assert [v["key"] for v in out] == expected


def test_memory_budget_evicts_idle_indexes_without_changing_answers(tmp_path: Any) -> None:
    """Per-tenant indexes: a small budget keeps few copies in memory, answers stay exact."""
    with LocalS3VectorsClient(tmp_path / "e", cache_bytes=64 * 1024) as engine:
        rng = np.random.default_rng(5)
        data = {}
        for t in range(12):
            names = make_index(engine, dimension=32, metric="euclidean", index=f"tenant-{t}")
            data[t] = rng.standard_normal((60, 32)).astype(np.float32)
            engine.put_vectors(
                vectors=[{"key": f"t{t}-{i}", "data": {"float32": data[t][i].tolist()}} for i in range(60)], **names
            )
        for _round in range(2):
            for t in range(12):
                out = engine.query_vectors(
                    vectorBucketName=BUCKET, indexName=f"tenant-{t}", topK=3, queryVector={"float32": [0.0] * 32}
                )
                best = np.argsort(np.linalg.norm(data[t].astype(np.float64), axis=1), kind="stable")[:3]
                assert [v["key"] for v in out["vectors"]] == [f"t{t}-{i}" for i in best]
        resident = engine._caches
        assert 1 <= len(resident) < 12
        assert sum(c.nbytes for c in resident.values()) <= 64 * 1024 or len(resident) == 1


def test_reloaded_index_stays_exact_through_other_writers(tmp_path: Any) -> None:
    """A fresh client loads interleaved users and keeps answering exactly while another client
    moves rows between users, adds and deletes rows."""
    rng = np.random.default_rng(11)
    data = {f"k{i}": rng.standard_normal(8).astype(np.float32) for i in range(300)}
    owner = {f"k{i}": f"u{i % 5}" for i in range(300)}
    with LocalS3VectorsClient(tmp_path / "e") as writer, LocalS3VectorsClient(tmp_path / "e") as reader:
        names = make_index(writer, dimension=8, metric="euclidean")

        def put(keys: list[str]) -> None:
            writer.put_vectors(
                vectors=[
                    {"key": k, "data": {"float32": data[k].tolist()}, "metadata": {"user_id": owner[k]}} for k in keys
                ],
                **names,
            )

        put(sorted(data))
        query = rng.standard_normal(8).astype(np.float32)

        def check() -> None:
            for user in ("u0", "u3"):
                out = reader.query_vectors(
                    topK=100, queryVector={"float32": query.tolist()}, filter={"user_id": user}, **names
                )["vectors"]
                mine = sorted(k for k in data if owner[k] == user)
                dist = [np.linalg.norm(data[k].astype(np.float64) - query.astype(np.float64)) for k in mine]
                assert [v["key"] for v in out] == [mine[i] for i in np.argsort(dist, kind="stable")]

        check()
        moved = [f"k{i}" for i in range(0, 60, 3)]
        for k in moved:
            owner[k] = "u3"
        put(moved)
        gone = [f"k{i}" for i in range(100, 160)]
        writer.delete_vectors(keys=gone, **names)
        for k in gone:
            del data[k], owner[k]
        data.update({f"n{i}": rng.standard_normal(8).astype(np.float32) for i in range(40)})
        owner.update({f"n{i}": "u0" for i in range(40)})
        put([f"n{i}" for i in range(40)])
        check()
