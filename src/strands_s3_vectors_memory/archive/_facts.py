"""Facts that stay true: the user's current facts found, new ones resolved, old ones superseded.

A fact is one short statement about the user ("Lives in Paris (moved from Berlin in March 2026)"),
stored as its own vector (``type: "fact"``, key :func:`~..index._records.fact_key`) beside a conversation's
summary and details. The archiver asks the summarizing model, in its one call, for the facts the
conversation states and for the stored facts it ends; this module does the index side:

* :func:`find_facts`: a user's facts nearest to a vector, current only (or with their history), one
  filtered ``QueryVectors`` (``fact_status`` is filterable, see :mod:`..index._records`); the vector a
  conversation's related facts are found with is :func:`related_vector`'s;
* :func:`resolve_changes`: the model's numbered answer turned into keys, checkpointed in the job so a
  retry writes the same thing without asking again;
* :func:`facts_to_write`: which new facts to write, leaving alone one that a *later* conversation has
  already stated or superseded (a replayed old job must not bring it back);
* :func:`supersede`: time goes forward (a conversation ends only facts stated before it; its own
  fact that a later one replaced enters as history); a superseded fact keeps its vector and
  metadata, plus ``valid_to`` and ``superseded_by``, re-put under its key (S3 Vectors has no
  partial metadata update; the vector is read back with ``returnData`` so nothing is re-embedded).
  Idempotent.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..embeddings import Embedder, embed_background_query, mean_direction
from ..index import (
    FACT_CURRENT,
    FACT_SUPERSEDED,
    TYPE_FACT,
    IndexTarget,
    Memory,
    MemoryScope,
    fact_key,
    put_vectors,
    superseded_metadata,
)
from ..text import fact_text, head_and_tail
from ._summary_format import FactsStatus, SummaryReply

__all__ = [
    "DEFAULT_RELATED_FACTS",
    "RELATED_QUERY_CHARS",
    "FactChanges",
    "FactRef",
    "NewFact",
    "facts_to_write",
    "find_facts",
    "related_query",
    "related_vector",
    "resolve_changes",
    "supersede",
]

#: Most existing facts shown to the summarizing model (the bounded related-facts query).
DEFAULT_RELATED_FACTS = 20
#: Longest text embedded to find a conversation's related facts (the user's turns, head and tail).
RELATED_QUERY_CHARS = 2000
#: A get/put of superseded facts in one request (far below the service's 100 / 500 limits).
_GET_BATCH = 100


@dataclass(frozen=True)
class FactRef:
    """A stored fact as the summarizing model is shown it: its key and its text."""

    key: str
    text: str


@dataclass(frozen=True)
class NewFact:
    """A fact a conversation states, and the keys of the stored facts it replaces."""

    text: str
    supersedes: tuple[str, ...] = ()


@dataclass(frozen=True)
class FactChanges:
    """What one conversation does to the user's facts: new facts, and facts ended without a replacement.

    ``status`` is how the model's facts section parsed (see :data:`~._summary_format.FactsStatus`).
    """

    facts: tuple[NewFact, ...] = ()
    retracted: tuple[str, ...] = ()
    status: FactsStatus = "ok"

    def superseded_by(self, scope: MemoryScope) -> dict[str, str]:
        """Each ended fact's key -> the key of the fact replacing it (``""`` when retracted).

        A fact the conversation restates is not ended (it is written again, current); when two new
        facts replace the same one, the first names it.
        """
        new_keys = {fact_key(scope, fact.text) for fact in self.facts}
        ended: dict[str, str] = {}
        for fact in self.facts:
            for key in fact.supersedes:
                ended.setdefault(key, fact_key(scope, fact.text))
        for key in self.retracted:
            ended.setdefault(key, "")
        return {key: by for key, by in ended.items() if key not in new_keys}

    def to_payload(self) -> dict[str, Any]:
        return {
            "facts": [{"text": fact.text, "supersedes": list(fact.supersedes)} for fact in self.facts],
            "retracted": list(self.retracted),
            "status": self.status,
        }

    @classmethod
    def from_payload(cls, payload: object) -> FactChanges | None:
        """Read :meth:`to_payload`'s form; ``None`` for anything else (an older job has no facts)."""
        if not isinstance(payload, Mapping):
            return None
        facts = tuple(
            NewFact(str(item["text"]), tuple(str(k) for k in item.get("supersedes") or ()))
            for item in payload.get("facts") or ()
            if isinstance(item, Mapping) and isinstance(item.get("text"), str)
        )
        status = payload.get("status")
        return cls(
            facts,
            tuple(str(k) for k in payload.get("retracted") or ()),
            status if status in ("ok", "missing", "malformed", "skipped") else "ok",
        )


def related_query(transcript: str, max_chars: int = RELATED_QUERY_CHARS) -> str:
    """The text a conversation's related facts are searched with: what the user said (head and tail)."""
    said = " ".join(line[len("USER: "):] for line in transcript.splitlines() if line.startswith("USER: "))
    return head_and_tail(said, max_chars)


def related_vector(embedder: Embedder, transcript: str, near: Sequence[Sequence[float]] = ()) -> list[float] | None:
    """The vector a conversation's related facts are searched with (``None``: the user said nothing).

    The mean direction of ``near`` (the conversation's detail records, embedded anyway to be stored:
    no extra model call); else what the user said, embedded as a query (up to 2,000 characters, as
    costly as a summary) on the embedder's background path (:mod:`..embeddings._base` says why).
    """
    if near:
        return mean_direction(near)
    query = related_query(transcript)
    return embed_background_query(embedder, query) if query else None


def find_facts(
    target: IndexTarget,
    scope: MemoryScope,
    vector: Sequence[float],
    *,
    top_k: int,
    include_superseded: bool = False,
) -> list[Memory]:
    """``scope``'s facts nearest to ``vector`` (current ones only, unless ``include_superseded``), nearest first.

    One ``QueryVectors`` filtered server-side on the scope and ``fact_status``; every returned record
    is checked again (scope, type, expiry).
    """
    response = target.client.query_vectors(
        vectorBucketName=target.bucket_name,
        indexName=target.index_name,
        queryVector={"float32": list(vector)},
        topK=top_k,
        filter=scope.metadata_filter(facts="any" if include_superseded else FACT_CURRENT),
        returnMetadata=True,
        returnDistance=True,
    )
    wanted = {FACT_CURRENT, FACT_SUPERSEDED} if include_superseded else {FACT_CURRENT}
    found: list[Memory] = []
    for vector_ in response.get("vectors") or []:
        memory = Memory.from_vector(vector_)
        if (
            memory.type == TYPE_FACT
            and memory.fact_status in wanted
            and memory.user_id == scope.user_id
            and (scope.agent_name is None or memory.agent_name == scope.agent_name)
            and not memory.is_expired()
        ):
            found.append(memory)
    return found


def resolve_changes(reply: SummaryReply, related: Sequence[FactRef]) -> FactChanges:
    """The model's reply with its fact numbers (1 = ``related[0]``) turned into keys, its facts cleaned
    (:func:`~.text.fact_text`: printable, plain; one with nothing left to say is dropped)."""
    def keys(numbers: Sequence[int]) -> tuple[str, ...]:
        return tuple(dict.fromkeys(related[n - 1].key for n in numbers if 1 <= n <= len(related)))

    texts = [(fact_text(fact.text), fact) for fact in reply.facts]  # "**", "-", '""': nothing to store
    facts = tuple(NewFact(text, keys(fact.supersedes)) for text, fact in texts if text is not None)
    return FactChanges(facts, keys(reply.retracted), reply.status)


def _get(target: IndexTarget, keys: Sequence[str], *, data: bool) -> list[Mapping[str, Any]]:
    vectors: list[Mapping[str, Any]] = []
    for start in range(0, len(keys), _GET_BATCH):
        response = target.client.get_vectors(
            vectorBucketName=target.bucket_name, indexName=target.index_name, keys=list(keys[start:start + _GET_BATCH]),
            returnMetadata=True, returnData=data,
        )
        vectors.extend(response.get("vectors") or [])
    return vectors


def _owned_fact(vector: Mapping[str, Any], scope: MemoryScope) -> Memory | None:
    memory = Memory.from_vector(vector)
    if memory.type != TYPE_FACT or memory.user_id != scope.user_id:
        return None
    if scope.agent_name is not None and memory.agent_name != scope.agent_name:
        return None
    return memory


def facts_to_write(target: IndexTarget, scope: MemoryScope, texts: Sequence[str], stated_at: str) -> list[str]:
    """The facts of ``texts`` to write now: all but those a later conversation already stated or ended.

    Facts are keyed by their text, so writing one over a superseded record makes it current again:
    right when the user states it again after it ended ("moved back to Berlin"), wrong when this job
    is older than the conversation that ended it (a replay after a crash). ``stated_at`` (the
    conversation's last turn, ISO-8601 UTC) tells the two apart: the record is left as it is when
    its ``valid_to`` is later, and also when a later conversation stated it (its ``stored_at`` is
    later): the record keeps the latest time it was said, which later supersessions are ordered by.
    """
    if not texts:
        return []
    keys = {fact_key(scope, text): text for text in texts}
    later: set[str] = set()
    for vector in _get(target, list(keys), data=False):
        memory = _owned_fact(vector, scope)
        if memory is not None and max(memory.stored_at, memory.valid_to or "") > stated_at:
            later.add(memory.key)
    return [text for key, text in keys.items() if key not in later]


def supersede(target: IndexTarget, scope: MemoryScope, ended: Mapping[str, str], valid_to: str) -> list[str]:
    """Mark the facts ``ended`` (key -> replacing key) superseded as of ``valid_to``; returns the keys rewritten.

    ``valid_to`` is when the ending conversation happened (its last turn). Time goes forward: a fact
    stated *later* than that (its ``stored_at``; a replica stored it while this job waited in a
    spool) is not ended by this older conversation; instead the fact that would have replaced it
    enters as history, superseded by the later fact as of the later fact's ``stored_at``. So a late
    job never makes a stale value current, whatever order the writes land in.

    Each rewritten fact is read back with its vector and re-put with the same vector and its
    metadata plus ``fact_status: superseded``, ``valid_to`` and ``superseded_by``. A key that is gone
    (deleted, forgotten) or not ``scope``'s fact is skipped; one already superseded keeps its first
    ending, so a retry rewrites nothing new.
    """
    if not ended:
        return []
    found = {str(vector["key"]): vector for vector in _get(target, list(ended), data=True)}
    endings: dict[str, tuple[str, str]] = {}  # key -> (valid_to, superseded_by)
    for key, by in ended.items():
        memory = _owned_fact(found[key], scope) if key in found else None
        if memory is None or memory.fact_status != FACT_CURRENT:
            continue
        if memory.stored_at <= valid_to:
            endings.setdefault(key, (valid_to, by))
        elif by and by != key:  # stated after this conversation: the older statement is the one that ended
            endings.setdefault(by, (memory.stored_at, key))
    reversed_keys = [key for key in endings if key not in found]
    found.update({str(vector["key"]): vector for vector in _get(target, reversed_keys, data=True)})
    rewritten: list[dict[str, Any]] = []
    for key, (until, by) in endings.items():
        vector = found.get(key)
        memory = _owned_fact(vector, scope) if vector is not None else None
        data = (vector.get("data") or {}).get("float32") if vector is not None else None
        if memory is None or memory.fact_status != FACT_CURRENT or data is None or memory.stored_at > until:
            continue  # gone, already ended, or stated again after the fact that would end it
        metadata = superseded_metadata(memory.metadata, valid_to=until, superseded_by=by)
        rewritten.append({"key": memory.key, "data": {"float32": [float(x) for x in data]}, "metadata": metadata})
    put_vectors(target, rewritten)
    return [str(vector["key"]) for vector in rewritten]
