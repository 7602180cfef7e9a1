"""Metadata filters: every operator against an independent brute-force reference evaluator.

The reference below is written from the service documentation, separately from the engine's
compiled filters and inverted index, and hypothesis checks they agree on random metadata and
random nested filters. Explicit cases pin the documented edge semantics and the validation errors.
"""

from __future__ import annotations

import itertools
import operator
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from engine_support import expect_error, make_index
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from s3vectors_engine import LocalS3VectorsClient, _cache

# -- reference evaluator ------------------------------------------------------------------------


def _same(a: Any, b: Any) -> bool:
    """Equality as the service means it: booleans are not numbers, 1 == 1.0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) or isinstance(b, str):
        return isinstance(a, str) and isinstance(b, str) and a == b
    return bool(a == b)


def _elements(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


def _num(x: Any) -> bool:
    return isinstance(x, int | float) and not isinstance(x, bool)


def reference(flt: dict[str, Any], meta: dict[str, Any]) -> bool:
    """Does ``meta`` satisfy ``flt``? Straight from the documented operator table."""
    results = []
    for name, cond in flt.items():
        if name == "$and":
            results.append(all(reference(f, meta) for f in cond))
        elif name == "$or":
            results.append(any(reference(f, meta) for f in cond))
        else:
            ops = cond if isinstance(cond, dict) else {"$eq": cond}
            for op, arg in ops.items():
                present = name in meta
                elems = _elements(meta[name]) if present else []
                if op == "$eq":
                    results.append(any(_same(e, arg) for e in elems))
                elif op == "$ne":
                    results.append(not any(_same(e, arg) for e in elems))
                elif op == "$in":
                    results.append(any(_same(e, a) for e in elems for a in arg))
                elif op == "$nin":
                    results.append(not any(_same(e, a) for e in elems for a in arg))
                elif op == "$exists":
                    results.append(present == arg)
                else:
                    cmp = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}[op]
                    results.append(any(_num(e) and cmp(e, arg) for e in elems))
    return all(results)


# -- strategies ---------------------------------------------------------------------------------

FIELDS = ["genre", "year", "tags", "flag", "user_id"]
scalars = st.one_of(
    st.sampled_from(["a", "b", "c", ""]),
    st.integers(-2, 4),
    st.sampled_from([0.5, 1.0, 2.5]),
    st.booleans(),
)
meta_values = st.one_of(
    scalars, st.lists(st.one_of(st.sampled_from(["a", "b", "c"]), st.integers(0, 3)), min_size=1, max_size=3)
)
metadata = st.dictionaries(st.sampled_from(FIELDS), meta_values, max_size=5)
numbers = st.one_of(st.integers(-2, 4), st.sampled_from([0.5, 1.0, 2.5]))


def _condition() -> st.SearchStrategy[Any]:
    return st.one_of(
        scalars,
        st.fixed_dictionaries({}, optional={"$eq": scalars, "$ne": scalars}).filter(bool),
        st.builds(lambda op, n: {op: n}, st.sampled_from(["$gt", "$gte", "$lt", "$lte"]), numbers),
        st.builds(lambda op, xs: {op: xs}, st.sampled_from(["$in", "$nin"]), st.lists(scalars, min_size=1, max_size=3)),
        st.builds(lambda b: {"$exists": b}, st.booleans()),
        st.builds(lambda lo, hi: {"$gte": lo, "$lte": hi}, numbers, numbers),
    )


leaf = st.dictionaries(st.sampled_from(FIELDS), _condition(), min_size=1, max_size=2)
filters = st.recursive(
    leaf,
    lambda inner: st.one_of(
        st.builds(lambda xs: {"$and": xs}, st.lists(inner, min_size=1, max_size=3)),
        st.builds(lambda xs: {"$or": xs}, st.lists(inner, min_size=1, max_size=3)),
    ),
    max_leaves=6,
)

_names = itertools.count()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(population=st.lists(metadata, min_size=1, max_size=25), queries=st.lists(filters, min_size=1, max_size=4))
def test_filters_match_the_reference(
    engine: LocalS3VectorsClient, population: list[dict[str, Any]], queries: list[dict[str, Any]]
) -> None:
    names = make_index(engine, dimension=3, metric="euclidean", index=f"prop-{next(_names)}")
    rng = np.random.default_rng(len(population))
    vectors = [
        {"key": f"k{i}", "data": {"float32": rng.standard_normal(3).tolist()}, "metadata": meta}
        for i, meta in enumerate(population)
    ]
    engine.put_vectors(vectors=vectors, **names)
    for flt in queries:
        got = engine.query_vectors(topK=100, queryVector={"float32": [0.0, 0.0, 0.0]}, filter=flt, **names)
        expected = {f"k{i}" for i, meta in enumerate(population) if reference(flt, meta)}
        assert {v["key"] for v in got["vectors"]} == expected, flt
    engine.delete_index(**names)


# -- documented cases ---------------------------------------------------------------------------

DOCS = [
    {"key": "doc", "metadata": {"genre": ["documentary", "romance"], "year": 2019, "rated": True}},
    {"key": "scifi", "metadata": {"genre": "scifi", "year": 2021, "rated": False, "score": 7.5}},
    {"key": "drama", "metadata": {"genre": "drama", "year": 2020}},
    {"key": "bare", "metadata": {}},
]


@pytest.fixture
def docs(engine: LocalS3VectorsClient) -> Iterator[dict[str, str]]:
    names = make_index(engine, dimension=2, metric="euclidean", non_filterable=["content"])
    engine.put_vectors(
        vectors=[
            {"key": d["key"], "data": {"float32": [float(i), 1.0]}, "metadata": d["metadata"]}
            for i, d in enumerate(DOCS)
        ],
        **names,
    )
    yield names


def _keys(engine: LocalS3VectorsClient, names: dict[str, str], flt: Any) -> set[str]:
    out = engine.query_vectors(topK=10, queryVector={"float32": [0.0, 0.0]}, filter=flt, **names)
    return {v["key"] for v in out["vectors"]}


@pytest.mark.parametrize(
    ("flt", "expected"),
    [
        ({"genre": "documentary"}, {"doc"}),  # bare value is $eq; matches an element of a list
        ({"genre": {"$eq": "romance"}}, {"doc"}),
        ({"genre": {"$ne": "scifi"}}, {"doc", "drama", "bare"}),  # $ne also matches a missing key
        ({"year": {"$gt": 2019}}, {"scifi", "drama"}),
        ({"year": {"$gte": 2020, "$lt": 2021}}, {"drama"}),
        ({"year": {"$lte": 2019}}, {"doc"}),
        ({"score": {"$gt": 7}}, {"scifi"}),
        ({"genre": {"$gt": 1}}, set()),  # range ops never match strings
        ({"genre": {"$in": ["drama", "romance"]}}, {"doc", "drama"}),
        ({"genre": {"$nin": ["drama", "romance"]}}, {"scifi", "bare"}),
        ({"rated": {"$exists": True}}, {"doc", "scifi"}),
        ({"rated": {"$exists": False}}, {"drama", "bare"}),
        ({"rated": True}, {"doc"}),
        ({"rated": 1}, set()),  # true is not 1
        ({"year": 2020.0}, {"drama"}),  # 2020 == 2020.0
        ({"$and": [{"genre": "scifi"}, {"year": 2021}]}, {"scifi"}),
        ({"$or": [{"genre": "scifi"}, {"year": 2019}]}, {"scifi", "doc"}),
        ({"genre": "drama", "year": 2020}, {"drama"}),  # several keys are ANDed
        ({"genre": "drama", "year": 2021}, set()),
    ],
)
def test_documented_operator_semantics(
    engine: LocalS3VectorsClient, docs: dict[str, str], flt: dict[str, Any], expected: set[str]
) -> None:
    assert _keys(engine, docs, flt) == expected
    assert {d["key"] for d in DOCS if reference(flt, d["metadata"])} == expected


@pytest.mark.parametrize(
    "flt",
    [
        {},
        {"genre": {"$regex": "d.*"}},
        {"$not": {"genre": "drama"}},
        {"genre": {"$in": []}},
        {"genre": {"$nin": "drama"}},
        {"$and": []},
        {"$or": {"genre": "drama"}},
        {"year": {"$gt": "2019"}},
        {"year": {"$lt": True}},
        {"rated": {"$exists": "yes"}},
        {"genre": ["drama"]},
        {"genre": None},
        {"genre": {}},
        {"genre": {"$eq": {"nested": 1}}},
        {"content": "secret"},  # non-filterable key
        {"$or": [{"genre": "drama"}, {"content": {"$exists": True}}]},
    ],
)
def test_invalid_filters_are_validation_errors(
    engine: LocalS3VectorsClient, docs: dict[str, str], flt: dict[str, Any]
) -> None:
    error = expect_error(
        "ValidationException",
        400,
        engine.query_vectors,
        topK=1,
        queryVector={"float32": [0.0, 0.0]},
        filter=flt,
        **docs,
    )
    assert error.response["Error"]["Message"].startswith("Invalid query filter")


def test_selective_filter_returns_fewer_than_top_k(engine: LocalS3VectorsClient, docs: dict[str, str]) -> None:
    out = engine.query_vectors(topK=10, queryVector={"float32": [0.0, 0.0]}, filter={"genre": "drama"}, **docs)
    assert [v["key"] for v in out["vectors"]] == ["drama"]


# -- the inverted index -------------------------------------------------------------------------


def test_pinned_equality_scores_only_that_users_rows(
    engine: LocalS3VectorsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory store's {"user_id", "agent_name"} filter must not touch other users' vectors."""
    names = make_index(engine, dimension=4, non_filterable=["content"])
    rng = np.random.default_rng(7)
    vectors = [
        {
            "key": f"k{i}",
            "data": {"float32": (rng.standard_normal(4) + 3).tolist()},
            "metadata": {"user_id": f"u{i % 10}", "agent_name": "a" if i % 20 < 10 else "b", "content": "x"},
        }
        for i in range(400)
    ]
    engine.put_vectors(vectors=vectors, **names)
    scored: list[int] = []
    evaluated: list[dict[str, Any]] = []
    real_score = _cache.IndexCache._score

    def spy_score(self: _cache.IndexCache, query: Any, top_k: int, rows: Any) -> Any:
        scored.append(self.size if rows is None else len(rows))
        return real_score(self, query, top_k, rows)

    monkeypatch.setattr(_cache.IndexCache, "_score", spy_score)
    from s3vectors_engine import _filters

    real_range = _filters._Range.matches

    def spy_range(self: Any, meta: Any) -> bool:
        evaluated.append(dict(meta))
        return real_range(self, meta)

    monkeypatch.setattr(_filters._Range, "matches", spy_range)
    query = {"topK": 100, "queryVector": {"float32": [1.0, 1.0, 1.0, 1.0]}, **names}
    top = engine.query_vectors(filter={"user_id": "u3", "agent_name": "a"}, **query)["vectors"]
    expected = {f"k{i}" for i in range(400) if i % 10 == 3 and i % 20 < 10}
    assert {v["key"] for v in top} == expected
    assert scored == [len(expected)]
    nested = {"$and": [{"user_id": {"$eq": "u3"}}, {"agent_name": "a"}, {"n": {"$gt": 1}}]}
    assert engine.query_vectors(filter=nested, **query)["vectors"] == []
    # The range is decided by the inverted index as well: no metadata is checked one by one.
    assert evaluated == []


def test_broad_and_range_filters_over_a_key_unique_per_row(
    engine: LocalS3VectorsClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A filterable timestamp makes one metadata combination per vector: a filter admitting many of
    them (every vector, half of them by a range) stays exact without checking each one's metadata,
    which made such a query take seconds at 1M vectors (``bench/index_mode_bench.py``)."""
    names = make_index(engine, dimension=4, metric="euclidean")
    rng = np.random.default_rng(5)
    size = 3000
    data = rng.standard_normal((size, 4)).astype(np.float32)
    meta = [{"agent": "a", "ts": float(i % 1500) + (0.5 if i % 3 else 0), "user": f"u{i % 7}"} for i in range(size)]
    for start in range(0, size, 500):
        engine.put_vectors(vectors=[
            {"key": f"k{i}", "data": {"float32": data[i].tolist()}, "metadata": meta[i]}
            for i in range(start, start + 500)
        ], **names)
    engine.delete_vectors(keys=[f"k{i}" for i in range(0, size, 10)], **names)  # free slots among the rows
    live = [i for i in range(size) if i % 10]
    query = rng.standard_normal(4).astype(np.float32)
    engine.query_vectors(topK=1, queryVector={"float32": query.tolist()}, **names)  # the index into memory
    parsed: list[str] = []
    real_parse = _cache._parse
    monkeypatch.setattr(_cache, "_parse", lambda text: parsed.append(text) or real_parse(text))
    cases = [
        ({"agent": "a"}, lambda m: True),
        ({"ts": {"$gte": 750.0}}, lambda m: m["ts"] >= 750.0),
        ({"ts": {"$gt": 750.0}}, lambda m: m["ts"] > 750.0),
        ({"ts": {"$lt": 10.5}}, lambda m: m["ts"] < 10.5),
        ({"ts": {"$lte": 10.5}}, lambda m: m["ts"] <= 10.5),
        ({"user": "u3", "ts": {"$gte": 200.0, "$lt": 900.0}}, lambda m: m["user"] == "u3" and 200 <= m["ts"] < 900),
        ({"$or": [{"ts": {"$lt": 100.0}}, {"user": "u1"}]}, lambda m: m["ts"] < 100 or m["user"] == "u1"),
    ]
    for flt, admits in cases:
        rows = [i for i in live if admits(meta[i])]
        distance = np.linalg.norm(data[rows] - query, axis=1)
        expected = [f"k{rows[j]}" for j in np.argsort(distance, kind="stable")[:30]]
        got = engine.query_vectors(topK=30, queryVector={"float32": query.tolist()}, filter=flt, **names)
        assert [v["key"] for v in got["vectors"]] == expected, flt
    assert parsed == []


small_meta = st.fixed_dictionaries(
    {"user_id": st.sampled_from(["u1", "u2"])}, optional={"tag": st.sampled_from(["x", "y"]), "n": st.integers(0, 2)}
)
operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 9), small_meta),
        st.tuples(st.just("delete"), st.integers(0, 9), st.just({})),
    ),
    min_size=1,
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=operations, flt=filters)
def test_filters_stay_right_through_updates_and_deletes(
    engine: LocalS3VectorsClient, ops: list[tuple[str, int, dict[str, Any]]], flt: dict[str, Any]
) -> None:
    """Rows moving between metadata values, and values disappearing, keep the inverted index exact."""
    names = make_index(engine, dimension=2, metric="euclidean", index=f"ops-{next(_names)}")
    query: dict[str, Any] = {"topK": 100, "queryVector": {"float32": [0.0, 0.0]}, **names}
    engine.query_vectors(**query)  # warm cache: later changes arrive as deltas
    model: dict[str, dict[str, Any]] = {}
    for op, i, meta in ops:
        key = f"k{i}"
        if op == "put":
            engine.put_vectors(vectors=[{"key": key, "data": {"float32": [1.0, float(i)]}, "metadata": meta}], **names)
            model[key] = meta
        else:
            engine.delete_vectors(keys=[key], **names)
            model.pop(key, None)
        got = {v["key"] for v in engine.query_vectors(filter={"user_id": "u1"}, **query)["vectors"]}
        assert got == {k for k, m in model.items() if m["user_id"] == "u1"}
        got = {v["key"] for v in engine.query_vectors(filter=flt, **query)["vectors"]}
        assert got == {k for k, m in model.items() if reference(flt, m)}, flt
    engine.delete_index(**names)
