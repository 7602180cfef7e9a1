"""Calibrate the relevance cut-off: when should a search return nothing at all?

With a compressed-similarity embedder (e5 puts nearly every pair between 0.85 and 0.95 on the
``1 - distance/2`` scale) the store's rule is: a conversation is shown only if one of its records
has dense similarity >= ``threshold``, or >= ``threshold - lexical_margin`` while sharing a content
word with the query (:mod:`strands_s3_vectors_memory.store._ranking`). This sweeps both values over a
labelled set (``bench/_common.py``):

* **personas**: five users with two or three stored conversations each; their own first-turn
  messages that those memories help with are *relevant*; forty everyday requests no memory helps
  with are *irrelevant* for every persona;
* **LoCoMo** (optional, ``--locomo-dir`` from ``locomo_recall.py --data-dir``): every question asked
  of its own user is *relevant* and counts as kept only if an evidence session is still among the
  five conversations shown; the forty everyday requests asked of each LoCoMo user (hundreds of
  memories each) are *irrelevant*.

"kept" is the share of relevant queries that still get their memory; "passed" the share of
irrelevant ones that wrongly get some memory. Run: ``python3 bench/relevance_cutoff.py``.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from tqdm import tqdm

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.index._records import Memory
from strands_s3_vectors_memory.store._ranking import rank_conversations

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import IRRELEVANT_QUERIES, LOCOMO_PATH, PERSONAS, machine
from locomo_recall import AGENT as LOCOMO_AGENT
from locomo_recall import BUCKET as LOCOMO_BUCKET
from locomo_recall import load as load_locomo

AGENT = "assistant"
THRESHOLDS = (0.88, 0.89, 0.895, 0.90, 0.905, 0.91, 0.915, 0.92)
MARGINS = (0.0, 0.01, 0.02)


@dataclass(frozen=True)
class Case:
    """One query asked of one user, with the dense candidates S3 Vectors returned for it."""

    query: str
    candidates: tuple[Memory, ...]
    relevant: bool
    #: For LoCoMo questions: the sessions that answer it (kept only if one of them is shown).
    evidence: frozenset[str] = frozenset()


def _candidates(store: S3VectorMemory, user_id: str, agent: str, query: str) -> tuple[Memory, ...]:
    response = store._get_s3vectors_client().query_vectors(
        vectorBucketName=store.bucket_name, indexName=store.index_name,
        queryVector={"float32": store.embedder.embed_query(query)}, topK=store.candidate_k,
        filter=store.scope(user_id, agent).metadata_filter(), returnMetadata=True, returnDistance=True,
    )
    return tuple(Memory.from_vector(v) for v in response.get("vectors", []))


def persona_cases(store: S3VectorMemory) -> list[Case]:
    for persona in PERSONAS:
        for number, (summary, detail) in enumerate(persona.conversations):
            store.store_conversation(persona.user_id, f"conv-{number}", summary, agent_name=AGENT,
                                     details=[f"USER: {detail}"])
    cases = []
    for persona in tqdm(PERSONAS, desc="personas"):
        cases += [Case(q, _candidates(store, persona.user_id, AGENT, q), True) for q in persona.relevant]
        cases += [Case(q, _candidates(store, persona.user_id, AGENT, q), False) for q in IRRELEVANT_QUERIES]
    return cases


def locomo_cases(data_dir: Path) -> list[Case]:
    store = S3VectorMemory(bucket_name=LOCOMO_BUCKET, backend="local", data_dir=data_dir)
    sessions, questions, _ = load_locomo(LOCOMO_PATH)
    cases = [
        Case(q.text, _candidates(store, q.user_id, LOCOMO_AGENT, q.text), True,
             frozenset(f"session_{n}" for n in q.evidence))
        for q in tqdm(questions, desc="LoCoMo questions")
    ]
    for user_id in tqdm(sorted({s.user_id for s in sessions}), desc="LoCoMo users"):
        cases += [Case(q, _candidates(store, user_id, LOCOMO_AGENT, q), False) for q in IRRELEVANT_QUERIES]
    return cases


def _shown(case: Case, threshold: float, margin: float) -> bool:
    matches = rank_conversations(case.query, case.candidates, threshold=threshold, lexical_margin=margin)[:5]
    if case.evidence:
        return any(m.group in case.evidence for m in matches)
    return bool(matches)


def sweep(cases: Sequence[Case]) -> dict[tuple[float, float], tuple[float, float]]:
    """(threshold, margin) -> (share of relevant kept, share of irrelevant passed)."""
    relevant = [c for c in cases if c.relevant]
    irrelevant = [c for c in cases if not c.relevant]
    result = {}
    for threshold in THRESHOLDS:
        for margin in MARGINS:
            kept = sum(_shown(c, threshold, margin) for c in relevant) / max(1, len(relevant))
            passed = sum(_shown(c, threshold, margin) for c in irrelevant) / max(1, len(irrelevant))
            result[(threshold, margin)] = (kept, passed)
    return result


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--locomo-dir", type=Path, default=None,
                        help="data dir of an ingested LoCoMo index (locomo_recall.py --data-dir)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="cutoff-bench-") as scratch:
        store = S3VectorMemory(bucket_name="cutoff-bench", backend="local", data_dir=Path(scratch))
        sets = {"personas": sweep(persona_cases(store))}
        if args.locomo_dir:
            sets["LoCoMo"] = sweep(locomo_cases(args.locomo_dir))
    relevant = sum(len(p.relevant) for p in PERSONAS)
    print(f"\nmachine: {machine()}; embedder {store.embedder.model_id}; personas: {relevant} relevant, "
          f"{len(IRRELEVANT_QUERIES) * len(PERSONAS)} irrelevant (query, user) pairs")
    header = "| threshold | margin | " + " | ".join(f"{name} kept / passed" for name in sets) + " |"
    print(header)
    print("|---|---|" + "---|" * len(sets))
    for threshold in THRESHOLDS:
        for margin in MARGINS:
            cells = [f"{s[(threshold, margin)][0]:.2f} / {s[(threshold, margin)][1]:.2f}" for s in sets.values()]
            print(f"| {threshold:.3f} | {margin:.2f} | " + " | ".join(cells) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
