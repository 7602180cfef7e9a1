"""Concurrent agents on one store: every summary stored exactly once, no deadlock, bounded memory.

Runs the harness of ``bench/load_test.py`` at a reduced size (10 agents x 5 conversations); the
full 50 x 20 run and its throughput are in ``docs/benchmarks.md``.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from reliability_support import SeededRandomEmbedder

import load_test as harness  # bench/ is on the test path (pyproject: pythonpath)

#: RSS growth allowed for 50 conversations (observed: 10-30 MB, model already loaded before measuring).
RSS_GROWTH_BOUND_MB = 120.0


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["embedded", "endpoint"])
def test_concurrent_agents_store_every_summary_exactly_once(backend: str, tmp_path: Path) -> None:
    config = harness.LoadConfig(agents=10, conversations=5, backend=backend, timeout=60.0)
    # The embedded default runs the real offline model; the endpoint run uses the hash embedder so the
    # HTTP path, not the model lock, is what is under load.
    embedder = None if backend == "embedded" else SeededRandomEmbedder()
    result = harness.run_load(config, tmp_path, embedder=embedder)
    assert not result.errors, result.errors
    assert not result.deadlocked, "a thread or writer did not finish within the timeout"
    assert result.lost == 0 and result.writer_failures == 0
    assert result.stored_summaries == result.requested == 50
    assert result.unique_summary_keys == 50
    assert result.summary_puts == 50 and result.max_puts_per_summary == 1, "a summary was written twice"
    growth = result.rss_after_mb - result.rss_before_mb
    assert growth < RSS_GROWTH_BOUND_MB, f"RSS grew by {growth:.0f} MB over 50 conversations"
    assert result.ok
