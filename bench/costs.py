"""What one remembered conversation costs on AWS: counted on the scripted model, then priced.

The same 30 scripted conversations (``_cost_script.py``: 13 users, 5 of them returning four or five
times, 3 to 4 turns each, assistant replies of ``--reply-chars`` characters) go through a real strands
``Agent`` with the memory plugin, one after the other, each ending with ``end_session=True`` and the
background write waited for before the next one starts. Every dependency the plugin has on AWS is
wrapped and counts what it is asked to do (``_cost_script.py``):

* the model (:class:`~strands_s3_vectors_memory.testing.ScriptedModel`): every call, its system
  prompt, messages and reply: the summary call's input and output, and the memory block every chat
  call of the conversation carries;
* the embedder (the bundled e5 model standing in for Amazon Nova, under the store's query cache, as
  Bedrock would be): every text embedded, document or query;
* the S3 Vectors client (the embedded engine standing in for the service): every API call by
  operation, and the key and metadata bytes of every vector written;
* the S3 spool (``S3_VECTORS_MEMORY_SPOOL=s3://...`` on moto's in-process S3): every request, by
  operation and by the spool's area (jobs, claims, owners, tombstones), through a botocore event hook
  on the spool's S3 client.

Arms: ours with facts (default settings), each conversation alone (an instance ending fewer than one
conversation per 15 s: its heartbeat is renewed before each claim and the tombstone listing is never
fresh); ours, the same conversations back to back (S3 requests amortised across conversations);
ours with ``extract_facts=False``; and the original ``strands-s3-vectors-memory==0.3.0`` (subprocess
``_costs_original.py`` through the local S3 Vectors endpoint; it has no spool and no facts).

Tokens are counted with SmolLM2's tokenizer (``_common.token_counter``, offline), a stand-in for
Claude's and Nova's (characters / 4 is printed beside it). Prices (``PRICES``) are a transcription of
public price lists with their region and date: they change; ``docs/costs.md`` says what is unverified.

Run: ``python3 bench/costs.py --json /tmp/bench/costs.json`` (about 1.5 minutes; ``--help`` for options).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from strands import Agent

from s3vectors_engine.server import LocalEndpoint
from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin, SummarySettings, WritingSettings
from strands_s3_vectors_memory.archive._summary_format import parse_summary_request
from strands_s3_vectors_memory.client import S3VectorsClient
from strands_s3_vectors_memory.config import NON_FILTERABLE_METADATA_KEYS, resolve_region
from strands_s3_vectors_memory.durability import _s3_location as s3_location
from strands_s3_vectors_memory.durability import _s3_tombstones as s3_tombstones
from strands_s3_vectors_memory.durability._s3_spool import S3Spool
from strands_s3_vectors_memory.embeddings import CachedEmbedder, Embedder, LocalEmbedder
from strands_s3_vectors_memory.embeddings._base import EmbedderWrapper
from strands_s3_vectors_memory.index._clients import aws_client, local_client
from strands_s3_vectors_memory.plugin import _runtime as runtime
from strands_s3_vectors_memory.testing import ScriptedModel, default_responder
from strands_s3_vectors_memory.text import message_text

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import TOKENIZER, bench_aws_env, machine, original_installed, run_child, token_counter
from _cost_script import (
    AGENT,
    DEFAULT_REPLY_CHARS,
    Conversation,
    CountingS3Vectors,
    Ledger,
    conversations,
    drive,
    memory_block,
    padded_reply,
    record_embedding,
    recording_responder,
    vector_size,
)
from _turns import BASE_PROMPT

ROOT = Path(__file__).resolve().parent.parent
BUCKET = "costs-bench"
SPOOL_BUCKET = "memory-spool"
#: The dimension priced: Amazon Nova embeddings at 1024 (the spec's AWS layout; offline e5 gives 384).
AWS_DIMENSION = 1024
GIB = 1024**3

#: Public prices as transcribed (they change: check the pages before relying on them).
PRICES: dict[str, Any] = {
    "region": "us-east-1",
    "transcribed": "2026-09-20",
    "sources": {
        "s3": "https://aws.amazon.com/s3/pricing/ (S3 Vectors and S3 Standard)",
        "bedrock": "https://aws.amazon.com/bedrock/pricing/ (Claude Sonnet 4.5)",
    },
    "s3vectors_storage_per_gb_month": 0.06,
    "s3vectors_put_per_gb": 0.20,
    "s3vectors_query_per_million": 2.50,
    "s3_put_list_per_1000": 0.005,  # S3 Standard PUT, COPY, POST, LIST
    "s3_get_per_1000": 0.0004,  # S3 Standard GET, SELECT and all other requests (HEAD)
    "s3_delete_per_1000": 0.0,  # DELETE is free
    "model_input_per_million": 3.0,  # Claude Sonnet 4.5 on Bedrock
    "model_output_per_million": 15.0,
}
#: S3 request classes as S3 bills them.
S3_TIER = {"PutObject": "put_list", "ListObjectsV2": "put_list", "CopyObject": "put_list",
           "GetObject": "get", "HeadObject": "get", "DeleteObject": "delete"}
SPOOL_AREAS = ("jobs", "claims", "owners", "dead", "corrupt", ".tombstones", "turns", "turn-sweeps")


# --- counting -------------------------------------------------------------------------------------------


class CountingEmbedder(EmbedderWrapper):
    """An :class:`Embedder` recording every text it embeds (below the store's query cache, as Bedrock is)."""

    def __init__(self, inner: Embedder, ledger: Ledger) -> None:
        super().__init__(inner)
        self._ledger = ledger

    def embed_query(self, text: str) -> list[float]:
        record_embedding(self._ledger, "query", [text])
        return self._inner.embed_query(text)

    def embed_background_query(self, text: str) -> list[float]:
        record_embedding(self._ledger, "query", [text])  # on Bedrock: one more query request
        return super().embed_background_query(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        record_embedding(self._ledger, "document", texts)
        return self._inner.embed_documents(texts)


def _area(key: str) -> str:
    parts = key.split("/")
    return next((part for part in parts if part in SPOOL_AREAS), "other")


@contextmanager
def counted_s3(ledger: Ledger) -> Iterator[None]:
    """Every S3 client the spool makes records each request (botocore's ``before-parameter-build``)."""

    def on_request(params: Mapping[str, Any], event_name: str, **_kwargs: Any) -> None:
        operation = event_name.rsplit(".", 1)[-1]
        ledger.add("s3", op=operation, area=_area(str(params.get("Key") or params.get("Prefix") or "")))

    def client() -> Any:
        made = aws_client("s3", region=resolve_region())
        made.meta.events.register("before-parameter-build.s3", on_request)
        return made

    with mock.patch.object(s3_location, "s3_client", client):
        yield


@contextmanager
def offline_s3(spool_url: str) -> Iterator[None]:
    """moto's in-process S3 with the spool bucket, fake credentials, and ``S3_VECTORS_MEMORY_SPOOL`` set."""
    from moto import mock_aws

    settings = {"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench", "AWS_REGION": "us-east-1",
                "S3_VECTORS_MEMORY_SPOOL": spool_url}
    cleared = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
    saved = {name: os.environ.get(name) for name in (*settings, *cleared)}
    os.environ.update(settings)
    for name in cleared:
        os.environ.pop(name, None)
    try:
        with mock_aws():
            aws_client("s3", region="us-east-1").create_bucket(Bucket=SPOOL_BUCKET)
            yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextmanager
def lone_conversations() -> Iterator[None]:
    """Each conversation as if it were the instance's only one in a while (at least 15 s apart).

    Before claiming a job the writer renews its heartbeat when it is older than a quarter lease
    (15 s), and a tombstone check lists the board when its copy is older than 2 s; back to back in a
    benchmark neither happens per conversation, on a quiet instance both do.
    """
    with mock.patch.object(S3Spool, "_fresh_beat", S3Spool._beat), \
            mock.patch.object(s3_tombstones, "BOARD_TTL_SECONDS", 0.0):
        yield


def _is_summary(messages: Any, _system_prompt: str | None) -> bool:
    return bool(messages) and parse_summary_request(message_text(messages[-1], fold=False)) is not None


def _answer(reply_chars: int) -> Callable[[Any, str | None], str]:
    """Summaries as the scripted model writes them; chat replies padded to a realistic length."""

    def answer(messages: Any, system_prompt: str | None) -> str:
        reply = str(default_responder(messages, system_prompt))
        return reply if _is_summary(messages, system_prompt) else padded_reply(reply, reply_chars)

    return answer


def _stored_vectors(client: Any, bucket: str, index: str) -> list[dict[str, Any]]:
    """Every vector in the index, with its metadata (uncounted: read after the run)."""
    found: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        page = client.list_vectors(vectorBucketName=bucket, indexName=index, returnMetadata=True,
                                   **({"nextToken": token} if token else {}))
        found.extend(page.get("vectors", []))
        token = page.get("nextToken")
        if not token:
            return found


@dataclass(frozen=True)
class CountedArm:
    """One arm's counters and what the agent runs on, built once: both benches drive their agents over it."""

    ledger: Ledger
    raw: S3VectorsClient  # the embedded engine's client, under the counting wrapper
    store: S3VectorMemory
    model: ScriptedModel

    @contextmanager
    def counting(self, spool_prefix: str) -> Iterator[None]:
        """moto's S3 spool under ``spool_prefix``, every S3 request counted, no timed adoption scan."""
        with offline_s3(f"s3://{SPOOL_BUCKET}/{spool_prefix}/"), counted_s3(self.ledger), \
                mock.patch.object(runtime, "_ADOPT_INTERVAL", 1e9):  # no timed scan: count_ours counts one apart
            yield

    def counts(self, conversations: int) -> dict[str, Any]:
        """What was counted and what the index holds: the input of :func:`figures`."""
        stored = _stored_vectors(self.raw, BUCKET, self.store.index_name)
        return {"events": self.ledger.events,
                "stored": [vector_size(v, NON_FILTERABLE_METADATA_KEYS) for v in stored],
                "stored_keys": [v["key"] for v in stored], "conversations": conversations}


def counted_arm(data_dir: Path, encoder: Embedder, *, reply_chars: int) -> CountedArm:
    """A fresh ledger, and the store and scripted model recording into it (on ``data_dir``'s engine)."""
    ledger = Ledger()
    raw = local_client(data_dir)
    store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir,
                           client=CountingS3Vectors(raw, ledger, NON_FILTERABLE_METADATA_KEYS),
                           embedder=CachedEmbedder(CountingEmbedder(encoder, ledger)))
    model = ScriptedModel(responder=recording_responder(ledger, _is_summary, _answer(reply_chars)))
    return CountedArm(ledger, raw, store, model)


def count_ours(data_dir: Path, script: Sequence[Conversation], encoder: Embedder, *, reply_chars: int,
               extract_facts: bool = True, lone: bool = True, spool_prefix: str = "spool") -> dict[str, Any]:
    """Run ``script`` through an agent with our plugin and return what was counted (see the module doc)."""
    arm = counted_arm(data_dir, encoder, reply_chars=reply_chars)
    with ExitStack() as stack:
        stack.enter_context(arm.counting(spool_prefix))
        if lone:
            stack.enter_context(lone_conversations())
        plugin = S3VectorMemoryPlugin(arm.store, BASE_PROMPT, summary=SummarySettings(extract_facts=extract_facts),
                                      writing=WritingSettings(flush_at_exit=False))
        agent = Agent(model=arm.model, name=AGENT, system_prompt=BASE_PROMPT, plugins=[plugin],
                      callback_handler=None)
        drive(agent, script, arm.ledger, after_conversation=lambda: _flushed(plugin))
        arm.ledger.phase = "adoption_scan"  # what the reaper does every minute
        plugin.writer.adopt_orphans()
        arm.ledger.phase = "shutdown"
        plugin.close(60)
    return arm.counts(len(script))


def _flushed(plugin: S3VectorMemoryPlugin) -> None:
    if not plugin.flush(120):
        raise RuntimeError("the background writer did not finish within 120 s")


def count_original(original: Path, scratch: Path, script_count: int | None, encoder: Embedder, *,
                   reply_chars: int) -> dict[str, Any] | None:
    """The same conversations through 0.3.0 (``_costs_original.py``); ``None`` (with a note) without it."""
    if not original_installed(original):
        return None
    data_dir = scratch / "original"
    setup = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir, embedder=encoder)
    setup.verify()  # the bucket and the "memory" index 0.3.0 expects (384-d here, NON_FILTERABLE as ours)
    setup._get_s3vectors_client().close()
    with LocalEndpoint(data_dir) as endpoint:
        args = ["--original", str(original), "--src", str(ROOT / "src"), "--bucket", BUCKET,
                "--reply-chars", str(reply_chars)]
        if script_count is not None:
            args += ["--conversations", str(script_count)]
        result = run_child("_costs_original.py", args, env=bench_aws_env(endpoint.url), timeout=1800)
        if result is None:
            return None
        import boto3

        client = boto3.client("s3vectors", endpoint_url=endpoint.url, region_name="us-east-1",
                              aws_access_key_id="bench", aws_secret_access_key="bench")
        stored = _stored_vectors(client, BUCKET, "memory")
    result["stored"] = [vector_size(v, NON_FILTERABLE_METADATA_KEYS) for v in stored]
    result["stored_keys"] = [v["key"] for v in stored]
    result["conversations"] = len(conversations(script_count))
    return result


# --- figures --------------------------------------------------------------------------------------------


def _tokens(counter: Callable[[str], int] | None, text: str) -> int:
    return counter(text) if counter is not None else -(-len(text) // 4)


def logical_bytes(vector: Mapping[str, int], dimension: int = AWS_DIMENSION) -> int:
    """A vector's logical size as S3 Vectors bills it: float32 data + key + metadata."""
    return 4 * dimension + vector["key_bytes"] + vector["metadata_bytes"]


def figures(counted: Mapping[str, Any], counter: Callable[[str], int] | None) -> dict[str, Any]:
    """Totals and per-conversation means of one arm's events."""
    events: list[dict[str, Any]] = counted["events"]
    n = counted["conversations"]
    summaries = [e for e in events if e["kind"] == "model" and e["call"] == "summary"]
    chats = [e for e in events if e["kind"] == "model" and e["call"] == "chat"]
    summary_in = [e["system_prompt"] + "".join(e["messages"]) for e in summaries]
    blocks = [memory_block(e["system_prompt"]) for e in chats]
    first_blocks = [memory_block(e["system_prompt"]) for e in chats if e["phase"] == "first_turn"]
    embeds: Counter[tuple[str, str]] = Counter()
    embed_chars: Counter[tuple[str, str]] = Counter()
    embed_tokens: Counter[tuple[str, str]] = Counter()
    for e in (e for e in events if e["kind"] == "embed"):
        slot = (e["phase"], e["purpose"])
        embeds[slot] += 1
        embed_chars[slot] += len(e["text"])
        embed_tokens[slot] += _tokens(counter, e["text"])
    calls = Counter((e["phase"], e["op"]) for e in events if e["kind"] == "s3vectors")
    written = [v for e in events if e["kind"] == "s3vectors" and e["op"] == "PutVectors" for v in e["vectors"]]
    s3 = Counter((e["phase"], e["op"], e["area"]) for e in events if e["kind"] == "s3")
    stored = counted["stored"]
    return {
        "conversations": n,
        "summary_calls": len(summaries),
        "summary_input_chars": sum(map(len, summary_in)) / n,
        "summary_input_tokens": sum(_tokens(counter, t) for t in summary_in) / n,
        "summary_system_prompt_tokens": statistics.mean(_tokens(counter, e["system_prompt"]) for e in summaries)
        if summaries else 0,
        "summary_output_chars": sum(len(e["reply"]) for e in summaries) / n,
        "summary_output_tokens": sum(_tokens(counter, e["reply"]) for e in summaries) / n,
        "chat_calls": len(chats) / n,
        "memory_block_chars": sum(map(len, blocks)) / n,
        "memory_block_tokens": sum(_tokens(counter, b) for b in blocks) / n,
        "first_turns_with_memories": sum(1 for b in first_blocks if b),
        "first_turn_block_tokens": statistics.mean(_tokens(counter, b) for b in first_blocks if b)
        if any(first_blocks) else 0,
        "embeddings": {f"{phase}/{purpose}": {"texts": embeds[(phase, purpose)] / n,
                                              "chars": embed_chars[(phase, purpose)] / n,
                                              "tokens": embed_tokens[(phase, purpose)] / n}
                       for phase, purpose in sorted(embeds)},
        "s3vectors": {f"{phase}/{op}": count / n for (phase, op), count in sorted(calls.items())
                      if phase in ("first_turn", "later_turn", "end_session")},
        "s3vectors_fixed": {f"{phase}/{op}": count for (phase, op), count in sorted(calls.items())
                            if phase not in ("first_turn", "later_turn", "end_session")},
        "vectors_written": len(written) / n,
        "put_requests": calls[("end_session", "PutVectors")] / n,
        "put_logical_bytes": sum(logical_bytes(v) for v in written) / n,
        "key_bytes": statistics.mean(v["key_bytes"] for v in written) if written else 0,
        "metadata_bytes": statistics.mean(v["metadata_bytes"] for v in written) if written else 0,
        "stored_vectors": len(stored),
        "stored_vectors_per_conversation": len(stored) / n,
        "stored_logical_bytes": sum(logical_bytes(v) for v in stored) / n,
        "query_scan_bytes_per_vector": statistics.mean(
            4 * AWS_DIMENSION + v["key_bytes"] + v["filterable_bytes"] for v in stored) if stored else 0,
        "s3": {f"{phase}/{op}/{area}": count / (n if phase in ("first_turn", "later_turn", "end_session") else 1)
               for (phase, op, area), count in sorted(s3.items())},
    }


def prices(fig: Mapping[str, Any]) -> dict[str, float]:
    """Dollars per conversation, line by line (only what the transcribed price list covers)."""
    p = PRICES
    queries = sum(v for k, v in fig["s3vectors"].items() if k.endswith("/QueryVectors"))
    s3 = fig["s3"]
    per_conversation = {k: v for k, v in s3.items() if k.split("/")[0] in ("first_turn", "later_turn", "end_session")}
    put_list = sum(v for k, v in per_conversation.items() if S3_TIER.get(k.split("/")[1]) == "put_list")
    get = sum(v for k, v in per_conversation.items() if S3_TIER.get(k.split("/")[1]) == "get")
    return {
        "summary call (model input)": fig["summary_input_tokens"] * p["model_input_per_million"] / 1e6,
        "summary call (model output)": fig["summary_output_tokens"] * p["model_output_per_million"] / 1e6,
        "memory block in the conversation's model calls (input)":
            fig["memory_block_tokens"] * p["model_input_per_million"] / 1e6,
        "S3 Vectors PUT (logical GB uploaded)": fig["put_logical_bytes"] / GIB * p["s3vectors_put_per_gb"],
        "S3 Vectors queries (API calls)": queries * p["s3vectors_query_per_million"] / 1e6,
        "S3 spool requests (PUT/LIST)": put_list * p["s3_put_list_per_1000"] / 1000,
        "S3 spool requests (GET/HEAD)": get * p["s3_get_per_1000"] / 1000,
    }


# --- report ---------------------------------------------------------------------------------------------


def _money(value: float) -> str:
    if value == 0:
        return "$0"
    return f"${value:.6f}" if value < 0.01 else f"${value:,.2f}"


def report(arms: Mapping[str, Mapping[str, Any]], args: argparse.Namespace) -> str:
    names = list(arms)
    lines = [f"machine: {machine()}",
             f"{arms[names[0]]['conversations']} conversations per arm; assistant replies {args.reply_chars} chars; "
             f"tokens: {TOKENIZER if token_counter() else 'characters / 4 (llama-cpp-python not installed)'}",
             "", "Per remembered conversation (means):", "",
             "| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]

    def row(label: str, value: Callable[[Mapping[str, Any]], str]) -> None:
        lines.append(f"| {label} | " + " | ".join(value(arms[n]) for n in names) + " |")

    row("summary calls per ended conversation", lambda f: f"{f['summary_calls'] / f['conversations']:.2f}")
    row("summary call input: tokens (chars)", lambda f: f"{f['summary_input_tokens']:.0f} "
        f"({f['summary_input_chars']:.0f})")
    row("  of which system prompt, tokens", lambda f: f"{f['summary_system_prompt_tokens']:.0f}")
    row("summary call output: tokens (chars)", lambda f: f"{f['summary_output_tokens']:.0f} "
        f"({f['summary_output_chars']:.0f})")
    row("chars / 4 cross-check: input / output", lambda f: f"{f['summary_input_chars'] / 4:.0f} / "
        f"{f['summary_output_chars'] / 4:.0f}")
    row("chat model calls per conversation", lambda f: f"{f['chat_calls']:.1f}")
    row("first turns that got memories", lambda f: f"{f['first_turns_with_memories']} / {f['conversations']}")
    row("memory block in chat calls: tokens (chars) per conversation",
        lambda f: f"{f['memory_block_tokens']:.0f} ({f['memory_block_chars']:.0f})")
    keys = sorted({k for n in names for k in arms[n]["embeddings"]})
    for key in keys:
        row(f"embeddings {key}: texts, tokens (chars)", lambda f, key=key: (
            f"{f['embeddings'][key]['texts']:.2f}, {f['embeddings'][key]['tokens']:.0f} "
            f"({f['embeddings'][key]['chars']:.0f})" if key in f["embeddings"] else "0"))
    for key in sorted({k for n in names for k in arms[n]["s3vectors"]}):
        row(f"S3 Vectors {key}", lambda f, key=key: f"{f['s3vectors'].get(key, 0):.2f}")
    row("vectors written (PutVectors requests)", lambda f: f"{f['vectors_written']:.2f} ({f['put_requests']:.2f})")
    row("  key / metadata bytes per vector written", lambda f: f"{f['key_bytes']:.0f} / {f['metadata_bytes']:.0f}")
    row(f"  logical bytes uploaded at {AWS_DIMENSION}-d", lambda f: f"{f['put_logical_bytes']:,.0f}")
    row("vectors stored at the end (per conversation)", lambda f: f"{f['stored_vectors']} "
        f"({f['stored_vectors_per_conversation']:.2f})")
    row(f"  logical bytes stored per conversation at {AWS_DIMENSION}-d", lambda f: f"{f['stored_logical_bytes']:,.0f}")
    row("  bytes a query scans per stored vector (data + key + filterable metadata)",
        lambda f: f"{f['query_scan_bytes_per_vector']:,.0f}")
    for key in sorted({k for n in names for k in arms[n]["s3"] if k.split("/")[0] in
                       ("first_turn", "later_turn", "end_session")}):
        row(f"S3 spool {key}", lambda f, key=key: f"{f['s3'].get(key, 0):.2f}")
    lines += ["", "S3 spool requests per instance (not per conversation):", ""]
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    for key in sorted({k for n in names for k in arms[n]["s3"] if k.split("/")[0] not in
                       ("first_turn", "later_turn", "end_session")}):
        row(f"{key}", lambda f, key=key: f"{f['s3'].get(key, 0):.0f}")
    lines += ["", "Embeddings per conversation (Bedrock: one InvokeModel per text; Nova price not transcribed):", ""]
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    row("texts embedded (InvokeModel calls)", lambda f: f"{sum(v['texts'] for v in f['embeddings'].values()):.2f}")
    row("tokens embedded (chars)", lambda f: f"{sum(v['tokens'] for v in f['embeddings'].values()):.0f} "
        f"({sum(v['chars'] for v in f['embeddings'].values()):.0f})")
    region, date = PRICES["region"], PRICES["transcribed"]
    for title, scale in (("dollars per conversation", 1.0), ("dollars per 1M conversations", 1e6)):
        lines += ["", f"Priced ({region}, transcribed {date}), {title}:", ""]
        lines += ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
        for item in prices(arms[names[0]]):
            row(item, lambda f, item=item, scale=scale: _money(scale * prices(f)[item]))
        row("total of the items above", lambda f, scale=scale: _money(scale * sum(prices(f).values())))
    base = args.users * args.per_user
    lines += ["", f"A user base of {args.users:,} users x {args.per_user} remembered conversations ({base:,}):", ""]
    lines += ["| | " + " | ".join(names) + " |", "|---|" + "---:|" * len(names)]
    row("vectors in the index", lambda f: f"{f['stored_vectors_per_conversation'] * base:,.0f}")
    row(f"logical GB stored at {AWS_DIMENSION}-d", lambda f: f"{f['stored_logical_bytes'] * base / GIB:.2f}")
    row("S3 Vectors storage per month", lambda f: _money(
        f["stored_logical_bytes"] * base / GIB * PRICES["s3vectors_storage_per_gb_month"]))
    row("data a query scans, TB (one shared index; per-TB price not transcribed)", lambda f: (
        f"{f['stored_vectors_per_conversation'] * base * f['query_scan_bytes_per_vector'] / 1024**4:.4f}"))
    return "\n".join(lines)


def run_arguments(description: str) -> argparse.ArgumentParser:
    """The options every cost bench takes: which conversations, reply length, the storage example, JSON out."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--conversations", type=int, default=None, help="run only the first N (default: all 30)")
    parser.add_argument("--reply-chars", type=int, default=DEFAULT_REPLY_CHARS,
                        help="characters of each scripted assistant reply (%(default)s)")
    parser.add_argument("--users", type=int, default=10_000, help="users of the storage example (%(default)s)")
    parser.add_argument("--per-user", type=int, default=20, help="conversations each user has stored (%(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the counts and figures as JSON here")
    return parser


def publish(counted: Mapping[str, Mapping[str, Any]], args: argparse.Namespace) -> None:
    """Each arm's counts as figures: the report printed, and with ``--json`` the figures and prices written."""
    counter = token_counter()
    arms = {name: figures(result, counter) for name, result in counted.items()}
    print()
    print(report(arms, args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "prices": PRICES,
                                         "figures": arms, "priced": {n: prices(f) for n, f in arms.items()}},
                                        indent=2), encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    parser = run_arguments(__doc__.split("\n\n")[0])
    parser.add_argument("--original", type=Path, default=Path("/tmp/orig-pkg"), help="where 0.3.0 is installed")
    args = parser.parse_args(argv)

    script = conversations(args.conversations)
    encoder = LocalEmbedder()
    encoder.embed_query("warm up")
    counted: dict[str, dict[str, Any]] = {}
    with tempfile.TemporaryDirectory(prefix="costs-bench-") as scratch:
        root = Path(scratch)
        counted["ours"] = count_ours(root / "ours", script, encoder, reply_chars=args.reply_chars,
                                     spool_prefix="lone")
        counted["ours, back to back"] = count_ours(root / "busy", script, encoder, reply_chars=args.reply_chars,
                                                   lone=False, spool_prefix="busy")
        counted["ours, extract_facts=False"] = count_ours(root / "nofacts", script, encoder,
                                                          reply_chars=args.reply_chars, extract_facts=False,
                                                          spool_prefix="nofacts")
        original = count_original(args.original, root, args.conversations, encoder, reply_chars=args.reply_chars)
        if original is not None:
            counted["0.3.0"] = original
    publish(counted, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
