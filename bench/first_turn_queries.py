"""A first turn's reads over the network: memories and facts side by side, one after the other, and 0.3.0's one query.

The first turn asks two ``QueryVectors`` (the memories' hybrid query and the user's facts), side by
side on the AWS backend (:func:`~strands_s3_vectors_memory.store._search.beside`). This measures what that
costs against the same two one after the other and against 0.3.0's single dense top-5 query, with
the query's embedding cached (it is the same work in all three) so only the reads and the ranking
differ. Three more variants take the first turn apart: its memories query alone (the hybrid top
30, no ranking), its facts query alone, and a request carrying no vector (``GetIndex``: what any
request costs); botocore's own time to build and sign a ``QueryVectors`` (its
``before-parameter-build`` to ``before-send`` events) is reported too. All run interleaved, query by
query, from a process of their own (the endpoint serves from this one, as in ``plugin_overhead.py``),
through the local endpoint directly and through a :class:`~_common.DelayedLink` adding a network
round trip (``--rtt-ms``): on the local endpoint a request costs the server's Python (one process
serves both reads), on AWS it is mostly waiting.

Index: ``plugin_overhead.py``'s (``--memories`` bulk-loaded memories plus the benchmark user's
conversations). Run: ``python3 bench/first_turn_queries.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DelayedLink, bench_aws_env, machine, run_child

VARIANTS = ("ours, side by side", "ours, one after the other", "0.3.0's one dense query",
            "its memories query alone", "its facts query alone", "a request without a vector")


def _child(url: str, queries: int) -> dict[str, dict[str, float]]:
    """Time the variants, interleaved, against ``url``; median and p95 ms of each, and botocore's
    median time to build and sign a ``QueryVectors`` (``"botocore build"``)."""
    from plugin_overhead import AGENT, USER, endpoint_store
    from strands_s3_vectors_memory.archive import find_facts
    from strands_s3_vectors_memory.store import _index_store as index_store
    from strands_s3_vectors_memory.store._index_store import MAX_TOP_K
    from strands_s3_vectors_memory.store._search import HYBRID_CANDIDATE_FACTOR, query_vector, text_query

    store = endpoint_store(url)
    scope = store.scope(USER, AGENT)
    target = store._scope_target(scope)
    texts = [f"What should I cook for my friends this Sunday, question {i}?" for i in range(queries)]
    for text in texts:  # cached from here on: every variant embeds the same text the same way
        query_vector(store.embedder, text)

    def first_turn(text: str) -> None:  # what retrieval.recall asks
        store.search_with_facts(scope, text, top_k=5, fact_k=MAX_TOP_K, include_superseded=True,
                                fact_threshold=-math.inf)

    def inline(call: Callable[[], Any]) -> Callable[[], Any]:  # run now, hand the result back when asked
        result = call()
        return lambda: result

    def one_after_the_other(text: str) -> None:
        side_by_side = index_store.beside
        index_store.beside = inline
        try:
            first_turn(text)
        finally:
            index_store.beside = side_by_side

    def original(text: str) -> None:  # 0.3.0's retrieve_memories: embed, one dense top-5 query
        target.client.query_vectors(
            vectorBucketName=target.bucket_name, indexName=target.index_name, topK=5,
            queryVector={"float32": query_vector(store.embedder, text)},
            filter={"$and": [{"user_id": USER}, {"agent_name": AGENT}]}, returnDistance=True, returnMetadata=True)

    def memories_alone(text: str) -> None:  # the hybrid query of store._search.search_index, unranked
        target.client.query_vectors(
            vectorBucketName=target.bucket_name, indexName=target.index_name, topK=HYBRID_CANDIDATE_FACTOR * 5,
            queryVector={"float32": query_vector(store.embedder, text)}, filter=scope.metadata_filter(),
            returnDistance=True, returnMetadata=True,
            queryTexts=[{"metadataKey": str(target.text_key), "text": text_query(text)}])

    def facts_alone(text: str) -> None:
        find_facts(target, scope, query_vector(store.embedder, text), top_k=MAX_TOP_K, include_superseded=True)

    def no_vector(_text: str) -> None:
        target.client.get_index(vectorBucketName=target.bucket_name, indexName=target.index_name)

    runs: dict[str, Callable[[str], None]] = dict(zip(
        VARIANTS, (first_turn, one_after_the_other, original, memories_alone, facts_alone, no_vector), strict=True))
    builds: list[float] = []
    build_started: list[float] = []
    client = target.client
    client.meta.events.register(  # type: ignore[attr-defined]
        "before-parameter-build.s3vectors.QueryVectors", lambda **_: build_started.append(time.perf_counter()))
    client.meta.events.register(  # type: ignore[attr-defined]
        "before-send.s3vectors.QueryVectors", lambda **_: builds.append(time.perf_counter() - build_started[-1]))
    for call in runs.values():
        call("warm up")
    times: dict[str, list[float]] = {name: [] for name in runs}
    for text in texts:
        for name, call in runs.items():
            started = time.perf_counter()
            call(text)
            times[name].append(1000 * (time.perf_counter() - started))
    result = {name: {"median_ms": statistics.median(t), "p95_ms": statistics.quantiles(t, n=20)[18]}
              for name, t in times.items()}
    result["botocore build"] = {"median_ms": 1000 * statistics.median(builds)}
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=20_000, help="memories in the index (%(default)s)")
    parser.add_argument("--queries", type=int, default=200, help="first turns per variant and link")
    parser.add_argument("--rtt-ms", type=float, nargs="+", default=[0.0, 10.0], help="round trips to add")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        print(json.dumps(_child(args.child, args.queries)))
        return 0

    from plugin_overhead import BUCKET, bulk_load, seed_user
    from s3vectors_engine.server import LocalEndpoint
    from strands_s3_vectors_memory import S3VectorMemory
    from strands_s3_vectors_memory.embeddings import make_embedder

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="first-turn-queries-") as scratch:
        store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=scratch, embedder=make_embedder("local"))
        bulk_load(store, args.memories)
        seed_user(store)
        store._get_s3vectors_client().close()
        with LocalEndpoint(scratch) as endpoint:
            for rtt in args.rtt_ms:
                with DelayedLink(int(endpoint.url.rsplit(":", 1)[1]), rtt / 1000) as link:
                    url = link.url if rtt else endpoint.url
                    results[f"{rtt:g}"] = run_child("first_turn_queries.py", ["--child", url, "--queries",
                                                                               str(args.queries)],
                                                    env=bench_aws_env(None), timeout=3600)
    print(f"\nmachine: {machine()}")
    print(f"index: {args.memories:,} bulk-loaded memories; {args.queries} first turns per variant and link, "
          "interleaved; query embedding cached")
    print("| link | " + " | ".join(VARIANTS) + " |")
    print("|---|" + "---|" * len(VARIANTS))
    for rtt, by_variant in results.items():
        if by_variant is None:
            continue
        label = f"+{rtt} ms a round trip" if rtt != "0" else "local endpoint"
        print(f"| {label} | " + " | ".join(f"{by_variant[v]['median_ms']:.1f} ms (p95 {by_variant[v]['p95_ms']:.1f})"
                                         for v in VARIANTS) + " |")
    for rtt, by_variant in results.items():
        if by_variant is not None:
            print(f"botocore builds and signs a QueryVectors in {by_variant['botocore build']['median_ms']:.2f} ms "
                  f"(median, {'local endpoint' if rtt == '0' else f'+{rtt} ms'})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
