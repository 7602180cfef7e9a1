"""The JSON Lines format of ``export_memories`` / ``import_memories``: one memory per line.

``{"key", "content", "metadata"}`` (metadata without the content, which has its own field), plus
``"vector"`` and ``"embedding_model"`` when vectors are exported, so an import can tell whether a
vector is reusable or the content must be embedded again.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ..errors import S3VectorMemoryError
from ..index import DEFAULT_AGENT_NAME, MemoryScope, key_belongs, validate_id
from ._scan import Vector

if TYPE_CHECKING:
    from ..embeddings import Embedder

#: S3 Vectors key length limit.
MAX_KEY_BYTES = 1024


def export_record(vector: Vector, embedder: Embedder | None) -> dict[str, Any]:
    metadata = dict(vector.get("metadata") or {})
    record: dict[str, Any] = {"key": str(vector["key"]), "content": str(metadata.pop("content", ""))}
    record["metadata"] = metadata
    data = (vector.get("data") or {}).get("float32")
    if data is not None:
        record["vector"] = [float(x) for x in data]
        if embedder is not None and len(record["vector"]) == embedder.dimension:
            record["embedding_model"] = embedder.model_id
    return record


@dataclass(frozen=True)
class ImportRecord:
    key: str
    content: str
    metadata: dict[str, Any]
    vector: list[float] | None
    model: str | None


def parse_import_line(line: str, number: int) -> ImportRecord:
    def bad(reason: str) -> ValueError:
        return ValueError(f"line {number}: {reason}")

    try:
        record = json.loads(line)
    except json.JSONDecodeError as exc:
        raise bad(f"not valid JSON ({exc.msg})") from None
    if not isinstance(record, dict):
        raise bad("expected a JSON object")
    key, content, metadata = record.get("key"), record.get("content"), record.get("metadata")
    if not isinstance(key, str) or not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise bad(f"'key' must be a non-empty string of at most {MAX_KEY_BYTES} bytes")
    if not isinstance(content, str) or not content.strip():
        raise bad("'content' must be a non-empty string")
    if not isinstance(metadata, dict):
        raise bad("'metadata' must be an object")
    try:
        validate_id(metadata.get("user_id"), "metadata.user_id")
        if "agent_name" in metadata:
            validate_id(metadata["agent_name"], "metadata.agent_name")
    except S3VectorMemoryError as exc:
        raise bad(str(exc)) from None
    vector = record.get("vector")
    if vector is not None and (
        not isinstance(vector, list) or not vector or not all(isinstance(x, int | float) for x in vector)
    ):
        raise bad("'vector' must be a list of numbers")
    model = record.get("embedding_model")
    return ImportRecord(
        key=key,
        content=content,
        metadata={**metadata, "content": content},
        vector=[float(x) for x in vector] if vector is not None else None,
        model=model if isinstance(model, str) else None,
    )


def foreign_key_reason(record: ImportRecord, tenant_id: str | None) -> str | None:
    """Why ``record`` must not be written under its key, or ``None`` when the key is its own.

    A key must be one the store makes for the user, agent and conversation of the record's metadata
    in this index's tenant (see :func:`~strands_s3_vectors_memory.index._records.key_belongs`); else one
    crafted line could overwrite another user's record. A record stored without an agent name has
    ``"default"`` in its metadata but a key made without one, so both are accepted for it.
    """
    metadata = record.metadata
    agent = metadata.get("agent_name", DEFAULT_AGENT_NAME)
    conversation = metadata.get("conversation_id")
    conversation = conversation if isinstance(conversation, str) else None
    agents = [agent, None] if agent == DEFAULT_AGENT_NAME else [agent]
    if any(key_belongs(record.key, MemoryScope(metadata["user_id"], name, tenant_id), conversation) for name in agents):
        return None
    return (
        "the key does not belong to the user_id, agent_name and conversation_id of its metadata"
        + (f" in tenant {tenant_id!r}" if tenant_id is not None else "")
    )
