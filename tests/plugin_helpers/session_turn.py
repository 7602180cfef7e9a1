"""Subprocess helper: one turn of conversation c1 on an agent whose session manager restores it.

Usage: python session_turn.py {file DIR | s3 BUCKET | buffer -} MESSAGE
The agent is built as a request-scoped runtime builds it (a new one per request, a strands session
manager under session id c1, the memory plugin with its default history); ``buffer``: no session
manager, the plugin with ``durable_turns=True`` (its spool on S3). After the turn it prints
TURN DONE and waits: the parent kills it, as Lambda or AgentCore reclaim an environment.
The environment (memory backend, data dir, bucket, S3 endpoint) comes from the parent test.
"""

from __future__ import annotations

import sys
import threading

from strands import Agent
from strands.session import FileSessionManager, S3SessionManager, SessionManager

from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.testing import ScriptedModel

PROMPT = "You are helpful.\n{memory_context}"


def main() -> None:
    kind, where, message = sys.argv[1:4]
    session: SessionManager | None = (
        FileSessionManager(session_id="c1", storage_dir=where) if kind == "file"
        else S3SessionManager(session_id="c1", bucket=where, region_name="us-east-1") if kind == "s3" else None)
    plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt=PROMPT,
                                  writing=WritingSettings(flush_at_exit=False, durable_turns=kind == "buffer"))
    agent = Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], system_prompt=PROMPT,
                  callback_handler=None, session_manager=session)
    agent(message, invocation_state={"user_id": "u1", "conversation_id": "c1"})
    print("TURN DONE", flush=True)
    threading.Event().wait()  # the environment is frozen, then reclaimed: killed, no exit hook


if __name__ == "__main__":
    main()
