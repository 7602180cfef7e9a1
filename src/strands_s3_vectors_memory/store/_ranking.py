"""Hybrid, conversation-level ranking of the dense candidates S3 Vectors returns.

S3 Vectors answers one question: the ``candidate_k`` (<= 100) stored vectors of this user nearest
to the query. This module decides what of that is worth putting in front of the model:

1. **Hybrid score per record.** Dense similarity and BM25 over the candidates' content
   (:mod:`..lexical`) are min-max normalised over the candidate set and mixed with fixed weights,
   0.55 / 0.45 (:data:`DEFAULT_WEIGHTS`), the reference "hybrid min-max best-turn" ranking nudged
   towards dense; over the candidates of the service's hybrid query, 0.45 / 0.55
   (:data:`HYBRID_CANDIDATE_WEIGHTS`). Recency has weight 0 by default and otherwise only breaks
   ties (newer first).
   The weights and :data:`SUPPORT_WEIGHT` come from ``bench/ranking_sweep.py`` on LoCoMo: the
   chosen point sits inside a plateau (every neighbour within 0.005 recall@5), not on a spike.
2. **Conversation level.** A conversation scores by its best record plus a fraction
   (:data:`SUPPORT_WEIGHT`) of its second best: one strong match decides, a second one confirms.
   Memories stored without a conversation stand alone.
3. **Relevance cut-off.** Min-max scores are relative, so "is anything relevant at all" is decided
   on absolute evidence: a record is relevant when its dense similarity reaches the threshold, or
   comes within :data:`LEXICAL_MARGIN` of it while sharing a content word with the query. Compressed
   embedders (e5 puts almost everything between 0.85 and 0.95 on the ``1 - distance/2`` scale) need
   a calibrated threshold; the word-overlap rule keeps lexical matches just below it.
4. **What is shown.** Each relevant conversation appears once: its summary when that was among the
   candidates (or fetched by key, which the searcher does only with ``fetch_summaries``), else its
   best record that is not a fact, plus its best matching detail when that adds words the first
   lacks and a slot is left once every shown conversation has its first memory. Near-identical
   memories (token containment or Jaccard) are shown once.
5. **Facts.** A fact record is evidence for the conversation it came from (it scores like a
   detail), but is never shown as a conversation's memory: facts have their own section of the
   memory block, current ones only (:func:`rank_facts`, same hybrid score and cut-off, one record
   each).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime, timezone

from ..index import TYPE_FACT, TYPE_SUMMARY, Memory, summary_key_of
from ..lexical import bm25_scores, novelty, token_jaccard, tokenize

__all__ = [
    "CONTAINMENT_DUPLICATE",
    "DEFAULT_WEIGHTS",
    "DETAIL_MIN_NOVELTY",
    "HYBRID_CANDIDATE_WEIGHTS",
    "JACCARD_DUPLICATE",
    "LEXICAL_MARGIN",
    "SUPPORT_WEIGHT",
    "ConversationMatch",
    "HybridWeights",
    "rank",
    "rank_conversations",
    "rank_facts",
    "select_memories",
    "summaries_to_fetch",
    "summary_key_for",
]


@dataclass(frozen=True)
class HybridWeights:
    """Weights of the min-max normalised signals in a record's score (they need not sum to 1)."""

    dense: float = 0.55
    lexical: float = 0.45
    recency: float = 0.0


#: The fixed default mix: dense slightly ahead of BM25, recency only as a tie-break.
DEFAULT_WEIGHTS = HybridWeights()
#: The mix over the candidates of the service's hybrid query: BM25 slightly ahead. Those candidates
#: are the fused best of the dense and the full-text rankings of the whole scope, not the dense
#: nearest, so a record is among them *because* of its words as often as because of its vector;
#: over them the default mix let a closer look-alike outrank the one record holding the asked code
#: (``bench/identifier_recall.py``). Chosen like :data:`DEFAULT_WEIGHTS` (``bench/ranking_sweep.py
#: --hybrid``): the middle of a plateau (dense 0.35 to 0.50 all within 0.005 at recall@1/3/5); the
#: default 0.55 sits where recall@3 falls off over these candidates.
HYBRID_CANDIDATE_WEIGHTS = HybridWeights(dense=0.45, lexical=0.55)
#: Share of a conversation's second-best record added to its best one.
SUPPORT_WEIGHT = 0.2
#: How far below the dense threshold a record sharing a content word with the query still counts.
LEXICAL_MARGIN = 0.01
#: Two memories are the same memory when one's tokens are this much inside the other's ...
CONTAINMENT_DUPLICATE = 0.9
#: ... or their token sets overlap this much (Jaccard).
JACCARD_DUPLICATE = 0.8
#: A detail is shown beside its summary only if at least this share of its words is new.
DETAIL_MIN_NOVELTY = 0.3


@dataclass(frozen=True)
class ConversationMatch:
    """One conversation (or stand-alone memory) among the candidates, with its evidence.

    Attributes:
        group: The conversation id, or ``"key:<vector key>"`` for a memory without one.
        score: Conversation score (best record plus :data:`SUPPORT_WEIGHT` of the second best).
        records: Its candidate records, best first, each with ``score`` set to its hybrid score.
        relevant_keys: Keys of the records that passed the relevance cut-off.
        newest: Latest ``stored_at`` of its records (epoch seconds; 0 when unknown), the tie-break.
        conversation_summary_key: Key of its summary when the caller could tell it from the
            conversation id (facts' keys do not name their conversation).
    """

    group: str
    score: float
    records: tuple[Memory, ...]
    relevant_keys: frozenset[str]
    newest: float
    conversation_summary_key: str | None = None

    @property
    def relevant(self) -> bool:
        """True when at least one of its records passed the cut-off."""
        return bool(self.relevant_keys)

    @property
    def summary(self) -> Memory | None:
        """Its summary record, when that was among the candidates."""
        return next((m for m in self.records if m.type == TYPE_SUMMARY), None)

    @property
    def summary_key(self) -> str | None:
        """Key of its summary (whether or not it was a candidate), when its records imply one."""
        for memory in self.records:
            key = summary_key_for(memory)
            if key is not None:
                return key
        return self.conversation_summary_key


def summary_key_for(memory: Memory) -> str | None:
    """Key of the summary of ``memory``'s conversation, derived from the record's own key."""
    return summary_key_of(memory.key, memory.type)


@functools.lru_cache(maxsize=1 << 14)
def _epoch(stored_at: str) -> float:
    """``stored_at`` as epoch seconds; 0 for anything unparseable (it then never wins a tie).

    Memoised: ``strptime`` is slow and every search parses up to 100 timestamps, mostly seen before.
    """
    try:
        moment = datetime.strptime(stored_at, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    except ValueError:
        return 0.0
    return moment.timestamp()


def _min_max(values: Sequence[float]) -> list[float]:
    """Scale to [0, 1] over the candidate set; all-equal values are all 1 if positive, else all 0."""
    if not values:
        return []
    low, high = min(values), max(values)
    if high - low <= 1e-12:
        return [1.0 if high > 0 else 0.0] * len(values)
    return [(v - low) / (high - low) for v in values]


def _group_of(memory: Memory) -> str:
    return memory.conversation_id if memory.conversation_id is not None else f"key:{memory.key}"


def _is_relevant(similarity: float | None, shares_word: bool, threshold: float, margin: float) -> bool:
    if similarity is None:
        return False
    return similarity >= threshold or (shares_word and similarity >= threshold - margin)


def rank_conversations(
    query: str,
    candidates: Sequence[Memory],
    *,
    threshold: float,
    weights: HybridWeights | None = None,
    lexical_margin: float = LEXICAL_MARGIN,
    summary_key_of_conversation: Callable[[str], str | None] | None = None,
    hybrid: bool = False,
) -> list[ConversationMatch]:
    """Score ``candidates`` (hybrid, per record), group them, best relevant conversation first.

    Conversations without a relevant record (see the module notes; ``lexical_margin`` is how far
    below ``threshold`` a record sharing a query word still counts) are dropped; ``threshold=0``
    keeps every one. Output order is deterministic: score, then most recent, then group id.
    ``summary_key_of_conversation`` names a conversation's summary key from its id (the searcher
    knows the scope), so the summary of a conversation found only through its facts can be fetched
    (unfetched, such a conversation is not shown: facts are never a conversation's memory).

    ``hybrid``: the candidates come from a hybrid query, so a record the service found by its words
    alone has no distance: its dense part is the lowest, and it is relevant when it shares a content
    word with the query. ``weights`` default to :data:`HYBRID_CANDIDATE_WEIGHTS` for such candidates,
    else :data:`DEFAULT_WEIGHTS`.
    """
    if weights is None:
        weights = HYBRID_CANDIDATE_WEIGHTS if hybrid else DEFAULT_WEIGHTS
    usable = [m for m in candidates if m.similarity is not None or hybrid]
    if not usable:
        return []
    query_tokens = tokenize(query)
    documents = [tokenize(m.content) for m in usable]
    epochs = [_epoch(m.stored_at) for m in usable]
    recency = _min_max(epochs) if weights.recency else [0.0] * len(usable)
    known = [float(m.similarity) for m in usable if m.similarity is not None]
    floor = min(known) if known else 0.0
    dense = _min_max([float(m.similarity) if m.similarity is not None else floor for m in usable])
    lexical = _min_max(bm25_scores(query_tokens, documents))
    mixed = [weights.dense * d + weights.lexical * lx + weights.recency * rc
             for d, lx, rc in zip(dense, lexical, recency, strict=True)]
    query_set = set(query_tokens)

    grouped: dict[str, list[tuple[float, float, Memory, bool]]] = {}
    for memory, doc, score, epoch in zip(usable, documents, mixed, epochs, strict=True):
        shares_word = bool(query_set.intersection(doc))
        relevant = (
            shares_word if memory.similarity is None
            else _is_relevant(memory.similarity, shares_word, threshold, lexical_margin)
        )
        grouped.setdefault(_group_of(memory), []).append((score, epoch, replace(memory, score=score), relevant))

    matches: list[ConversationMatch] = []
    for group, entries in grouped.items():
        entries.sort(key=lambda e: (-e[0], -e[1], e[2].key))
        relevant_keys = frozenset(e[2].key for e in entries if e[3])
        if not relevant_keys:
            continue
        score = entries[0][0] + (SUPPORT_WEIGHT * entries[1][0] if len(entries) > 1 else 0.0)
        conversation = entries[0][2].conversation_id
        matches.append(
            ConversationMatch(
                group=group,
                score=score,
                records=tuple(e[2] for e in entries),
                relevant_keys=relevant_keys,
                newest=max(e[1] for e in entries),
                conversation_summary_key=(
                    summary_key_of_conversation(conversation)
                    if summary_key_of_conversation is not None and conversation is not None else None
                ),
            )
        )
    matches.sort(key=lambda m: (-round(m.score, 9), -m.newest, m.group))
    return matches


def summaries_to_fetch(matches: Sequence[ConversationMatch], top_k: int) -> list[str]:
    """Keys of summaries of the first ``top_k`` conversations that were not among the candidates."""
    keys: list[str] = []
    for match in matches[:top_k]:
        key = match.summary_key
        if match.summary is None and key is not None:
            keys.append(key)
    return keys


def _duplicate(tokens: Sequence[str], shown: Sequence[Sequence[str]]) -> bool:
    """True when ``tokens`` says (almost) the same as something already shown."""
    mine = set(tokens)
    for other in shown:
        theirs = set(other)
        if not mine or not theirs:
            if mine == theirs:
                return True
            continue
        common = len(mine & theirs)
        if common / len(mine) >= CONTAINMENT_DUPLICATE or token_jaccard(tokens, other) >= JACCARD_DUPLICATE:
            return True
    return False


def select_memories(
    matches: Sequence[ConversationMatch],
    *,
    top_k: int,
    summaries: Mapping[str, Memory] | None = None,
) -> list[Memory]:
    """The memories to show: at most ``top_k``, each conversation once, near-duplicates dropped.

    Every shown conversation first gets its primary memory (its summary, from the candidates or
    from ``summaries`` by key; else its best record that is not a fact); slots left over then go,
    best conversation first, to its best relevant detail when that adds enough new words. Memories
    come out grouped by conversation, best conversation first; a primary's ``score`` is its
    conversation's score. Facts are never shown here (they have their own section): a conversation
    found only through facts whose summary cannot be had is left out.
    """
    fetched = summaries or {}
    primaries: list[tuple[ConversationMatch, Memory, list[str]]] = []
    shown: list[list[str]] = []
    for match in matches:
        if len(primaries) >= top_k:
            break
        key = match.summary_key if fetched else None  # a key only matters to look up a fetched summary
        shown_records = [m for m in match.records if m.type != TYPE_FACT]
        primary = match.summary or (fetched.get(key) if key is not None else None) or next(iter(shown_records), None)
        if primary is None:
            continue
        tokens = tokenize(primary.content)
        if _duplicate(tokens, shown):
            continue
        primaries.append((match, replace(primary, score=match.score), tokens))
        shown.append(tokens)

    slots = top_k - len(primaries)
    extras: dict[str, Memory] = {}
    for match, primary, primary_tokens in primaries:
        if slots <= 0:
            break
        for record in match.records:
            if record.key == primary.key or record.key not in match.relevant_keys or record.type == TYPE_FACT:
                continue
            tokens = tokenize(record.content)
            if novelty(tokens, primary_tokens) >= DETAIL_MIN_NOVELTY and not _duplicate(tokens, shown):
                extras[match.group] = record
                shown.append(tokens)
                slots -= 1
            break  # only the best relevant record is considered: a weaker one is not "the match"

    result: list[Memory] = []
    for match, primary, _ in primaries:
        result.append(primary)
        if match.group in extras:
            result.append(extras[match.group])
    return result


def rank_facts(
    query: str,
    facts: Sequence[Memory],
    *,
    threshold: float,
    top_k: int,
    weights: HybridWeights = DEFAULT_WEIGHTS,
    lexical_margin: float = LEXICAL_MARGIN,
) -> list[Memory]:
    """The ``top_k`` facts most relevant to ``query``, best first, each with its hybrid ``score``.

    The same hybrid score and relevance cut-off as conversations, per fact (facts are one record
    each); near-identical facts of one status are shown once (a current fact is never hidden by
    its superseded near-twin). Ties: newest first, then key.
    """
    usable = [m for m in facts if m.similarity is not None]
    if not usable:
        return []
    query_tokens = tokenize(query)
    query_set = set(query_tokens)
    documents = [tokenize(m.content) for m in usable]
    dense = _min_max([float(m.similarity or 0.0) for m in usable])
    lexical = _min_max(bm25_scores(query_tokens, documents))
    scored = [
        (weights.dense * d + weights.lexical * lx, _epoch(m.stored_at), m, doc)
        for m, doc, d, lx in zip(usable, documents, dense, lexical, strict=True)
        if _is_relevant(m.similarity, bool(query_set.intersection(doc)), threshold, lexical_margin)
    ]
    scored.sort(key=lambda e: (-round(e[0], 9), -e[1], e[2].key))
    chosen: list[Memory] = []
    shown: dict[str | None, list[list[str]]] = {}
    for score, _, memory, doc in scored:
        if len(chosen) >= top_k:
            break
        if _duplicate(doc, shown.setdefault(memory.fact_status, [])):
            continue
        chosen.append(replace(memory, score=score))
        shown[memory.fact_status].append(doc)
    return chosen


def rank(
    query: str,
    candidates: Sequence[Memory],
    *,
    top_k: int,
    threshold: float,
    weights: HybridWeights = DEFAULT_WEIGHTS,
    summaries: Mapping[str, Memory] | None = None,
) -> list[Memory]:
    """:func:`rank_conversations` then :func:`select_memories`: what a search returns."""
    if top_k < 1 or not math.isfinite(threshold):
        raise ValueError("top_k must be positive and threshold finite")
    matches = rank_conversations(query, candidates, threshold=threshold, weights=weights)
    return select_memories(matches, top_k=top_k, summaries=summaries)
