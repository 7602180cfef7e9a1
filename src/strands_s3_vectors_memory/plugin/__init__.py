"""The strands plugin: long-term memory wired into an agent through hooks.

* :mod:`._plugin`: :class:`S3VectorMemoryPlugin`, the hooks (first turn, later turns, end of conversation).
* :mod:`._settings`: the plugin's settings groups (``RetrievalSettings``, ``WritingSettings``, and the
  archive's ``SummarySettings``), their defaults and checks.
* :mod:`._retrieval`, :mod:`._prompt`: what the first turn remembers, and the system prompt it goes into.
* :mod:`._book`, :mod:`._history`: the open conversations of a process, and whose messages an agent holds.
* :mod:`._runtime`: one runtime per process and spool: the writer, the archiver and the conversation book.
"""

from __future__ import annotations

from ._plugin import S3VectorMemoryPlugin
from ._runtime import replay
from ._settings import RetrievalSettings, SummarySettings, WritingSettings

__all__ = [
    "RetrievalSettings",
    "S3VectorMemoryPlugin",
    "SummarySettings",
    "WritingSettings",
    "replay",
]
