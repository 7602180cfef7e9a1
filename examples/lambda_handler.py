"""AWS Lambda: an agent with long-term memory, whose conversations span execution environments.

The turns of one conversation land on different execution environments, and an environment is
frozen and reclaimed without a shutdown hook. So, as strands documents for request-scoped runtimes,
each request builds its agent with an ``S3SessionManager`` (a general-purpose bucket,
``SESSION_BUCKET``): the agent gets the conversation's earlier turns back, whichever environment ran
them. With a session manager the plugin defaults to ``history="agent"``: the memory stored when the
conversation ends covers every turn the session restored, each once.
The role needs ``s3:GetObject``, ``PutObject``, ``DeleteObject`` and ``ListBucket`` on the session
prefix (``SESSION_PREFIX``, default ``sessions/``), as on the spool's.

Lambda freezes the environment as soon as the handler returns, and may never thaw it: a background
thread would never finish storing, and ``/tmp`` goes with the environment. So the plugin runs with
``write_mode="inline"``: an ending turn (``end_session``) returns once the conversation is stored, or
after ``inline_timeout`` it is left in the spool (put the spool on S3 with
``S3_VECTORS_MEMORY_SPOOL=s3://bucket/prefix`` so another environment or ``s3-vectors-memory replay``
picks it up). The reply says which: ``stored`` is true only when the conversation's memory was
stored before the handler returned.

Event: ``{"user_id": ..., "conversation_id": ..., "message": ..., "end_session": bool,
"tenant_id": optional}``. Conversations whose users never send ``end_session`` can be stored at the end
of every request with ``"end_open": true`` (each request's new turns are merged into the conversation's
stored summary, at the cost of one summary call per request).
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from strands import Agent
from strands.session import S3SessionManager

from strands_s3_vectors_memory import MultiTenantS3VectorMemory, S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.models import build_model  # MEMORY_MODEL=scripted: offline

BASE_PROMPT = """You are a helpful assistant.
{memory_context}
Use prior context naturally in your responses."""

# Built once per execution environment (the cold start), reused by warm invocations.
store = MultiTenantS3VectorMemory() if os.environ.get("MEMORY_MULTI_TENANT") == "1" else S3VectorMemory()


def session_for(state: dict[str, Any]) -> S3SessionManager:
    """The conversation's strands session on S3, named after whose conversation it is (ids may hold
    any character, a session id may not; another user's id never reaches this user's session)."""
    who = [state.get("tenant_context", {}).get("tenantId"), state["user_id"], state["conversation_id"]]
    return S3SessionManager(
        session_id=hashlib.sha256(json.dumps(who).encode()).hexdigest()[:32],
        bucket=os.environ["SESSION_BUCKET"],
        prefix=os.environ.get("SESSION_PREFIX", "sessions/"),
    )


def handler(event: dict[str, Any], context: Any = None) -> dict[str, Any]:
    """One turn of one conversation; returns the reply, and whether its memory is stored already."""
    remaining = context.get_remaining_time_in_millis() / 1000 if context is not None else 60.0
    plugin = S3VectorMemoryPlugin(
        store=store,
        base_prompt=BASE_PROMPT,
        writing=WritingSettings(
            write_mode="inline",
            inline_timeout=max(1.0, remaining - 5.0),  # leave time to answer
            flush_at_exit=False,  # Lambda never runs interpreter exit hooks reliably
        ),
    )
    state: dict[str, Any] = {
        "user_id": event["user_id"],
        "conversation_id": event["conversation_id"],
        "end_session": bool(event.get("end_session", False)),
    }
    if event.get("tenant_id") is not None:
        state["tenant_context"] = {"tenantId": event["tenant_id"]}
    model = build_model(os.environ.get("MEMORY_MODEL", "bedrock"))[0]  # unset: Bedrock's default model
    agent = Agent(model=model, name="assistant", plugins=[plugin], system_prompt=BASE_PROMPT,
                  callback_handler=None, session_manager=session_for(state))
    result = agent(event["message"], invocation_state=state)
    if event.get("end_open"):
        plugin.end_open_conversations()
        plugin.flush(max(1.0, remaining - 5.0))
    # An ending turn already waited (write_mode="inline"): whatever is not stored now is in the spool.
    stored = (state["end_session"] or bool(event.get("end_open"))) and plugin.flush(0)
    return {"reply": str(result).strip(), "stored": stored}
