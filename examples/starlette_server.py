"""An async chat server with long-term memory: Starlette, server-sent events, one agent per request.

Run it (offline, with the scripted model):

    S3_VECTORS_MEMORY_BACKEND=local S3_VECTOR_BUCKET_NAME=my-vector-memory MEMORY_MODEL=scripted \\
        uvicorn examples.starlette_server:app --port 8000

    curl -N localhost:8000/chat -d '{"user_id": "u1", "conversation_id": "c1", "message": "Hi, I am Ana."}'

On AWS leave ``MEMORY_MODEL`` unset (Bedrock's default model) or set ``MEMORY_MODEL=bedrock:<model id>``.
``MEMORY_MODEL=ollama:<model>`` / ``openai:<model>`` need ``pip install "strands-s3-vectors-memory[ollama]"`` /
``[openai]`` (the offline run above needs ``[local]``, the embedding model).
Each request builds its own ``Agent`` and plugin: agents are cheap, and strands refuses concurrent
calls on one agent. The store is built once. The plugins of all requests share one background writer
and one conversation book per process, so a conversation's turns may arrive in different requests,
and a returning user's first turn sees the memory another request was still storing.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import AsyncIterator
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from strands import Agent

from strands_s3_vectors_memory import (
    InvalidInvocationStateError,
    MultiTenantS3VectorMemory,
    S3VectorMemory,
    S3VectorMemoryPlugin,
)
from strands_s3_vectors_memory.demo import build_model

BASE_PROMPT = """You are a helpful assistant.
{memory_context}
Use prior context naturally in your responses."""

MULTI_TENANT = os.environ.get("MEMORY_MULTI_TENANT") == "1"
store: S3VectorMemory = MultiTenantS3VectorMemory() if MULTI_TENANT else S3VectorMemory()


def _agent() -> Agent:
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=BASE_PROMPT)
    model, _ = build_model(os.environ.get("MEMORY_MODEL"))
    return Agent(model=model, name="assistant", plugins=[plugin], system_prompt=BASE_PROMPT, callback_handler=None)


def _sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data)}\n\n"


async def chat(request: Request) -> Response:
    """POST {user_id, conversation_id, message, end_session?, tenant_id?}: the reply as server-sent events."""
    body = await request.json()
    state: dict[str, Any] = {
        "user_id": body.get("user_id"),
        "conversation_id": body.get("conversation_id"),
        "end_session": bool(body.get("end_session", False)),
    }
    if MULTI_TENANT:
        state["tenant_context"] = {"tenantId": body.get("tenant_id")}
    message = body.get("message")
    if not isinstance(message, str) or not message.strip():
        return JSONResponse({"error": "message must be a non-empty string"}, status_code=400)
    agent = _agent()

    async def events() -> AsyncIterator[str]:
        try:
            async for event in agent.stream_async(message, invocation_state=state):
                if "data" in event:
                    yield _sse("delta", {"text": event["data"]})
                elif "result" in event:
                    yield _sse("done", {"stop_reason": str(event["result"].stop_reason)})
        except InvalidInvocationStateError as exc:  # a bad user id, conversation id or tenant
            yield _sse("error", {"error": str(exc)})

    return StreamingResponse(events(), media_type="text/event-stream")


async def health(_request: Request) -> Response:
    return JSONResponse({"ok": True})


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    """Start-up: one agent built (strands, boto3 and the plugin's imports load), then those objects
    kept out of full garbage collections, the longest step a busy loop otherwise takes (~0.1 s; see
    the README's "Async servers")."""
    _agent()
    gc.collect()
    gc.freeze()
    yield


app = Starlette(routes=[Route("/chat", chat, methods=["POST"]), Route("/health", health)], lifespan=lifespan)
