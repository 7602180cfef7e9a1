"""Long-term semantic memory for Strands Agents, backed by Amazon S3 Vectors.

Public surface::

    from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin        # single-tenant
    from strands_s3_vectors_memory import MultiTenantS3VectorMemory, TokenVendingMachine  # multi-tenant
    from strands_s3_vectors_memory import MemoryManagerStore  # for strands' MemoryManager
    from strands_s3_vectors_memory import RetrievalSettings, WritingSettings, SummarySettings  # plugin settings

Set ``S3_VECTORS_MEMORY_BACKEND=local`` to run everything offline on the embedded engine.
"""

from __future__ import annotations

from .config import Backend
from .errors import (
    ConfigurationError,
    DimensionMismatchError,
    EmbeddingError,
    InvalidIdentityError,
    InvalidInvocationStateError,
    IsolationError,
    S3VectorMemoryError,
)
from .index import Memory, MemoryScope
from .lifecycle import ForgetIncompleteError, ForgetReport, ImportReport, IndexStats, MemoryPage
from .plugin import RetrievalSettings, S3VectorMemoryPlugin, SummarySettings, WritingSettings
from .store import MemoryManagerStore, MultiTenantS3VectorMemory, S3VectorMemory
from .tenancy import TokenVendingMachine

__version__ = "1.0.0.dev0"

#: Names kept for code written against earlier 1.0 previews.
_DEPRECATED = {"S3VectorsMemoryStore": "MemoryManagerStore"}


def __getattr__(name: str) -> object:
    if name in _DEPRECATED:
        import warnings

        warnings.warn(
            f"{name} is deprecated: it is called {_DEPRECATED[name]} now (one letter from S3VectorMemory "
            "was too easy to confuse)",
            DeprecationWarning,
            stacklevel=2,
        )
        return globals()[_DEPRECATED[name]]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

__all__ = [
    "Backend",
    "ConfigurationError",
    "DimensionMismatchError",
    "EmbeddingError",
    "ForgetIncompleteError",
    "ForgetReport",
    "ImportReport",
    "IndexStats",
    "InvalidIdentityError",
    "InvalidInvocationStateError",
    "IsolationError",
    "Memory",
    "MemoryManagerStore",
    "MemoryPage",
    "MemoryScope",
    "MultiTenantS3VectorMemory",
    "RetrievalSettings",
    "S3VectorMemory",
    "S3VectorMemoryError",
    "S3VectorMemoryPlugin",
    "SummarySettings",
    "TokenVendingMachine",
    "WritingSettings",
    "__version__",
]
