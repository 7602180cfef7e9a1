"""The offline demo shows stored, retrieved and injected memories, and says it uses a scripted model."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from typer.testing import CliRunner

from strands_s3_vectors_memory.cli import app
from strands_s3_vectors_memory.cli._demo import SCRIPT, run_demo


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


def _refusing_store(data_dir: Path) -> Any:
    """The demo's store on the embedded engine, whose PutVectors AWS refuses (a non-retryable 403)."""
    from botocore.exceptions import ClientError

    from strands_s3_vectors_memory import S3VectorMemory
    from strands_s3_vectors_memory.index._clients import local_client

    engine = local_client(data_dir)

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            if name == "put_vectors":
                def refuse(**_params: Any) -> Any:
                    raise ClientError({"Error": {"Code": "AccessDeniedException", "Message": "no"},
                                       "ResponseMetadata": {"HTTPStatusCode": 403}}, "PutVectors")
                return refuse
            return getattr(engine, name)

    return S3VectorMemory(bucket_name="demo-memory", backend="local", data_dir=data_dir, client=Refusing())


def test_demo_says_and_exits_non_zero_when_its_writes_failed(
    local_env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    buffer = io.StringIO()
    result = run_demo(data_dir=tmp_path / "demo", console=Console(file=buffer, width=160),
                      store=_refusing_store(tmp_path / "demo"))
    ended = len(SCRIPT)
    assert result["unstored"] == ended and f"{ended} conversation(s) could not be stored" in buffer.getvalue()

    import strands_s3_vectors_memory.cli._demo as demo_module

    monkeypatch.setattr(demo_module, "S3VectorMemory", lambda **kwargs: _refusing_store(kwargs["data_dir"]))
    failed = CliRunner().invoke(app, ["demo", "--data-dir", str(tmp_path / "cli")])
    assert failed.exit_code == 1, failed.output
    assert "still running" not in failed.output

