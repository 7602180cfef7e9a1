"""One search of one scope's memories: candidates from S3 Vectors, ranked, with their summaries.

The scope is a server-side filter (user, agent, unexpired), checked again on every returned record.
On an index whose ``content`` is full-text searchable (ENHANCED, see :func:`~..index._index.text_key`) the
candidates come from one hybrid ``QueryVectors`` (the query vector and the user's words, fused by
the service with RRF over the whole scope: a record the dense search would miss but whose words
match is among them); otherwise (CLASSIC, or 0.3.0's indexes) they are the dense top
``candidate_k``. Either way a dense + BM25 mix (BM25 over the candidates, computed here: the
service's scores, without stemming or stop words, ranked LoCoMo worse) ranks them (see
:mod:`._ranking`; BM25 weighs a little more over hybrid candidates), at conversation level. A
conversation is shown by its summary when that was a candidate, else by its best matching detail
(one found only through its facts, not at all).
Its summary could be fetched by key, but only after the query (neither ``type`` nor
``conversation_id`` is filterable in the spec's index layout, so summaries cannot be asked for
beside it): a second round trip on 44-59 % of LoCoMo first turns, hence only on request
(``fetch_summaries``). Facts among the candidates are evidence for their conversations; the facts
shown as such come from :func:`search_facts`, a second query filtered on ``fact_status``.
Superseded facts are history and never count as evidence.
"""

from __future__ import annotations

import concurrent.futures
import contextvars
import threading
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from ..archive import find_facts
from ..index import FACT_SUPERSEDED, Memory, MemoryScope, summary_key
from ..lexical import STOPWORDS
from ..telemetry import SERVICE_NAME, annotate
from ..text import head_and_tail
from ._ranking import rank_conversations, rank_facts, select_memories, summaries_to_fetch

if TYPE_CHECKING:
    from ..embeddings import Embedder
    from ..index import IndexTarget

__all__ = [
    "HYBRID_CANDIDATE_FACTOR",
    "MAX_QUERY_TEXT_CHARS",
    "QUERY_EMBED_CHARS",
    "beside",
    "query_vector",
    "search_facts",
    "search_index",
    "text_query",
]

T = TypeVar("T")

#: Most characters of a query that are embedded (head and tail; the full text still goes to the
#: full-text side of a hybrid query). The bundled model takes ~0.1 s for 600 characters on 2 cores
#: and seconds for 8,000; past a few hundred words a query's vector moves little.
QUERY_EMBED_CHARS = 600
#: Longest text of one ``queryTexts`` entry (the service's limit).
MAX_QUERY_TEXT_CHARS = 1024
#: Hybrid candidates per memory shown: the service already put the best of both rankings first, so
#: 30 (for the default 5) rank as well as 100 on LoCoMo (``bench/locomo_recall.py``) for a third
#: of the metadata.
HYBRID_CANDIDATE_FACTOR = 6
_HYBRID_MIN_CANDIDATES = 30


def query_vector(embedder: Embedder, query: str) -> list[float]:
    """The query's embedding, of at most :data:`QUERY_EMBED_CHARS` characters of it (head and tail)."""
    return embedder.embed_query(head_and_tail(query, QUERY_EMBED_CHARS))


def text_query(query: str, max_chars: int = MAX_QUERY_TEXT_CHARS) -> str:
    """The full-text side of a hybrid query: the query itself when it fits, else its distinct words.

    A long first message is bounded for the embedder (head and tail); here every distinct word of
    it is kept, in order of first use, stop words dropped, until the service's 1,024 characters.
    """
    folded = " ".join(query.split())
    if len(folded) <= max_chars:
        return folded
    seen: set[str] = set()
    words: list[str] = []
    size = -1
    for word in folded.split(" "):
        bare = word.strip(".,;:!?()[]{}\"'").casefold()
        if not bare or bare in seen or bare in STOPWORDS:
            continue
        if size + 1 + len(word) > max_chars:
            break
        seen.add(bare)
        words.append(word)
        size += 1 + len(word)
    return " ".join(words)


def search_index(
    target: IndexTarget,
    embedder: Embedder,
    scope: MemoryScope,
    query: str,
    *,
    top_k: int,
    candidate_k: int,
    threshold: float,
    vector: Sequence[float] | None = None,
    fetch_summaries: bool = False,
) -> list[Memory]:
    """The ``top_k`` memories of ``scope`` most relevant to ``query``, best first.

    ``vector`` is the query's embedding when the caller already has it. With ``fetch_summaries``, a
    conversation shown by a detail because its summary was not a candidate gets that summary,
    fetched by key (``GetVectors``, one more round trip); without it the detail stands for it.
    """
    annotate(index_name=target.index_name, top_k=top_k, candidate_k=candidate_k,
             scope_hash=scope.digest[:16], embedding_model=embedder.model_id)
    vector = list(vector) if vector is not None else query_vector(embedder, query)
    params: dict[str, Any] = {
        "vectorBucketName": target.bucket_name,
        "indexName": target.index_name,
        "queryVector": {"float32": vector},
        "topK": candidate_k,
        "filter": scope.metadata_filter(),
        "returnMetadata": True,
        "returnDistance": True,
    }
    words = text_query(query) if target.text_key is not None else ""
    if words:  # one hybrid query: the service fuses the dense and the BM25 rankings of the whole scope
        params["topK"] = min(candidate_k, max(_HYBRID_MIN_CANDIDATES, HYBRID_CANDIDATE_FACTOR * top_k))
        params["queryTexts"] = [{"metadataKey": target.text_key, "text": words}]
    response = target.client.query_vectors(**params)
    now = time.time()

    def in_scope(memory: Memory) -> bool:
        return (
            memory.user_id == scope.user_id
            and (scope.agent_name is None or memory.agent_name == scope.agent_name)
            and not memory.is_expired(now)
        )

    # A superseded fact is history: it must not pull the conversation that stated it up the ranking.
    found = response.get("vectors", [])
    candidates = [m for m in (Memory.from_vector(v) for v in found)
                  if in_scope(m) and m.fact_status != FACT_SUPERSEDED]

    def conversation_summary(conversation_id: str) -> str | None:  # for conversations found by a fact
        return summary_key(scope, conversation_id) if scope.agent_name is not None else None

    # Summary keys are only needed to fetch summaries: without it, no key is derived per match.
    matches = rank_conversations(
        query, candidates, threshold=threshold,
        summary_key_of_conversation=conversation_summary if fetch_summaries else None, hybrid=bool(words),
    )
    summaries: dict[str, Memory] = {}
    missing = summaries_to_fetch(matches, top_k) if fetch_summaries else []
    if missing:  # a detail matched but its conversation's summary was not a candidate: fetch by key
        fetched = target.client.get_vectors(
            vectorBucketName=target.bucket_name, indexName=target.index_name, keys=missing, returnMetadata=True
        )
        summaries = {m.key: m for m in (Memory.from_vector(v) for v in fetched.get("vectors", [])) if in_scope(m)}
    ranked = select_memories(matches, top_k=top_k, summaries=summaries)
    annotate(candidate_count=len(candidates), result_count=len(ranked))
    return ranked


def search_facts(
    target: IndexTarget,
    embedder: Embedder,
    scope: MemoryScope,
    query: str,
    *,
    top_k: int,
    candidate_k: int,
    threshold: float,
    include_superseded: bool = False,
    vector: Sequence[float] | None = None,
) -> list[Memory]:
    """The ``top_k`` facts of ``scope`` most relevant to ``query``: current ones, or with their history."""
    vector = list(vector) if vector is not None else query_vector(embedder, query)
    found = find_facts(target, scope, vector, top_k=candidate_k, include_superseded=include_superseded)
    ranked = rank_facts(query, found, threshold=threshold, top_k=top_k)
    annotate(fact_candidate_count=len(found), fact_count=len(ranked))
    return ranked


def beside(call: Callable[[], T]) -> Callable[[], T]:
    """Start ``call`` on a thread of its own, in the caller's context (spans nest); returns a getter
    that waits for its result (or raises what it raised).

    A first turn's two queries (memories, facts) go over the network on AWS: side by side they cost
    one round trip instead of two. A thread per call (not a pool) so nothing outlives a fork.
    """
    future: concurrent.futures.Future[T] = concurrent.futures.Future()
    context = contextvars.copy_context()

    def run() -> None:
        try:
            future.set_result(context.run(call))
        except BaseException as exc:  # handed to the caller, who re-raises it
            future.set_exception(exc)

    threading.Thread(target=run, name=f"{SERVICE_NAME}-query", daemon=True).start()
    return future.result
