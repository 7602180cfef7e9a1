"""Benchmark of the embedded S3 Vectors engine on the memory store's hot path.

For each index size it builds identical data (unit vectors, ``--users`` users, ``--agents``
agents, a non-filterable ``content`` string), then times the query the memory store sends on
every turn: top-10 nearest with ``{"user_id": u, "agent_name": a}``, returning metadata and
distances. It reports p50/p95 latency for:

* ``engine``: :class:`LocalS3VectorsClient.query_vectors` (validation, SQLite freshness check,
  inverted-index lookup, numpy scoring, metadata fetch, response building);
* ``numpy floor``: a numpy flat scan of exactly that user's vectors, pre-gathered into one
  contiguous array (the physical minimum of exact search: no lookup, no API, no I/O);
* ``numpy masked scan``: a numpy flat scan that first masks the whole matrix by user/agent (what
  a plain "filter then score" implementation costs);
* a peer embedded vector store (chromadb) on identical data, where installed.

It also reports build time through the API, reopen+first-query time (cold cache load from
SQLite), the engine's agreement with the exact numpy answer, and peak RSS.

Run ``python bench/engine_bench.py --help``. Not a test: it takes minutes at 1M vectors.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import resource
import shutil
import sqlite3
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from s3vectors_engine import LocalS3VectorsClient
from s3vectors_engine._filters import compile_filter

BUCKET = "bench-bucket"
INDEX = "memory"
NAMES = {"vectorBucketName": BUCKET, "indexName": INDEX}


@dataclass
class Latency:
    """Latency percentiles of one system at one size, in microseconds."""

    p50_us: float
    p95_us: float

    @classmethod
    def of(cls, samples: Sequence[float]) -> Latency:
        arr = np.asarray(samples) * 1e6
        return cls(float(np.percentile(arr, 50)), float(np.percentile(arr, 95)))


@dataclass
class SizeResult:
    """Everything measured at one index size."""

    size: int
    build_s: float
    reopen_first_query_s: float
    engine: Latency
    numpy_floor: Latency
    numpy_masked: Latency
    agreement: float
    core: Latency | None = None
    peer: Latency | None = None
    peer_build_s: float | None = None
    peer_recall: float | None = None
    rss_mb: float = 0.0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class Dataset:
    """Identical data for every system: vectors, owners, agents."""

    vectors: np.ndarray
    users: np.ndarray
    agents: np.ndarray
    agent_names: list[str]

    @classmethod
    def make(cls, size: int, dim: int, users: int, agents: int, seed: int) -> Dataset:
        rng = np.random.default_rng(seed)
        vectors = np.empty((size, dim), dtype=np.float32)
        for start in range(0, size, 100_000):  # chunked to keep the float64 temporaries small
            chunk = rng.standard_normal((min(100_000, size - start), dim)).astype(np.float32)
            chunk /= np.linalg.norm(chunk, axis=1, keepdims=True)
            vectors[start : start + len(chunk)] = chunk
        return cls(
            vectors=vectors,
            users=rng.integers(0, users, size),
            agents=rng.integers(0, agents, size),
            agent_names=[f"agent-{a}" for a in range(agents)],
        )

    def metadata(self, i: int) -> dict[str, Any]:
        return {
            "user_id": f"user-{int(self.users[i])}",
            "agent_name": self.agent_names[int(self.agents[i])],
            "content": f"summary of conversation {i}: the user prefers tea, lives in Lisbon",
        }


def _build_engine(root: Path, data: Dataset, batch: int) -> float:
    start = time.perf_counter()
    with LocalS3VectorsClient(root) as client:
        client.create_vector_bucket(vectorBucketName=BUCKET)
        client.create_index(
            dataType="float32",
            dimension=data.vectors.shape[1],
            distanceMetric="cosine",
            metadataConfiguration={"nonFilterableMetadataKeys": ["content"]},
            **NAMES,
        )
        size = len(data.vectors)
        for lo in tqdm(range(0, size, batch), desc=f"engine build {size:,}", unit="batch", leave=False):
            hi = min(size, lo + batch)
            rows = data.vectors[lo:hi].tolist()
            client.put_vectors(
                vectors=[
                    {"key": f"mem-{i}", "data": {"float32": rows[i - lo]}, "metadata": data.metadata(i)}
                    for i in range(lo, hi)
                ],
                **NAMES,
            )
    return time.perf_counter() - start


def _chroma_bench(
    root: Path, data: Dataset, queries: list[tuple[np.ndarray, int, int]], truth: list[list[int]]
) -> tuple[Latency, float, float] | None:
    try:
        import chromadb
    except ImportError:
        return None
    client = chromadb.PersistentClient(path=str(root / "chroma"))
    collection = client.create_collection("memory", metadata={"hnsw:space": "cosine"})
    size = len(data.vectors)
    step = 5000
    start = time.perf_counter()
    for lo in tqdm(range(0, size, step), desc=f"chromadb build {size:,}", unit="batch", leave=False):
        hi = min(size, lo + step)
        metas = [data.metadata(i) for i in range(lo, hi)]
        collection.add(
            ids=[f"mem-{i}" for i in range(lo, hi)],
            embeddings=data.vectors[lo:hi],
            metadatas=metas,  # type: ignore[arg-type]
            documents=[m.pop("content") for m in metas],
        )
    build = time.perf_counter() - start
    samples: list[float] = []
    hits = 0
    for (q, user, agent), expected in zip(queries, truth, strict=True):
        where = {"$and": [{"user_id": f"user-{user}"}, {"agent_name": data.agent_names[agent]}]}
        t0 = time.perf_counter()
        out = collection.query(
            query_embeddings=[q.tolist()], n_results=10, where=where, include=["metadatas", "distances"]
        )
        samples.append(time.perf_counter() - t0)
        got = {int(k.split("-")[1]) for k in out["ids"][0]}
        hits += len(got & set(expected))
    recall = hits / max(1, sum(len(t) for t in truth))
    return Latency.of(samples[len(samples) // 10 :]), build, recall


def run_size(size: int, args: argparse.Namespace) -> SizeResult:
    data = Dataset.make(size, args.dim, args.users, args.agents, args.seed)
    if args.workdir:
        Path(args.workdir).mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"engine-bench-{size}-", dir=args.workdir))
    try:
        build = _build_engine(work / "engine", data, args.batch)
        rng = np.random.default_rng(args.seed + 1)
        queries = []
        for _ in range(args.queries):
            q = rng.standard_normal(args.dim).astype(np.float32)
            queries.append((q / np.linalg.norm(q), int(rng.integers(args.users)), int(rng.integers(args.agents))))

        # Exact answers and the numpy floor: each query's (user, agent) rows pre-gathered.
        groups: dict[tuple[int, int], np.ndarray] = {}
        for _q, u, a in queries:
            if (u, a) not in groups:
                groups[(u, a)] = np.flatnonzero((data.users == u) & (data.agents == a))
        gathered = {g: np.ascontiguousarray(data.vectors[rows]) for g, rows in groups.items()}

        def floor(q: np.ndarray, u: int, a: int) -> list[int]:
            block = gathered[(u, a)]
            dist = 1.0 - block @ q
            k = min(10, len(dist))
            top = np.argpartition(dist, k - 1)[:k] if k < len(dist) else np.arange(len(dist))
            return [int(groups[(u, a)][i]) for i in top[np.argsort(dist[top])]]

        def masked(q: np.ndarray, u: int, a: int) -> list[int]:
            rows = np.flatnonzero((data.users == u) & (data.agents == a))
            dist = 1.0 - data.vectors[rows] @ q
            k = min(10, len(dist))
            top = np.argpartition(dist, k - 1)[:k] if k < len(dist) else np.arange(len(dist))
            return [int(rows[i]) for i in top[np.argsort(dist[top])]]

        truth = [floor(q, u, a) for q, u, a in queries]
        floor_samples: list[float] = []
        masked_samples: list[float] = []
        for q, u, a in queries:
            t0 = time.perf_counter()
            floor(q, u, a)
            floor_samples.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            masked(q, u, a)
            masked_samples.append(time.perf_counter() - t0)

        # The engine, reopened: the first query loads the index from SQLite into memory.
        gc.collect()
        with LocalS3VectorsClient(work / "engine") as client:
            qlists = [q.tolist() for q, _u, _a in queries]

            def ask(i: int) -> Any:
                _q, u, a = queries[i]
                return client.query_vectors(
                    topK=10,
                    queryVector={"float32": qlists[i]},
                    filter={"user_id": f"user-{u}", "agent_name": data.agent_names[a]},
                    returnMetadata=True,
                    returnDistance=True,
                    **NAMES,
                )

            t0 = time.perf_counter()
            ask(0)
            first = time.perf_counter() - t0
            for i in range(min(20, len(queries))):  # warm-up
                ask(i)
            engine_samples = []
            agree = 0
            for i in range(len(queries)):
                t0 = time.perf_counter()
                out = ask(i)
                engine_samples.append(time.perf_counter() - t0)
                got = [int(v["key"].split("-")[1]) for v in out["vectors"]]
                agree += got == truth[i]
            # The engine's search core alone (inverted-index lookup, gather, score, top-k), no API layer.
            cache = next(iter(client._caches.values()))
            nodes = [
                compile_filter({"user_id": f"user-{u}", "agent_name": data.agent_names[a]}, ("content",), "bench")
                for _q, u, a in queries
            ]
            core_samples = []
            for i, (q, _u, _a) in enumerate(queries):
                t0 = time.perf_counter()
                with cache.lock:
                    cache.nearest(q, 10, cache.matching(nodes[i]))
                core_samples.append(time.perf_counter() - t0)
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        result = SizeResult(
            size=size,
            build_s=build,
            reopen_first_query_s=first,
            engine=Latency.of(engine_samples),
            numpy_floor=Latency.of(floor_samples),
            numpy_masked=Latency.of(masked_samples),
            agreement=agree / len(queries),
            rss_mb=rss,
            core=Latency.of(core_samples),
            extra={"rows_per_user_agent": float(np.mean([len(r) for r in groups.values()]))},
        )
        if args.peer == "chromadb" and size <= args.peer_max_size:
            peer = _chroma_bench(work, data, queries, truth)
            if peer is not None:
                result.peer, result.peer_build_s, result.peer_recall = peer
        return result
    finally:
        shutil.rmtree(work, ignore_errors=True)


def machine() -> dict[str, str]:
    """What the numbers were measured on."""
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem = ""
    try:
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.0f} GiB"
    except (OSError, ValueError, IndexError):
        pass
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg()) if hasattr(os, "getloadavg") else "n/a"
    chroma = "not installed"
    try:
        import chromadb

        chroma = chromadb.__version__
    except ImportError:
        pass
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "memory": mem,
        "os": platform.platform(),
        "python": sys.version.split()[0],
        "numpy": np.__version__,
        "sqlite": sqlite3.sqlite_version,
        "chromadb": chroma,
        "load average at start": load,
    }


def _ms(lat: Latency | None) -> str:
    return "n/a" if lat is None else f"{lat.p50_us / 1000:.3f} / {lat.p95_us / 1000:.3f}"


def markdown(results: list[SizeResult], info: dict[str, str], command: str) -> str:
    """The report as a markdown fragment (what docs/benchmarks.md holds)."""
    lines = [
        "| vectors | rows per user+agent | engine API p50 / p95 (ms) | engine core p50 / p95 (ms) "
        "| numpy floor p50 / p95 (ms) | numpy masked scan p50 / p95 (ms) | chromadb p50 / p95 (ms) "
        "| API ÷ floor | core ÷ floor | engine = exact top-10 | chromadb recall@10 |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        ratio = r.engine.p50_us / r.numpy_floor.p50_us
        core = (r.core.p50_us if r.core else float("nan")) / r.numpy_floor.p50_us
        recall = "n/a" if r.peer_recall is None else f"{r.peer_recall:.3f}"
        lines.append(
            f"| {r.size:,} | {r.extra['rows_per_user_agent']:.0f} | {_ms(r.engine)} | {_ms(r.core)} "
            f"| {_ms(r.numpy_floor)} | {_ms(r.numpy_masked)} | {_ms(r.peer)} | {ratio:.1f}x | {core:.1f}x "
            f"| {r.agreement:.0%} | {recall} |"
        )
    lines += [
        "",
        "| vectors | engine build via PutVectors (s) | reopen + first query (s) | peak RSS (MB) | chromadb build (s) |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        peer_build = "n/a" if r.peer_build_s is None else f"{r.peer_build_s:.1f}"
        lines.append(f"| {r.size:,} | {r.build_s:.1f} | {r.reopen_first_query_s:.2f} | {r.rss_mb:.0f} | {peer_build} |")
    lines += ["", "Machine: " + "; ".join(f"{k}: {v}" for k, v in info.items()), "", f"Command: `{command}`"]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--sizes", default="10000,100000,1000000", help="comma-separated index sizes")
    parser.add_argument("--dim", type=int, default=384)
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--agents", type=int, default=2, help="agents per user (agent_name values)")
    parser.add_argument("--queries", type=int, default=300, help="timed queries per size and system")
    parser.add_argument("--batch", type=int, default=500, help="vectors per PutVectors call (max 500)")
    parser.add_argument("--peer", choices=["chromadb", "none"], default="chromadb")
    parser.add_argument("--peer-max-size", type=int, default=100_000, help="largest size to build the peer at")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--workdir", default=None, help="where to build (default: system temp dir)")
    parser.add_argument("--json", dest="json_out", default=None, help="also write raw results as JSON here")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",") if s]
    info = machine()
    results = []
    for size in tqdm(sizes, desc="sizes", unit="size"):
        results.append(run_size(size, args))
    command = "python bench/engine_bench.py " + " ".join(sys.argv[1:] if argv is None else argv)
    print(markdown(results, info, command.strip()))
    if args.json_out:
        Path(args.json_out).write_text(json.dumps({"machine": info, "results": [asdict(r) for r in results]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
