"""Subprocess half of ``costs.py``: the original strands-s3-vectors-memory 0.3.0, counted.

Run by ``costs.py``, never directly (the original has the same import name as ours, so it runs in
its own interpreter from its own ``--target`` directory, as in ``_original_runner.py``). It talks
boto3 to the local S3 Vectors endpoint (``AWS_ENDPOINT_URL_S3VECTORS``); its S3 Vectors client is
wrapped to count every call, its Bedrock embedding call is replaced by the bundled e5 model (counted
per text, with its purpose), and the model is our ``ScriptedModel`` answering the same conversations
with the same replies, its summary being the same extractive summary ours stores. Prints one JSON
object: the counted events.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--original", type=Path, required=True, help="the --target dir holding 0.3.0")
    parser.add_argument("--src", type=Path, required=True, help="our src/ directory")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--conversations", type=int, default=None)
    parser.add_argument("--reply-chars", type=int, required=True)
    args = parser.parse_args()

    sys.path.insert(0, str(args.original))
    sys.path.insert(1, str(HERE))
    from strands import Agent

    import strands_s3_vectors_memory as original  # the 0.3.0 package
    from _cost_script import (
        AGENT,
        CountingS3Vectors,
        Ledger,
        conversations,
        drive,
        padded_reply,
        record_embedding,
        recording_responder,
    )
    from _original_runner import _load_ours
    from _turns import BASE_PROMPT, track_original_writes

    if not str(Path(original.__file__).resolve()).startswith(str(args.original.resolve())):
        raise SystemExit(f"imported the wrong package: {original.__file__}")
    _load_ours(args.src)  # our package as ``ours``
    from ours.archive import extractive_summary
    from ours.config import NON_FILTERABLE_METADATA_KEYS
    from ours.embeddings import LocalEmbedder
    from ours.testing import ScriptedModel, default_responder

    plugin_module = sys.modules["strands_s3_vectors_memory.s3_vector_memory_plugin"]
    summarize_prompt = plugin_module._SUMMARIZE_PROMPT
    ledger = Ledger()
    embedder = LocalEmbedder()

    def local_embed(self: Any, text: str, purpose: str = "GENERIC_INDEX") -> list[float]:
        if purpose == "GENERIC_RETRIEVAL":
            record_embedding(ledger, "query", [text])
            return embedder.embed_query(text)
        record_embedding(ledger, "document", [text])
        return embedder.embed_documents([text])[0]

    original.S3VectorMemory._embed = local_embed  # Bedrock -> bundled e5, the only stub

    def is_summary(_messages: Any, system_prompt: str | None) -> bool:
        return system_prompt == summarize_prompt

    def answer(messages: Any, system_prompt: str | None) -> str:
        if is_summary(messages, system_prompt):  # the same summary ours stores (the user's own words)
            transcript = " ".join(b["text"] for b in messages[-1]["content"] if "text" in b)
            return str(extractive_summary(transcript))
        return padded_reply(str(default_responder(messages, system_prompt)), args.reply_chars)

    drain = track_original_writes(plugin_module)

    store = original.S3VectorMemory(bucket_name=args.bucket, region_name="us-east-1")
    store._s3vectors = CountingS3Vectors(store._s3vectors, ledger, NON_FILTERABLE_METADATA_KEYS)
    plugin = original.S3VectorMemoryPlugin(store=store, base_prompt=BASE_PROMPT)
    model = ScriptedModel(responder=recording_responder(ledger, is_summary, answer))
    agent = Agent(model=model, name=AGENT, system_prompt=BASE_PROMPT, plugins=[plugin], callback_handler=None)
    embedder.embed_query("warm up")
    drive(agent, conversations(args.conversations), ledger, after_conversation=drain)

    print(json.dumps({"events": ledger.events}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
