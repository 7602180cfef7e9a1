"""Embeddings from Amazon Bedrock: Nova 2 multimodal embeddings (default) and Titan Text v2.

Both models embed one text per ``InvokeModel`` call, so documents are embedded concurrently on a
small thread pool (boto3 clients are thread-safe). Throttling and 5xx answers are retried by
botocore's ``standard`` retry mode on the client built here; whatever still fails, and any
response that is not a usable vector, becomes :class:`~strands_s3_vectors_memory.EmbeddingError`.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from ..config import DEFAULT_AWS_DIMENSION, DEFAULT_BEDROCK_EMBEDDING_MODEL, resolve_region
from ..errors import ConfigurationError, EmbeddingError
from ..telemetry import SERVICE_NAME
from ._base import finalise_vector, require_text

#: Nova's ``text.value`` accepts at most 8,192 characters; the model itself then truncates
#: on tokens (``truncationMode: END``), so cutting on this budget is always safe.
NOVA_MAX_CHARS = 8192
#: Titan v2 rejects inputs over 8,192 tokens instead of truncating. A token covers at least
#: one character for practically all text, so 8,000 characters stays under the limit even for
#: scripts that tokenise one character at a time (English needs ~4 characters per token).
TITAN_MAX_CHARS = 8000

#: Nova purposes: documents are indexed with GENERIC_INDEX; queries use TEXT_RETRIEVAL, which the
#: Nova user guide recommends for searching an index that holds only text embeddings (ours).
NOVA_DOCUMENT_PURPOSE = "GENERIC_INDEX"
NOVA_QUERY_PURPOSE = "TEXT_RETRIEVAL"

_RequestBuilder = Callable[[str, int, bool], dict[str, Any]]
_ResponseParser = Callable[[Mapping[str, Any]], object]


@dataclass(frozen=True)
class _ModelFamily:
    """How to talk to one family of Bedrock embedding models."""

    name: str
    marker: str
    dimensions: tuple[int, ...]
    max_chars: int
    build_request: _RequestBuilder
    parse_response: _ResponseParser


def _nova_request(text: str, dimension: int, is_query: bool) -> dict[str, Any]:
    return {
        "schemaVersion": "nova-multimodal-embed-v1",
        "taskType": "SINGLE_EMBEDDING",
        "singleEmbeddingParams": {
            "embeddingPurpose": NOVA_QUERY_PURPOSE if is_query else NOVA_DOCUMENT_PURPOSE,
            "embeddingDimension": dimension,
            "text": {"truncationMode": "END", "value": text},
        },
    }


def _nova_response(payload: Mapping[str, Any]) -> object:
    embeddings = payload.get("embeddings")
    if not isinstance(embeddings, list):
        return None
    for item in embeddings:
        if isinstance(item, Mapping) and item.get("embeddingType", "TEXT") == "TEXT":
            return item.get("embedding")
    return None


def _titan_request(text: str, dimension: int, is_query: bool) -> dict[str, Any]:
    # Titan v2 is symmetric: queries and documents are embedded the same way.
    return {"inputText": text, "dimensions": dimension, "normalize": True, "embeddingTypes": ["float"]}


def _titan_response(payload: Mapping[str, Any]) -> object:
    embedding = payload.get("embedding")
    if embedding is None and isinstance(payload.get("embeddingsByType"), Mapping):
        embedding = payload["embeddingsByType"].get("float")
    return embedding


_FAMILIES: tuple[_ModelFamily, ...] = (
    _ModelFamily(
        name="Amazon Nova 2 multimodal embeddings",
        marker="nova-2-multimodal-embeddings",
        dimensions=(256, 384, 1024, 3072),
        max_chars=NOVA_MAX_CHARS,
        build_request=_nova_request,
        parse_response=_nova_response,
    ),
    _ModelFamily(
        name="Amazon Titan Text Embeddings v2",
        marker="titan-embed-text-v2",
        dimensions=(256, 512, 1024),
        max_chars=TITAN_MAX_CHARS,
        build_request=_titan_request,
        parse_response=_titan_response,
    ),
)


def _family_for(model_id: str) -> _ModelFamily:
    """Find the request format for a model id, inference profile id or model ARN."""
    for family in _FAMILIES:
        if family.marker in model_id:
            return family
    supported = ", ".join(f"*{f.marker}*" for f in _FAMILIES)
    raise ConfigurationError(f"unsupported Bedrock embedding model {model_id!r}: supported models are {supported}")


def _default_client(region: str | None, max_attempts: int, max_workers: int) -> Any:
    config = Config(
        # botocore's "max_attempts" counts retries only; "total_max_attempts" counts every attempt.
        retries={"mode": "standard", "total_max_attempts": max_attempts},
        max_pool_connections=max(10, max_workers),
        connect_timeout=10,
        read_timeout=60,
    )
    return boto3.client("bedrock-runtime", region_name=resolve_region(region), config=config)


class BedrockEmbedder:
    """:class:`~strands_s3_vectors_memory.embeddings.Embedder` backed by Bedrock ``InvokeModel``.

    ``client`` may be any ``bedrock-runtime`` client (its own retry settings then apply);
    without one, a client is created with botocore's standard retry mode, which retries
    throttling and 5xx answers with backoff, making at most ``max_attempts`` attempts in all.
    """

    def __init__(
        self,
        model_id: str = DEFAULT_BEDROCK_EMBEDDING_MODEL,
        dimension: int = DEFAULT_AWS_DIMENSION,
        region: str | None = None,
        client: Any | None = None,
        max_workers: int = 4,
        *,
        max_attempts: int = 5,
    ) -> None:
        self._family = _family_for(model_id)
        if dimension not in self._family.dimensions:
            allowed = ", ".join(str(d) for d in self._family.dimensions)
            raise ConfigurationError(
                f"{model_id} cannot produce {dimension}-dimensional vectors: choose one of {allowed}"
            )
        if max_workers < 1:
            raise ConfigurationError(f"max_workers must be at least 1, got {max_workers}")
        if max_attempts < 1:
            raise ConfigurationError(f"max_attempts must be at least 1, got {max_attempts}")
        self._model_id = model_id
        self._dimension = dimension
        self._max_workers = max_workers
        self._client = client if client is not None else _default_client(region, max_attempts, max_workers)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def client(self) -> Any:
        """The ``bedrock-runtime`` client in use (handy for event hooks and metrics)."""
        return self._client

    def embed_query(self, text: str) -> list[float]:
        return self._embed(require_text(text, model_id=self._model_id), is_query=True)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        checked = [require_text(t, model_id=self._model_id) for t in texts]
        if len(checked) <= 1 or self._max_workers == 1:
            return [self._embed(t, is_query=False) for t in checked]
        workers = min(self._max_workers, len(checked))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix=f"{SERVICE_NAME}-embed") as pool:
            return list(pool.map(lambda t: self._embed(t, is_query=False), checked))

    def _embed(self, text: str, *, is_query: bool) -> list[float]:
        body = self._family.build_request(text[: self._family.max_chars], self._dimension, is_query)
        payload = self._invoke(body)
        raw = self._family.parse_response(payload)
        if raw is None:
            raise EmbeddingError(f"{self._model_id}: Bedrock response has no text embedding")
        return finalise_vector(raw, dimension=self._dimension, model_id=self._model_id)

    def _invoke(self, body: dict[str, Any]) -> Mapping[str, Any]:
        try:
            response = self._client.invoke_model(
                modelId=self._model_id,
                body=json.dumps(body),
                contentType="application/json",
                accept="application/json",
            )
            raw_body = response["body"].read()
        except (ClientError, BotoCoreError) as exc:
            raise EmbeddingError(f"{self._model_id}: Bedrock InvokeModel failed: {exc}") from exc
        try:
            payload = json.loads(raw_body)
        except ValueError as exc:
            raise EmbeddingError(f"{self._model_id}: Bedrock returned a body that is not JSON") from exc
        if not isinstance(payload, Mapping):
            raise EmbeddingError(f"{self._model_id}: Bedrock returned JSON that is not an object")
        return payload

    def __repr__(self) -> str:
        return f"BedrockEmbedder(model_id={self._model_id!r}, dimension={self._dimension})"
