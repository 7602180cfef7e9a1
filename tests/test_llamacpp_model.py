"""The in-process llama.cpp model adapter, with a fake ``Llama`` (llama-cpp-python is not needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from strands import Agent

from strands_s3_vectors_memory.demo import build_model
from strands_s3_vectors_memory.errors import ConfigurationError
from strands_s3_vectors_memory.models import LlamaCppModel
from strands_s3_vectors_memory.models.llamacpp import to_chat_messages
from strands_s3_vectors_memory.summarizer import summarize_conversation


class FakeLlama:
    """Answers like ``llama_cpp.Llama.create_chat_completion`` and records what it was given."""

    def __init__(self, reply: str, finish_reason: str = "stop") -> None:
        self.reply = reply
        self.finish_reason = finish_reason
        self.calls: list[dict[str, Any]] = []

    def create_chat_completion(
        self, messages: list[dict[str, str]], *, max_tokens: int, temperature: float, stream: bool = False
    ) -> Mapping[str, Any]:
        assert all(isinstance(m["content"], str) for m in messages), "llama.cpp templates need string content"
        self.calls.append({"messages": messages, "max_tokens": max_tokens, "temperature": temperature})
        return {
            "choices": [{"message": {"role": "assistant", "content": self.reply}, "finish_reason": self.finish_reason}],
            "usage": {"prompt_tokens": 42, "completion_tokens": 7, "total_tokens": 49},
        }


def test_messages_become_plain_strings_with_the_system_prompt_first() -> None:
    chat = to_chat_messages(
        [{"role": "user", "content": [{"text": "Hi"}, {"text": "there"}]},
         {"role": "assistant", "content": [{"toolUse": {"toolUseId": "1", "name": "x", "input": {}}}]}],
        "Be brief.",
    )
    assert chat == [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi\nthere"},
                    {"role": "assistant", "content": "[no text]"}]


def test_an_agent_chats_through_the_adapter_and_gets_its_usage() -> None:
    llama = FakeLlama("Hello Alice!")
    agent = Agent(model=LlamaCppModel(llama=llama, max_tokens=64), callback_handler=None, system_prompt="Be nice.")
    result = agent("Hi, I'm Alice")
    assert str(result).strip() == "Hello Alice!"
    assert llama.calls[0]["messages"][0] == {"role": "system", "content": "Be nice."}
    assert llama.calls[0]["max_tokens"] == 64 and llama.calls[0]["temperature"] == 0.0
    usage = result.metrics.accumulated_usage
    assert usage["inputTokens"] == 42 and usage["outputTokens"] == 7


def test_a_reply_cut_at_max_tokens_still_ends_the_turn() -> None:
    agent = Agent(model=LlamaCppModel(llama=FakeLlama("A long answer that", "length")), callback_handler=None)
    assert str(agent("Tell me everything")).strip() == "A long answer that"


def test_the_summary_call_runs_through_the_adapter() -> None:
    llama = FakeLlama("The user moved to Paris.\nFACTS:\nFACT: Lives in Paris\nSUPERSEDES: 1")
    model = LlamaCppModel(llama=llama)
    reply = summarize_conversation(model, "USER: I moved to Paris.", current_facts=["Lives in Rome"])
    assert reply.summary == "The user moved to Paris." and reply.facts[0].supersedes == (1,)
    assert "<current_facts>\n1. Lives in Rome\n</current_facts>" in llama.calls[0]["messages"][-1]["content"]


def test_a_missing_model_file_is_a_clear_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError):
        LlamaCppModel(tmp_path / "missing.gguf")
    with pytest.raises(ConfigurationError):
        LlamaCppModel()
    with pytest.raises(ConfigurationError):
        build_model(f"llamacpp:{tmp_path / 'missing.gguf'}")
    with pytest.raises(ValueError, match="llamacpp:PATH"):
        build_model("nonsense:thing")
