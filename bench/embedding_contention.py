"""First-turn latency while the background writer embeds other users' long conversations.

A user's first turn embeds its message (the query) and searches; meanwhile the background writer
may be embedding another user's ended conversation: a summary and up to 200 detail records in one
write. This measures the first turn (a real ``agent(...)`` call with the plugin and
:class:`~strands_s3_vectors_memory.testing.ScriptedModel`) twice per setup:

* **idle**: nothing else runs;
* **busy**: ``--long-conversations`` conversations of other users, ``--long-turns`` turns each (one
  detail record per turn), were just ended on the same plugin runtime, so both writer workers are
  embedding; only turns that started and ended while the writer still had work are counted.

Setups (each on its own fresh index and spool, in one process, in this order):

* ``before``, **no scheduler, one model handle**: the embedding path before issue 11 (queries and
  documents on one native e5 handle; a write's documents in batches of 32 under its lock);
* ``one-handle``, **scheduler, one model handle**: the scheduler alone (document slices of ~512
  characters, none started while a query runs) in front of that same model path, so a query still
  waits for the slice holding the handle;
* ``stack``, ``doc-thread``, ``query-handle``, ``default``: the concurrency variants of
  ``bench/_concurrency_variants.py`` (issue 23): (a) the stack issue 11 built (scheduler, two
  low-priority lanes, three handles), (b) a query handle + one low-priority document thread,
  (c) a query handle only, (d) as shipped: a query handle + two low-priority document lanes.

A pause of 0-100 ms (seeded) separates first turns, so they land anywhere in a document call.
Target: busy p95 within 2x of idle p95 for the default.

Run: ``python3 bench/embedding_contention.py`` (about 10 minutes; ``--help`` for options); the
issue 23 comparison: ``--setups stack,doc-thread,query-handle,default --rounds 2`` with small loads
(docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from strands import Agent

from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.embeddings import CachedEmbedder, Embedder
from strands_s3_vectors_memory.testing import ScriptedModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from _concurrency_variants import VARIANTS
from _concurrency_variants import store as variant_store
from _scheduler_stack import LOCAL_SLICE_CHARS, EmbeddingScheduler, SchedulerStats
from _turns import BASE_PROMPT, OPENERS
from _unscheduled import PreviousLocalEmbedder
from plugin_overhead import AGENT, USER, bulk_load, seed_user

BUCKET = "contention-bench"
#: Setup key -> table label.
SETUPS = {
    "before": "no scheduler, one model handle (before issue 11)",
    "one-handle": "scheduler, one model handle",
    **VARIANTS,
}

#: What the other users say: long enough turns that each detail record is a few hundred characters.
_CHATTER = (
    "We finally repainted the hallway last weekend, a pale green that makes it look much bigger, and "
    "now I am wondering whether the kitchen cabinets should match it or stay white.",
    "My manager asked me to lead the migration of our billing service to the new cluster next quarter, "
    "which is exciting but I have never run a project with three teams involved.",
    "The kids want a dog for Christmas; we live in a flat with a small balcony, both of us work from "
    "home three days a week, and my partner is slightly allergic to cats.",
    "I have been running four times a week since March, mostly easy 8 km loops along the river, and I "
    "am thinking about signing up for a half marathon in the autumn.",
)


@dataclass
class Phase:
    """First-turn wall-clock seconds of one phase."""

    samples: list[float]

    def pct(self, q: float) -> float:
        values = sorted(self.samples)
        return 1000 * values[min(len(values) - 1, int(q * len(values)))] if values else float("nan")

    def summary(self) -> dict[str, float]:
        return {"n": len(self.samples), "p50_ms": self.pct(0.5), "p95_ms": self.pct(0.95), "max_ms": self.pct(1.0),
                "mean_ms": 1000 * statistics.fmean(self.samples) if self.samples else float("nan")}


def _store(setup: str, data_dir: Path) -> S3VectorMemory:
    if setup in VARIANTS:
        return variant_store(setup, bucket_name=BUCKET, backend="local", data_dir=data_dir)
    embedder: Embedder = CachedEmbedder(PreviousLocalEmbedder())
    if setup == "one-handle":
        embedder = EmbeddingScheduler(embedder, slice_chars=LOCAL_SLICE_CHARS)
    return S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir, embedder=embedder)


def _first_turns(agent: Agent, prefix: str, count: int, rng: random.Random,
                 keep_going: Callable[[], bool] = lambda: True) -> Phase:
    """Time ``count`` first turns of new conversations of the benchmark user (left open: ending them
    would queue writes the user's next first turn waits for, by design)."""
    samples: list[float] = []
    for number in range(count):
        time.sleep(rng.uniform(0.0, 0.1))
        if not keep_going():
            break
        agent.messages.clear()
        opener = f"{OPENERS[number % len(OPENERS)]} ({prefix} {number})?"
        state = {"user_id": USER, "conversation_id": f"{prefix}-{number}", "end_session": False}
        started = time.perf_counter()
        agent(opener, invocation_state=state)
        elapsed = time.perf_counter() - started
        if keep_going():  # still busy at the end: the whole turn ran against a busy writer
            samples.append(elapsed)
    return Phase(samples)


def _start_long_conversations(agent: Agent, conversations: int, turns: int) -> None:
    """Run ``turns`` turns of each conversation, then end them all at once (both writer workers start)."""
    for number in range(conversations):
        agent.messages.clear()
        for turn in range(turns - 1):
            text = f"{_CHATTER[(number + turn) % len(_CHATTER)]} (note {turn} of user {number})"
            agent(text, invocation_state={"user_id": f"other-{number}", "conversation_id": f"long-{number}",
                                          "end_session": False})
    for number in range(conversations):
        agent(f"That's all for today, thanks (user {number}).",
              invocation_state={"user_id": f"other-{number}", "conversation_id": f"long-{number}",
                                "end_session": True})


@dataclass
class Run:
    """One setup measured once: first turns idle and busy, and what the writer and scheduler did."""

    idle: Phase
    busy: Phase
    busy_window_s: float
    writer_drain_s: float
    document_calls: int
    documents: int
    paused_for_queries: int

    def record(self) -> dict[str, object]:
        return {"idle": self.idle.summary(), "busy": self.busy.summary(), "busy_window_s": self.busy_window_s,
                "writer_drain_s": self.writer_drain_s, "document_calls": self.document_calls,
                "documents": self.documents, "paused_for_queries": self.paused_for_queries}


def measure(setup: str, data_dir: Path, args: argparse.Namespace, seed: int) -> Run:
    store = _store(setup, data_dir)
    bulk_load(store, args.memories)
    seed_user(store)
    spool = data_dir / "spool"
    writing = WritingSettings(spool_dir=spool, flush_at_exit=False)
    plugin = S3VectorMemoryPlugin(store, BASE_PROMPT, writing=writing)
    others = S3VectorMemoryPlugin(store, BASE_PROMPT, writing=writing)  # same runtime
    agent = Agent(model=ScriptedModel(), name=AGENT, system_prompt=BASE_PROMPT, plugins=[plugin],
                  callback_handler=None)
    chatter = Agent(model=ScriptedModel(), name=AGENT, system_prompt=BASE_PROMPT, plugins=[others],
                    callback_handler=None)
    store.search(USER, "warm up", agent_name=AGENT)
    store.store_conversation("warm-up", "warm-up", "Warm-up.", agent_name=AGENT, details=["USER: warm up"])
    rng = random.Random(seed)

    idle = _first_turns(agent, "idle", args.turns, rng)
    _start_long_conversations(chatter, args.long_conversations, args.long_turns)
    writer = plugin.writer
    started = time.perf_counter()
    busy = _first_turns(agent, "busy", args.turns, rng, keep_going=lambda: writer.stats.pending > 0)
    busy_window_s = time.perf_counter() - started
    plugin.flush(3600)
    drained_s = time.perf_counter() - started
    scheduler = store.embedder
    stats = scheduler.stats() if isinstance(scheduler, EmbeddingScheduler) else SchedulerStats(0, 0, 0, 0, 0, 0)
    plugin.close(60)
    others.close(60)
    store._get_s3vectors_client().close()
    run = Run(idle, busy, busy_window_s, drained_s, stats.document_calls, stats.documents, stats.paused_for_queries)
    print(f"{setup}: {json.dumps(run.record())}", file=sys.stderr, flush=True)  # progress, and a record
    return run


def table(runs: dict[str, list[Run]]) -> str:
    """Markdown: first-turn percentiles over every round's samples, per setup."""
    lines = ["| setup | idle p50 / p95 (ms) | busy p50 / p95 (ms) | busy turns | busy p95 / idle p95 |"
             " writer drained in (s) |", "|---|---|---|---|---|---|"]
    for setup, measured in runs.items():
        idle = Phase([x for run in measured for x in run.idle.samples])
        busy = Phase([x for run in measured for x in run.busy.samples])
        drain = statistics.median(run.writer_drain_s for run in measured)
        lines.append(f"| {SETUPS[setup]} | {idle.pct(0.5):.1f} / {idle.pct(0.95):.1f} | {busy.pct(0.5):.1f} / "
                     f"{busy.pct(0.95):.1f} | {len(busy.samples)} | {busy.pct(0.95) / idle.pct(0.95):.2f}x | "
                     f"{drain:.1f} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=40, help="first turns timed per phase (%(default)s)")
    parser.add_argument("--long-conversations", type=int, default=2, help="other users' conversations ended")
    parser.add_argument("--long-turns", type=int, default=200, help="turns of each of those conversations")
    parser.add_argument("--memories", type=int, default=10_000, help="bulk-loaded memories in the index")
    parser.add_argument("--setups", default=",".join(SETUPS), help="comma-separated subset of %(default)s")
    parser.add_argument("--rounds", type=int, default=1,
                        help="repeat every setup (interleaved), pooling the samples: steadier on a shared machine")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in args.setups.split(",") if s.strip()]
    unknown = set(chosen) - set(SETUPS)
    if unknown:
        parser.error(f"unknown setups {sorted(unknown)}; choose from {list(SETUPS)}")
    runs: dict[str, list[Run]] = {setup: [] for setup in chosen}
    with tempfile.TemporaryDirectory(prefix="contention-bench-") as scratch:
        for round_number in range(args.rounds):
            for setup in chosen:
                data_dir = Path(scratch) / f"{setup}-{round_number}"
                runs[setup].append(measure(setup, data_dir, args, seed=args.seed + round_number))
    print(f"\nmachine: {machine()}")
    print(f"first turns: {args.turns} per phase and round, {args.rounds} round(s); writer load: "
          f"{args.long_conversations} conversations x {args.long_turns} turns ended at once; "
          f"index: {args.memories:,} memories")
    print()
    print(table(runs))
    if args.json:
        record = {"args": {k: str(v) for k, v in vars(args).items()},
                  "runs": {setup: [run.record() for run in measured] for setup, measured in runs.items()}}
        args.json.write_text(json.dumps(record, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
