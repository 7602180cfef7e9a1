"""Event-loop lag and turn latency of N concurrent async conversations in one event loop.

What an async server (FastAPI, Starlette, AgentCore Runtime) sees: N users at once, each with its own
agent (one per request, sharing one store), each conversation a first turn (memory retrieval: query
embedding + ``QueryVectors`` + ranking) and an ending turn (hand-off to the writer), all through
``invoke_async`` in a single loop. The embedder sleeps ``--delay`` seconds per call, like a Bedrock
round trip; a monitor task measures how late the loop wakes it (loop lag). A plugin that blocks the
loop shows up as lag of about one embedder call per concurrent request.

    python bench/async_server.py                   # N = 1, 10, 50 with a 0.2 s embedder
    python bench/async_server.py --n 50 --delay 0.2 --json
    python bench/async_server.py --gc-freeze       # as a tuned server: gc.freeze() once warmed up

The longest single loop step of a burst is usually a full (generation 2) garbage collection, run
by whichever thread allocates when it is due: ~0.1 s over the ~90,000 long-lived objects the imports
leave (strands, boto3, numpy). ``--gc-freeze`` does what a server can do once its imports are
loaded: ``gc.collect(); gc.freeze()`` after the warm-up request, so full collections skip them.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LongestCallback, machine

PROMPT = "You are helpful.\n{memory_context}"
TICK = 0.005


class DelayedEmbedder:
    """A deterministic embedder that takes ``delay`` seconds per call (a remote model's round trip)."""

    def __init__(self, delay: float, dimension: int = 64) -> None:
        self.delay = delay
        self._dimension = dimension
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return f"delayed-hash-{self._dimension}"

    @property
    def dimension(self) -> int:
        return self._dimension

    def _vector(self, text: str) -> list[float]:
        words = text.lower().split()
        vector = np.zeros(self._dimension)
        for word in words or [""]:
            seed = int.from_bytes(hashlib.sha256(word.encode("utf-8", "replace")).digest()[:8], "big")
            vector += np.random.default_rng(seed).standard_normal(self._dimension)
        return [float(x) for x in vector / (np.linalg.norm(vector) or 1.0)]

    def embed_query(self, text: str) -> list[float]:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return self._vector(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        with self._lock:
            self.calls += 1
        time.sleep(self.delay)
        return [self._vector(text) for text in texts]


@dataclass
class AsyncResult:
    conversations: int
    delay: float
    arrival: float
    plugin: bool
    longest_callback_ms: float
    loop_lag_worst_ms: float
    loop_lag_p99_ms: float
    turn_p50_ms: float
    turn_p99_ms: float
    turn_worst_ms: float
    returning_user_recalled: int
    seconds: float


async def _monitor(samples: list[float], stop: asyncio.Event) -> None:
    loop = asyncio.get_running_loop()
    while not stop.is_set():
        expected = loop.time() + TICK
        await asyncio.sleep(TICK)
        samples.append(max(0.0, loop.time() - expected))


def _percentile(values: Sequence[float], q: float) -> float:
    if len(values) < 2:
        return values[0] if values else 0.0
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


async def run_async(
    conversations: int, delay: float, data_dir: Path, *, plugin: bool = True, arrival: float = 0.0,
    gc_freeze: bool = False,
) -> AsyncResult:
    """Run ``conversations`` concurrent two-turn conversations, then each user's second conversation.

    ``plugin=False`` runs the same agents without memory: the SDK's own share of the loop lag.
    ``arrival`` spreads the conversations' starts evenly over that many seconds (0: all at once).
    """
    from strands import Agent

    from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
    from strands_s3_vectors_memory.testing import ScriptedModel

    store = S3VectorMemory("bench-async", backend="local", data_dir=data_dir, embedder=DelayedEmbedder(delay),
                           similarity_threshold=0.0)
    store.verify()  # index creation is start-up work, not request work
    turns: list[float] = []
    recalled = 0
    plugins: list[Any] = []

    async def conversation(user: int, number: int, first: str) -> None:
        nonlocal recalled
        if arrival and user >= 0:
            await asyncio.sleep(arrival * user / conversations)
        model = ScriptedModel()
        memory = []
        if plugin:
            memory = [S3VectorMemoryPlugin(store=store, base_prompt=PROMPT,
                                           writing=WritingSettings(flush_at_exit=False))]
            plugins.extend(memory)
        agent = Agent(model=model, name="assistant", plugins=memory, system_prompt=PROMPT, callback_handler=None)
        for text, end in ((first, False), ("Thanks, that's all.", True)):
            started = time.perf_counter()
            await agent.invoke_async(text, invocation_state={
                "user_id": f"user-{user}", "conversation_id": f"c{number}", "end_session": end})
            turns.append(time.perf_counter() - started)
        if number == 2 and "<memories>" in (model.requests[0].system_prompt or ""):
            recalled += 1

    await conversation(-1, 0, "Warming up: a first request loads lazy imports and starts the writer.")
    if gc_freeze:
        gc.collect()
        gc.freeze()
    turns.clear()
    recalled = 0
    samples: list[float] = []
    stop = asyncio.Event()
    monitor = asyncio.create_task(_monitor(samples, stop))
    started = time.perf_counter()
    with LongestCallback() as callbacks:
        await asyncio.gather(*(conversation(u, 1, f"My lucky number is {u}.") for u in range(conversations)))
        await asyncio.gather(*(conversation(u, 2, "What is my lucky number?") for u in range(conversations)))
    seconds = time.perf_counter() - started
    stop.set()
    await monitor
    if plugins:
        await asyncio.to_thread(plugins[-1].close, 120)  # the runtime is shared: one close stops the writer

    lag = sorted(samples)
    return AsyncResult(
        conversations=conversations,
        delay=delay,
        arrival=arrival,
        plugin=plugin,
        longest_callback_ms=round(callbacks.longest * 1000, 1),
        loop_lag_worst_ms=round(lag[-1] * 1000, 1),
        loop_lag_p99_ms=round(_percentile(lag, 99) * 1000, 1),
        turn_p50_ms=round(_percentile(turns, 50) * 1000, 1),
        turn_p99_ms=round(_percentile(turns, 99) * 1000, 1),
        turn_worst_ms=round(max(turns) * 1000, 1),
        returning_user_recalled=recalled,
        seconds=round(seconds, 2),
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, nargs="+", default=[1, 10, 50], help="Concurrent conversations")
    parser.add_argument("--delay", type=float, default=0.2, help="Seconds per embedder call")
    parser.add_argument("--arrival", type=float, nargs="+", default=[0.0],
                        help="Spread the conversations' starts over this many seconds (0: all at once)")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.collect(); gc.freeze() after the warm-up request, as a tuned server does")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    results = []
    for arrival in args.arrival:
        for n in args.n:
            for with_plugin in (True, False):
                with tempfile.TemporaryDirectory(prefix="bench-async-") as tmp:
                    results.append(asyncio.run(
                        run_async(n, args.delay, Path(tmp), plugin=with_plugin, arrival=arrival,
                                  gc_freeze=args.gc_freeze)))
                    gc.unfreeze()  # the next run starts as this one did
    if args.json:
        print(json.dumps({"machine": machine(), "results": [asdict(r) for r in results]}, indent=2))
        return
    print(f"# {machine()}; embedder delay {args.delay}s{'; gc.freeze() after warm-up' if args.gc_freeze else ''}")
    print("| N | arrivals | memory | longest callback | worst loop lag | p99 loop lag | turn p50 | turn p99 "
          "| worst turn | returning users recalled |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        recalled = f"{r.returning_user_recalled}/{r.conversations}" if r.plugin else "-"
        spread = f"over {r.arrival:g} s" if r.arrival else "at once"
        memory = "plugin" if r.plugin else "none (SDK only)"
        print(f"| {r.conversations} | {spread} | {memory} | {r.longest_callback_ms} ms | "
              f"{r.loop_lag_worst_ms} ms | {r.loop_lag_p99_ms} ms | {r.turn_p50_ms} ms | {r.turn_p99_ms} ms | "
              f"{r.turn_worst_ms} ms | {recalled} |")


if __name__ == "__main__":
    main()
