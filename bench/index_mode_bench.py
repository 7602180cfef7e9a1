"""Filtered QueryVectors latency and exactness of one index in CLASSIC, then in ENHANCED mode, side by side.

Builds N random vectors (``--dim``, default 384, the bundled model's size) for ``--users`` users in
a CLASSIC-era bucket (made with the engine's clock before 2026-09-30) and times top-10 queries
(metadata and distances) under selective filters (one user: the memory store's ``user_id`` +
``agent_name``, and one user + a numeric range the inverted index cannot decide alone) and broad ones
(``agent_name``, which every vector has, and a range holding half of them). Then it switches the
index to ENHANCED in place (``UpdateIndexMode``) and times the same queries, plus ENHANCED's
``$startsWith``. Every answer of the first ``--check`` queries of each series is compared with a
brute-force top-10 over the vectors the filter admits (numpy, float64): "recall" is the share of the
true top-10 returned, so 1.000 means exact. Last, ``content`` is made full-text searchable (the
backfill is timed) and the hybrid query of the memory store is timed.

Run: ``python3 bench/index_mode_bench.py --sizes 100000``; 1M vectors:
``nice -n 10 python3 bench/index_mode_bench.py --sizes 1000000 --rounds 100`` (~3 GB, minutes).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
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
TOP_K = 10
BATCH = 500


@dataclass(frozen=True)
class Corpus:
    """What was stored, kept beside the engine for the brute-force answers."""

    matrix: np.ndarray  # (n, dim) float32, as put
    user: np.ndarray  # user number of each vector
    users: int
    norms: np.ndarray  # each vector's length (float32)

    @property
    def size(self) -> int:
        return int(self.matrix.shape[0])


@dataclass(frozen=True)
class Filter:
    """A QueryVectors filter for query ``i`` and the mask of the vectors it admits."""

    name: str
    make: Callable[[int], dict[str, Any]]
    admits: Callable[[int], np.ndarray]


def build(client: LocalS3VectorsClient, size: int, users: int, dim: int, seed: int = 3) -> Corpus:
    client.create_vector_bucket(vectorBucketName=WHERE["vectorBucketName"])
    client.create_index(**WHERE, dataType="float32", dimension=dim, distanceMetric="cosine",
                        metadataConfiguration={"nonFilterableMetadataKeys": ["content"]})
    rng = np.random.default_rng(seed)
    matrix = rng.standard_normal((size, dim), dtype=np.float32)
    for start in tqdm(range(0, size, BATCH), desc=f"build {size:,}", unit="batch", mininterval=10):
        n = min(BATCH, size - start)
        client.put_vectors(**WHERE, vectors=[
            {"key": f"k{start + i}", "data": {"float32": row},
             "metadata": {"user_id": f"user-{(start + i) % users:04d}", "agent_name": "assistant",
                          "stored_ts": float(start + i), "content": f"memory number {start + i}"}}
            for i, row in enumerate(matrix[start : start + n].tolist())
        ])
    return Corpus(matrix, np.arange(size) % users, users, np.linalg.norm(matrix, axis=1))


def filters(corpus: Corpus) -> list[Filter]:
    """Selective (one user of ``users``) and broad (every vector, half of them) filters."""
    users, size = corpus.users, corpus.size
    everyone = np.ones(size, dtype=bool)
    late = np.arange(size) >= size / 2
    return [
        Filter("selective: user + agent (the memory store's)",
               lambda i: {"user_id": f"user-{i % users:04d}", "agent_name": "assistant"},
               lambda i: corpus.user == i % users),
        Filter("selective: user + numeric range",
               lambda i: {"user_id": f"user-{i % users:04d}", "stored_ts": {"$gte": size / 2}},
               lambda i: (corpus.user == i % users) & late),
        Filter("broad: agent (every vector)", lambda i: {"agent_name": "assistant"}, lambda i: everyone),
        Filter("broad: numeric range (half)", lambda i: {"stored_ts": {"$gte": size / 2}}, lambda i: late),
    ]


def truth(corpus: Corpus, query: np.ndarray, admitted: np.ndarray) -> set[str]:
    """The exact top-10 keys among the admitted vectors: cosine over all of them in float32, then
    the best 100 re-ranked in float64 (no gather of the admitted rows: at 1M that is gigabytes)."""
    q = query / np.linalg.norm(query)
    cos = np.einsum("ij,j->i", corpus.matrix, q) / corpus.norms
    cos[~admitted] = -np.inf
    keep = min(100, int(admitted.sum()))
    best = np.argpartition(-cos, keep - 1)[:keep] if keep < len(cos) else np.arange(len(cos))
    best = best[np.isfinite(cos[best])]
    block = corpus.matrix[best].astype(np.float64)
    exact = (block @ q.astype(np.float64)) / np.linalg.norm(block, axis=1)
    top = best[np.argsort(-exact, kind="stable")[:TOP_K]]
    return {f"k{r}" for r in top.tolist()}


def timed(ask: Callable[[int], Any], rounds: int) -> tuple[float, float, list[Any]]:
    samples, answers = [], []
    for i in range(rounds):
        started = time.perf_counter()
        answers.append(ask(i))
        samples.append(time.perf_counter() - started)
    arr = np.asarray(samples) * 1000
    return float(np.percentile(arr, 50)), float(np.percentile(arr, 95)), answers


Row = tuple[str, str, float, float, float | None]


def run(size: int, users: int, rounds: int, dim: int, check: int) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="index-modes-") as root:
        client = LocalS3VectorsClient(root, clock=lambda: BEFORE_CUTOFF)
        corpus = build(client, size, users, dim)
        rng = np.random.default_rng(11)
        queries = rng.standard_normal((rounds, dim), dtype=np.float32)
        as_lists = queries.tolist()
        expected: dict[tuple[str, int], set[str]] = {}

        def series(mode: str, f: Filter) -> None:
            def ask(i: int) -> Any:
                return client.query_vectors(**WHERE, topK=TOP_K, queryVector={"float32": as_lists[i]},
                                            filter=f.make(i), returnMetadata=True, returnDistance=True)

            ask(0)  # load the index into memory
            p50, p95, answers = timed(ask, rounds)
            recall = []
            for i, answer in enumerate(answers[:check]):
                want = expected.setdefault((f.name, i), truth(corpus, queries[i], f.admits(i)))
                got = {v["key"] for v in answer["vectors"]}
                recall.append(len(got & want) / len(want))
            rows.append((mode, f.name, p50, p95, float(np.mean(recall)) if recall else None))

        for f in filters(corpus):
            series("CLASSIC", f)
        client.update_index_mode(**WHERE, indexMode="ENHANCED")
        for f in filters(corpus):
            series("ENHANCED", f)
        series("ENHANCED", Filter("selective: user $startsWith",
                                  lambda i: {"user_id": {"$startsWith": f"user-{i % users:04d}"}},
                                  lambda i: corpus.user == i % users))  # zero-padded: one user
        # full-text: make content searchable (backfilled over every vector), then hybrid queries
        started = time.perf_counter()
        client.update_metadata_configuration(**WHERE, add={"textSearchConfigurations": [{"metadataKey": "content"}]})
        while client.get_index(**WHERE)["index"]["metadataConfiguration"]["textSearchConfigurations"][0][
            "status"
        ] != "ACTIVE":
            time.sleep(0.05)
        rows.append(("ENHANCED", "backfill content (BUILDING -> ACTIVE), s", time.perf_counter() - started, 0.0, None))

        def hybrid(i: int) -> Any:
            return client.query_vectors(
                **WHERE, topK=TOP_K, queryVector={"float32": as_lists[i]}, returnMetadata=True,
                filter={"user_id": f"user-{i % users:04d}", "agent_name": "assistant"}, returnScores=True,
                queryTexts=[{"metadataKey": "content", "text": f"memory number {i * 7 % size}"}],
            )

        hybrid(0)
        p50, p95, _answers = timed(hybrid, rounds)
        rows.append(("ENHANCED", "selective: user + agent, hybrid (vector + words)", p50, p95, None))
        client.close()
    return rows


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=200)
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--check", type=int, default=20, help="queries per series compared with brute force")
    args = parser.parse_args(argv)
    print(f"machine: {machine()}")
    print(f"| vectors | mode | filter | p50 ms | p95 ms | recall@{TOP_K} vs brute force |")
    print("|---|---|---|---|---|---|")
    for size in (int(s) for s in args.sizes.split(",")):
        for mode, name, p50, p95, recall in run(size, args.users, args.rounds, args.dim, args.check):
            exact = "" if recall is None else f"{recall:.3f}"
            print(f"| {size:,} | {mode} | {name} | {p50:.2f} | {p95:.2f} | {exact} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
