"""AWS Lambda: an agent with long-term memory whose memories are stored before the handler returns.

Lambda freezes the execution environment as soon as the handler returns, and may never thaw it: a
background thread would never finish storing, and ``/tmp`` goes with the environment. So the plugin
runs with ``write_mode="inline"``: an ending turn (``end_session``) returns once the conversation is
stored (or, after ``inline_timeout``, left in the spool: put the spool on S3 with
``S3_VECTORS_MEMORY_SPOOL=s3://bucket/prefix`` so another environment or ``s3-vectors-memory replay``
picks it up).

Event: ``{"user_id": ..., "conversation_id": ..., "message": ..., "end_session": bool,
"tenant_id": optional}``. Conversations whose users never send ``end_session`` can be stored at the end
of every request with ``"end_open": true`` (each request's turns are merged into the conversation's
stored summary, at the cost of one summary call per request).
"""

from __future__ import annotations

import os
from typing import Any

from strands import Agent
from strands.models import BedrockModel

from strands_s3_vectors_memory import MultiTenantS3VectorMemory, S3VectorMemory, S3VectorMemoryPlugin

BASE_PROMPT = """You are a helpful assistant.
{memory_context}
Use prior context naturally in your responses."""

# Built once per execution environment (the cold start), reused by warm invocations.
store = MultiTenantS3VectorMemory() if os.environ.get("MEMORY_MULTI_TENANT") == "1" else S3VectorMemory()


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """One turn of one conversation; returns the reply once any ended conversation is stored."""
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else 60.0
    plugin = S3VectorMemoryPlugin(
        store=store,
        base_prompt=BASE_PROMPT,
        write_mode="inline",
        inline_timeout=max(1.0, remaining - 5.0),  # leave time to answer
        flush_at_exit=False,  # Lambda never runs interpreter exit hooks reliably
    )
    agent = Agent(model=BedrockModel(), name="assistant", plugins=[plugin], system_prompt=BASE_PROMPT,
                  callback_handler=None)
    state: dict[str, Any] = {
        "user_id": event["user_id"],
        "conversation_id": event["conversation_id"],
        "end_session": bool(event.get("end_session", False)),
    }
    if event.get("tenant_id") is not None:
        state["tenant_context"] = {"tenantId": event["tenant_id"]}
    result = agent(event["message"], invocation_state=state)
    stored = True
    if event.get("end_open"):
        plugin.end_open_conversations()
        stored = plugin.flush(max(1.0, remaining - 5.0))
    return {"reply": str(result).strip(), "stored": stored}
