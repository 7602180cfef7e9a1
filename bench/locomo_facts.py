"""LoCoMo with facts: does storing per-session facts beside summaries and details change session recall?

The sessions are ingested as in ``bench/locomo_recall.py`` (LoCoMo's session summary as the summary,
the turns as details, no LLM). That index is measured (``without facts``); then LoCoMo's own
``observation`` field (per-session facts about each speaker, with evidence ids) is stored into the
same index as each session's extracted facts (current fact records, keyed by
:func:`~strands_s3_vectors_memory.index._records.fact_key`, ``conversation_id`` = the session) and every
question is asked again (``with facts``). A hit at k when an evidence session is among the first k
conversations ``store.search`` returns (default settings); facts are evidence for their session's
ranking, never shown as a conversation memory.

Also reported for the ``with facts`` index: how often an evidence session's fact is among the facts
the first turn would inject (``search_with_facts``, up to 10 current facts, default cut-off).

Run: ``python3 bench/locomo_facts.py`` (``--conversations N`` for fewer; ``--data-dir`` keeps the index).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tqdm import tqdm

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.index._records import MemoryScope

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import LOCOMO_PATH, machine
from locomo_recall import AGENT, BUCKET, CATEGORIES, KS, Question, Tally, ingest, load, shown_sessions


def observations(path: Path, limit: int | None) -> dict[tuple[str, int], list[str]]:
    """Each (user, session)'s facts: LoCoMo's observations about either speaker, as written."""
    facts: dict[tuple[str, int], list[str]] = {}
    for sample in json.loads(path.read_text(encoding="utf-8"))[:limit]:
        for key, by_speaker in sample.get("observation", {}).items():
            number = int(key.split("_")[1])
            texts = [str(item[0]) for items in by_speaker.values() for item in items if item and str(item[0]).strip()]
            facts[(str(sample["sample_id"]), number)] = list(dict.fromkeys(texts))
    return facts


def store_facts(store: S3VectorMemory, facts: dict[tuple[str, int], list[str]]) -> int:
    """Store every session's facts as that conversation's current facts; returns how many vectors."""
    written = 0
    for (user, number), texts in tqdm(sorted(facts.items()), desc="store facts", unit="session"):
        scope = MemoryScope(user, AGENT)
        written += len(store.store_conversation_scope(scope, f"session_{number}", "", details=(), facts=texts))
    return written


def evaluate(store: S3VectorMemory, questions: Sequence[Question], *, facts: bool) -> tuple[Tally, Tally, float]:
    """Session recall of ``store.search``; with ``facts``, also where the injected facts come from."""
    tally, fact_tally = Tally(), Tally()
    elapsed = 0.0
    for question in tqdm(questions, desc="questions", unit="q"):
        category = CATEGORIES.get(question.category, str(question.category))
        started = time.perf_counter()
        memories = store.search(question.user_id, question.text, top_k=5, agent_name=AGENT)
        elapsed += time.perf_counter() - started
        tally.add(category, shown_sessions(memories), question.evidence)
        if facts:
            found, _ = store.search_with_facts(MemoryScope(question.user_id, AGENT), question.text, top_k=5)
            fact_tally.add(category, shown_sessions(found), question.evidence)
    return tally, fact_tally, 1000 * elapsed / max(1, len(questions))


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=LOCOMO_PATH)
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--conversations", type=int, default=None)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)

    sessions, questions, skipped = load(args.data, args.conversations)
    facts = observations(args.data, args.conversations)
    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="locomo-facts-") as scratch:
        data_dir = args.data_dir or Path(scratch)
        data_dir.mkdir(parents=True, exist_ok=True)
        store = S3VectorMemory(bucket_name=BUCKET, backend="local", data_dir=data_dir)
        ingest(store, sessions, data_dir / f"ingested-{len(sessions)}.txt")
        without, _, latency_without = evaluate(store, questions, facts=False)
        written = store_facts(store, facts)
        with_facts, fact_hits, latency_with = evaluate(store, questions, facts=True)

    print(f"\nLoCoMo with facts: {len({s.user_id for s in sessions})} conversations, {len(sessions)} sessions, "
          f"{len(questions)} questions ({skipped} skipped), {written} facts from `observation`")
    print(f"machine: {machine()}")
    print(f"mean search latency: without facts {latency_without:.1f} ms, with facts {latency_with:.1f} ms")
    print("\n| category | n | without facts @1/@3/@5 | with facts @1/@3/@5 "
          "| injected facts from an evidence session @1/@3/@5 |")
    print("|---|---:|---|---|---|")
    for name in [*CATEGORIES.values(), "all"]:
        count = without.counts[name]
        if not count:
            continue
        cells = ["/".join(f"{t.recall(name, k):.2f}" for k in KS) for t in (without, with_facts, fact_hits)]
        label = f"**{name}**" if name == "all" else name
        print(f"| {label} | {count} | " + " | ".join(cells) + " |")
        results[name] = {"without": [without.recall(name, k) for k in KS],
                         "with": [with_facts.recall(name, k) for k in KS],
                         "facts": [fact_hits.recall(name, k) for k in KS]}
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
