"""Where a first turn's time goes, ours against 0.3.0: before its first request, its requests, after them.

Each timed turn is split by botocore's own event hooks on the S3 Vectors client: **before** (turn
start -> the first request's ``before-parameter-build``: the plugin's bookkeeping and the query's
embedding), **requests** (that -> the last ``after-call``: building, signing and sending every
request, the endpoint's answers, parsing them) and **after** (the last answer -> the turn's end:
ranking, rendering, the model call). "added" is the turn against the same agent without a plugin,
as in ``plugin_overhead.py``. Both packages run from processes of their own against the same local
endpoint (``--rtt-ms``: behind ``_common.DelayedLink``), alternated ``--alternations`` times, each
time ``--turns`` first turns of the benchmark user (``plugin_overhead.py``'s index: random memories
plus the user's real conversations). 0.3.0 is installed as for ``plugin_overhead.py``.

Run: ``python3 bench/first_turn_timeline.py --rtt-ms 10`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))
from _turns import BASE_PROMPT, OPENERS  # noqa: E402  (imports nothing of ours: safe before 0.3.0's import)

PHASES = ("added", "before", "requests", "after")


def _timed_turns(client: Any, plugin: Any, model: Callable[[], Any], turns: int,
                 flush: Callable[[], Any]) -> dict[str, float]:
    """Time ``turns`` first turns with ``plugin`` against a plain agent; medians per phase (ms)."""
    from strands import Agent

    events: list[tuple[str, float]] = []

    def mark(kind: str) -> Callable[..., None]:
        return lambda **_: events.append((kind, time.perf_counter()))

    client.meta.events.register("before-parameter-build.s3vectors", mark("b"))
    client.meta.events.register("after-call.s3vectors", mark("a"))
    memory = Agent(model=model(), name="assistant", system_prompt=BASE_PROMPT, plugins=[plugin], callback_handler=None)
    plain = Agent(model=model(), name="assistant", system_prompt=BASE_PROMPT.replace("{memory_context}", ""),
                  callback_handler=None)
    rows: list[tuple[float, ...]] = []
    for number in range(turns):
        opener = f"{OPENERS[number % len(OPENERS)]} (conversation {number}, {os.getpid()})?"
        state = {"user_id": "bench-user", "conversation_id": f"timeline-{os.getpid()}-{number}"}
        plain.messages.clear()
        started = time.perf_counter()
        plain(opener, invocation_state=state)
        without = time.perf_counter() - started
        memory.messages.clear()
        events.clear()
        started = time.perf_counter()
        memory(opener, invocation_state=state)
        ended = time.perf_counter()
        first = next(t for kind, t in events if kind == "b")
        last = [t for kind, t in events if kind == "a"][-1]
        rows.append((ended - started - without, first - started, last - first, ended - last))
        flush()
    return {name: 1000 * statistics.median(r[i] for r in rows) for i, name in enumerate(PHASES)}


def _child(which: str, url: str, bucket: str, turns: int, original: Path) -> dict[str, float]:
    """One package's turns against the endpoint at ``url`` (in this process). 0.3.0 has our package's
    import name: it must be imported before anything imports ours (``_original_runner.py`` does the same)."""
    if which == "0.3.0":
        sys.path.insert(0, str(original))
        import strands_s3_vectors_memory as package  # the 0.3.0 package

        if not str(Path(package.__file__ or "").resolve()).startswith(str(original.resolve())):
            raise SystemExit(f"imported the wrong package: {package.__file__}")
        from _original_runner import with_local_embeddings

        embedder, scripted_model = with_local_embeddings(package, ROOT / "src")
        store = package.S3VectorMemory(bucket_name=bucket)
        plugin = package.S3VectorMemoryPlugin(store=store, base_prompt=BASE_PROMPT)
        embedder.embed_query("warm up")
        return _timed_turns(store._s3vectors, plugin, scripted_model, turns, lambda: None)
    from plugin_overhead import _endpoint_client, endpoint_store
    from strands_s3_vectors_memory import S3VectorMemoryPlugin, WritingSettings
    from strands_s3_vectors_memory.testing import ScriptedModel

    client = _endpoint_client(url)
    store = endpoint_store(url, bucket=bucket, client=client)
    spool = Path(tempfile.mkdtemp(prefix="timeline-spool-"))
    plugin = S3VectorMemoryPlugin(store, BASE_PROMPT, writing=WritingSettings(spool_dir=spool, flush_at_exit=False))
    store.embedder.embed_query("warm up")
    try:
        return _timed_turns(client, plugin, ScriptedModel, turns, lambda: plugin.flush(60))
    finally:
        plugin.close(30)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=20_000, help="memories in the index (%(default)s)")
    parser.add_argument("--turns", type=int, default=40, help="first turns per package and alternation")
    parser.add_argument("--alternations", type=int, default=4, help="ours, then 0.3.0, this many times")
    parser.add_argument("--rtt-ms", type=float, default=0.0, help="a network round trip before the endpoint answers")
    parser.add_argument("--original", type=Path, default=Path("/tmp/orig-pkg"), help="where 0.3.0 is installed")
    parser.add_argument("--child", choices=("ours", "0.3.0"), help=argparse.SUPPRESS)
    parser.add_argument("--url", help=argparse.SUPPRESS)
    parser.add_argument("--bucket", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child, args.url, args.bucket, args.turns, args.original)))
        return 0

    from _common import DelayedLink, bench_aws_env, machine, original_installed, run_child
    from plugin_overhead import BUCKET, bulk_load, seed_user
    from s3vectors_engine.server import LocalEndpoint
    from strands_s3_vectors_memory import S3VectorMemory
    from strands_s3_vectors_memory.embeddings import make_embedder

    packages = ["ours", *(["0.3.0"] if original_installed(args.original) else [])]
    results: dict[str, list[dict[str, float]]] = {name: [] for name in packages}
    with tempfile.TemporaryDirectory(prefix="timeline-bench-") as scratch:
        data_dir = Path(scratch) / "data"
        store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir, embedder=make_embedder("local"))
        bulk_load(store, args.memories)
        seed_user(store)
        store._get_s3vectors_client().close()
        with LocalEndpoint(data_dir) as endpoint, DelayedLink(endpoint.port, args.rtt_ms / 1000) as link:
            url = link.url if args.rtt_ms else endpoint.url
            for _ in range(args.alternations):
                for name in packages:
                    child = ["--child", name, "--url", url, "--bucket", BUCKET, "--turns", str(args.turns),
                             "--original", str(args.original)]
                    result = run_child("first_turn_timeline.py", child, env=bench_aws_env(url), timeout=1800)
                    if result is not None:
                        results[name].append(result)
    print(f"\nmachine: {machine()}; {args.memories:,} memories; {args.turns} first turns per package and "
          f"alternation, {args.alternations} alternations; link: "
          f"{f'+{args.rtt_ms:g} ms a round trip' if args.rtt_ms else 'local endpoint'}\n")
    print("| package | " + " | ".join(f"{p} (median ms, each alternation)" for p in PHASES) + " |")
    print("|---|" + "---|" * len(PHASES))
    for name, runs in results.items():
        cells = [" / ".join(f"{run[p]:.1f}" for run in runs) for p in PHASES]
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
