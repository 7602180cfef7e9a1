"""The MemoryEnv record shared by the test fixtures (a module of its own: several conftest.py exist)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass
class MemoryEnv:
    """A configured backend for a test: how it is reached, and an operator client to inspect it."""

    kind: str
    client: Any
    bucket: str
    data_dir: Path
