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
from ..records import validate_id
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
