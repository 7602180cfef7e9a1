"""An async chat server with long-term memory: Starlette, server-sent events, one agent per request.

Run it (offline, with the scripted model):

    S3_VECTORS_MEMORY_BACKEND=local S3_VECTOR_BUCKET_NAME=my-vector-memory MEMORY_MODEL=scripted \\
        uvicorn examples.starlette_server:app --port 8000

    curl -N localhost:8000/chat -d '{"user_id": "u1", "conversation_id": "c1", "message": "Hi, I am Ana."}'

On AWS leave ``MEMORY_MODEL`` unset (Bedrock's default model) or set ``MEMORY_MODEL=bedrock:<model id>``.
``MEMORY_MODEL=ollama:<model>`` / ``openai:<model>`` need ``pip install "strands-s3-vectors-memory[ollama]"`` /
``[openai]`` (the offline run above needs ``[local,server]``: the embedding model, starlette and uvicorn).
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
from strands_s3_vectors_memory.models import build_model

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


def _bad_request(error: str) -> Response:
    return JSONResponse({"error": error}, status_code=400)


async def chat(request: Request) -> Response:
    """POST {user_id, conversation_id, message, end_session?, tenant_id?}: the reply as server-sent events.

    A malformed request is answered 400 with a JSON error, before any agent is built.
    """
    try:
        body = await request.json()
    except ValueError:  # not JSON, or not UTF-8
        return _bad_request("the body must be a JSON object")
    if not isinstance(body, dict):
        return _bad_request("the body must be a JSON object")
    required = ("user_id", "conversation_id", "message") + (("tenant_id",) if MULTI_TENANT else ())
    for field in required:
        value = body.get(field)
        if not isinstance(value, str) or not value.strip():
            return _bad_request(f"{field} must be a non-empty string")
    end_session = body.get("end_session", False)
    if not isinstance(end_session, bool):
        return _bad_request("end_session must be true or false")
    state: dict[str, Any] = {
        "user_id": body["user_id"],
        "conversation_id": body["conversation_id"],
        "end_session": end_session,
    }
    if MULTI_TENANT:
        state["tenant_context"] = {"tenantId": body["tenant_id"]}
    message = body["message"]
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


# One agent built at import: strands, boto3, the plugin's imports and its runtime load once. Under
# ``gunicorn --preload`` that happens in the master, and every worker forked from it gets its own
# writer threads and spool claim (the plugin is fork-safe) while sharing the loaded pages.
_agent()


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    """Start-up: the objects loaded so far kept out of full garbage collections, the longest step a
    busy loop otherwise takes (~0.1 s; see the README's "Async servers")."""
    gc.collect()
    gc.freeze()
    yield


app = Starlette(routes=[Route("/chat", chat, methods=["POST"]), Route("/health", health)], lifespan=lifespan)
