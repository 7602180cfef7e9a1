"""How the summary call reads replies written the way real model families format them, per family.

Every reply of the corpus in ``tests/support/reply_corpus.py`` (hand-written in the styles of Claude,
Nova, Llama, Mistral, GPT, Qwen/DeepSeek and Gemini models) goes through
:func:`~strands_s3_vectors_memory.archive._summarizer.summarize_conversation` as a model's text answer; reported
per family: expected facts and supersessions kept, anything invented (a fact, a supersession or a
retraction the reply does not state), and the lines dropped as unreadable. ``tests/test_reply_corpus.py``
holds the totals to >= 95 % kept and 0 invented.

Run: ``python3 bench/reply_corpus.py``.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from strands_s3_vectors_memory.archive._summarizer import summarize_conversation
from strands_s3_vectors_memory.testing import ScriptedModel
from support.reply_corpus import CORPUS

TRANSCRIPT = "USER: Some news about me.\nASSISTANT: Tell me more."


def main() -> int:
    rows: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0, 0])  # replies, expected, kept, invented, dropped
    for entry in CORPUS:
        reply = summarize_conversation(ScriptedModel(replies=[entry.reply]), TRANSCRIPT, current_facts=entry.shown)
        got = {(fact.text, fact.supersedes) for fact in reply.facts}
        wanted, retracted = set(entry.facts), set(entry.retracted)
        row = rows[entry.family]
        row[0] += 1
        row[1] += len(wanted) + len(retracted)
        row[2] += len(wanted & got) + len(retracted & set(reply.retracted))
        row[3] += len(got - wanted) + len(set(reply.retracted) - retracted)
        row[4] += getattr(reply, "dropped", 0)
    print("| family | replies | expected | kept | invented | lines dropped |\n|---|---:|---:|---:|---:|---:|")
    totals = [sum(row[i] for row in rows.values()) for i in range(5)]
    for family, (replies, expected, kept, invented, dropped) in [*rows.items(), ("all", totals)]:
        print(f"| {family} | {replies} | {expected} | {kept} ({kept / expected:.0%}) | {invented} | {dropped} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
