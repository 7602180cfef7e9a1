"""Exporting a user's memories as JSON Lines (the format is :mod:`._transfer`'s)."""

from __future__ import annotations

import json
import time
from typing import IO, TYPE_CHECKING

from ..index import MemoryScope, list_page
from ._scan import ProgressCallback, Tally, belongs, is_expired
from ._target import IndexLocator, existing_target
from ._transfer import export_record

if TYPE_CHECKING:
    from ..embeddings import Embedder


def export_memories(
    locate: IndexLocator,
    scope: MemoryScope,
    fp: IO[str],
    *,
    embedder: Embedder | None,
    include_vectors: bool = False,
    include_expired: bool = False,
    progress: ProgressCallback | None = None,
) -> int:
    """Write ``scope``'s memories to ``fp``, one JSON object a line; returns how many.

    Reads never embed, so ``embedder`` only names the model of exported vectors of its dimension
    (an import can then tell whether they are reusable).
    """
    target = existing_target(locate)
    if target is None:
        return 0
    tally = Tally(progress)
    now = time.time()
    written = 0
    token: str | None = None
    while True:
        response = list_page(target, token, return_data=include_vectors)
        page = list(response.get("vectors") or [])
        chosen = [
            v for v in page
            if belongs(v.get("metadata") or {}, scope)
            and (include_expired or not is_expired(v.get("metadata") or {}, now))
        ]
        for vector in chosen:
            fp.write(json.dumps(export_record(vector, embedder), ensure_ascii=False) + "\n")
        written += len(chosen)
        tally.add(len(page), len(chosen))
        token = response.get("nextToken") or None
        if token is None:
            return written
