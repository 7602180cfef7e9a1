"""What a conversation's first turn remembers: the query it asks, and the memory block it gets.

The block holds the user's profile first, then the relevant conversation memories, within the
plugin's size budget (see :mod:`._prompt`). The profile is every current fact of the user (up to
:data:`PROFILE_FACT_K`), the most relevant first, with no relevance cut-off: a first turn's words
rarely name what a fact says ("tyres for my model?" and "Drives a Volvo"), and a user's facts are
few and short; only past the budget are the least relevant left out. The same query brings the
facts later conversations replaced, and a memory that states one of them is marked outdated (or
left out when only that statement matched, see :func:`outdated_memories`). The recall tool uses
the same search, with the cut-off (the model asks a precise question), and may also ask for the
facts that are no longer true (questions about the past).

Retrieval fails open: when S3 Vectors or the embedder is down, the reply goes on without memories
(with a warning and an error on the trace), because a memory layer must not take the agent down.
Tenant isolation failures are the exception: they are raised, never answered some other way.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import IsolationError
from ..index import FACT_SUPERSEDED, Memory, MemoryScope
from ..lexical import tokenize
from ..store import DEFAULT_FACT_K, MAX_TOP_K
from ..telemetry import SPAN_RETRIEVE, annotate, record_error, traced
from ..text import clean_text, message_text
from ._prompt import render_memory_context

if TYPE_CHECKING:
    from ..identity import Invocation
    from ..store import S3VectorMemory

__all__ = [
    "NO_MEMORIES",
    "PROFILE_FACT_K",
    "first_turn_query",
    "outdated_memories",
    "recall",
    "recall_facts_and_memories",
    "recall_for_tool",
]

logger = logging.getLogger(__name__)

#: Longest query built from a first turn's messages.
MAX_QUERY_CHARS = 8000
#: The recall tool's answer when nothing is relevant (the model reads it as "nothing known").
NO_MEMORIES = "No relevant memories found."
#: Most current facts a first turn injects: a user's whole profile in practice (a long-history user
#: of the knowledge-updates bench has about 12); the memory budget decides what fits.
PROFILE_FACT_K = 30


def first_turn_query(messages: Sequence[Mapping[str, Any]]) -> str:
    """The search query of a conversation's first turn: what the user said in it (text only)."""
    texts = [message_text(m) for m in messages if isinstance(m, Mapping) and m.get("role", "user") == "user"]
    return " ".join(" ".join(texts).split())[:MAX_QUERY_CHARS]


def recall_facts_and_memories(
    store: S3VectorMemory,
    scope: MemoryScope,
    query: str,
    *,
    top_k: int,
    similarity_threshold: float | None = None,
    fact_k: int = DEFAULT_FACT_K,
    include_past: bool = False,
    fetch_summaries: bool = False,
) -> tuple[list[Memory], list[Memory]]:
    """``(facts, memories)`` of ``scope`` relevant to ``query``: current facts (and superseded ones too
    with ``include_past``, for questions about the past), then conversation memories, best first.

    Two filtered queries of the scope's index, the query embedded once.
    """
    return store.search_with_facts(scope, query, top_k=top_k, fact_k=fact_k,
                                   similarity_threshold=similarity_threshold, include_superseded=include_past,
                                   fetch_summaries=fetch_summaries)


def recall_for_tool(
    store: S3VectorMemory,
    scope: MemoryScope,
    query: str,
    *,
    top_k: int,
    similarity_threshold: float | None = None,
    include_past: bool = False,
    budget_chars: int | None = None,
    fetch_summaries: bool = False,
) -> str:
    """The recall tool's answer: the memory block of ``query`` (facts first), or :data:`NO_MEMORIES`.

    The model asks in its own words, mid-conversation, so the query is cleaned for UTF-8 first.
    Errors propagate: the tool turns them into an answer the model can act on.
    """
    facts, memories = recall_facts_and_memories(store, scope, clean_text(str(query)), top_k=top_k,
                                                similarity_threshold=similarity_threshold, include_past=include_past,
                                                fetch_summaries=fetch_summaries)
    if not memories and not facts:
        return NO_MEMORIES
    return render_memory_context(memories, facts, budget_chars=budget_chars)


@traced(SPAN_RETRIEVE)
def recall(
    store: S3VectorMemory,
    invocation: Invocation,
    query: str,
    *,
    top_k: int,
    similarity_threshold: float | None = None,
    budget_chars: int | None = None,
    fact_k: int = PROFILE_FACT_K,
    fetch_summaries: bool = False,
) -> str:
    """The memory block for ``invocation``'s first turn (``""`` when nothing is relevant or it failed).

    The user's profile (at most ``fact_k`` current facts, most relevant first, none cut off), then
    memories (outdated ones marked), within ``budget_chars`` characters (``None``: no limit). One
    facts query, the 100 facts nearest to the query whatever their status: the current ones are the
    profile, the replaced ones tell which memories are outdated. It runs beside the memories query,
    so a first turn is one round trip unless ``fetch_summaries`` (see :class:`~._settings.RetrievalSettings`).
    """
    annotate(top_k=top_k, query_chars=len(query))
    if not query:
        return ""
    try:
        found, memories = store.search_with_facts(
            invocation.scope, query, top_k=top_k, fact_k=MAX_TOP_K if fact_k else 0,
            similarity_threshold=similarity_threshold, include_superseded=True, fact_threshold=-math.inf,
            fetch_summaries=fetch_summaries,
        )
        facts = [fact for fact in found if fact.is_current_fact][:fact_k]
        memories, outdated = outdated_memories(query, memories, facts, found)
        annotate(result_count=len(memories), fact_count=len(facts))
        block = render_memory_context(memories, facts, budget_chars=budget_chars, outdated=outdated)
        annotate(block_chars=len(block))
        return block
    except IsolationError:
        raise  # never answer a tenant with memories fetched any other way
    except Exception as exc:
        record_error(exc)  # the reply goes on without memories; the trace still shows why
        logger.warning(
            "memory retrieval failed for conversation %s; answering without memories: %s",
            invocation.conversation_id,
            exc,
        )
        return ""


def outdated_memories(
    query: str, memories: Sequence[Memory], facts: Sequence[Memory], history: Sequence[Memory]
) -> tuple[list[Memory], dict[str, str]]:
    """``memories`` without those outdated and matched only for it, and the outdated ones' marks.

    A conversation memory (summary or detail) is outdated when its conversation stated a fact that a
    *later* conversation replaced (a superseded fact of ``history`` with that ``conversation_id``):
    the summary "The user said: I live in Berlin" after the move to Paris. Its mark is the first
    date such a fact was replaced (memory key -> ``valid_to``). It is left out when the words it
    shares with ``query`` all belong to those replaced facts (nothing else in it is relevant).
    A fact replaced within its own conversation (a current fact of ``facts`` from it) does not
    make that conversation outdated: its memory states the new value too.
    """
    current = {fact.key: fact.conversation_id for fact in facts}
    replaced: dict[str, list[Memory]] = {}
    for fact in history:
        if fact.fact_status != FACT_SUPERSEDED or not fact.conversation_id or fact.valid_to is None:
            continue
        if fact.superseded_by and current.get(fact.superseded_by) == fact.conversation_id:
            continue
        replaced.setdefault(fact.conversation_id, []).append(fact)
    if not replaced:
        return list(memories), {}
    asked = set(tokenize(query))
    kept: list[Memory] = []
    marks: dict[str, str] = {}
    for memory in memories:
        stale = replaced.get(memory.conversation_id or "")
        if stale:
            matched = asked.intersection(tokenize(memory.content))
            if matched and matched <= {token for fact in stale for token in tokenize(fact.content)}:
                continue
            marks[memory.key] = min(fact.valid_to or "" for fact in stale)
        kept.append(memory)
    return kept, marks
