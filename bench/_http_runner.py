"""Subprocess half of ``writer_throughput.py``: ours through the local endpoint, from a process of its own.

The endpoint serves from the benchmark's process; the client (plugin, writer, embedder) runs here,
exactly as ``_original_runner.py`` runs 0.3.0, so both HTTP setups pay the same: one interpreter
serving, another one calling. (In one process the server's threads and the writer's would share
one GIL, which no deployment does.) Prints one JSON object, ``measure_ours``'s result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--url", required=True, help="the local endpoint's URL")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--throughput", type=int, required=True)
    parser.add_argument("--no-facts", action="store_true", help="extract_facts=False")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    from plugin_overhead import _endpoint_client, measure_ours
    from strands_s3_vectors_memory import S3VectorMemory, SummarySettings
    from strands_s3_vectors_memory.embeddings import make_embedder

    store = S3VectorMemory(bucket_name=args.bucket, backend="aws", endpoint_url=args.url,
                           embedder=make_embedder("local"), region_name="us-east-1",
                           client=_endpoint_client(args.url))
    summary = SummarySettings(extract_facts=not args.no_facts)
    print(json.dumps(measure_ours(store, 0, args.throughput, args.spool, summary=summary)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
