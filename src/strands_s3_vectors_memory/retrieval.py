"""What a conversation's first turn remembers: the query it asks, and the memory block it gets.

The block holds the user's current facts relevant to the query first, then the relevant
conversation memories, within the plugin's size budget (see :mod:`.prompt`). The recall tool uses
the same search and may also ask for the facts that are no longer true (questions about the past).

Retrieval fails open: when S3 Vectors or the embedder is down, the reply goes on without memories
(with a warning and an error on the trace), because a memory layer must not take the agent down.
Tenant isolation failures are the exception: they are raised, never answered some other way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import IsolationError
from .index_store import DEFAULT_FACT_K
from .prompt import render_memory_context
from .records import Memory, MemoryScope
from .telemetry import SPAN_RETRIEVE, annotate, record_error, traced
from .text import clean_text, message_text

if TYPE_CHECKING:
    from .identity import Invocation
    from .store import S3VectorMemory

__all__ = ["NO_MEMORIES", "first_turn_query", "recall", "recall_facts_and_memories", "recall_for_tool"]

logger = logging.getLogger(__name__)

#: Longest query built from a first turn's messages.
MAX_QUERY_CHARS = 8000
#: The recall tool's answer when nothing is relevant (the model reads it as "nothing known").
NO_MEMORIES = "No relevant memories found."


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
) -> tuple[list[Memory], list[Memory]]:
    """``(facts, memories)`` of ``scope`` relevant to ``query``: current facts (and superseded ones too
    with ``include_past``, for questions about the past), then conversation memories, best first.

    Two filtered queries of the scope's index, the query embedded once.
    """
    return store.search_with_facts(scope, query, top_k=top_k, fact_k=fact_k,
                                   similarity_threshold=similarity_threshold, include_superseded=include_past)


def recall_for_tool(
    store: S3VectorMemory,
    scope: MemoryScope,
    query: str,
    *,
    top_k: int,
    similarity_threshold: float | None = None,
    include_past: bool = False,
    budget_chars: int | None = None,
) -> str:
    """The recall tool's answer: the memory block of ``query`` (facts first), or :data:`NO_MEMORIES`.

    The model asks in its own words, mid-conversation, so the query is cleaned for UTF-8 first.
    Errors propagate: the tool turns them into an answer the model can act on.
    """
    facts, memories = recall_facts_and_memories(store, scope, clean_text(str(query)), top_k=top_k,
                                                similarity_threshold=similarity_threshold, include_past=include_past)
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
    fact_k: int = DEFAULT_FACT_K,
) -> str:
    """The memory block for ``invocation``'s first turn (``""`` when nothing is relevant or it failed).

    Current facts first, then memories, within ``budget_chars`` characters (``None``: no limit).
    """
    annotate(top_k=top_k, query_chars=len(query))
    if not query:
        return ""
    try:
        facts, memories = recall_facts_and_memories(
            store, invocation.scope, query, top_k=top_k, similarity_threshold=similarity_threshold, fact_k=fact_k
        )
        annotate(result_count=len(memories), fact_count=len(facts))
        block = render_memory_context(memories, facts, budget_chars=budget_chars)
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
