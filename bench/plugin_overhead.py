"""What the memory plugin adds to each agent turn, against the same agent without it.

Setup: a local index holding ``--memories`` memories (default 100,000: 1,000 users x 100, random unit
vectors bulk-loaded through the engine's ``put_vectors``), plus a few real, e5-embedded conversations
of the benchmark user stored through ``store_conversation``. The model is
:class:`~strands_s3_vectors_memory.testing.ScriptedModel`, so every millisecond that differs between
the two agents is the plugin's.

Each of ``--conversations`` conversations has three turns, run on both agents interleaved:

* **first** turn: the plugin embeds the message, queries S3 Vectors and ranks (every opener is
  unique, so the query-embedding cache never helps);
* **later** turn: nothing but bookkeeping (target < 1 ms);
* **end** turn (``end_session=True``): the transcript is handed to the background writer (target
  < 5 ms to return).

Then ``--throughput`` conversations are ended back to back and the background writer's rate
(summaries stored per second: summarize with the scripted model, embed summary and details, put)
is measured until it has flushed.

Columns: ours on the embedded engine (the local default), ours through the local S3 Vectors
endpoint over HTTP (the shape of an AWS deployment), and the original 0.3.0 package, also through the
endpoint (it cannot embed an engine), with its Bedrock embedding call replaced by the same e5 model.
0.3.0 is installed with ``pip install --no-deps strands-s3-vectors-memory==0.3.0 --target
/tmp/orig-pkg`` and runs in a subprocess (same import name as ours). Every setup runs in a process
of its own (``_http_runner.py``, ``_original_runner.py``), the endpoint serving from this one: in one
process the server's threads would share the client's GIL, which no deployment does. ``--rounds N``
runs every setup N times, interleaved, and reports the median of the rounds' figures (the machine's
load drifts between setups).
``--before-src DIR`` adds another tree's ``src`` (e.g. main before a change), embedded and over
HTTP, measured in the same run against the same index. ``--rtt-ms 10`` puts a 10 ms network round
trip in front of the endpoint (``_common.DelayedLink``): on the local endpoint a request costs the
server's Python, one request after the other (one process serves them), while on AWS it is mostly
waiting, which requests sent side by side share.

Run: ``python3 bench/plugin_overhead.py`` (``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from strands import Agent
from tqdm import trange

from s3vectors_engine.server import LocalEndpoint
from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.embeddings import make_embedder
from strands_s3_vectors_memory.index._records import MemoryScope, build_metadata, summary_key
from strands_s3_vectors_memory.testing import ScriptedModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import DelayedLink, bench_aws_env, machine, original_installed, run_child
from _turns import BASE_PROMPT, TURN_KINDS, TurnTimes, run_conversations

BUCKET = "overhead-bench"
AGENT = "assistant"
USER = "bench-user"
DIMENSION = 384
BATCH = 500
ROOT = Path(__file__).resolve().parent.parent

_USER_CONVERSATIONS = (
    ("cooking", "The user is vegetarian, allergic to peanuts and batch-cooks on Sundays.",
     ["USER: I'm vegetarian and allergic to peanuts.", "USER: I cook big batches on Sundays."]),
    ("travel", "The user plans a trip to Kyoto in April with their partner Sam.",
     ["USER: Sam and I love temples and quiet tea houses."]),
    ("running", "The user trains for the Berlin marathon in September.",
     ["USER: My long runs are on Saturday mornings."]),
)


def bulk_load(store: S3VectorMemory, count: int, *, users: int = 1000, seed: int = 0) -> float:
    """Put ``count`` random-vector memories of ``users`` users straight into the engine; returns vectors/s."""
    store.verify()
    client = store._get_s3vectors_client()
    rng = np.random.default_rng(seed)
    started = time.perf_counter()
    for start in trange(0, count, BATCH, desc="bulk load", unit="batch"):
        size = min(BATCH, count - start)
        vectors = rng.standard_normal((size, DIMENSION), dtype=np.float32)
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        batch = []
        for offset, vector in enumerate(vectors):
            number = start + offset
            scope = MemoryScope(f"user-{number % users}", AGENT)
            conversation = f"bulk-{number}"
            metadata = build_metadata(scope, f"Synthetic memory {number}: notes about topic {number % 97}.",
                                      memory_type="summary", conversation_id=conversation)
            batch.append({"key": summary_key(scope, conversation), "data": {"float32": vector.tolist()},
                          "metadata": metadata})
        client.put_vectors(vectorBucketName=store.bucket_name, indexName=store.index_name, vectors=batch)
    return count / (time.perf_counter() - started)


def seed_user(store: S3VectorMemory) -> None:
    """The benchmark user's own memories, embedded for real, so first turns retrieve something."""
    for conversation, summary, details in _USER_CONVERSATIONS:
        store.store_conversation(USER, conversation, summary, agent_name=AGENT, details=details)


def measure_ours(store: S3VectorMemory, conversations: int, throughput: int, spool: Path,
                 **plugin_kwargs: Any) -> dict[str, Any]:
    """Time our plugin against a plain agent, then the writer's rate."""
    plugin = S3VectorMemoryPlugin(store, BASE_PROMPT, writing=WritingSettings(spool_dir=spool, flush_at_exit=False),
                                  **plugin_kwargs)
    agents = {
        "plain": Agent(model=ScriptedModel(), name=AGENT, system_prompt=BASE_PROMPT.replace("{memory_context}", ""),
                       callback_handler=None),
        "memory": Agent(model=ScriptedModel(), name=AGENT, system_prompt=BASE_PROMPT, plugins=[plugin],
                        callback_handler=None),
    }
    store.embedder.embed_query("warm up")
    store.search(USER, "warm up", agent_name=AGENT)
    times = run_conversations(
        agents, conversations, user_id=USER, after_conversation=lambda: plugin.flush(60),
        progress=lambda n: trange(n, desc="conversations", unit="conv", leave=False),
    )
    agent = agents["memory"]
    started = time.perf_counter()
    for number in range(throughput):
        agent.messages.clear()
        state = {"user_id": f"writer-{number}", "conversation_id": f"w-{number}", "end_session": True}
        agent(f"I keep bees and sell honey at the market, note {number}. Bye!", invocation_state=state)
    plugin.flush(600)
    rate = throughput / (time.perf_counter() - started)
    plugin.close(60)
    return _summary(times, rate)


def _summary(times: Mapping[str, TurnTimes], rate: float) -> dict[str, Any]:
    return {
        "median_ms": {name: {k: t.median_ms(k) for k in TURN_KINDS} for name, t in times.items()},
        "p95_ms": {name: {k: t.p95_ms(k) for k in TURN_KINDS} for name, t in times.items()},
        "summaries_per_second": rate,
    }


def measure_child(src: Path, where: Sequence[str], conversations: int, throughput: int,
                  spool: Path, *, facts: bool = True) -> dict[str, Any] | None:
    """:func:`measure_ours` in a process of its own (``_http_runner.py``) with the package of ``src``,
    against the endpoint (``where``: ``--url URL``) or the embedded engine (``--data-dir DIR``)."""
    env = dict(bench_aws_env(None), PYTHONPATH=str(src))
    return run_child("_http_runner.py", [*where, "--bucket", BUCKET, "--spool", str(spool), "--conversations",
                                         str(conversations), "--throughput", str(throughput),
                                         *([] if facts else ["--no-facts"])],
                     env=env, timeout=3600)


def measure_original(original: Path, url: str | None, conversations: int, throughput: int, *,
                     data_dir: Path | None = None) -> dict[str, Any] | None:
    """Run ``_original_runner.py`` against the endpoint at ``url``, or on the embedded engine in ``data_dir``
    (in its own process, as our embedded setups run in theirs); ``None`` (with a note) if 0.3.0 is not
    installed."""
    if not original_installed(original):
        return None
    args = ["--original", str(original), "--src", str(ROOT / "src"), "--bucket", BUCKET, "--user", USER,
            "--conversations", str(conversations), "--throughput", str(throughput)]
    if data_dir is not None:
        args += ["--data-dir", str(data_dir)]
    return run_child("_original_runner.py", args, env=bench_aws_env(url), timeout=3600)


def table(columns: Mapping[str, Mapping[str, Any]]) -> str:
    """Markdown: plugin-added median (p95) per turn kind, and writer throughput, one column per setup."""
    names = list(columns)
    lines = ["| | " + " | ".join(names) + " |", "|---|" + "---|" * len(names)]
    labels = {"first": "first turn (embed + query + rank)", "later": "later turn", "end": "end_session turn"}
    for kind in TURN_KINDS:
        cells = []
        for name in names:
            r = columns[name]
            added = r["median_ms"]["memory"][kind] - r["median_ms"]["plain"][kind]
            added95 = r["p95_ms"]["memory"][kind] - r["p95_ms"]["plain"][kind]
            cells.append(f"+{added:.2f} ms (p95 +{added95:.2f})")
        lines.append(f"| {labels[kind]}: added | " + " | ".join(cells) + " |")
    lines.append("| agent turn without plugin (median) | " + " | ".join(
        f"{columns[n]['median_ms']['plain']['later']:.2f} ms" for n in names) + " |")
    lines.append("| background writer: summaries stored / s | " + " | ".join(
        f"{columns[n]['summaries_per_second']:.1f}" for n in names) + " |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=100_000, help="memories in the index (%(default)s)")
    parser.add_argument("--conversations", type=int, default=100, help="timed conversations (%(default)s)")
    parser.add_argument("--throughput", type=int, default=30, help="conversations ended for the writer rate")
    parser.add_argument("--original", type=Path, default=Path("/tmp/orig-pkg"), help="where 0.3.0 is installed")
    parser.add_argument("--skip-endpoint", action="store_true", help="only the embedded engine")
    parser.add_argument("--rounds", type=int, default=1, help="every setup this many times, interleaved")
    parser.add_argument("--rtt-ms", type=float, default=0.0,
                        help="a network round trip before the endpoint answers (the HTTP columns), in ms")
    parser.add_argument("--before-src", type=Path, default=None,
                        help="also time the package in this src/ directory (e.g. /work/main/src)")
    parser.add_argument("--json", type=Path, default=None, help="also write the results as JSON here")
    args = parser.parse_args(argv)

    rounds: dict[str, list[dict[str, Any]]] = {}
    trees = [*([("before", args.before_src)] if args.before_src is not None else []), ("ours", ROOT / "src")]
    http = f"local endpoint (HTTP{f', +{args.rtt_ms:g} ms a round trip' if args.rtt_ms else ''})"
    with tempfile.TemporaryDirectory(prefix="overhead-bench-") as scratch:
        data_dir = Path(scratch) / "data"
        store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir, embedder=make_embedder("local"))
        load_rate = bulk_load(store, args.memories)
        seed_user(store)
        store._get_s3vectors_client().close()
        for number in range(args.rounds):  # every setup once per round: the machine's drift hits them all
            spool = Path(scratch) / f"round-{number}"
            for name, src in trees:
                result = measure_child(src, ["--data-dir", str(data_dir)], args.conversations, args.throughput,
                                       spool / f"{name}-embedded")
                if result is not None:
                    rounds.setdefault(f"{name}, embedded engine", []).append(result)
            if args.skip_endpoint:
                continue
            with LocalEndpoint(data_dir) as endpoint, \
                    DelayedLink(int(endpoint.url.rsplit(":", 1)[1]), args.rtt_ms / 1000) as link:
                url = link.url if args.rtt_ms else endpoint.url
                for name, src in trees:
                    result = measure_child(src, ["--url", url], args.conversations, args.throughput,
                                           spool / f"{name}-endpoint")
                    if result is not None:
                        rounds.setdefault(f"{name}, {http}", []).append(result)
                original = measure_original(args.original, url, args.conversations, args.throughput)
                if original is not None:
                    rounds.setdefault(f"0.3.0, {http}", []).append(original)
    columns = {name: _median_of(results) for name, results in rounds.items()}

    print(f"\nmachine: {machine()}")
    print(f"index: {args.memories:,} memories bulk-loaded at {load_rate:,.0f} vectors/s; "
          f"{args.conversations} timed conversations per setup and round, {args.rounds} round(s) (medians of the "
          f"rounds' figures); writer rate over {args.throughput} conversations")
    print()
    print(table(columns))
    if args.json:
        args.json.write_text(json.dumps(columns, indent=2), encoding="utf-8")
    return 0


def _median_of(results: Sequence[Mapping[str, Any]]) -> dict[str, Any]:
    """One setup's figures over the rounds: the median of each number (same keys in every round)."""
    first = results[0]
    return {key: _median_of([r[key] for r in results]) if isinstance(first[key], Mapping)
            else float(np.median([r[key] for r in results])) for key in first}


def _endpoint_client(url: str) -> Any:
    import boto3

    return boto3.client("s3vectors", endpoint_url=url, region_name="us-east-1",
                        aws_access_key_id="bench", aws_secret_access_key="bench")


def endpoint_store(url: str, *, bucket: str = BUCKET, client: Any = None) -> S3VectorMemory:
    """Our store on the AWS backend through a stock boto3 client (``client``, else a new one) to the
    endpoint at ``url``, embedding with the bundled e5 model: the benches' shape of an AWS deployment."""
    return S3VectorMemory(bucket_name=bucket, backend="aws", endpoint_url=url, embedder=make_embedder("local"),
                          region_name="us-east-1", client=client if client is not None else _endpoint_client(url))


if __name__ == "__main__":
    raise SystemExit(main())
