"""Sweep the ranking's fixed constants on LoCoMo: dense/lexical weights, support weight, candidate_k.

Asks S3 Vectors (the embedded engine) once per question for the dense candidates, then re-ranks
those same candidates with :func:`~strands_s3_vectors_memory.store._ranking.rank_conversations` under every
combination, and prints session recall@1/@3/@5 per category. The chosen defaults
(:data:`~strands_s3_vectors_memory.store._ranking.DEFAULT_WEIGHTS`,
:data:`~strands_s3_vectors_memory.store._ranking.SUPPORT_WEIGHT`) should sit on a plateau of this grid,
not on a lone spike: the data set is small (a single question moves open-domain recall by 0.02),
and the figures in ``docs/benchmarks.md`` are measured on the same questions.

With ``--hybrid`` the candidates are those of the service's hybrid query instead (the first turn's
on an ENHANCED index: ``candidate_k`` = 30 fused records), which
:data:`~strands_s3_vectors_memory.store._ranking.HYBRID_CANDIDATE_WEIGHTS` is chosen on.

Run: ``python3 bench/locomo_recall.py --data-dir /tmp/locomo`` once (ingest), then
``python3 bench/ranking_sweep.py --data-dir /tmp/locomo`` (and ``--hybrid --candidates 30``).
"""

from __future__ import annotations

import argparse
import itertools
import sys
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.store import _ranking as ranking

sys.path.insert(0, str(Path(__file__).resolve().parent))
import locomo_recall as locomo


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=locomo.LOCOMO_PATH)
    parser.add_argument("--data-dir", type=Path, required=True, help="an index ingested by locomo_recall.py")
    parser.add_argument("--dense", type=_floats, default=[0.4, 0.45, 0.5, 0.55, 0.6], help="dense weights")
    parser.add_argument("--support", type=_floats, default=[0.0, 0.1, 0.2, 0.3, 0.4], help="support weights")
    parser.add_argument("--candidates", type=_floats, default=[50, 100], help="candidate_k values (<= 100)")
    parser.add_argument("--hybrid", action="store_true", help="candidates from the service's hybrid query")
    args = parser.parse_args(argv)

    sessions, questions, _ = locomo.load(args.data)
    if not (args.data_dir / f"ingested-{len(sessions)}.txt").exists():
        raise SystemExit(f"{args.data_dir} holds no ingested index: run locomo_recall.py --data-dir first")
    store = S3VectorMemory(bucket_name=locomo.BUCKET, backend="local", data_dir=args.data_dir)
    most = int(max(args.candidates)) if args.hybrid else None  # dense: the store's candidate_k
    candidates = [locomo.service_candidates(store, q.user_id, q.text, top_k=most, hybrid=args.hybrid)
                  for q in tqdm(questions, desc="hybrid queries" if args.hybrid else "dense queries")]
    names = [*locomo.CATEGORIES.values(), "all"]
    print("| dense | support | candidate_k | " + " | ".join(f"{n} @1/@3/@5" for n in names) + " |")
    print("|" + "---|" * (len(names) + 3))
    default_support = ranking.SUPPORT_WEIGHT
    try:
        for dense, support, k in itertools.product(args.dense, args.support, args.candidates):
            ranking.SUPPORT_WEIGHT = support
            weights = ranking.HybridWeights(dense=dense, lexical=1.0 - dense)
            tally = locomo.Tally()
            for question, found in zip(questions, candidates, strict=True):
                matches = ranking.rank_conversations(question.text, found[: int(k)], threshold=0.0, weights=weights,
                                                     hybrid=args.hybrid)
                ranked = [n for m in matches if (n := _session(m.group)) is not None]
                tally.add(locomo.CATEGORIES[question.category], ranked, question.evidence)
            cells = ["/".join(f"{tally.recall(n, kk):.3f}" for kk in locomo.KS) for n in names]
            print(f"| {dense:.2f} | {support:.2f} | {int(k)} | " + " | ".join(cells) + " |", flush=True)
    finally:
        ranking.SUPPORT_WEIGHT = default_support
    return 0


def _session(group: str) -> int | None:
    """The LoCoMo session number of a conversation group (``session_N``), as locomo_recall reads it."""
    match = locomo._SESSION_KEY.fullmatch(group)
    return int(match.group(1)) if match else None


if __name__ == "__main__":
    raise SystemExit(main())
