"""Subprocess helper: a user says one thing and never ends the conversation; the process exits.

Usage: python open_conversation.py FACT   (backend, data dir and bucket come from the environment)
"""

from __future__ import annotations

import logging
import sys

from strands import Agent

from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin
from strands_s3_vectors_memory.testing import ScriptedModel

PROMPT = "You are helpful.\n{memory_context}"


def main() -> None:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr)
    plugin = S3VectorMemoryPlugin(store=S3VectorMemory(), base_prompt=PROMPT)
    agent = Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], system_prompt=PROMPT,
                  callback_handler=None)
    agent(sys.argv[1], invocation_state={"user_id": "u1", "conversation_id": "c1"})
    # no end_session, no flush, no close: the interpreter exits with the conversation open


if __name__ == "__main__":
    main()
