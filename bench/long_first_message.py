"""A long first message must not stall the first turn: the search with the query embedding bounded.

Times ``store.search_with_facts`` (what a first turn runs: embed the query, facts and memories
queries, rank) on messages of several lengths, against embedding the whole message as the query
(what the first turn did before: every character through the bundled e5 model). Each length is
timed ``--rounds`` times with a fresh message each time (no query-cache hits); medians in ms.

Run: ``python3 bench/long_first_message.py``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from strands_s3_vectors_memory import S3VectorMemory

SENTENCE = ("Last spring I ordered a blue bicycle and the delivery never arrived, so I wrote to the shop "
            "twice and they promised a refund or a replacement before the summer holidays. ")


def message(chars: int, salt: int) -> str:
    text = f"(message {salt}) " + SENTENCE * (chars // len(SENTENCE) + 1)
    return text[:chars] + " What did we decide about the refund?"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--lengths", default="200,2000,8000")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="long-message-") as root:
        store = S3VectorMemory(bucket_name="long-message", backend="local", data_dir=root)
        scope = store.scope("robin")
        for i in range(20):
            store.store_memory("robin", f"Robin's bicycle order number {i} was refunded in June.")
        store.search_with_facts(scope, "warm up")
        print(f"machine: {machine()}")
        print("| message chars | first-turn search, query bounded (ms) | embedding the whole message (ms) |")
        print("|---|---|---|")
        salt = 0
        for chars in (int(c) for c in args.lengths.split(",")):
            bounded, whole = [], []
            for _ in range(args.rounds):
                salt += 1
                started = time.perf_counter()
                store.search_with_facts(scope, message(chars, salt))
                bounded.append(time.perf_counter() - started)
                salt += 1
                started = time.perf_counter()
                store.embedder.embed_query(message(chars, salt))
                whole.append(time.perf_counter() - started)
            print(f"| {chars:,} | {1000 * statistics.median(bounded):.0f} | {1000 * statistics.median(whole):.0f} |",
                  flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
