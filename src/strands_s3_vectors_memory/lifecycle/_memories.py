"""One user's memories: listed page by page, or fetched and deleted by key.

A key alone never reveals or removes another user's vector: a vector is the user's only if its own
metadata says so, and another user's key reads as a missing one.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

from ..index import IndexTarget, Memory, MemoryScope, delete_keys, list_page
from ._cursor import ListCursor
from ._results import MemoryPage
from ._scan import Vector, belongs, is_expired
from ._target import IndexLocator, existing_target
from ._transfer import MAX_KEY_BYTES


def list_memories(
    locate: IndexLocator,
    scope: MemoryScope,
    *,
    page_size: int = 100,
    next_token: str | None = None,
    include_expired: bool = False,
) -> MemoryPage:
    """One page of ``scope``'s memories in storage order, and the token of the next one.

    Pages are cut inside ``ListVectors`` pages when needed, so every page but the last holds
    exactly ``page_size`` memories (see :class:`ListCursor`).
    """
    if not 1 <= page_size <= 1000:
        raise ValueError(f"page_size must be between 1 and 1000, got {page_size}")
    cursor = ListCursor.decode(next_token) if next_token else ListCursor(None)
    target = existing_target(locate)
    if target is None:
        return MemoryPage([], None)
    now = time.time()

    def wanted(vector: Vector) -> bool:
        metadata = vector.get("metadata") or {}
        return belongs(metadata, scope) and (include_expired or not is_expired(metadata, now))

    memories: list[Memory] = []
    while True:
        response = list_page(target, cursor.token)
        vectors = list(response.get("vectors") or [])
        keys = [str(v["key"]) for v in vectors]
        following = response.get("nextToken") or None
        for position in range(cursor.resume_position(keys), len(vectors)):
            if not wanted(vectors[position]):
                continue
            memories.append(Memory.from_vector(vectors[position]))
            if len(memories) < page_size:
                continue
            rest = vectors[position + 1 :]
            if any(wanted(v) for v in rest):
                resume = ListCursor(cursor.token, keys[position + 1], position + 1)
                return MemoryPage(memories, resume.encode())
            return MemoryPage(memories, ListCursor(following).encode() if following else None)
        if following is None:
            return MemoryPage(memories, None)
        cursor = ListCursor(following)


def iter_memories(
    locate: IndexLocator, scope: MemoryScope, *, page_size: int = 100, include_expired: bool = False
) -> Iterator[Memory]:
    """Every memory of ``scope``, lazily, page by page (each page locates the index afresh)."""
    token: str | None = None
    while True:
        page = list_memories(
            locate, scope, page_size=page_size, next_token=token, include_expired=include_expired
        )
        yield from page.memories
        if page.next_token is None:
            return
        token = page.next_token


def get_memory(locate: IndexLocator, scope: MemoryScope, key: str) -> Memory | None:
    """The memory under ``key`` if it is ``scope``'s and has not expired, else ``None``."""
    found = _owned_vector(locate, scope, key)
    if found is None:
        return None
    memory = Memory.from_vector(found[1])
    return None if memory.is_expired() else memory


def delete_memory(locate: IndexLocator, scope: MemoryScope, key: str) -> bool:
    """Delete the memory under ``key`` if it is ``scope``'s (expired or not); ``False`` if there was none."""
    found = _owned_vector(locate, scope, key)
    if found is None:
        return False
    delete_keys(found[0], [key])
    return True


def _owned_vector(locate: IndexLocator, scope: MemoryScope, key: str) -> tuple[IndexTarget, Vector] | None:
    if not isinstance(key, str) or not key or len(key.encode("utf-8")) > MAX_KEY_BYTES:
        raise ValueError(f"key must be a non-empty string of at most {MAX_KEY_BYTES} bytes")
    target = existing_target(locate)
    if target is None:
        return None
    response = target.client.get_vectors(
        vectorBucketName=target.bucket_name, indexName=target.index_name, keys=[key], returnMetadata=True
    )
    for vector in response.get("vectors") or []:
        if vector.get("key") == key and belongs(vector.get("metadata") or {}, scope):
            return target, vector
    return None
