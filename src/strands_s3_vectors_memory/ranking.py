"""Ranking of dense candidates returned by S3 Vectors.

S3 Vectors returns the nearest vectors of a user; this module decides which of them are worth
putting in front of the model and in which order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from .records import Memory


def rank(query: str, candidates: Sequence[Memory], *, top_k: int, threshold: float) -> list[Memory]:
    """Keep candidates at or above ``threshold`` similarity, best first, at most ``top_k``."""
    kept = [
        replace(memory, score=memory.similarity)
        for memory in candidates
        if memory.similarity is not None and memory.similarity >= threshold
    ]
    kept.sort(key=lambda memory: memory.score or 0.0, reverse=True)
    return kept[:top_k]
