"""What showing a detail instead of fetching its summary changes on LoCoMo (``fetch_summaries``).

A conversation found through one of its details is shown by its summary when the hybrid query
brought that too; otherwise either by the detail (the default: the first turn stays one round trip)
or, with ``fetch_summaries=True``, by its summary fetched by key (``GetVectors``, a second round trip
after the query). Both ways are run over the same index (ingested as ``locomo_recall.py`` does), the
questions embedded once and shared: recall@1/3/5 (a conversation is found whichever of its records
is shown), how many searches needed the fetch, and how many shown memories are details.

Run: ``python3 bench/locomo_summaries.py --data-dir DIR`` (``DIR``: ``locomo_recall.py``'s, reused).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path

from tqdm import tqdm

from strands_s3_vectors_memory import S3VectorMemory

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LOCOMO_PATH, machine
from locomo_recall import AGENT, BUCKET, CATEGORIES, KS, Metered, Tally, ingest, load, shown_sessions


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=LOCOMO_PATH, help="LoCoMo json (default: %(default)s)")
    parser.add_argument("--data-dir", type=Path, default=None, help="keep the ingested index here between runs")
    args = parser.parse_args(argv)
    sessions, questions, _ = load(args.data)
    with tempfile.TemporaryDirectory(prefix="locomo-summaries-") as scratch:
        data_dir = args.data_dir or Path(scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        writer = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir)
        ingest(writer, sessions, data_dir / f"ingested-{len(sessions)}.txt")
        client = Metered(writer._get_s3vectors_client())  # counts each way's GetVectors
        store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir, client=client,
                               embedder=writer.embedder)  # one embedder: its cache embeds each question once
        print(f"machine: {machine()}; {len(questions)} questions\n")
        print("| `fetch_summaries` | recall@1 | recall@3 | recall@5 | searches with a `GetVectors` | shown details |")
        print("|---|---|---|---|---|---|")
        for fetch in (True, False):
            tally, shown, client.method = Tally(), Counter[str](), f"fetch_summaries={fetch}"
            for question in tqdm(questions, desc=f"fetch_summaries={fetch}", unit="q", leave=False):
                memories = store.search(question.user_id, question.text, top_k=5, agent_name=AGENT,
                                        fetch_summaries=fetch)
                shown.update(m.type for m in memories)
                tally.add(CATEGORIES.get(question.category, str(question.category)), shown_sessions(memories),
                          question.evidence)
            recall = " | ".join(f"{tally.recall('all', k):.3f}" for k in KS)
            gets = client.fetches[client.method]
            print(f"| `{fetch}` | {recall} | {gets} ({gets / len(questions):.0%}) | "
                  f"{shown['detail']} of {sum(shown.values())} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
