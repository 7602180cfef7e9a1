"""The :class:`Embedder` protocol and the one place where model output is checked.

Every backend (Bedrock, the bundled local model, a cache in front of either) hands vectors to
S3 Vectors through the same door, so a bad vector (wrong length, NaN, all zeros) is caught here,
with the model id in the message, instead of surfacing later as an opaque ``ValidationException``
from ``PutVectors`` or as silently meaningless search results.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from ..errors import EmbeddingError

__all__ = ["BackgroundQueryEmbedder", "Embedder", "EmbedderWrapper", "embed_background_query", "finalise_vector",
           "mean_direction", "require_text"]


@runtime_checkable
class Embedder(Protocol):
    """Turns text into L2-normalised vectors of a fixed ``dimension``.

    Queries and documents are embedded separately because the models we use are asymmetric:
    Nova takes a different ``embeddingPurpose`` and e5 a different prefix for each side, and
    mixing them up quietly degrades recall.
    """

    @property
    def model_id(self) -> str:
        """Identifier of the model, stored with the index so a later mismatch can be detected."""
        ...

    @property
    def dimension(self) -> int:
        """Length of every vector this embedder returns."""
        ...

    def embed_query(self, text: str) -> list[float]:
        """Embed a search query."""
        ...

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed texts that will be stored and searched, in input order."""
        ...


@runtime_checkable
class BackgroundQueryEmbedder(Protocol):
    """An embedder with a separate path for queries no user is waiting for.

    The writer looks up a conversation's related facts with a query (up to 2,000 characters of what
    the user said). On a CPU model that query must not hold the path users' first-turn queries take
    (measured: a second of first-turn latency). The bundled model runs it with its documents, on
    their low-priority lanes; a remote model (Bedrock) needs no such path and simply embeds a query.
    """

    def embed_background_query(self, text: str) -> list[float]:
        """Embed a query for background work, off the path of users' queries."""
        ...


def embed_background_query(embedder: Embedder, text: str) -> list[float]:
    """A query embedded for background work: on the embedder's background path if it has one."""
    if isinstance(embedder, BackgroundQueryEmbedder):
        return embedder.embed_background_query(text)
    return embedder.embed_query(text)


class EmbedderWrapper:
    """Base of the embedders that wrap another one (the query cache): the wrapped model's
    identity (``model_id``, ``dimension``, calibrated ``similarity_threshold``) is passed through in
    one place, so a wrapper can never report a model other than the one doing the work."""

    def __init__(self, inner: Embedder) -> None:
        self._inner = inner

    @property
    def inner(self) -> Embedder:
        """The embedder doing the actual work."""
        return self._inner

    @property
    def model_id(self) -> str:
        return self._inner.model_id

    @property
    def dimension(self) -> int:
        return self._inner.dimension

    @property
    def similarity_threshold(self) -> float | None:
        """The wrapped embedder's calibrated relevance cut-off, if it has one."""
        value = getattr(self._inner, "similarity_threshold", None)
        return None if value is None else float(value)

    def embed_background_query(self, text: str) -> list[float]:
        """Straight to the wrapped embedder's background path (not cached: no user's turn repeats it)."""
        return embed_background_query(self._inner, text)


def finalise_vector(raw: object, *, dimension: int, model_id: str) -> list[float]:
    """Check one vector returned by a model and return it L2-normalised as plain floats.

    Normalising here (even when the model claims to normalise) makes cosine and euclidean
    rankings agree and keeps scores comparable across backends.
    """
    try:
        array: npt.NDArray[np.float64] = np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise EmbeddingError(f"{model_id}: embedding is not a list of numbers") from exc
    if array.ndim != 1:
        raise EmbeddingError(f"{model_id}: embedding has shape {array.shape}, expected ({dimension},)")
    if array.shape[0] != dimension:
        raise EmbeddingError(f"{model_id}: embedding has {array.shape[0]} values, expected {dimension}")
    if not np.all(np.isfinite(array)):
        raise EmbeddingError(f"{model_id}: embedding contains NaN or infinite values")
    norm = float(np.linalg.norm(array))
    if norm == 0.0 or not math.isfinite(norm):
        raise EmbeddingError(f"{model_id}: embedding has zero length and cannot be normalised")
    return [float(x) for x in array / norm]


def mean_direction(vectors: Sequence[Sequence[float]]) -> list[float]:
    """The unit vector nearest, in cosine, to all of ``vectors`` (their normalised mean).

    One query for a whole conversation from the vectors of its parts, without embedding it again.
    Unit vectors of one model never cancel out in practice; if they did, the first one stands in.
    """
    if not vectors:
        raise ValueError("mean_direction needs at least one vector")
    mean = np.mean(np.asarray(vectors, dtype=np.float64), axis=0)
    norm = float(np.linalg.norm(mean))
    if norm < 1e-9 or not math.isfinite(norm):
        return [float(x) for x in vectors[0]]
    return [float(x) for x in mean / norm]


def require_text(text: object, *, model_id: str) -> str:
    """Return ``text`` if it is a string, else raise: a ``None`` summary must not become a vector."""
    if not isinstance(text, str):
        raise EmbeddingError(f"{model_id}: can only embed str, got {type(text).__name__}")
    return text
