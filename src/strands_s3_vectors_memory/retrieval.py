"""What a conversation's first turn remembers: the query it asks, and the memory block it gets.

Retrieval fails open: when S3 Vectors or the embedder is down, the reply goes on without memories
(with a warning and an error on the trace), because a memory layer must not take the agent down.
Tenant isolation failures are the exception: they are raised, never answered some other way.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from .errors import IsolationError
from .prompt import render_memory_context
from .telemetry import SPAN_RETRIEVE, annotate, record_error, traced
from .text import message_text

if TYPE_CHECKING:
    from .identity import Invocation
    from .store import S3VectorMemory

__all__ = ["first_turn_query", "recall"]

logger = logging.getLogger(__name__)

#: Longest query built from a first turn's messages.
MAX_QUERY_CHARS = 8000


def first_turn_query(messages: Sequence[Mapping[str, Any]]) -> str:
    """The search query of a conversation's first turn: what the user said in it (text only)."""
    texts = [message_text(m) for m in messages if isinstance(m, Mapping) and m.get("role", "user") == "user"]
    return " ".join(" ".join(texts).split())[:MAX_QUERY_CHARS]


@traced(SPAN_RETRIEVE)
def recall(
    store: S3VectorMemory,
    invocation: Invocation,
    query: str,
    *,
    top_k: int,
    similarity_threshold: float | None = None,
) -> str:
    """The memory block for ``invocation``'s first turn (``""`` when nothing is relevant or it failed)."""
    annotate(top_k=top_k, query_chars=len(query))
    if not query:
        return ""
    try:
        memories = store.search_scope(invocation.scope, query, top_k=top_k, similarity_threshold=similarity_threshold)
        annotate(result_count=len(memories))
        return render_memory_context(memories)
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
