"""Background writer throughput: ours (and its embedding path before issue 11) against 0.3.0.

The writer's rate as ``bench/plugin_overhead.py`` measures it, alone and with more conversations:
``--conversations`` conversations of new users are ended back to back (one ``end_session`` turn each:
"I keep bees ..."), and the rate is the conversations stored per second until the writer has
flushed (summarize with :class:`~strands_s3_vectors_memory.testing.ScriptedModel`, embed the summary
and the detail record with the bundled e5 model, dedupe check, put). Every end turn is also the
conversation's first turn, so it embeds a query too, competing with the writer for the CPU.

Setups, in one run, each on a fresh index (``--memories`` bulk-loaded memories plus the benchmark
user's):

* ours with the embedding path before issue 11 (no scheduler; one model handle for queries and
  documents, documents on the writer's threads), embedded engine;
* ours as shipped (a query handle and two low-priority document lanes), embedded engine,
  with facts (the default) and with ``extract_facts=False`` (the work 0.3.0 does, plus details);
* the same two through the local S3 Vectors endpoint over HTTP, from a process of their own
  (``bench/_http_runner.py``), the endpoint serving from this one;
* the original ``strands-s3-vectors-memory==0.3.0`` through the same endpoint, and on the embedded
  engine (its boto3 client swapped for the engine's boto3-shaped one), its Bedrock call
  replaced by the same e5 model, from a process of its own too (``bench/_original_runner.py``;
  install it with ``pip install --no-deps strands-s3-vectors-memory==0.3.0 --target /tmp/orig-pkg``).

Run: ``python3 bench/writer_throughput.py`` (about 8 minutes a round on 2 cores; ``--help`` for options).

``--per-user-lock`` measures only what archiving one user's conversations one at a time costs
(issue 20): "ours, embedded engine" with ``--conversations`` different users, as shipped (the
writer's queue schedules one job per memory scope at a time, the archiver's per-scope lock behind
it) and with both turned off (no groups, the lock a no-op), interleaved over ``--rounds``; then
the writer queue's own cost per job with and without scopes, timed alone (one thread, 50 scopes).

``--variants`` measures only the bundled model's concurrency variants of
``bench/_concurrency_variants.py`` (issue 23), "ours, embedded engine" with each, interleaved over
``--rounds`` (the order flipped every round).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from s3vectors_engine.server import LocalEndpoint
from strands_s3_vectors_memory import S3VectorMemory, SummarySettings
from strands_s3_vectors_memory.embeddings import CachedEmbedder, Embedder, make_embedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from _concurrency_variants import VARIANTS
from _concurrency_variants import store as variant_store
from _unscheduled import PreviousLocalEmbedder
from plugin_overhead import BUCKET, ROOT, bulk_load, measure_child, measure_original, measure_ours, seed_user


def _loaded(data_dir: Path, embedder: Embedder, memories: int) -> S3VectorMemory:
    """A store on a fresh local index holding ``memories`` bulk memories and the benchmark user's."""
    store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir, embedder=embedder)
    bulk_load(store, memories)
    seed_user(store)
    return store


SETUPS = (
    "ours, embedding path before issue 11, embedded engine",
    "ours, embedded engine",
    "ours, embedded engine, extract_facts=False",
    "ours, local endpoint (HTTP)",
    "ours, local endpoint (HTTP), extract_facts=False",
    "0.3.0, local endpoint (HTTP)",
    "0.3.0, embedded engine",
)


def _rate(result: dict[str, Any]) -> float:
    return float(result["summaries_per_second"])


def _one_round(scratch: Path, args: argparse.Namespace) -> dict[str, float | None]:
    """Every setup once, each on a fresh index (the runs reuse user and conversation ids, and a
    conversation ended again is summarized on top of its stored summary: more to embed later)."""
    rates: dict[str, float | None] = {}
    before = _loaded(scratch / "before", CachedEmbedder(PreviousLocalEmbedder()), args.memories)
    rates[SETUPS[0]] = _rate(measure_ours(before, 0, args.conversations, scratch / "before" / "spool"))
    before._get_s3vectors_client().close()
    ours = _loaded(scratch / "ours", make_embedder("local"), args.memories)
    rates[SETUPS[1]] = _rate(measure_ours(ours, 0, args.conversations, scratch / "ours" / "spool"))
    ours._get_s3vectors_client().close()
    no_facts = _loaded(scratch / "no-facts", make_embedder("local"), args.memories)
    rates[SETUPS[2]] = _rate(measure_ours(no_facts, 0, args.conversations, scratch / "no-facts" / "spool",
                                          summary=SummarySettings(extract_facts=False)))
    no_facts._get_s3vectors_client().close()
    for name in ("ours-http", "ours-http-no-facts", "original", "original-embedded"):
        _loaded(scratch / name, make_embedder("local"), args.memories)._get_s3vectors_client().close()
    for setup, name, facts in ((SETUPS[3], "ours-http", True), (SETUPS[4], "ours-http-no-facts", False)):
        with LocalEndpoint(scratch / name) as endpoint:
            http = measure_child(ROOT / "src", ["--url", endpoint.url], 0, args.conversations,
                                 scratch / name / "spool", facts=facts)  # from a process of its own, as 0.3.0 runs
            rates[setup] = None if http is None else _rate(http)
    with LocalEndpoint(scratch / "original") as endpoint:
        original = measure_original(args.original, endpoint.url, 0, args.conversations)
        rates[SETUPS[5]] = None if original is None else _rate(original)
    original = measure_original(args.original, None, 0, args.conversations, data_dir=scratch / "original-embedded")
    rates[SETUPS[6]] = None if original is None else _rate(original)
    print(json.dumps(rates), file=sys.stderr, flush=True)
    return rates


def _queue_cost(jobs: int = 20_000, scopes: int = 50) -> dict[str, float]:
    """Microseconds per job for the writer's queue alone (accept, take, finish), without and with scopes."""
    from strands_s3_vectors_memory.archive._jobs import ConversationJob, job_scope
    from strands_s3_vectors_memory.durability._job_queue import JobQueue
    from strands_s3_vectors_memory.durability._spool_format import job_key
    from strands_s3_vectors_memory.index._records import MemoryScope

    batch = [ConversationJob(MemoryScope(f"user-{i % scopes}", "assistant"), f"c{i}", "USER: hi", 0.0, 0.0)
             .to_write_job() for i in range(jobs)]
    costs: dict[str, list[float]] = {"without scopes": [], "with scopes": []}
    for _ in range(3):
        for name, group in (("without scopes", None), ("with scopes", job_scope)):
            queue = JobQueue(jobs, group)
            start = time.perf_counter()
            with queue.lock:
                for job in batch:
                    queue.accept(job_key(job.job_id), job, False)
            for _ in batch:
                run = queue.take()
                assert run is not None
                with queue.lock:
                    queue.finish(run)
                queue.idle()
            costs[name].append((time.perf_counter() - start) / jobs * 1e6)
    return {name: min(values) for name, values in costs.items()}


def _per_user_lock(args: argparse.Namespace) -> int:
    """The writer's rate with and without one-scope-at-a-time, side by side (every user different)."""
    from strands_s3_vectors_memory.archive import _archiver as archiver
    from strands_s3_vectors_memory.plugin import _runtime as runtime

    class _NoLock:
        @contextlib.contextmanager
        def hold(self, _scope: object) -> Iterator[None]:
            yield

    shipped, grouping = archiver._ONE_AT_A_TIME, runtime.job_scope
    arms = {"one scope at a time (as shipped)": shipped, "no per-user scheduling": _NoLock()}
    rates: dict[str, list[float]] = {name: [] for name in arms}
    for round_number in range(args.rounds):
        for name, lock in (arms.items() if round_number % 2 == 0 else reversed(arms.items())):
            with tempfile.TemporaryDirectory(prefix="writer-lock-") as scratch:
                archiver._ONE_AT_A_TIME = lock  # type: ignore[assignment]
                runtime.job_scope = grouping if lock is shipped else None  # type: ignore[assignment]
                try:
                    store = _loaded(Path(scratch), make_embedder("local"), args.memories)
                    rates[name].append(_rate(measure_ours(store, 0, args.conversations, Path(scratch) / "spool")))
                    store._get_s3vectors_client().close()
                finally:
                    archiver._ONE_AT_A_TIME, runtime.job_scope = shipped, grouping
            print(json.dumps({name: rates[name][-1]}), file=sys.stderr, flush=True)
    print(f"\nmachine: {machine()}")
    print(f"{args.conversations} conversations of {args.conversations} different users per arm and round, "
          f"{args.rounds} round(s) interleaved; index: {args.memories:,} memories")
    print("| arm | summaries stored / s (median) | each round |")
    print("|---|---|---|")
    for name, values in rates.items():
        print(f"| {name} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    with_lock, without = (statistics.median(v) for v in rates.values())
    print(f"with / without: {with_lock / without:.3f}")
    queue = _queue_cost()
    print("queue alone, us per job (best of 3): " + ", ".join(f"{k} {v:.1f}" for k, v in queue.items()))
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rates": rates},
                                        indent=2), encoding="utf-8")
    return 0


def _variants(args: argparse.Namespace) -> int:
    """The writer's rate with each embedding concurrency variant, interleaved (order flipped each round)."""
    rates: dict[str, list[float]] = {name: [] for name in VARIANTS}
    for round_number in range(args.rounds):
        for name in (list(VARIANTS) if round_number % 2 == 0 else list(reversed(VARIANTS))):
            with tempfile.TemporaryDirectory(prefix="writer-variants-") as scratch:
                store = variant_store(name, bucket_name=BUCKET, backend="local", data_dir=Path(scratch))
                bulk_load(store, args.memories)
                seed_user(store)
                rates[name].append(_rate(measure_ours(store, 0, args.conversations, Path(scratch) / "spool")))
                store._get_s3vectors_client().close()
            print(json.dumps({name: rates[name][-1]}), file=sys.stderr, flush=True)
    print(f"\nmachine: {machine()}")
    print(f"{args.conversations} conversations ended back to back per variant and round, {args.rounds} round(s) "
          f"interleaved; index: {args.memories:,} memories")
    print("| variant | summaries stored / s (median) | each round |")
    print("|---|---|---|")
    for name, values in rates.items():
        print(f"| {VARIANTS[name]} | {statistics.median(values):.2f} | {', '.join(f'{v:.2f}' for v in values)} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rates": rates},
                                        indent=2), encoding="utf-8")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=200, help="conversations ended (%(default)s)")
    parser.add_argument("--memories", type=int, default=10_000, help="bulk-loaded memories in the index")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every setup (interleaved) and report the median: steadier on a shared machine")
    parser.add_argument("--original", type=Path, default=Path("/tmp/orig-pkg"), help="where 0.3.0 is installed")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    parser.add_argument("--per-user-lock", action="store_true",
                        help="only compare the writer with and without one scope at a time (see above)")
    parser.add_argument("--variants", action="store_true",
                        help="only compare the embedding concurrency variants of bench/_concurrency_variants.py")
    args = parser.parse_args(argv)
    if args.variants:
        return _variants(args)
    if args.per_user_lock:
        return _per_user_lock(args)

    rounds: list[dict[str, float | None]] = []
    for round_number in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix=f"writer-bench-{round_number}-") as scratch:
            rounds.append(_one_round(Path(scratch), args))

    print(f"\nmachine: {machine()}")
    print(f"{args.conversations} conversations ended back to back per setup and round, {args.rounds} round(s); "
          f"index: {args.memories:,} memories")
    print()
    print("| setup | summaries stored / s (median) | each round |")
    print("|---|---|---|")
    for name in SETUPS:
        values = [r[name] for r in rounds if r.get(name) is not None]
        if not values:
            print(f"| {name} | not run (see above) | |")
            continue
        each = ", ".join(f"{v:.1f}" for v in values if v is not None)
        print(f"| {name} | {statistics.median(v for v in values if v is not None):.1f} | {each} |")
    if args.json:
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "rounds": rounds},
                                        indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
