"""What one call of the bundled e5 model costs, by batch size and text length.

The embedding scheduler issue 11 built (``bench/_scheduler_stack.py`` since issue 23) sent
documents in slices and checked for waiting queries between them, so a slice had to be short, and
it was only worth filling a slice with several texts if the model embeds them faster together than
one by one. This times ``LocalEmbedder.embed_documents`` (one call, one
native handle) for batches of 1-32 texts of three lengths the writer stores: a short turn, a detail
record (a turn with the turn before it as context), and a full-length summary, plus one query.
Each figure is the best of ``--repeat`` rounds over every cell (the call least disturbed by other
load on the machine).

Run: ``python3 bench/local_batch_cost.py`` (about 1 minute).
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from strands_s3_vectors_memory.embeddings import LocalEmbedder

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from _scheduler_stack import LOCAL_SLICE_CHARS

_SENTENCE = ("the user keeps bees and sells honey at the market on Saturdays while training for a marathon "
             "in Berlin with a knee that hurts after long runs so the physiotherapist suggested strength work "
             "twice a week and a tutor helps with Spanish before the move to Madrid next year")
_WORDS = _SENTENCE.split()


def _text(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    while sum(len(w) + 1 for w in words) < chars:
        words.append(rng.choice(_WORDS))
    return " ".join(words)[:chars]


def _seconds(call: Sequence[str], embedder: LocalEmbedder) -> float:
    started = time.perf_counter()
    embedder.embed_documents(call)
    return time.perf_counter() - started


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="rounds over every cell; the best counts (%(default)s)")
    parser.add_argument("--sizes", default="1,2,4,8", help="batch sizes (%(default)s)")
    args = parser.parse_args(argv)
    sizes = [int(s) for s in args.sizes.split(",")]
    rng = random.Random(0)
    embedder = LocalEmbedder()
    embedder.embed_documents(["warm up"])
    kinds = {"short turn (80 chars)": 80, "detail record (400 chars)": 400, "summary (2,000 chars)": 2000}
    texts = {label: [_text(rng, chars) for _ in range(max(sizes))] for label, chars in kinds.items()}
    query_text = _text(rng, 60)
    best: dict[tuple[str, int], float] = {}
    best_query = float("inf")
    for _ in range(args.repeat):  # every cell once per round: a burst of other load hits one round, not one cell
        for label in kinds:
            for size in sizes:
                seconds = _seconds(texts[label][:size], embedder)
                best[label, size] = min(best.get((label, size), float("inf")), seconds)
        best_query = min(best_query, _query_seconds(embedder, query_text))
    print(f"machine: {machine()}\n")
    print("| texts | batch | call (ms) | per text (ms) | per text vs batch of 1 |")
    print("|---|---:|---:|---:|---:|")
    for label in kinds:
        single = best[label, sizes[0]] / sizes[0]
        for size in sizes:
            per_text = best[label, size] / size
            print(f"| {label} | {size} | {1000 * best[label, size]:.1f} | {1000 * per_text:.1f} | "
                  f"{100 * (per_text / single - 1):+.0f} % |")
    print(f"\nquery (60 chars): {1000 * best_query:.1f} ms; scheduler slice budget for this model: "
          f"{LOCAL_SLICE_CHARS} characters")
    return 0


def _query_seconds(embedder: LocalEmbedder, text: str) -> float:
    started = time.perf_counter()
    embedder.embed_query(text)
    return time.perf_counter() - started


if __name__ == "__main__":
    raise SystemExit(main())
