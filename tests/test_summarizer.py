"""Transcript rendering, summary length rules and plain-text output."""

from __future__ import annotations

from typing import Any

import pytest

from strands_s3_vectors_memory.archive._details import conversation_details
from strands_s3_vectors_memory.archive._summarizer import extractive_summary, summarize
from strands_s3_vectors_memory.archive._transcript import render_transcript
from strands_s3_vectors_memory.testing import ScriptedModel
from strands_s3_vectors_memory.text import has_text_content, to_plain_text, truncate_at_sentence, truncate_utf8


def test_render_describes_odd_blocks_and_skips_reasoning() -> None:
    messages: list[dict[str, Any]] = [
        {"role": "user", "content": [{"text": "Look at this"}, {"image": {"format": "png", "source": {"bytes": b""}}},
                                     {"document": {"name": "plan.pdf", "format": "pdf", "source": {"bytes": b""}}}]},
        {"role": "assistant", "content": [{"reasoningContent": {"reasoningText": {"text": "secret thoughts"}}},
                                          {"toolUse": {"toolUseId": "1", "name": "calculator", "input": {}}}]},
        {"role": "user", "content": [{"toolResult": {"toolUseId": "1", "content": [{"text": "42"}]}}]},
        {"role": "assistant", "content": "plain string content"},
        {"role": "user", "content": None},
        "not a message",
    ]
    text = render_transcript(messages)  # type: ignore[arg-type]
    assert "USER: Look at this [image (png)] [document plan.pdf]" in text
    assert "[used tool calculator]" in text and "[tool result: 42]" in text
    assert "secret thoughts" not in text
    assert "ASSISTANT: plain string content" in text


def test_render_bounds_huge_transcripts_and_cleans_surrogates() -> None:
    messages = [{"role": "user", "content": [{"text": "a" * 5_000_000 + "\ud800"}]}]
    text = render_transcript(messages, max_chars=10_000)
    assert len(text) < 10_200 and "characters omitted" in text
    text.encode("utf-8")  # no lone surrogates survive


def test_truncate_at_sentence_and_utf8() -> None:
    text = "One. Two is longer. " * 200
    cut = truncate_at_sentence(text, 2000)
    assert len(cut) <= 2000 and cut.endswith(".")
    assert truncate_utf8("é" * 10, 5) == "éé"  # never splits a 2-byte character
    assert len(truncate_utf8("日本語" * 100, 100).encode()) <= 100


def test_plain_text_strips_markdown() -> None:
    md = "# Summary\n- **Likes** tea\n- Lives in `Porto`\n1. Has a dog"
    assert to_plain_text(md) == "Summary Likes tea Lives in Porto Has a dog"


def test_summarize_uses_the_model_and_falls_back_when_it_says_nothing() -> None:
    transcript = "USER: I collect stamps\nASSISTANT: nice"
    assert summarize(ScriptedModel(replies=["## The user collects **stamps**."]), transcript) == (
        "The user collects stamps.")
    assert summarize(ScriptedModel(replies=[""]), transcript) == extractive_summary(transcript)
    assert summarize(ScriptedModel(), "   ") == ""


def test_summarize_propagates_model_errors_for_the_writer_to_retry() -> None:
    def boom(messages: Any, system_prompt: str | None) -> Any:
        raise RuntimeError("model down")

    with pytest.raises(RuntimeError, match="model down"):
        summarize(ScriptedModel(responder=boom), "USER: hi")


def test_details_keep_what_the_user_said_in_bounded_chunks() -> None:
    transcript = "\n".join(["USER: " + "word " * 400, "ASSISTANT: reply, any more?", "USER: short fact"])
    chunks = conversation_details(transcript)
    assert chunks and all(len(c) <= 600 for c in chunks)
    assert "short fact" in chunks[-1]
    # one record per user turn: the assistant's reply is context for the next user turn, never a record
    assert all(c.splitlines()[-1].startswith("USER: ") for c in chunks)
    assert chunks[-1].splitlines() == ["ASSISTANT: reply, any more?", "USER: short fact"]


def test_has_text_content() -> None:
    assert not has_text_content([{"role": "assistant", "content": [{"toolUse": {"name": "x"}}]}])
    assert has_text_content([{"role": "user", "content": [{"text": " hi "}]}])
