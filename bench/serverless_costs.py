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

import sys
import tempfile
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from strands import Agent

from strands_s3_vectors_memory import S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.embeddings import LocalEmbedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _cost_script import (
    AGENT,
    Conversation,
    conversations,
)
from _turns import BASE_PROMPT
from costs import (
    _flushed,
    counted_arm,
    lone_conversations,
    publish,
    run_arguments,
)

ARMS = ("end_open", "durable_turns")


def count_arm(arm: str, data_dir: Path, script: Sequence[Conversation], encoder: LocalEmbedder, *,
              reply_chars: int) -> dict[str, Any]:
    """Run ``script`` one request at a time, a new agent and plugin per request, in ``arm``'s way."""
    arm_counts = counted_arm(data_dir, encoder, reply_chars=reply_chars)
    ledger, store = arm_counts.ledger, arm_counts.store
    with ExitStack() as stack:
        stack.enter_context(arm_counts.counting(arm))
        stack.enter_context(lone_conversations())
        plugin = None
        for conversation in script:
            last = len(conversation.turns) - 1
            for number, text in enumerate(conversation.turns):
                ledger.phase = "first_turn" if number == 0 else "end_session" if number == last else "later_turn"
                writing = WritingSettings(flush_at_exit=False, durable_turns=arm == "durable_turns")
                plugin = S3VectorMemoryPlugin(store, BASE_PROMPT, writing=writing)
                agent = Agent(model=arm_counts.model, name=AGENT, system_prompt=BASE_PROMPT, plugins=[plugin],
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
    return arm_counts.counts(len(script))


def main(argv: Sequence[str] | None = None) -> int:
    args = run_arguments(__doc__.split("\n\n")[0]).parse_args(argv)
    script = conversations(args.conversations)
    encoder = LocalEmbedder()
    encoder.embed_query("warm up")
    with tempfile.TemporaryDirectory(prefix="serverless-costs-") as scratch:
        counted = {arm: count_arm(arm, Path(scratch) / arm, script, encoder, reply_chars=args.reply_chars)
                   for arm in ARMS}
    publish(counted, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
