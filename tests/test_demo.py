"""The offline demo shows stored, retrieved and injected memories, and says it uses a scripted model."""

from __future__ import annotations

import io
from pathlib import Path

from rich.console import Console

from strands_s3_vectors_memory.demo import run_demo


def test_demo_runs_offline_and_keeps_users_apart(local_env: Path, tmp_path: Path) -> None:
    buffer = io.StringIO()
    result = run_demo(data_dir=tmp_path / "demo", console=Console(file=buffer, width=120))
    text = buffer.getvalue()
    assert "scripted model" in text
    prompts = result["first_prompts"]
    assert "<memories>" not in prompts["alice-1"]  # nothing stored yet
    final = prompts["alice-3"]
    assert "vegetarian" in final and "peanuts" in final  # Alice's earlier conversations
    assert "marathon" not in final  # never Bob's
    assert "marathon" not in prompts["bob-1"] and "vegetarian" not in prompts["bob-1"]
    assert "stored for bob / bob-1" in text
