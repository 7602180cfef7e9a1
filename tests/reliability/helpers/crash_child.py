"""A separate process that ends conversations and gets SIGKILLed, then one that replays its spool.

Modes (argv[1]):

``write DATA SPOOL N HANG``
    An agent with the memory plugin (embedded engine under DATA, spool at SPOOL) ends N
    conversations, prints READY once all were handed to the writer, then waits to be killed.
    HANG chooses where the background write is stuck when the kill comes: ``summary`` (the model
    never answers), ``put`` (``put_vectors`` never returns, after the summary was checkpointed),
    ``put-odd`` (only odd conversations hang: the kill finds some stored, some not) or ``slow``
    (every ``put_vectors`` takes 30 ms: the kill lands wherever the writer happens to be).
``replay DATA SPOOL``
    A fresh process with the same data dir and spool: attaching the plugin replays the spool; it
    flushes and prints one JSON line of writer stats and how many summaries the model was asked for.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parents[2]))  # tests/: the support package

from reliability_support import FaultyClient, SeededRandomEmbedder, make_agent, say
from strands.types.content import Messages

from s3vectors_engine import LocalS3VectorsClient
from strands_s3_vectors_memory import RetrievalSettings, S3VectorMemory
from strands_s3_vectors_memory.plugin._settings import DEFAULT_WRITER_WORKERS
from strands_s3_vectors_memory.testing import Reply, ScriptedModel, default_responder
from support import asks_for_summary

BUCKET = "crash"
WORKERS = DEFAULT_WRITER_WORKERS  # the plugin's default writer threads
_FOREVER = threading.Event()
_HANGING: list[str] = []
_ALL_WORKERS_STUCK = threading.Event()


def _hang_forever(conversation: str) -> None:
    _HANGING.append(conversation)
    if len(_HANGING) >= WORKERS:
        _ALL_WORKERS_STUCK.set()
    _FOREVER.wait()


def _store(data: str, hang: str) -> S3VectorMemory:
    def fault(operation: str, params: Mapping[str, Any]) -> BaseException | None:
        if operation == "put_vectors" and hang == "slow":
            time.sleep(0.03)  # a slow backend: the kill lands while writes are in flight
        if operation == "put_vectors" and hang in ("put", "put-odd"):
            conversations = {v["metadata"].get("conversation_id", "") for v in params["vectors"]}
            if hang == "put" or any(int(c.rsplit("-", 1)[1]) % 2 for c in conversations):
                _hang_forever(",".join(sorted(conversations)))
        return None

    client = FaultyClient(LocalS3VectorsClient(data), fault)
    return S3VectorMemory(BUCKET, backend="local", data_dir=data, client=client, embedder=SeededRandomEmbedder())


def _model(hang: str, counter: list[int]) -> ScriptedModel:
    def respond(messages: Messages, system_prompt: str | None) -> Reply:
        if asks_for_summary(messages):
            counter.append(1)
            if hang == "summary":
                _hang_forever("summary")
        return default_responder(messages, system_prompt)

    return ScriptedModel(responder=respond)


def _write(data: str, spool: str, count: int, hang: str) -> None:
    summaries: list[int] = []
    agent, _plugin, _ = make_agent(
        _store(data, hang), model=_model(hang, summaries), spool_dir=Path(spool),
        retrieval=RetrievalSettings(read_your_writes_timeout=0),
    )
    for i in range(count):
        # As many users as writer threads: one user's conversations are archived one at a time, so
        # with fewer users some threads would wait for a user's lock instead of reaching the hang point.
        say(agent, f"Conversation {i}: my lucky number is {i * 7}.", f"user-{i % WORKERS}", f"conv-{i}", end=True)
    if hang in ("summary", "put") and not _ALL_WORKERS_STUCK.wait(30):
        raise SystemExit("the writer threads never reached the hang point")
    print("READY", flush=True)
    _FOREVER.wait()


def _replay(data: str, spool: str) -> None:
    summaries: list[int] = []
    _agent, plugin, _ = make_agent(_store(data, "none"), model=_model("none", summaries), spool_dir=Path(spool))
    finished = plugin.flush(60)
    stats = plugin.writer.stats
    plugin.close(10)
    print(json.dumps({"flushed": finished, "replayed": stats.replayed, "succeeded": stats.succeeded,
                      "failed": stats.failed, "summary_calls": len(summaries)}), flush=True)


def main(argv: list[str]) -> None:
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr)
    if argv[1] == "write":
        _write(argv[2], argv[3], int(argv[4]), argv[5])
    elif argv[1] == "replay":
        _replay(argv[2], argv[3])
    else:
        raise SystemExit(f"unknown mode {argv[1]!r}")


if __name__ == "__main__":
    main(sys.argv)
