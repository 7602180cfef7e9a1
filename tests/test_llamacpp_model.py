"""The in-process llama.cpp model adapter, with a fake ``Llama`` (llama-cpp-python is not needed)."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from strands import Agent

from strands_s3_vectors_memory.archive._summarizer import summarize_conversation
from strands_s3_vectors_memory.archive._summary_format import ConversationMemory, ExtractedFact
from strands_s3_vectors_memory.errors import ConfigurationError
from strands_s3_vectors_memory.models import LlamaCppModel, build_model
from strands_s3_vectors_memory.models._llamacpp import DEFAULT_STOP, to_chat_messages


class FakeLlama:
    """Answers like ``llama_cpp.Llama.create_chat_completion`` and records what it was given."""

    def __init__(self, reply: str, finish_reason: str = "stop", json_reply: str | None = None) -> None:
        self.reply = reply
        self.json_reply = json_reply  # the answer under a response_format grammar
        self.finish_reason = finish_reason
        self.calls: list[dict[str, Any]] = []

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
    ) -> Mapping[str, Any]:
        assert all(isinstance(m["content"], str) for m in messages), "llama.cpp templates need string content"
        self.calls.append({"messages": messages, "max_tokens": max_tokens, "temperature": temperature, "top_p": top_p,
                           "repeat_penalty": repeat_penalty, "stop": stop, "seed": seed,
                           "response_format": response_format})
        if response_format is not None and self.json_reply is None:
            raise ValueError("this fake has no JSON answer")
        reply = self.reply if response_format is None else self.json_reply
        return {
            "choices": [{"message": {"role": "assistant", "content": reply}, "finish_reason": self.finish_reason}],
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
    assert llama.calls[0]["max_tokens"] == 64
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


def test_a_small_model_samples_with_a_repeat_penalty_top_p_and_stops() -> None:
    llama = FakeLlama("Hello!")
    Agent(model=LlamaCppModel(llama=llama), callback_handler=None)("Hi")
    call = llama.calls[0]
    assert call["repeat_penalty"] > 1.0 and 0 < call["top_p"] < 1.0 and call["temperature"] < 0.5
    assert "</transcript>" in call["stop"] and "\nUSER:" in call["stop"] and call["stop"] == list(DEFAULT_STOP)
    Agent(model=LlamaCppModel(llama=llama), callback_handler=None)("Hi")
    assert llama.calls[1]["seed"] == call["seed"]  # the same answer to the same request


def test_the_summary_call_gets_json_sampled_under_the_result_schema() -> None:
    json_reply = '{"summary": "The user moved to Paris.", "facts": [{"text": "Lives in Paris", "supersedes": [1]}]}'
    llama = FakeLlama("unused", json_reply=json_reply)
    reply = summarize_conversation(LlamaCppModel(llama=llama), "USER: I moved to Paris.", current_facts=["Lives in X"])
    assert len(llama.calls) == 1 and reply.path == "structured"
    schema = ConversationMemory.model_json_schema()
    assert llama.calls[0]["response_format"] == {"type": "json_object", "schema": schema}
    assert llama.calls[0]["stop"] == []  # a stop string must not cut the JSON
    assert reply.summary == "The user moved to Paris." and reply.facts == (ExtractedFact("Lives in Paris", (1,)),)


@pytest.mark.parametrize("summary", ["The user moved to Paris.", "The user\nmoved to Paris."])  # a raw line break
def test_json_cut_at_max_tokens_keeps_its_summary_without_a_second_call(summary: str) -> None:
    llama = FakeLlama("unused", "length", json_reply='{"summary": "' + summary + '", "facts": [{"text": "Li')
    reply = summarize_conversation(LlamaCppModel(llama=llama), "USER: I moved to Paris.", current_facts=["Lives in X"])
    assert len(llama.calls) == 1 and reply.path == "salvaged"
    assert reply.summary == "The user moved to Paris." and reply.facts == () and reply.dropped == 1


def test_json_with_raw_line_breaks_in_its_strings_is_still_read() -> None:
    llama = FakeLlama("unused", json_reply='{"summary": "The user\nmoved.", "facts": [{"text": "Lives\nin Paris"}]}')
    reply = summarize_conversation(LlamaCppModel(llama=llama), "USER: I moved to Paris.")
    assert reply.path == "structured" and reply.summary == "The user moved."
    assert reply.facts == (ExtractedFact("Lives in Paris"),)
