"""Subprocess half of ``writer_throughput.py`` and ``plugin_overhead.py``: ours from a process of its own.

The endpoint serves from the benchmark's process; the client (plugin, writer, embedder) runs here,
exactly as ``_original_runner.py`` runs 0.3.0, so both HTTP setups pay the same: one interpreter
serving, another one calling. (In one process the server's threads and the client's would share
one GIL, which no deployment does: a first turn's two queries, side by side over the network,
would wait for the server's Python too.) With ``--data-dir`` instead of ``--url``, ours on the
embedded engine, in this process. Whichever ``strands_s3_vectors_memory`` is first on
``PYTHONPATH`` is measured (``plugin_overhead.py --before-src`` times another tree's).
Prints one JSON object, ``measure_ours``'s result.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    parser = argparse.ArgumentParser()
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--url", help="the local endpoint's URL")
    where.add_argument("--data-dir", type=Path, help="the embedded engine's data directory")
    parser.add_argument("--bucket", required=True)
    parser.add_argument("--spool", type=Path, required=True)
    parser.add_argument("--throughput", type=int, required=True)
    parser.add_argument("--conversations", type=int, default=0, help="timed three-turn conversations")
    parser.add_argument("--no-facts", action="store_true", help="extract_facts=False")
    args = parser.parse_args()

    sys.path.insert(0, str(HERE))
    from plugin_overhead import endpoint_store, measure_ours
    from strands_s3_vectors_memory import S3VectorMemory, SummarySettings
    from strands_s3_vectors_memory.embeddings import make_embedder

    if args.url is not None:
        store = endpoint_store(args.url, bucket=args.bucket)
    else:
        store = S3VectorMemory(bucket_name=args.bucket, backend="local", data_dir=args.data_dir,
                               embedder=make_embedder("local"))
    summary = SummarySettings(extract_facts=not args.no_facts)
    print(json.dumps(measure_ours(store, args.conversations, args.throughput, args.spool, summary=summary)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
