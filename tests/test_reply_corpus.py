"""Facts survive the way real models write: a corpus of replies in the styles of seven model families
(``support/reply_corpus.py``) keeps >= 95 % of its facts and invents none, and the scripted model
answering in each family's style (or through structured output) stores and supersedes facts end to end."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest

from memory_env import MemoryEnv
from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.archive._summarizer import summarize_conversation
from strands_s3_vectors_memory.archive._summary_format import FACT_PARSE_COUNTS
from strands_s3_vectors_memory.index._records import FACT_CURRENT, FACT_SUPERSEDED, TYPE_FACT
from strands_s3_vectors_memory.testing import REPLY_STYLES, ScriptedModel
from support import all_vectors, make_agent, say
from support.reply_corpus import CORPUS, CorpusReply

TRANSCRIPT = "USER: Some news about me.\nASSISTANT: Tell me more."


def _read(entry: CorpusReply) -> tuple[set[tuple[str, tuple[int, ...]]], set[int], str]:
    """What the summary call makes of ``entry``'s reply: facts with their supersessions, retractions, summary."""
    reply = summarize_conversation(ScriptedModel(replies=[entry.reply]), TRANSCRIPT, current_facts=entry.shown)
    return {(fact.text, fact.supersedes) for fact in reply.facts}, set(reply.retracted), reply.summary


def test_the_corpus_covers_the_families_and_the_hard_cases() -> None:
    families = Counter(entry.family for entry in CORPUS)
    assert len(CORPUS) >= 60 and len(families) >= 6 and min(families.values()) >= 7
    assert sum(not entry.facts and not entry.retracted for entry in CORPUS) >= 6  # nothing new
    assert sum(bool(entry.retracted) for entry in CORPUS) >= 5  # a fact retracted
    assert any(len(supersedes) == 2 for entry in CORPUS for _, supersedes in entry.facts)  # supersede two
    assert any("<current_facts>" in entry.reply for entry in CORPUS)  # the request echoed
    assert sum(not entry.summary.startswith("The user") for entry in CORPUS) >= 3  # other languages


def test_the_corpus_keeps_at_least_95_percent_of_its_facts_and_invents_none() -> None:
    expected = kept = 0
    invented: list[tuple[str, object]] = []
    for entry in CORPUS:
        facts, retracted, _ = _read(entry)
        wanted = set(entry.facts)
        expected += len(wanted) + len(entry.retracted)
        kept += len(wanted & facts) + len(set(entry.retracted) & retracted)
        invented.extend((entry.family, extra) for extra in facts - wanted)
        invented.extend((entry.family, f"retracted {n}") for n in retracted - set(entry.retracted))
    assert invented == []
    assert kept / expected >= 0.95, f"kept {kept} of {expected}"


@pytest.mark.parametrize("entry", CORPUS, ids=[f"{entry.family}-{i}" for i, entry in enumerate(CORPUS)])
def test_each_reply_keeps_its_summary_without_the_format_around_it(entry: CorpusReply) -> None:
    _, _, summary = _read(entry)
    assert summary.startswith(entry.summary), summary
    lowered = summary.casefold()
    assert "fact" not in lowered and "supersedes" not in lowered and "let me know" not in lowered
    assert "<think>" not in summary and "```" not in summary and "{" not in summary


def _facts(client: Any) -> dict[str, str]:
    return {v["metadata"]["content"]: v["metadata"]["fact_status"] for v in all_vectors(client)
            if v["metadata"].get("type") == TYPE_FACT}


# A structured reply has no text style: structured output is one more way of answering, beside the styles.
_WAYS = [(style, False) for style in sorted(REPLY_STYLES)] + [("protocol", True)]


@pytest.mark.parametrize(("style", "structured"), _WAYS, ids=[f"{s}-{'structured' if t else 'text'}" for s, t in _WAYS])
def test_every_style_stores_and_supersedes_facts_end_to_end(
    memory_env: MemoryEnv, style: str, structured: bool
) -> None:
    FACT_PARSE_COUNTS.reset()
    agent, plugin, _ = make_agent(S3VectorMemory(), ScriptedModel(style=style, structured=structured))
    say(agent, "I live in Berlin. I have a dog named Max.", "alice", "c1", end=True)
    assert plugin.flush(60)
    say(agent, "I live in Paris now.", "alice", "c2", end=True)
    assert plugin.flush(60)
    facts = _facts(memory_env.client)
    assert facts == {"Lives in Berlin": FACT_SUPERSEDED, "Has a dog named Max": FACT_CURRENT,
                     "Lives in Paris now": FACT_CURRENT}
    assert FACT_PARSE_COUNTS.paths()["structured" if structured else "text"] == 2
    assert FACT_PARSE_COUNTS.failures == 0 and FACT_PARSE_COUNTS.dropped == 0
