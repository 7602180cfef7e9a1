"""One search of one scope's memories: dense candidates from S3 Vectors, ranked, with their summaries.

The scope is a server-side filter (user, agent, unexpired), checked again on every returned record;
the candidates are re-ranked at conversation level (dense + BM25, see :mod:`.ranking`); a detail
record that matched brings its conversation's summary, fetched by key when it was not a candidate
(conversation ids are not filterable in the spec's index layout).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .ranking import rank_conversations, select_memories, summaries_to_fetch
from .records import Memory, MemoryScope
from .telemetry import annotate

if TYPE_CHECKING:
    from .embeddings import Embedder
    from .index import IndexTarget

__all__ = ["search_index"]


def search_index(
    target: IndexTarget,
    embedder: Embedder,
    scope: MemoryScope,
    query: str,
    *,
    top_k: int,
    candidate_k: int,
    threshold: float,
) -> list[Memory]:
    """The ``top_k`` memories of ``scope`` most relevant to ``query``, best first."""
    annotate(index_name=target.index_name, top_k=top_k, candidate_k=candidate_k,
             scope_hash=scope.digest[:16], embedding_model=embedder.model_id)
    vector = embedder.embed_query(query)
    response = target.client.query_vectors(
        vectorBucketName=target.bucket_name,
        indexName=target.index_name,
        queryVector={"float32": vector},
        topK=candidate_k,
        filter=scope.metadata_filter(),
        returnMetadata=True,
        returnDistance=True,
    )
    now = time.time()

    def in_scope(memory: Memory) -> bool:
        return (
            memory.user_id == scope.user_id
            and (scope.agent_name is None or memory.agent_name == scope.agent_name)
            and not memory.is_expired(now)
        )

    candidates = [m for m in (Memory.from_vector(v) for v in response.get("vectors", [])) if in_scope(m)]
    matches = rank_conversations(query, candidates, threshold=threshold)
    summaries: dict[str, Memory] = {}
    missing = summaries_to_fetch(matches, top_k)
    if missing:  # a detail matched but its conversation's summary was not a candidate: fetch by key
        fetched = target.client.get_vectors(
            vectorBucketName=target.bucket_name, indexName=target.index_name, keys=missing, returnMetadata=True
        )
        summaries = {m.key: m for m in (Memory.from_vector(v) for v in fetched.get("vectors", [])) if in_scope(m)}
    ranked = select_memories(matches, top_k=top_k, summaries=summaries)
    annotate(candidate_count=len(candidates), result_count=len(ranked))
    return ranked
