"""Helpers shared by the test suites: agents with the memory plugin, prompts the model saw, stored vectors.

``tests/`` (and ``bench/``) are on the test path (``pythonpath`` in pyproject.toml), so any test
imports ``from support import ...``.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError
from strands import Agent

from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin
from strands_s3_vectors_memory.summary_format import parse_summary_request
from strands_s3_vectors_memory.testing import ModelRequest, ScriptedModel
from strands_s3_vectors_memory.text import message_text

__all__ = [
    "PROMPT",
    "all_vectors",
    "asks_for_summary",
    "chat_prompts",
    "chat_requests",
    "is_summary_request",
    "make_agent",
    "say",
]

PROMPT = "You are helpful.\n{memory_context}\nBe brief."


def make_agent(
    store: S3VectorMemory | None = None,
    model: ScriptedModel | None = None,
    name: str = "assistant",
    prompt: Any = PROMPT,
    **plugin_kwargs: Any,
) -> tuple[Agent, S3VectorMemoryPlugin, ScriptedModel]:
    """An agent with the memory plugin and a scripted model (the store from the environment by default)."""
    store = store or S3VectorMemory()
    model = model or ScriptedModel()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=prompt, **plugin_kwargs)
    agent = Agent(model=model, name=name, plugins=[plugin], system_prompt=prompt, callback_handler=None)
    return agent, plugin, model


def say(agent: Agent, text: str, user: str, conv: str, end: bool = False, **extra: Any) -> Any:
    """One turn of ``user`` in conversation ``conv`` (``extra`` goes into invocation_state)."""
    return agent(text, invocation_state={"user_id": user, "conversation_id": conv, "end_session": end, **extra})


def asks_for_summary(messages: Any) -> bool:
    """Whether these model input messages ask for a conversation summary (recognised by their shape).

    For scripted responders: ``lambda messages, system_prompt: ... if asks_for_summary(messages)``.
    """
    return bool(messages) and parse_summary_request(message_text(messages[-1], fold=False)) is not None


def is_summary_request(request: ModelRequest) -> bool:
    """Whether a recorded model request asked to summarize a conversation."""
    return asks_for_summary(request.messages)


def chat_requests(model: ScriptedModel) -> list[ModelRequest]:
    """The model's requests that answered users (summary requests left out), oldest first."""
    return [request for request in list(model.requests) if not is_summary_request(request)]


def chat_prompts(model: ScriptedModel) -> list[str]:
    """System prompts of the chat requests, oldest first."""
    return [request.system_prompt or "" for request in chat_requests(model)]


def all_vectors(client: Any, bucket: str = "my-vector-memory", index: str = "memory") -> list[dict[str, Any]]:
    """Every vector of an index, with metadata (paging through ``list_vectors``).

    An index (or bucket) that was never created holds nothing: ``[]``, so "nothing was stored"
    checks hold whether validation failed before or after the index was created on first use.
    """
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"vectorBucketName": bucket, "indexName": index, "returnMetadata": True}
        if token:
            kwargs["nextToken"] = token
        try:
            page = client.list_vectors(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NotFoundException" and not out:
                return []
            raise
        out.extend(page["vectors"])
        token = page.get("nextToken")
        if not token:
            return out
