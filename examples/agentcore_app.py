"""Amazon Bedrock AgentCore Runtime: an agent with long-term memory, whose conversations span microVMs.

AgentCore Runtime gives each runtime session (the ``X-Amzn-Bedrock-AgentCore-Runtime-Session-Id``
header: here, one conversation) a microVM, and terminates it after the session idles (15 minutes by
default) or reaches its maximum lifetime, without a shutdown hook. A user who comes back to the
conversation later lands on a new microVM. So, as strands documents for these runtimes, each request
builds its agent with a session manager on S3 (``S3SessionManager``, a general-purpose bucket,
``SESSION_BUCKET``): the agent gets the conversation's earlier turns back. With a session manager the
plugin defaults to ``history="agent"``: the memory stored when the conversation ends covers every turn
the session restored, each once.
The role needs ``s3:GetObject``, ``PutObject``, ``DeleteObject`` and ``ListBucket`` on the session
prefix (``SESSION_PREFIX``, default ``sessions/``), as on the spool's.

The microVM may be terminated right after a reply, so an ending turn stores inline
(``write_mode="inline"``), like on Lambda; ``stored`` in the reply says whether it was stored before the
reply (after ``inline_timeout`` it stays in the spool: put the spool on S3 with
``S3_VECTORS_MEMORY_SPOOL=s3://bucket/prefix`` so another session or ``s3-vectors-memory replay``
stores it).

Payload: ``{"user_id": ..., "prompt": ..., "end_session": bool, "tenant_id": optional}`` (in production
take the user id from the caller's verified identity, not from the payload). Run: ``python
agentcore_app.py`` (port 8080), or deploy it with the AgentCore starter toolkit.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import Any

from bedrock_agentcore.runtime import BedrockAgentCoreApp, RequestContext
from strands import Agent
from strands.session import S3SessionManager

from strands_s3_vectors_memory import MultiTenantS3VectorMemory, S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.models import build_model  # MEMORY_MODEL=scripted: offline

BASE_PROMPT = """You are a helpful assistant.
{memory_context}
Use prior context naturally in your responses."""

#: How long an ending turn waits for its conversation to be stored before replying.
INLINE_TIMEOUT = float(os.environ.get("MEMORY_INLINE_TIMEOUT", "60"))

app = BedrockAgentCoreApp()
# Built once per microVM, reused by every request of its session.
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


@app.entrypoint
def invoke(payload: dict[str, Any], context: RequestContext) -> dict[str, Any]:
    """One turn of the conversation this runtime session is; returns the reply and whether it is stored."""
    if not context.session_id:
        raise ValueError("AgentCore passes the runtime session id; this app uses it as the conversation id")
    state: dict[str, Any] = {
        "user_id": payload["user_id"],
        "conversation_id": context.session_id,
        "end_session": bool(payload.get("end_session", False)),
    }
    if payload.get("tenant_id") is not None:
        state["tenant_context"] = {"tenantId": payload["tenant_id"]}
    writing = WritingSettings(write_mode="inline", inline_timeout=INLINE_TIMEOUT, flush_at_exit=False)
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=BASE_PROMPT, writing=writing)
    model = build_model(os.environ.get("MEMORY_MODEL", "bedrock"))[0]  # unset: Bedrock's default model
    agent = Agent(model=model, name="assistant", plugins=[plugin], system_prompt=BASE_PROMPT,
                  callback_handler=None, session_manager=session_for(state))
    result = agent(payload["prompt"], invocation_state=state)
    # An ending turn already waited (write_mode="inline"): whatever is not stored now is in the spool.
    return {"result": str(result).strip(), "stored": state["end_session"] and plugin.flush(0)}


if __name__ == "__main__":
    app.run()
