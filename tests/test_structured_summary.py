"""The summary call asks for a typed result first (strands' structured output), in one call: through
Bedrock's Converse tool use (strands' own BedrockModel over a bedrock-runtime client stubbed with
botocore's Stubber, so requests and replies are checked against botocore's API model), a model that
answers in text instead is read from that answer without a second paid call, and a model without
structured output is asked with the text protocol."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.stub import Stubber
from strands.models.bedrock import BedrockModel
from strands.types.exceptions import ModelThrottledException

from memory_env import MemoryEnv
from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.archive._archiver import Archiver
from strands_s3_vectors_memory.archive._jobs import ConversationJob
from strands_s3_vectors_memory.archive._summarizer import summarize_conversation
from strands_s3_vectors_memory.archive._summary_format import FACT_PARSE_COUNTS, FACTS_PROMPT, ExtractedFact
from strands_s3_vectors_memory.index._records import MemoryScope
from strands_s3_vectors_memory.testing import ScriptedModel
from support import make_agent, say

TRANSCRIPT = "USER: I moved to Lisbon last month, I work remotely now.\nASSISTANT: Congratulations!"
CURRENT = ["Lives in Berlin", "Works as a teacher"]


def _converse(content: list[dict[str, Any]], stop: str) -> dict[str, Any]:
    return {
        "output": {"message": {"role": "assistant", "content": content}},
        "stopReason": stop,
        "usage": {"inputTokens": 900, "outputTokens": 80, "totalTokens": 980},
        "metrics": {"latencyMs": 700},
    }


@pytest.fixture
def bedrock(monkeypatch: pytest.MonkeyPatch) -> tuple[BedrockModel, Stubber, list[dict[str, Any]]]:
    """strands' BedrockModel (Converse, not streamed) over a stubbed client; the requests it sent."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    model = BedrockModel(model_id="us.anthropic.claude-sonnet-4-20250514-v1:0", region_name="us-east-1",
                         streaming=False)
    sent: list[dict[str, Any]] = []
    model.client.meta.events.register("provide-client-params.bedrock-runtime.Converse",
                                      lambda params, **_: sent.append(params))
    stubber = Stubber(model.client)
    stubber.activate()
    return model, stubber, sent


def test_bedrock_tool_use_gives_the_typed_result_in_one_call(
    bedrock: tuple[BedrockModel, Stubber, list[dict[str, Any]]],
) -> None:
    model, stubber, sent = bedrock
    tool_input = {
        "summary": "The user moved from Berlin to Lisbon and now works remotely.",
        "facts": [{"text": "Lives in Lisbon (since last month)", "supersedes": [1]},
                  {"text": "Works remotely", "supersedes": [2, 9]}],  # 9 names no shown fact: dropped
        "retracted": [],
    }
    stubber.add_response("converse", _converse(
        [{"toolUse": {"toolUseId": "tooluse-1", "name": "ConversationMemory", "input": tool_input}}], "tool_use"))
    FACT_PARSE_COUNTS.reset()
    reply = summarize_conversation(model, TRANSCRIPT, current_facts=CURRENT)
    stubber.assert_no_pending_responses()
    assert len(sent) == 1  # one paid call
    tools = sent[0]["toolConfig"]["tools"]
    assert [tool["toolSpec"]["name"] for tool in tools] == ["ConversationMemory"]
    assert "any" in sent[0]["toolConfig"]["toolChoice"]  # the tool is forced
    assert "1. Lives in Berlin" in sent[0]["messages"][-1]["content"][0]["text"]
    assert reply.path == "structured" and reply.status == "ok" and reply.dropped == 1
    assert reply.summary == "The user moved from Berlin to Lisbon and now works remotely."
    assert reply.facts == (ExtractedFact("Lives in Lisbon (since last month)", (1,)),
                           ExtractedFact("Works remotely", (2,)))
    assert FACT_PARSE_COUNTS.paths()["structured"] == 1


def test_a_text_answer_to_the_structured_call_is_read_without_a_second_call(
    bedrock: tuple[BedrockModel, Stubber, list[dict[str, Any]]],
) -> None:
    model, stubber, sent = bedrock
    text = ("**Summary:** The user moved to Lisbon.\n\n**Facts:**\n1. Lives in Lisbon (supersedes #1)\n"
            "2. Works remotely (supersedes #2)")
    stubber.add_response("converse", _converse([{"text": text}], "end_turn"))
    reply = summarize_conversation(model, TRANSCRIPT, current_facts=CURRENT)
    stubber.assert_no_pending_responses()
    assert len(sent) == 1  # the reply it paid for was read; no second call
    assert FACTS_PROMPT in sent[0]["system"][0]["text"]  # so a text answer follows the text format
    assert reply.path == "salvaged" and reply.summary == "The user moved to Lisbon."
    assert reply.facts == (ExtractedFact("Lives in Lisbon", (1,)), ExtractedFact("Works remotely", (2,)))


def test_a_tool_input_that_does_not_validate_is_still_read(
    bedrock: tuple[BedrockModel, Stubber, list[dict[str, Any]]],
) -> None:
    model, stubber, sent = bedrock
    tool_input = {"summary": "The user moved to Lisbon.", "facts": ["Lives in Lisbon (replaces 1)"], "retracted": 2}
    stubber.add_response("converse", _converse(
        [{"toolUse": {"toolUseId": "tooluse-1", "name": "ConversationMemory", "input": tool_input}}], "tool_use"))
    reply = summarize_conversation(model, TRANSCRIPT, current_facts=CURRENT)
    assert len(sent) == 1 and reply.path == "salvaged"
    assert reply.facts == (ExtractedFact("Lives in Lisbon", (1,)),) and reply.retracted == (2,)


def test_a_bedrock_model_without_tool_use_is_asked_in_text_and_not_asked_for_tools_again(
    bedrock: tuple[BedrockModel, Stubber, list[dict[str, Any]]],
) -> None:
    model, stubber, sent = bedrock
    text = "The user moved to Lisbon.\nFACTS:\nFACT: Lives in Lisbon\nSUPERSEDES: 1"
    stubber.add_client_error("converse", "ValidationException", "This model doesn't support tool use.", 400)
    stubber.add_response("converse", _converse([{"text": text}], "end_turn"))
    stubber.add_response("converse", _converse([{"text": text}], "end_turn"))
    first = summarize_conversation(model, TRANSCRIPT, current_facts=CURRENT)
    second = summarize_conversation(model, TRANSCRIPT, current_facts=CURRENT)
    stubber.assert_no_pending_responses()
    assert ["toolConfig" in params for params in sent] == [True, False, False]
    assert (first.path, second.path) == ("text", "text") and first.facts == (ExtractedFact("Lives in Lisbon", (1,)),)


def test_a_model_without_structured_output_is_asked_in_text_and_remembered() -> None:
    model = ScriptedModel()
    first = summarize_conversation(model, TRANSCRIPT, current_facts=CURRENT)
    second = summarize_conversation(model, TRANSCRIPT, current_facts=CURRENT)
    assert (first.path, second.path) == ("text", "text") and len(model.requests) == 2  # one call each
    assert all(FACTS_PROMPT in (prompt or "") for prompt in model.system_prompts)


def test_a_scripted_model_with_structured_output_is_asked_for_the_typed_result() -> None:
    model = ScriptedModel(structured=True)
    reply = summarize_conversation(model, "USER: I live in Lisbon now.", current_facts=["Lives in Berlin"])
    assert len(model.requests) == 1 and model.requests[0].tool_names == ["ConversationMemory"]
    assert reply.path == "structured" and reply.facts == (ExtractedFact("Lives in Lisbon now", (1,)),)


def test_throttling_is_not_a_reason_to_fall_back(
    bedrock: tuple[BedrockModel, Stubber, list[dict[str, Any]]],
) -> None:
    model, stubber, sent = bedrock
    stubber.add_client_error("converse", "ThrottlingException", "Too many requests", 429)
    with pytest.raises(ModelThrottledException):
        summarize_conversation(model, TRANSCRIPT, current_facts=CURRENT)
    assert len(sent) == 1  # the writer retries the job; no text call was made meanwhile


def test_stats_count_summaries_by_how_they_were_written(memory_env: MemoryEnv) -> None:
    store = S3VectorMemory()
    agent, plugin, _ = make_agent(store, ScriptedModel(structured=True))
    say(agent, "I live in Lisbon.", "alice", "c1", end=True)
    assert plugin.flush(60)
    model_text = ScriptedModel()  # the same store, a model without structured output: the text protocol
    Archiver(store, lambda: model_text).archive(ConversationJob(
        MemoryScope("bob", "assistant"), "c2", "USER: I live in Porto.", started_at=1.0, ended_at=2.0))
    Archiver(store, lambda: None).archive(ConversationJob(  # no model at all: the user's own words
        MemoryScope("carol", "assistant"), "c3", "USER: I live in Faro.", started_at=1.0, ended_at=2.0))
    assert store.stats().summaries == {"structured": 1, "text": 1, "extractive": 1}


def test_the_path_is_checkpointed_with_the_summary() -> None:
    job = ConversationJob(MemoryScope("alice"), "c1", "USER: hi", started_at=1.0, ended_at=2.0, summary="S.",
                          summary_path="structured")
    assert ConversationJob.from_payload(job.to_payload()).summary_path == "structured"
    assert ConversationJob.from_payload({**job.to_payload(), "summary_path": None}).summary_path is None
