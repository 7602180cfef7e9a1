"""Subprocess half of ``plugin_overhead.py``: the original strands-s3-vectors-memory 0.3.0, timed.

Run by ``plugin_overhead.py``, never directly: the original package has the same import name as
ours, so it lives in its own ``--target`` directory (``pip install strands-s3-vectors-memory==0.3.0
--target /tmp/orig-pkg``) and runs in its own interpreter. It talks boto3 to the local S3 Vectors
endpoint (``AWS_ENDPOINT_URL_S3VECTORS``) serving the same 100k-memory index (or, with ``--data-dir``,
to the embedded engine's client in this process, as ours runs offline); its Bedrock embedding
call is replaced by the bundled e5 model (our package, loaded under another module name), and the
model is our ``ScriptedModel``. Prints one JSON object with the timings.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent


def _load_ours(src: Path) -> Any:
    """Our package under the module name ``ours`` (``strands_s3_vectors_memory`` is the original here)."""
    spec = importlib.util.spec_from_file_location(
        "ours", src / "strands_s3_vectors_memory" / "__init__.py",
        submodule_search_locations=[str(src / "strands_s3_vectors_memory")],
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["ours"] = module
    spec.loader.exec_module(module)
    return module


def with_local_embeddings(original: Any, src: Path) -> tuple[Any, type]:
    """Replace 0.3.0's Bedrock embedding call with our bundled e5 model (the only stub), ours loaded as
    ``ours`` from ``src``; returns the embedder and our ``ScriptedModel`` class."""
    _load_ours(src)
    from ours.embeddings import LocalEmbedder
    from ours.testing import ScriptedModel

    embedder = LocalEmbedder()

    def local_embed(self: Any, text: str, purpose: str = "GENERIC_INDEX") -> list[float]:
        if purpose == "GENERIC_RETRIEVAL":
            return embedder.embed_query(text)
        return embedder.embed_documents([text])[0]

    original.S3VectorMemory._embed = local_embed
    return embedder, ScriptedModel


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--original", type=Path, required=True, help="the --target dir holding 0.3.0")
    parser.add_argument("--src", type=Path, required=True, help="our src/ directory")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--user", required=True)
    parser.add_argument("--conversations", type=int, required=True)
    parser.add_argument("--throughput", type=int, required=True)
    parser.add_argument("--data-dir", type=Path, default=None,
                        help="use the embedded engine in this directory instead of the endpoint")
    args = parser.parse_args()

    sys.path.insert(0, str(args.original))
    sys.path.insert(1, str(HERE))
    from strands import Agent

    import strands_s3_vectors_memory as original  # the 0.3.0 package
    from _turns import BASE_PROMPT, run_conversations, track_original_writes

    if not str(Path(original.__file__).resolve()).startswith(str(args.original.resolve())):
        raise SystemExit(f"imported the wrong package: {original.__file__}")
    embedder, ScriptedModel = with_local_embeddings(original, args.src)
    plugin_module = sys.modules["strands_s3_vectors_memory.s3_vector_memory_plugin"]
    drain = track_original_writes(plugin_module)

    store = original.S3VectorMemory(bucket_name=args.bucket)
    if args.data_dir is not None:  # boto3 -> the embedded engine's boto3-shaped client, in this process
        from s3vectors_engine import LocalS3VectorsClient

        store._s3vectors = LocalS3VectorsClient(args.data_dir)
    plugin = original.S3VectorMemoryPlugin(store=store, base_prompt=BASE_PROMPT)
    plain_prompt = BASE_PROMPT.replace("{memory_context}", "")
    agents = {
        "plain": Agent(model=ScriptedModel(), name="assistant", system_prompt=plain_prompt, callback_handler=None),
        "memory": Agent(model=ScriptedModel(), name="assistant", system_prompt=BASE_PROMPT, plugins=[plugin],
                        callback_handler=None),
    }
    embedder.embed_query("warm up")
    times = run_conversations(agents, args.conversations, user_id=args.user, after_conversation=drain)

    agent = agents["memory"]
    started = time.perf_counter()
    for number in range(args.throughput):
        agent.messages.clear()
        state = {"user_id": f"writer-{number}", "conversation_id": f"w-{number}", "end_session": True}
        agent(f"I keep bees and sell honey at the market, note {number}. Bye!", invocation_state=state)
    drain()
    rate = args.throughput / (time.perf_counter() - started)

    print(json.dumps({
        "median_ms": {name: {k: t.median_ms(k) for k in t.samples} for name, t in times.items()},
        "p95_ms": {name: {k: t.p95_ms(k) for k in t.samples} for name, t in times.items()},
        "summaries_per_second": rate,
    }))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
