"""Memory records <-> S3 Vectors vectors: identity rules, keys and the metadata schema.

The index layout is the spec's: ``content``, ``stored_at``, ``conversation_id`` and ``type`` are
non-filterable (stored, returned, never filtered on); ``user_id`` and ``agent_name`` are filterable
and scope every query; ``expires_at`` (epoch seconds, optional) is filterable so expired memories can
be excluded server-side. Keys are deterministic hashes, so re-ending a conversation overwrites its
summary instead of duplicating it, and no raw user id ever appears in a key.

Facts (``type: "fact"``) are short standalone statements about the user, one vector each, that stay
true until a later conversation supersedes them. Three keys of theirs are new to the layout and,
like every key the spec does not declare non-filterable, filterable (an index's non-filterable keys
are fixed when it is created, so an existing index takes them with no change):

* ``fact_status``: ``"current"`` or ``"superseded"``. The one key facts need to be filterable: a
  query for "this user's current facts" must find them among hundreds of summaries and details
  server-side, and ``type`` is non-filterable in the spec's layout.
* ``valid_to``: when a superseded fact stopped being true (ISO-8601 UTC, 20 bytes).
* ``superseded_by``: the key of the fact that replaced it (``""`` when the conversation retracted it
  without a replacement), at most 54 bytes.

They add at most ~110 bytes to the filterable metadata of a fact, whose ids take at most 1 KB of the
2 KB S3 Vectors allows.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
import unicodedata
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import InvalidIdentityError
from ..text import printable_text, truncate_utf8

__all__ = [
    "DEFAULT_AGENT_NAME",
    "EXTRACTIVE_KEY",
    "FACT_CURRENT",
    "FACT_STATUS_KEY",
    "FACT_SUPERSEDED",
    "MAX_FACT_CHARS",
    "MAX_ID_BYTES",
    "MAX_METADATA_BYTES",
    "SUMMARIZED_BY_KEY",
    "SUPERSEDED_BY_KEY",
    "TYPE_DETAIL",
    "TYPE_FACT",
    "TYPE_MEMORY",
    "TYPE_SUMMARY",
    "VALID_TO_KEY",
    "Memory",
    "MemoryScope",
    "build_fact_metadata",
    "build_metadata",
    "content_memory_key",
    "detail_key",
    "fact_key",
    "key_belongs",
    "message_key",
    "new_memory_key",
    "summary_key",
    "summary_key_of",
    "superseded_metadata",
    "utc_timestamp",
    "validate_id",
]

#: Longest user id, conversation id or agent name (UTF-8 bytes). The filterable metadata of a vector
#: (user_id + agent_name + expires_at) must stay under S3 Vectors' 2 KB limit.
MAX_ID_BYTES = 512
#: S3 Vectors allows 40 KB of metadata per vector; content gets what the other keys leave, with room.
MAX_METADATA_BYTES = 40 * 1024
_METADATA_MARGIN_BYTES = 1024

TYPE_SUMMARY = "summary"
TYPE_DETAIL = "detail"
TYPE_MEMORY = "memory"
#: A durable fact or preference of the user, extracted with a conversation's summary.
TYPE_FACT = "fact"
#: Filterable metadata of a fact: ``FACT_CURRENT`` while true, ``FACT_SUPERSEDED`` once a later
#: conversation replaced or contradicted it (kept for history, never injected as current).
FACT_STATUS_KEY = "fact_status"
FACT_CURRENT = "current"
FACT_SUPERSEDED = "superseded"
#: Metadata of a superseded fact: when it stopped being true (ISO-8601 UTC) and the fact that replaced it.
VALID_TO_KEY = "valid_to"
SUPERSEDED_BY_KEY = "superseded_by"
#: Longest fact (characters): a fact is one short statement, not a second summary.
MAX_FACT_CHARS = 300
#: Filterable metadata flag of a summary that is the user's own words, not a model's summary (stored
#: when a conversation could not be summarized: see the writer's dead letters).
EXTRACTIVE_KEY = "extractive"
#: Filterable metadata of a model's summary: how its reply was obtained (``structured``, ``salvaged``,
#: ``text``; see :data:`~..archive._summary_format.SummaryPath`), counted by ``stats``.
SUMMARIZED_BY_KEY = "summarized_by"

DEFAULT_AGENT_NAME = "default"


def validate_id(value: object, name: str) -> str:
    """Return ``value`` if it is a usable identifier, else raise :class:`InvalidIdentityError`.

    Ids may hold any printable Unicode (slashes included: they never reach a key or a path), but must
    be non-empty strings, valid UTF-8, without control characters (C0, DEL or C1), and at most 512
    bytes as stored (UTF-8, JSON-escaped), so user id and agent name always fit S3 Vectors' 2 KB of
    filterable metadata.
    """
    if not isinstance(value, str):
        raise InvalidIdentityError(f"{name} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise InvalidIdentityError(f"{name} must be a non-empty string")
    try:
        size = len(json.dumps(value, ensure_ascii=False).encode("utf-8")) - 2  # as stored, without the quotes
    except UnicodeEncodeError:
        raise InvalidIdentityError(f"{name} is not valid UTF-8 (lone surrogate characters)") from None
    if any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidIdentityError(f"{name} must not contain control characters")
    if size > MAX_ID_BYTES:
        raise InvalidIdentityError(
            f"{name} is {size} bytes long as stored; the limit is {MAX_ID_BYTES} UTF-8 bytes (JSON-escaped)"
        )
    return value


@dataclass(frozen=True)
class MemoryScope:
    """Whose memories: one user of one agent, optionally inside one tenant."""

    user_id: str
    agent_name: str | None = DEFAULT_AGENT_NAME
    tenant_id: str | None = None

    def __post_init__(self) -> None:
        validate_id(self.user_id, "user_id")
        if self.agent_name is not None:
            validate_id(self.agent_name, "agent_name")

    @property
    def digest(self) -> str:
        """A stable hash of the scope, used in keys instead of raw ids."""
        return _digest(self.tenant_id or "", self.user_id, self.agent_name or "")

    def metadata_filter(self, now: float | None = None, *, facts: str | None = None) -> dict[str, Any]:
        """The S3 Vectors filter that confines a query to this scope and to unexpired memories.

        ``facts`` narrows it to facts: ``FACT_CURRENT`` (what is true now), or ``"any"`` (current and
        superseded: the history); ``"exclude"`` leaves facts out.
        """
        clauses: list[dict[str, Any]] = [{"user_id": {"$eq": self.user_id}}]
        if self.agent_name is not None:
            clauses.append({"agent_name": {"$eq": self.agent_name}})
        current = time.time() if now is None else now
        clauses.append({"$or": [{"expires_at": {"$exists": False}}, {"expires_at": {"$gt": current}}]})
        if facts == "exclude":
            clauses.append({FACT_STATUS_KEY: {"$exists": False}})
        elif facts == "any":
            clauses.append({FACT_STATUS_KEY: {"$in": [FACT_CURRENT, FACT_SUPERSEDED]}})
        elif facts is not None:
            clauses.append({FACT_STATUS_KEY: {"$eq": facts}})
        return {"$and": clauses}


def _digest(*parts: str, length: int = 32) -> str:
    joined = "\x1f".join(parts).encode("utf-8")
    return hashlib.sha256(joined).hexdigest()[:length]


def summary_key(scope: MemoryScope, conversation_id: str) -> str:
    """Deterministic key of a conversation's summary: re-ending the conversation overwrites it."""
    return f"sum-{_digest(scope.digest, conversation_id)}"


def detail_key(scope: MemoryScope, conversation_id: str, text: str) -> str:
    """Deterministic key of one finer-grained record of a conversation: its conversation and its text.

    Addressed by content, not position: when a conversation is ended, resumed and ended again, the
    records of its first part keep their keys (they are not overwritten by the second part's), and
    storing the same record twice overwrites it instead of duplicating it.
    """
    return f"det-{_digest(scope.digest, conversation_id)}-{_digest(text, length=16)}"


def fact_key(scope: MemoryScope, text: str) -> str:
    """Deterministic key of a fact of ``scope``: its text, whitespace and case folded.

    Addressed by content and not by conversation: a fact restated in a later conversation overwrites
    the record it restates (becoming current again if it had been superseded) instead of adding a
    copy, and a retried write lands on the same key.
    """
    normalized = " ".join(text.casefold().split())
    return f"fct-{scope.digest[:16]}-{_digest(scope.digest, 'fact', normalized)}"


def summary_key_of(key: str, memory_type: str) -> str | None:
    """Key of the summary of the conversation a ``summary`` or ``detail`` record belongs to.

    Summaries are ``sum-<h>`` and details ``det-<h>-<suffix>`` with the same ``<h>``, so the summary
    of a matching detail can be fetched by key although conversation ids are not filterable.
    Details written before 1.0 end in a 4-digit position; both forms are recognised.
    """
    if memory_type == TYPE_SUMMARY:
        return key
    if memory_type == TYPE_DETAIL and key.startswith("det-"):
        digest, _, suffix = key[len("det-") :].rpartition("-")
        if digest and suffix and all(ch in "0123456789abcdef" for ch in suffix):
            return f"sum-{digest}"
    return None


def new_memory_key(scope: MemoryScope) -> str:
    """Key of an ad-hoc memory (``store_memory``): scoped hash plus a random suffix."""
    return f"mem-{scope.digest[:16]}-{uuid.uuid4().hex}"


def content_memory_key(scope: MemoryScope, text: str) -> str:
    """Key of an ad-hoc memory addressed by its text (the MemoryStore adapter's ``add``): no duplicates."""
    return f"mem-{scope.digest[:16]}-{_digest(scope.digest, 'add', text)}"


def message_key(scope: MemoryScope, run_id: str, identity: str, role: str, text: str) -> str:
    """Key of one stored message (the MemoryStore adapter's ``add_messages``): a retried batch overwrites."""
    return f"msg-{scope.digest[:16]}-{_digest(scope.digest, run_id, identity, role, text)}"


def key_belongs(key: str, scope: MemoryScope, conversation_id: str | None = None) -> bool:
    """True when ``key`` is one of the keys the store makes for ``scope`` (and ``conversation_id``).

    Keys are hashes of whose record they hold, so a record that comes from outside (an import) can be
    checked against the scope its metadata claims: a line claiming to be Alice's must not be written
    over Bob's summary. A summary key must be exactly the conversation's; a detail key must carry the
    conversation's prefix (whatever follows names the detail); an ad-hoc memory, stored message or
    fact key must carry the scope's prefix (a fact key names no conversation, so that a fact restated
    in another conversation stays one record). Any other key is not one the store makes.
    """
    for kind in ("mem", "msg", "fct"):  # ad-hoc memories, stored messages, facts: the scope's prefix
        prefix = f"{kind}-{scope.digest[:16]}-"
        if key.startswith(f"{kind}-"):
            return key.startswith(prefix) and len(key) > len(prefix)
    if conversation_id is None:
        return False
    if key.startswith("sum-"):
        return key == summary_key(scope, conversation_id)
    detail_prefix = f"det-{_digest(scope.digest, conversation_id)}-"
    return key.startswith(detail_prefix) and len(key) > len(detail_prefix)


def utc_timestamp(now: float | None = None) -> str:
    """ISO-8601 UTC timestamp with second precision, e.g. ``2026-11-25T10:00:00Z``."""
    moment = datetime.fromtimestamp(time.time() if now is None else now, tz=timezone.utc)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_metadata(
    scope: MemoryScope,
    content: str,
    *,
    memory_type: str,
    conversation_id: str | None = None,
    stored_at: str | None = None,
    expires_at: float | None = None,
) -> dict[str, Any]:
    """Metadata of one vector, with ``content`` cut on a UTF-8 boundary to fit the 40 KB limit."""
    metadata: dict[str, Any] = {
        "user_id": scope.user_id,
        "agent_name": scope.agent_name or DEFAULT_AGENT_NAME,
        "type": memory_type,
        "stored_at": stored_at or utc_timestamp(),
    }
    if conversation_id is not None:
        metadata["conversation_id"] = conversation_id
    if expires_at is not None:
        if not math.isfinite(expires_at):
            raise ValueError("expires_at must be a finite number of seconds since the epoch")
        metadata["expires_at"] = float(expires_at)
    others = len(json.dumps(metadata, ensure_ascii=False).encode("utf-8"))
    budget = MAX_METADATA_BYTES - others - _METADATA_MARGIN_BYTES
    metadata["content"] = truncate_utf8(printable_text(content), budget)  # nothing unprintable is stored
    return metadata


def build_fact_metadata(
    scope: MemoryScope,
    text: str,
    *,
    conversation_id: str,
    stored_at: str | None = None,
    expires_at: float | None = None,
) -> dict[str, Any]:
    """Metadata of a current fact (at most :data:`MAX_FACT_CHARS` characters) from ``conversation_id``."""
    metadata = build_metadata(
        scope, text[:MAX_FACT_CHARS], memory_type=TYPE_FACT, conversation_id=conversation_id,
        stored_at=stored_at, expires_at=expires_at,
    )
    metadata[FACT_STATUS_KEY] = FACT_CURRENT
    return metadata


def superseded_metadata(metadata: Mapping[str, Any], *, valid_to: str, superseded_by: str) -> dict[str, Any]:
    """A fact's metadata once superseded: everything kept, plus when it ended and what replaced it.

    S3 Vectors has no partial metadata update, so superseding re-puts the whole vector with this.
    """
    return {**metadata, FACT_STATUS_KEY: FACT_SUPERSEDED, VALID_TO_KEY: valid_to, SUPERSEDED_BY_KEY: superseded_by}


@dataclass(frozen=True)
class Memory:
    """A memory as returned by searches and listings."""

    key: str
    content: str
    type: str
    user_id: str
    agent_name: str
    stored_at: str
    conversation_id: str | None = None
    expires_at: float | None = None
    #: Cosine similarity on the 0.3.0 scale, ``1 - distance / 2`` (1 = identical, 0.5 = orthogonal).
    similarity: float | None = None
    #: The final ranking score (hybrid dense + lexical); higher is better.
    score: float | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def from_vector(cls, vector: Mapping[str, Any]) -> Memory:
        """Build a memory from a ``query_vectors`` / ``get_vectors`` / ``list_vectors`` entry."""
        metadata = dict(vector.get("metadata") or {})
        distance = vector.get("distance")
        similarity = None if distance is None else round(1.0 - float(distance) / 2.0, 6)
        expires = metadata.get("expires_at")
        return cls(
            key=str(vector["key"]),
            content=str(metadata.get("content", "")),
            type=str(metadata.get("type", TYPE_MEMORY)),
            user_id=str(metadata.get("user_id", "")),
            agent_name=str(metadata.get("agent_name", "")),
            stored_at=str(metadata.get("stored_at", "")),
            conversation_id=metadata.get("conversation_id"),
            expires_at=float(expires) if isinstance(expires, int | float) else None,
            similarity=similarity,
            metadata=metadata,
        )

    @property
    def fact_status(self) -> str | None:
        """``"current"`` or ``"superseded"`` for a fact, ``None`` for any other memory."""
        status = self.metadata.get(FACT_STATUS_KEY)
        return str(status) if self.type == TYPE_FACT and status is not None else None

    @property
    def is_current_fact(self) -> bool:
        """True for a fact no later conversation superseded."""
        return self.fact_status == FACT_CURRENT

    @property
    def valid_to(self) -> str | None:
        """When a superseded fact stopped being true (ISO-8601 UTC), else ``None``."""
        value = self.metadata.get(VALID_TO_KEY)
        return str(value) if isinstance(value, str) and value else None

    @property
    def superseded_by(self) -> str | None:
        """Key of the fact that replaced a superseded fact (``""``: retracted without one), else ``None``."""
        value = self.metadata.get(SUPERSEDED_BY_KEY)
        return str(value) if isinstance(value, str) else None

    def is_expired(self, now: float | None = None) -> bool:
        """True when the memory has an ``expires_at`` in the past."""
        return self.expires_at is not None and self.expires_at <= (time.time() if now is None else now)

    def as_dict(self) -> dict[str, Any]:
        """The dict shape ``retrieve_memories`` returned in 0.3.0, plus type and conversation id.

        A fact adds its ``fact_status``, ``valid_to`` and ``superseded_by``.
        """
        shape: dict[str, Any] = {
            "key": self.key,
            "content": self.content,
            "similarity": self.similarity,
            "score": self.score,
            "stored_at": self.stored_at,
            "type": self.type,
            "conversation_id": self.conversation_id,
            "agent_name": self.agent_name,
        }
        if self.type == TYPE_FACT:
            shape.update(fact_status=self.fact_status, valid_to=self.valid_to, superseded_by=self.superseded_by)
        return shape
