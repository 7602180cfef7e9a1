"""Dedupe on write: a restated summary overwrites the memory it restates instead of adding a copy.

Without it, a user who tells the agent the same thing in ten conversations ends up with ten
near-identical summaries, which crowd every other memory out of the top-k. The check is one
filtered ``QueryVectors`` per summary or ad-hoc memory, confined to the same user and agent.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from ..index import TYPE_MEMORY, TYPE_SUMMARY, IndexTarget, MemoryScope
from ..lexical import word_overlap
from ._scan import belongs

logger = logging.getLogger(__name__)

#: Cosine similarity (``1 - cosine distance``) at or above which a new summary or memory is treated
#: as a restatement of an existing memory of the same user and agent, and overwrites that memory
#: instead of being added. 0.97 was chosen on the bundled e5 model: rewordings of one fact score
#: 0.98-0.999, while two different facts about one topic ("vegetarian, allergic to peanuts" vs
#: "vegan, allergic to nuts") score about 0.96. Set ``store.dedupe_threshold = None`` to disable.
DEFAULT_DEDUPE_THRESHOLD = 0.97
#: ...and the wording must be near-identical too: at least this share of distinct words in common
#: (:func:`~strands_s3_vectors_memory.lexical.word_overlap`). Embeddings alone merge distinct facts on
#: one topic once both carry the same wrapper text ("The user said: ... Thanks, bye."), which would
#: overwrite a different conversation's memory.
DEDUPE_MIN_WORD_OVERLAP = 0.85
#: Nearest neighbours examined per check: finer-grained ``detail`` records are never merged into,
#: so a few candidates let a matching summary be found behind a detail of the same text.
DEDUPE_CANDIDATES = 4
_DEDUPED_TYPES = frozenset({TYPE_SUMMARY, TYPE_MEMORY})


def dedupe_keys(
    target: IndexTarget,
    records: Sequence[tuple[str, str, Mapping[str, Any]]],
    vectors: Sequence[Sequence[float]],
    threshold: float | None,
) -> list[tuple[str, Mapping[str, Any]]]:
    """The key (and metadata) each ``(key, text, metadata)`` record is written under.

    Its own key, or a near-duplicate's of the same type: then the record takes over that memory's
    ``conversation_id`` too, so a key always names the conversation its metadata says (keys are
    hashes of their conversation, and imports check that). Only ``summary`` and ``memory`` records
    are checked; two records of one batch never share a key.
    """
    chosen: list[tuple[str, Mapping[str, Any]]] = []
    for (key, text, metadata), vector in zip(records, vectors, strict=True):
        pick: tuple[str, Mapping[str, Any]] = (key, metadata)
        if threshold is not None and metadata.get("type") in _DEDUPED_TYPES:
            existing = near_duplicate(target, key, metadata, vector, threshold, text=text)
            if existing is not None and existing[0] not in {k for k, _ in chosen}:
                logger.debug("dedupe: %s replaces near-identical memory %s", key, existing[0])
                merged = dict(metadata)
                conversation = existing[1].get("conversation_id")
                if conversation is not None:
                    merged["conversation_id"] = conversation
                else:
                    merged.pop("conversation_id", None)
                pick = (existing[0], merged)
        chosen.append(pick)
    return chosen


def near_duplicate(
    target: IndexTarget,
    key: str,
    metadata: Mapping[str, Any],
    vector: Sequence[float],
    threshold: float,
    *,
    text: str | None = None,
) -> tuple[str, Mapping[str, Any]] | None:
    """Key and metadata of the nearest memory of the same user, agent and type if it restates this one.

    A restatement is at least ``threshold`` cosine-similar and, when ``text`` is given, shares at least
    :data:`DEDUPE_MIN_WORD_OVERLAP` of its words. ``None`` when there is none, or when the nearest one
    is the record's own key (an overwrite anyway).
    """
    scope = MemoryScope(str(metadata.get("user_id")), str(metadata.get("agent_name")))
    response = target.client.query_vectors(
        vectorBucketName=target.bucket_name,
        indexName=target.index_name,
        queryVector={"float32": list(vector)},
        topK=DEDUPE_CANDIDATES,
        filter=scope.metadata_filter(facts="exclude"),  # a summary's own facts must not crowd out its restatement
        returnMetadata=True,
        returnDistance=True,
    )
    for hit in response.get("vectors") or []:
        hit_metadata = hit.get("metadata") or {}
        if hit_metadata.get("type") != metadata.get("type") or not belongs(hit_metadata, scope):
            continue
        if hit.get("key") == key or 1.0 - float(hit.get("distance", 2.0)) < threshold:
            return None
        if text is not None and word_overlap(text, str(hit_metadata.get("content", ""))) < DEDUPE_MIN_WORD_OVERLAP:
            return None
        return str(hit["key"]), hit_metadata
    return None
