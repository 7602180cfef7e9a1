"""Ranking: BM25, the hybrid rerank, conversation grouping, dedupe, the relevance cut-off, details.

Unit tests build candidates directly (as S3 Vectors would return them); the end-to-end tests run the
real store on the embedded engine with the bundled e5 model, since the cut-off is calibrated for it.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.archive._details import conversation_details
from strands_s3_vectors_memory.index._records import Memory, MemoryScope, detail_key, summary_key
from strands_s3_vectors_memory.lexical import bm25_scores, novelty, token_jaccard, tokenize
from strands_s3_vectors_memory.store._ranking import (
    LEXICAL_MARGIN,
    HybridWeights,
    rank,
    rank_conversations,
    select_memories,
    summaries_to_fetch,
    summary_key_for,
)

DENSE_ONLY = HybridWeights(dense=1.0, lexical=0.0)


def _mem(
    key: str,
    content: str,
    similarity: float,
    *,
    kind: str = "detail",
    conversation: str | None = "c1",
    stored_at: str = "2026-01-01T00:00:00Z",
) -> Memory:
    return Memory(key=key, content=content, type=kind, user_id="u", agent_name="a", stored_at=stored_at,
                  conversation_id=conversation, similarity=similarity)


# ---------------------------------------------------------------- lexical


def test_tokenize_drops_function_words_and_meets_inflections() -> None:
    assert tokenize("I was painting; she paints. They painted!") == ["paint", "paint", "paint"]
    assert tokenize("Thanks, bye!") == []
    assert tokenize("東京タワー") == ["東京", "京タ", "タワ", "ワー"]


def test_bm25_prefers_more_and_rarer_matches() -> None:
    docs = [tokenize(t) for t in (
        "Mango the golden retriever hates thunderstorms",
        "my retriever loves the park",
        "the park is big and the park is green",
        "nothing in common here",
    )]
    scores = bm25_scores(tokenize("retriever thunderstorms"), docs)
    assert scores[0] > scores[1] > 0
    assert scores[2] == scores[3] == 0.0
    rare, common = bm25_scores(tokenize("thunderstorms"), docs)[0], bm25_scores(tokenize("retriever"), docs)[0]
    assert rare > common  # "thunderstorms" is in one candidate, "retriever" in two


def test_overlap_measures() -> None:
    assert token_jaccard(["a1", "b2"], ["a1", "b2"]) == 1.0
    assert novelty(tokenize("Kyoto in April"), tokenize("trip to Kyoto in April with Sam")) == 0.0
    assert novelty(tokenize("Sam likes temples"), tokenize("Kyoto trip")) == 1.0


# ---------------------------------------------------------------- hybrid ranking


def test_hybrid_lifts_an_exact_word_match_over_a_slightly_closer_vector() -> None:
    candidates = [
        _mem("det-x-0000", "We talked about pets and animals in general", 0.912, conversation="pets"),
        _mem("det-y-0000", "My golden retriever Mango panics in thunderstorms", 0.905, conversation="mango"),
        _mem("det-z-0000", "I work night shifts at the hospital", 0.880, conversation="work"),
    ]
    query = "what helps Mango during thunderstorms"
    dense = rank(query, candidates, top_k=3, threshold=0.0, weights=DENSE_ONLY)
    hybrid = rank(query, candidates, top_k=3, threshold=0.0)
    assert dense[0].conversation_id == "pets"
    assert hybrid[0].conversation_id == "mango"
    assert hybrid[0].score is not None and hybrid[0].score > (hybrid[1].score or 0.0)


def test_a_conversation_scores_by_its_best_records_and_appears_once() -> None:
    candidates = [
        _mem("sum-aaa", "Alice planned a trip to Kyoto in April with Sam", 0.90, kind="summary", conversation="trip"),
        _mem("det-aaa-0000", "USER: We love temples and quiet tea houses", 0.93, conversation="trip"),
        _mem("det-aaa-0001", "USER: Kyoto in April", 0.91, conversation="trip"),
        _mem("sum-bbb", "Alice is vegetarian", 0.92, kind="summary", conversation="food"),
    ]
    matches = rank_conversations("temples in Kyoto", candidates, threshold=0.0)
    assert [m.group for m in matches] == ["trip", "food"]
    memories = select_memories(matches, top_k=5)
    # the trip once: its summary, then the matching detail (it adds "temples", "tea houses"); the
    # "Kyoto in April" detail says nothing the summary does not, so it is never shown.
    assert [m.key for m in memories] == ["sum-aaa", "det-aaa-0000", "sum-bbb"]
    assert memories[0].score == matches[0].score


def test_every_conversation_gets_its_summary_before_any_gets_a_detail() -> None:
    candidates = []
    for i in range(3):
        candidates += [
            _mem(f"sum-{i}", f"conversation {i} about topic{i}", 0.90 - i / 100, kind="summary", conversation=f"c{i}"),
            _mem(f"det-{i}-0000", f"specific fact{i} number {i}{i}", 0.91 - i / 100, conversation=f"c{i}"),
        ]
    shown = rank("topic0 topic1 topic2", candidates, top_k=4, threshold=0.0)
    assert [m.type for m in shown].count("summary") == 3
    assert len(shown) == 4 and shown[1].key == "det-0-0000"  # the spare slot goes to the best conversation


def test_near_identical_memories_are_shown_once() -> None:
    candidates = [
        _mem("mem-1", "The user is allergic to peanuts.", 0.93, kind="memory", conversation=None),
        _mem("mem-2", "User is allergic to peanuts", 0.92, kind="memory", conversation=None),
        _mem("mem-3", "The user lives in Lisbon.", 0.91, kind="memory", conversation=None),
    ]
    shown = rank("peanut allergy", candidates, top_k=3, threshold=0.0)
    assert [m.key for m in shown] == ["mem-1", "mem-3"]


def test_missing_summaries_are_named_by_key_and_used_when_supplied() -> None:
    detail = _mem("det-abc123-0007", "Mango hides under the bed when it storms", 0.94, conversation="dog")
    matches = rank_conversations("storm", [detail], threshold=0.0)
    assert summaries_to_fetch(matches, 5) == ["sum-abc123"]
    summary = _mem("sum-abc123", "Chen has a golden retriever called Mango", 0.0, kind="summary", conversation="dog")
    shown = select_memories(matches, top_k=5, summaries={"sum-abc123": summary})
    assert [m.key for m in shown] == ["sum-abc123", "det-abc123-0007"]


def test_summary_key_follows_the_record_key_layout() -> None:
    scope = MemoryScope("user-1", "assistant")
    detail = _mem(detail_key(scope, "conv-9", "USER: x"), "x", 0.9)
    assert summary_key_for(detail) == summary_key(scope, "conv-9")
    assert summary_key_for(_mem("mem-abc-def", "x", 0.9, kind="memory")) is None


# ---------------------------------------------------------------- relevance cut-off


def test_nothing_above_the_threshold_means_nothing_shown() -> None:
    candidates = [_mem("det-a-0000", "I like sailing", 0.86), _mem("det-b-0000", "I live in Oslo", 0.87)]
    assert rank("How do I center a div in CSS?", candidates, top_k=5, threshold=0.90) == []
    assert len(rank("How do I center a div in CSS?", candidates, top_k=5, threshold=0.0)) == 2


def test_a_shared_word_admits_a_record_just_below_the_threshold() -> None:
    near = 0.90 - LEXICAL_MARGIN / 2
    candidates = [_mem("det-a-0000", "I race sailing boats on weekends", near)]
    assert rank("tips for sailing in wind", candidates, top_k=5, threshold=0.90)
    assert rank("tips for surfing in wind", candidates, top_k=5, threshold=0.90) == []
    far = [_mem("det-a-0000", "I race sailing boats on weekends", 0.90 - 2 * LEXICAL_MARGIN)]
    assert rank("tips for sailing in wind", far, top_k=5, threshold=0.90) == []


# ---------------------------------------------------------------- ties and determinism


def test_recency_breaks_ties_and_can_be_weighted() -> None:
    old = _mem("det-o-0000", "I prefer window seats", 0.9, conversation="old", stored_at="2025-01-01T00:00:00Z")
    new = _mem("det-n-0000", "I prefer window seats", 0.9, conversation="new", stored_at="2026-06-01T00:00:00Z")
    matches = rank_conversations("seats", [old, new], threshold=0.0)
    assert [m.group for m in matches] == ["new", "old"]
    slightly_better_old = replace_similarity(old, 0.91)
    weighted = rank_conversations(
        "seats", [slightly_better_old, new], threshold=0.0, weights=HybridWeights(0.5, 0.5, recency=1.0)
    )
    assert weighted[0].group == "new"
    assert rank_conversations("seats", [slightly_better_old, new], threshold=0.0)[0].group == "old"


def replace_similarity(memory: Memory, similarity: float) -> Memory:
    from dataclasses import replace

    return replace(memory, similarity=similarity)


def test_output_does_not_depend_on_candidate_order() -> None:
    rng = random.Random(7)
    words = ["kyoto", "temple", "peanut", "marathon", "berlin", "tea", "sunday", "nurse", "garden", "piano"]
    candidates = [
        _mem(f"det-{i % 6}-{i:04d}", " ".join(rng.sample(words, 4)), round(rng.uniform(0.85, 0.95), 3),
             conversation=f"c{i % 6}", stored_at=f"2026-01-{1 + i % 6:02d}T00:00:00Z")
        for i in range(30)
    ]
    expected = rank("temple tea in kyoto", candidates, top_k=6, threshold=0.9)
    for _ in range(5):
        shuffled = candidates[:]
        rng.shuffle(shuffled)
        assert rank("temple tea in kyoto", shuffled, top_k=6, threshold=0.9) == expected


# ---------------------------------------------------------------- detail records


def test_details_are_turns_with_the_turn_before_as_context() -> None:
    transcript = "\n".join([
        "USER: hi!",
        "ASSISTANT: Hello! What is your dog called?",
        "USER: Mango, a golden retriever.",
        "ASSISTANT: [used tool lookup]",
        "USER: [tool result: 42]",
        "USER: thanks, bye",
    ])
    assert conversation_details(transcript) == [
        "ASSISTANT: What is your dog called?\nUSER: Mango, a golden retriever."  # the question it answers
    ]
    everyone = conversation_details("Caroline: I paint lakes\nMelanie: I run races", roles=None, heading="On 8 May:")
    assert everyone == [
        "On 8 May:\nCaroline: I paint lakes",
        "On 8 May:\nCaroline: I paint lakes\nMelanie: I run races",
    ]


def test_details_stay_bounded() -> None:
    long_turns = "\n".join(f"ASSISTANT: {'answer ' * 80}\nUSER: fact {i} {'detail ' * 150}" for i in range(3))
    records = conversation_details(long_turns)
    assert records and all(len(r) <= 600 for r in records)
    assert sum("fact 2" in r for r in records) == 1
    many = conversation_details("\n".join(f"USER: fact number {i}" for i in range(50)), max_records=10)
    assert len(many) == 10 and "fact number 49" in many[-1]


# ---------------------------------------------------------------- end to end (embedded engine, bundled e5)


@pytest.fixture(scope="module")
def alice_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3VectorMemory]:
    data_dir: Path = tmp_path_factory.mktemp("ranking-store")
    store = S3VectorMemory(bucket_name="ranking-test", backend="local", data_dir=data_dir)
    store.store_conversation(
        "alice", "food", "Alice is vegetarian and allergic to peanuts. She cooks in big batches on Sundays.",
        agent_name="assistant",
        details=["USER: I'm vegetarian and allergic to peanuts.",
                 "ASSISTANT: When do you cook?\nUSER: Big batches on Sundays, my favourite is a lentil dal."],
    )
    store.store_conversation(
        "alice", "trip", "Alice plans a trip to Kyoto in April with her partner Sam.", agent_name="assistant",
        details=["USER: Sam and I are going to Kyoto in April; we love temples and quiet tea houses."],
    )
    store.store_conversation(
        "bob", "run", "Bob trains for the Berlin marathon.", agent_name="assistant",
        details=["USER: I eat peanut butter before long runs."],
    )
    yield store


def test_store_search_shows_each_relevant_conversation_once(alice_store: S3VectorMemory) -> None:
    shown = alice_store.search("alice", "Can you suggest a dinner I could cook this Sunday?", agent_name="assistant")
    assert shown and shown[0].conversation_id == "food" and shown[0].type == "summary"
    assert len({(m.conversation_id, m.type) for m in shown}) == len(shown)
    assert all(m.user_id == "alice" for m in shown)


def test_store_search_returns_nothing_for_an_unrelated_request(alice_store: S3VectorMemory) -> None:
    for query in ("What is the capital of Australia?", "How do I center a div in CSS?"):
        assert alice_store.search("alice", query, agent_name="assistant") == []
    # the 0.3.0 API applies no cut-off
    assert alice_store.retrieve_memories("alice", "What is the capital of Australia?", agent_name="assistant")


class _CountingClient:
    """The engine client, counting ``get_vectors`` calls (how a missing summary is fetched)."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner
        self.fetched: list[list[str]] = []

    def get_vectors(self, **kwargs: Any) -> Any:
        self.fetched.append(list(kwargs["keys"]))
        return self._inner.get_vectors(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _lentil_search(alice_store: S3VectorMemory, **kwargs: Any) -> tuple[list[Memory], _CountingClient]:
    """Alice's "lentil dal recipe" search with 2 candidates (her food conversation's details, not its
    summary), and the client that counts what it fetched by key."""
    client = _CountingClient(alice_store._get_s3vectors_client())
    narrow = S3VectorMemory(bucket_name="ranking-test", backend="local", client=client, candidate_k=1,
                            embedder=alice_store.embedder)
    shown = narrow.search("alice", "lentil dal recipe", agent_name="assistant", top_k=2, similarity_threshold=0.0,
                          **kwargs)
    return shown, client


def test_store_search_shows_a_matching_detail_when_its_summary_was_no_candidate(alice_store: S3VectorMemory) -> None:
    """By default a search is one query: the detail that matched stands for its conversation."""
    shown, client = _lentil_search(alice_store)
    assert client.fetched == []  # no second round trip
    assert shown and {(m.type, m.conversation_id) for m in shown} == {("detail", "food")}
    assert "lentil dal" in shown[0].content


def test_store_search_fetches_the_summary_of_a_matching_detail_on_request(alice_store: S3VectorMemory) -> None:
    shown, client = _lentil_search(alice_store, fetch_summaries=True)
    assert len(client.fetched) == 1  # details matched, the summary was no candidate: fetched by key
    assert [m.type for m in shown] == ["summary", "detail"]
    assert shown[0].content.startswith("Alice is vegetarian") and "lentil dal" in shown[1].content
