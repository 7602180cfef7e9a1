"""The offline demo shows stored, retrieved and injected memories, and says it uses a scripted model."""

from __future__ import annotations

import io
import re
from pathlib import Path

from rich.console import Console

from strands_s3_vectors_memory.demo import run_demo


def _current_facts(prompt: str) -> list[str]:
    return re.findall(r'<fact stored_at="[^"]*">(.*?)</fact>', prompt)


def test_demo_runs_offline_and_keeps_users_apart(local_env: Path, tmp_path: Path) -> None:
    buffer = io.StringIO()
    result = run_demo(data_dir=tmp_path / "demo", console=Console(file=buffer, width=160))
    text = buffer.getvalue()
    assert "scripted model" in text
    prompts = result["first_prompts"]
    assert "<memories>" not in prompts["alice-1"]  # nothing stored yet
    final = prompts["alice-4"]
    assert "vegetarian" in final and "peanuts" in final  # Alice's earlier conversations
    assert "marathon" not in final  # never Bob's
    assert "marathon" not in prompts["bob-1"] and "vegetarian" not in prompts["bob-1"]
    assert "stored for bob / bob-1" in text


def test_demo_shows_a_fact_updated_across_conversations(local_env: Path, tmp_path: Path) -> None:
    buffer = io.StringIO()
    result = run_demo(data_dir=tmp_path / "demo", console=Console(file=buffer, width=200))
    prompts = result["first_prompts"]
    before = _current_facts(prompts["alice-3"])  # Alice still lives in Berlin when she starts alice-3
    assert any("Berlin" in fact for fact in before) and not any("Paris" in fact for fact in before)
    after = _current_facts(prompts["alice-4"])  # she said she moved: Paris is current, Berlin is not
    assert any("Paris" in fact for fact in after)
    assert not any("Berlin" in fact for fact in after)
    assert final_block_lists_facts_first(prompts["alice-4"])
    text = buffer.getvalue()
    superseded = [line for line in text.splitlines() if "superseded" in line and "Lives in Berlin" in line]
    assert superseded, "the demo's facts table shows the Berlin fact as superseded"


def final_block_lists_facts_first(prompt: str) -> bool:
    block = prompt[prompt.index("<memories>"):]
    return block.index("<fact ") < block.index("<memory ")
