"""The embedded, on-disk S3 Vectors engine.

``LocalS3VectorsClient(root)`` behaves like ``boto3.client("s3vectors")`` (same methods, arguments,
responses and exceptions) but keeps everything under ``root``: SQLite for durability, an in-memory
numpy matrix per index for speed. See :mod:`.client`.
"""

from __future__ import annotations

from .client import LocalS3VectorsClient

__all__ = ["LocalS3VectorsClient"]
