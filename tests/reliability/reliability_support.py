"""Building blocks shared by the reliability suite (and the crash child / load benchmark).

Why each exists:

* :class:`SeededRandomEmbedder`: the property tests run thousands of store operations; the real model would
  make them take minutes. A deterministic hash -> small-dimension embedder keeps every code path
  (validation, dimension checks, normalisation) while costing microseconds.
* :class:`FaultyClient`: S3 Vectors faults (throttling, 5xx, timeouts) happen outside this machine,
  so they are injected at the client boundary, on top of a real engine, and every call is recorded
  so tests can check what actually went over the wire.
* :class:`FakeSts` / :class:`TenantKeyIndexes`: STS is AWS; the fake vends one access key per tenant
  and the endpoint's :class:`AccessPolicy` maps that key to the tenant's index, like the TVM role's
  session-tag policy does on AWS.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import boto3
import numpy as np
from botocore.config import Config
from botocore.exceptions import ClientError
from strands import Agent

from s3vectors_engine.server import AccessPolicy
from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory.testing import ScriptedModel

REGION = "us-east-1"
PROMPT = "You are helpful.\n{memory_context}\nBe brief."
#: Markers planted in memories: each is unique and owned by exactly one scope.
MARKER_RE = re.compile(r"\bmk[0-9a-f]{12}\b")
ADMIN_KEY = "AKIAADMIN"
ADMIN_SECRET = "admin-secret"
TENANT_KEY_PREFIX = "TENANT-"
#: One attempt, short timeouts: tests must see the first answer, not botocore's retries.
NO_RETRY = Config(
    retries={"total_max_attempts": 1, "mode": "standard"},
    connect_timeout=5,
    read_timeout=30,
    max_pool_connections=64,
)


class SeededRandomEmbedder:
    """Deterministic embedder: sha256(text) seeds a normal vector of ``dimension`` values.

    Identical texts get identical vectors; different texts get near-orthogonal ones. Nothing about
    relevance is modelled, which is the point: isolation must hold whatever the vectors are.
    """

    def __init__(self, dimension: int = 16, model_id: str = "hash-16") -> None:
        self._dimension = dimension
        self._model_id = model_id
        self.calls = 0
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    def _vector(self, text: str) -> list[float]:
        with self._lock:
            self.calls += 1
        seed = int.from_bytes(hashlib.sha256(text.encode("utf-8", "replace")).digest()[:8], "big")
        vec = np.random.default_rng(seed).standard_normal(self._dimension)
        return [float(x) for x in vec / np.linalg.norm(vec)]

    def embed_query(self, text: str) -> list[float]:
        return self._vector("q:" + text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector("d:" + text) for text in texts]


def client_error(code: str, status: int, operation: str = "PutVectors") -> ClientError:
    """A ClientError shaped exactly as botocore raises it for an HTTP error answer."""
    return ClientError(
        {
            "Error": {"Code": code, "Message": f"injected {code}"},
            "ResponseMetadata": {"HTTPStatusCode": status, "RetryAttempts": 0},
        },
        operation,
    )


Fault = Callable[[str, Mapping[str, Any]], BaseException | None]


@dataclass
class Call:
    operation: str
    params: dict[str, Any]
    error: str | None = None


class FaultyClient:
    """Wraps an S3-Vectors-shaped client: records every call, raises injected faults first.

    ``fault(operation, params)`` returns an exception to raise instead of calling through, or None.
    """

    def __init__(self, inner: Any, fault: Fault | None = None) -> None:
        self.inner = inner
        self.fault: Fault = fault or (lambda _op, _params: None)
        self.calls: list[Call] = []
        self._lock = threading.Lock()

    def __getattr__(self, name: str) -> Any:
        target = getattr(self.inner, name)
        if name.startswith("_") or not callable(target) or name in ("get_paginator", "can_paginate", "close"):
            return target

        def call(**params: Any) -> Any:
            error = self.fault(name, params)
            with self._lock:
                self.calls.append(Call(name, dict(params), type(error).__name__ if error else None))
            if error is not None:
                raise error
            return target(**params)

        return call

    def ops(self, name: str) -> list[Call]:
        with self._lock:
            return [c for c in self.calls if c.operation == name]


def fail_first(operation: str, errors: Sequence[BaseException]) -> Fault:
    """A fault plan: the first ``len(errors)`` calls of ``operation`` raise those errors, in order."""
    pending = list(errors)
    lock = threading.Lock()

    def plan(op: str, _params: Mapping[str, Any]) -> BaseException | None:
        if op != operation:
            return None
        with lock:
            return pending.pop(0) if pending else None

    return plan


def summaries(vectors: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    return [v for v in vectors if v.get("metadata", {}).get("type") == "summary"]


def make_agent(
    store: S3VectorMemory,
    *,
    name: str = "assistant",
    model: ScriptedModel | None = None,
    spool_dir: Path | None = None,
    **plugin_kwargs: Any,
) -> tuple[Agent, S3VectorMemoryPlugin, ScriptedModel]:
    """An agent with the memory plugin and a scripted model (no atexit hooks: tests close plugins)."""
    model = model or ScriptedModel()
    writing = dataclasses.replace(plugin_kwargs.pop("writing", WritingSettings()), flush_at_exit=False)
    plugin = S3VectorMemoryPlugin(store, PROMPT, spool_dir=spool_dir, writing=writing, **plugin_kwargs)
    agent = Agent(model=model, name=name, plugins=[plugin], system_prompt=PROMPT, callback_handler=None)
    return agent, plugin, model


def say(agent: Agent, text: str, user: str, conv: str, *, end: bool = False, **extra: Any) -> None:
    agent(text, invocation_state={"user_id": user, "conversation_id": conv, "end_session": end, **extra})


def tool_results(agent: Agent, since: int = 0) -> list[str]:
    """Text of every tool result in the agent's messages from index ``since`` on, oldest first.

    On a shared agent ``agent.messages`` is the current conversation's history (the plugin swaps it
    per conversation), so callers count from the last user message they sent.
    """
    return [
        " ".join(str(c.get("text", "")) for c in block["toolResult"]["content"])
        for message in agent.messages[since:]
        for block in message["content"]
        if "toolResult" in block
    ]


def last_user_turn(agent: Agent, text: str) -> int:
    """Index in ``agent.messages`` of the latest user message whose text is ``text``."""
    for index in range(len(agent.messages) - 1, -1, -1):
        message = agent.messages[index]
        if message["role"] == "user" and any(block.get("text") == text for block in message["content"]):
            return index
    raise AssertionError(f"no user message {text!r} in the agent's history")


def boto3_client(url: str, key: str = ADMIN_KEY, config: Config = NO_RETRY) -> Any:
    """A stock boto3 s3vectors client on the local endpoint, signing with ``key`` and its secret."""
    return boto3.client(
        "s3vectors",
        endpoint_url=url,
        region_name=REGION,
        aws_access_key_id=key,
        aws_secret_access_key=TenantKeySecrets().get(key, "unknown-key"),
        config=config,
    )


def tenant_key(tenant_id: str) -> str:
    return f"{TENANT_KEY_PREFIX}{tenant_id}"


class TenantKeyIndexes(Mapping[str, Sequence[str]]):
    """AccessPolicy ``indexes`` derived from the key, like ``memory-${aws:PrincipalTag/TenantID}``.

    A key ``TENANT-<t>`` may touch ``memory-<t>`` only; the admin key may touch every index.
    """

    def __getitem__(self, key: str) -> Sequence[str]:
        if key == ADMIN_KEY:
            return ["*"]
        if key.startswith(TENANT_KEY_PREFIX) and len(key) > len(TENANT_KEY_PREFIX):
            return [f"memory-{key[len(TENANT_KEY_PREFIX):]}"]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter([ADMIN_KEY])

    def __len__(self) -> int:
        return 1

    def __contains__(self, key: object) -> bool:
        try:
            self[str(key)]
        except KeyError:
            return False
        return True


@dataclass(frozen=True)
class RecordingPolicy(AccessPolicy):
    """An AccessPolicy that also records who asked for what (to prove ambient keys never appear)."""

    seen: list[tuple[str | None, str]] = field(default_factory=list, compare=False)

    def denial_reason(self, key_id: str | None, operation: str, params: Mapping[str, Any]) -> str | None:
        self.seen.append((key_id, operation))
        return super().denial_reason(key_id, operation, params)


class TenantKeySecrets(Mapping[str, str]):
    """AccessPolicy ``secret_keys``: the secret :class:`FakeSts` hands out with each tenant key.

    With them registered the endpoint verifies every request's SigV4 signature, so the isolation
    tests also prove the TVM's credentials are the ones boto3 signs with, secret included.
    """

    def __getitem__(self, key: str) -> str:
        if key == ADMIN_KEY:
            return ADMIN_SECRET
        if key.startswith(TENANT_KEY_PREFIX) and len(key) > len(TENANT_KEY_PREFIX):
            return "secret-" + key[len(TENANT_KEY_PREFIX):]
        raise KeyError(key)

    def __iter__(self) -> Iterator[str]:
        return iter([ADMIN_KEY])

    def __len__(self) -> int:
        return 1


def tenant_policy() -> RecordingPolicy:
    return RecordingPolicy(indexes=TenantKeyIndexes(), bucket_operations={ADMIN_KEY: ["*"]},
                           secret_keys=TenantKeySecrets())


class FakeSts:
    """STS ``AssumeRole`` for the TVM: one access key per ``TenantID`` session tag.

    ``failures`` (a list consumed in order) lets a test make the next calls fail.
    """

    def __init__(self) -> None:
        self.failures: list[BaseException] = []
        self.calls: list[str] = []
        self._lock = threading.Lock()

    def assume_role(self, **params: Any) -> dict[str, Any]:
        tags = {t["Key"]: t["Value"] for t in params.get("Tags", [])}
        tenant = tags["TenantID"]
        with self._lock:
            self.calls.append(tenant)
            if self.failures:
                raise self.failures.pop(0)
        return {
            "Credentials": {
                "AccessKeyId": tenant_key(tenant),
                "SecretAccessKey": "secret-" + tenant,
                "SessionToken": "token-" + tenant,
                "Expiration": datetime.now(timezone.utc) + timedelta(hours=1),
            }
        }


def markers_in(text: str) -> set[str]:
    return set(MARKER_RE.findall(text))
