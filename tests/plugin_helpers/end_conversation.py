"""Subprocess helper: one agent ends one conversation, then exits normally or hangs to be killed.

Usage: python end_conversation.py {exit|hang|crash-after-put} FACT
The environment (backend, data dir, bucket) comes from the parent test. ``crash-after-put`` dies
(exit status 9, no clean-up) once the conversation is stored, before its spool file is removed.
"""

from __future__ import annotations

import os
import sys
import threading
from typing import Any

from strands import Agent

from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin
from strands_s3_vectors_memory.archive._summary_format import parse_summary_request
from strands_s3_vectors_memory.durability._spool import Spool
from strands_s3_vectors_memory.testing import ScriptedModel, default_responder
from strands_s3_vectors_memory.text import message_text

PROMPT = "You are helpful.\n{memory_context}"


def main() -> None:
    mode, fact = sys.argv[1], sys.argv[2]
    never = threading.Event()

    def responder(messages: Any, system_prompt: str | None) -> Any:
        if mode == "hang" and parse_summary_request(message_text(messages[-1], fold=False)) is not None:
            never.wait()  # the summarizer never returns: the process is killed with the job pending
        return default_responder(messages, system_prompt)

    if mode == "crash-after-put":
        Spool.remove = lambda self, key: os._exit(9)  # type: ignore[method-assign]
    plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt=PROMPT)
    agent = Agent(model=ScriptedModel(responder=responder), name="assistant", plugins=[plugin],
                  system_prompt=PROMPT, callback_handler=None)
    agent(fact, invocation_state={"user_id": "u1", "conversation_id": "c1", "end_session": True})
    print("ENDED", flush=True)
    if mode == "hang":
        never.wait()
    if mode == "crash-after-put":
        plugin.flush(60)
        sys.exit("the spool file was removed: no crash")
    # mode == "exit": return without flushing; the plugin's writer flushes at interpreter exit


if __name__ == "__main__":
    main()
