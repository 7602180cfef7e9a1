"""What a conversation costs on a request-scoped runtime without a session manager: ``end_open`` vs ``durable_turns``.

On Lambda or AgentCore Runtime without a session manager, an open conversation's turns must not live
only in the environment that saw them (it is reclaimed without a hook). Two ways out:

* ``end_open``: every request ends and stores its conversation (``end_open_conversations()`` then
  ``flush()``): each request's turns are merged into the stored summary, one summary call per request;
* ``durable_turns=True``: each turn is one small conditional PUT to the conversation's buffer on the S3
  spool (no model call); the request that ends the conversation stores all of it, with one summary call.

Both arms run the same 30 scripted conversations as ``bench/costs.py`` (``_cost_script.py``), one new
``Agent`` and plugin per request as a request-scoped runtime builds them, with the same counters
(model calls and tokens, embeddings, S3 Vectors calls, S3 requests by area of the spool), priced with
``costs.PRICES``. Each conversation is its instance's only one in a while (``costs.lone_conversations``).

Run: ``python3 bench/serverless_costs.py --json /tmp/bench/serverless_costs.json`` (about 2 minutes).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any
from unittest import mock

from strands import Agent

from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin, runtime
from strands_s3_vectors_memory.clients import local_client
from strands_s3_vectors_memory.config import NON_FILTERABLE_METADATA_KEYS
from strands_s3_vectors_memory.embeddings import CachedEmbedder, LocalEmbedder
from strands_s3_vectors_memory.testing import ScriptedModel

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import token_counter
from _cost_script import (
    AGENT,
    DEFAULT_REPLY_CHARS,
    Conversation,
    CountingS3Vectors,
    Ledger,
    conversations,
    recording_responder,
    vector_size,
)
from _turns import BASE_PROMPT
from costs import (
    BUCKET,
    PRICES,
    SPOOL_BUCKET,
    CountingEmbedder,
    _answer,
    _flushed,
    _is_summary,
    _stored_vectors,
    counted_s3,
    figures,
    lone_conversations,
    offline_s3,
    prices,
    report,
)

ARMS = ("end_open", "durable_turns")


def count_arm(arm: str, data_dir: Path, script: Sequence[Conversation], encoder: LocalEmbedder, *,
              reply_chars: int) -> dict[str, Any]:
    """Run ``script`` one request at a time, a new agent and plugin per request, in ``arm``'s way."""
    ledger = Ledger()
    raw = local_client(data_dir)
    store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir,
                           client=CountingS3Vectors(raw, ledger, NON_FILTERABLE_METADATA_KEYS),
                           embedder=CachedEmbedder(CountingEmbedder(encoder, ledger)))
    model = ScriptedModel(responder=recording_responder(ledger, _is_summary, _answer(reply_chars)))
    with ExitStack() as stack:
        stack.enter_context(offline_s3(f"s3://{SPOOL_BUCKET}/{arm}/"))
        stack.enter_context(counted_s3(ledger))
        stack.enter_context(mock.patch.object(runtime, "_ADOPT_INTERVAL", 1e9))  # per-instance scans: costs.py
        stack.enter_context(lone_conversations())
        plugin = None
        for conversation in script:
            last = len(conversation.turns) - 1
            for number, text in enumerate(conversation.turns):
                ledger.phase = "first_turn" if number == 0 else "end_session" if number == last else "later_turn"
                plugin = S3VectorMemoryPlugin(store, BASE_PROMPT, flush_at_exit=False,
                                              durable_turns=arm == "durable_turns")
                agent = Agent(model=model, name=AGENT, system_prompt=BASE_PROMPT, plugins=[plugin],
                              callback_handler=None)
                agent(text, invocation_state={"user_id": conversation.user_id,
                                              "conversation_id": conversation.conversation_id,
                                              "end_session": number == last})
                if arm == "end_open":
                    plugin.end_open_conversations()
                _flushed(plugin)  # the request returns once its writes are stored (write_mode="inline")
            ledger.phase = "idle"
        ledger.phase = "shutdown"
        if plugin is not None:
            plugin.close(60)
    stored = _stored_vectors(raw, BUCKET, store.index_name)
    return {"events": ledger.events, "stored": [vector_size(v, NON_FILTERABLE_METADATA_KEYS) for v in stored],
            "stored_keys": [v["key"] for v in stored], "conversations": len(script)}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--conversations", type=int, default=None, help="run only the first N (default: all 30)")
    parser.add_argument("--reply-chars", type=int, default=DEFAULT_REPLY_CHARS,
                        help="characters of each scripted assistant reply (%(default)s)")
    parser.add_argument("--users", type=int, default=10_000, help="users of the storage example (%(default)s)")
    parser.add_argument("--per-user", type=int, default=20, help="conversations each user has stored (%(default)s)")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures as JSON here")
    args = parser.parse_args(argv)
    script = conversations(args.conversations)
    encoder = LocalEmbedder()
    encoder.embed_query("warm up")
    with tempfile.TemporaryDirectory(prefix="serverless-costs-") as scratch:
        counted = {arm: count_arm(arm, Path(scratch) / arm, script, encoder, reply_chars=args.reply_chars)
                   for arm in ARMS}
    counter = token_counter()
    arms = {name: figures(result, counter) for name, result in counted.items()}
    print()
    print(report(arms, args))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps({"args": {k: str(v) for k, v in vars(args).items()}, "prices": PRICES,
                                         "figures": arms, "priced": {n: prices(f) for n, f in arms.items()}},
                                        indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
