"""Filtered QueryVectors latency of one index in CLASSIC, then in ENHANCED mode, side by side.

Builds N unit vectors (384-d, the bundled model's size) for ``--users`` users in a CLASSIC-era
bucket (made with the engine's clock before 2026-09-30), times the memory store's filtered query
(top-10, ``user_id`` + ``agent_name``, metadata and distances) and a filter the inverted index
cannot decide alone (a numeric range beside the user), then switches the index to ENHANCED in
place (``UpdateIndexMode``) and times the same queries, plus ENHANCED's ``$startsWith``. Both modes
filter before scoring and are exact; the check is that ENHANCED costs nothing extra. Last, ``content``
is made full-text searchable (the backfill is timed) and the hybrid query of the memory store is timed.

Run: ``python3 bench/index_mode_bench.py --sizes 100000`` (1M takes minutes and ~2 GB).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from s3vectors_engine import LocalS3VectorsClient

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

WHERE = {"vectorBucketName": "modes", "indexName": "memory"}
BEFORE_CUTOFF = datetime(2026, 6, 1, tzinfo=timezone.utc).timestamp()
DIM = 384


def build(client: LocalS3VectorsClient, size: int, users: int, seed: int = 3) -> np.random.Generator:
    client.create_vector_bucket(vectorBucketName=WHERE["vectorBucketName"])
    client.create_index(**WHERE, dataType="float32", dimension=DIM, distanceMetric="cosine",
                        metadataConfiguration={"nonFilterableMetadataKeys": ["content"]})
    rng = np.random.default_rng(seed)
    for start in tqdm(range(0, size, 500), desc=f"build {size:,}", unit="batch"):
        n = min(500, size - start)
        block = rng.standard_normal((n, DIM)).astype(np.float32)
        client.put_vectors(**WHERE, vectors=[
            {"key": f"k{start + i}", "data": {"float32": block[i].tolist()},
             "metadata": {"user_id": f"user-{(start + i) % users}", "agent_name": "assistant",
                          "stored_ts": float(start + i), "content": f"memory number {start + i}"}}
            for i in range(n)
        ])
    return rng


def timed(ask: Callable[[], Any], rounds: int) -> tuple[float, float]:
    samples = []
    for _ in range(rounds):
        started = time.perf_counter()
        ask()
        samples.append(time.perf_counter() - started)
    arr = np.asarray(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95))


def run(size: int, users: int, rounds: int) -> list[tuple[str, str, float, float]]:
    rows: list[tuple[str, str, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="index-modes-") as root:
        client = LocalS3VectorsClient(root, clock=lambda: BEFORE_CUTOFF)
        rng = build(client, size, users)
        queries = [rng.standard_normal(DIM).astype(np.float32).tolist() for _ in range(rounds)]
        filters: dict[str, Callable[[int], dict[str, Any]]] = {
            "user + agent": lambda i: {"user_id": f"user-{i % users}", "agent_name": "assistant"},
            "user + range": lambda i: {"user_id": f"user-{i % users}", "stored_ts": {"$gte": size / 2}},
        }

        def series(mode: str, name: str, make: Callable[[int], dict[str, Any]]) -> None:
            counter = iter(range(10**9))

            def ask() -> Any:
                i = next(counter)
                return client.query_vectors(**WHERE, topK=10, queryVector={"float32": queries[i % rounds]},
                                            filter=make(i), returnMetadata=True, returnDistance=True)

            ask()  # load the index into memory
            p50, p95 = timed(ask, rounds)
            rows.append((mode, name, p50, p95))

        for name, make in filters.items():
            series("CLASSIC", name, make)
        client.update_index_mode(**WHERE, indexMode="ENHANCED")
        for name, make in filters.items():
            series("ENHANCED", name, make)
        series("ENHANCED", "user + $startsWith", lambda i: {"user_id": {"$startsWith": f"user-{i % users}"}})
        # full-text: make content searchable (backfilled over every vector), then hybrid queries
        started = time.perf_counter()
        client.update_metadata_configuration(**WHERE, add={"textSearchConfigurations": [{"metadataKey": "content"}]})
        while client.get_index(**WHERE)["index"]["metadataConfiguration"]["textSearchConfigurations"][0][
            "status"
        ] != "ACTIVE":
            time.sleep(0.05)
        rows.append(("ENHANCED", "backfill content (BUILDING -> ACTIVE), s", time.perf_counter() - started, 0.0))
        counter = iter(range(10**9))

        def hybrid() -> Any:
            i = next(counter)
            return client.query_vectors(
                **WHERE, topK=10, queryVector={"float32": queries[i % rounds]}, returnMetadata=True,
                filter={"user_id": f"user-{i % users}", "agent_name": "assistant"}, returnScores=True,
                queryTexts=[{"metadataKey": "content", "text": f"memory number {i * 7 % size}"}],
            )

        hybrid()
        p50, p95 = timed(hybrid, rounds)
        rows.append(("ENHANCED", "user + agent, hybrid (vector + words)", p50, p95))
        client.close()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print("| vectors | mode | filter | p50 ms | p95 ms |")
    print("|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        for mode, name, p50, p95 in run(size, args.users, args.rounds):
            print(f"| {size:,} | {mode} | {name} | {p50:.2f} | {p95:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
