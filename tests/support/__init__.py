"""Helpers shared by the test suites: agents with the memory plugin, prompts the model saw, stored vectors.

``tests/`` (and ``bench/``) are on the test path (``pythonpath`` in pyproject.toml), so any test
imports ``from support import ...``.
"""

from __future__ import annotations

import contextlib
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from botocore.exceptions import ClientError
from strands import Agent

from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin
from strands_s3_vectors_memory.archive._summary_format import parse_summary_request
from strands_s3_vectors_memory.durability._writer import BackgroundWriter, JobContext
from strands_s3_vectors_memory.testing import ModelRequest, Responder, ScriptedModel, default_responder
from strands_s3_vectors_memory.text import message_text

if TYPE_CHECKING:
    import pytest

__all__ = [
    "PROMPT",
    "HashingEmbedder",
    "all_vectors",
    "asks_for_summary",
    "chat_prompts",
    "chat_requests",
    "held_summaries",
    "is_summary_request",
    "make_agent",
    "offline_cli_env",
    "s3_server",
    "say",
    "writer_factory",
]

PROMPT = "You are helpful.\n{memory_context}\nBe brief."

#: Environment that would point the CLI or a store elsewhere than the test's offline data dir.
_FOREIGN_ENV = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AWS_ENDPOINT_URL_S3VECTORS", "EMBEDDING_MODEL", "S3_VECTOR_TVM_ROLE_ARN", "AWS_REGION",
                "FORCE_COLOR", "TTY_COMPATIBLE")


def offline_cli_env(monkeypatch: pytest.MonkeyPatch, data_dir: Path, bucket: str, columns: int = 200) -> Path:
    """Point the CLI (and stores built from the environment) at an offline ``data_dir``, wide output."""
    monkeypatch.setenv("S3_VECTORS_MEMORY_BACKEND", "local")
    monkeypatch.setenv("S3_VECTORS_MEMORY_DATA_DIR", str(data_dir))
    monkeypatch.setenv("S3_VECTOR_BUCKET_NAME", bucket)
    monkeypatch.setenv("COLUMNS", str(columns))
    for name in _FOREIGN_ENV:
        monkeypatch.delenv(name, raising=False)
    return data_dir


@contextlib.contextmanager
def writer_factory(spool_dir: object, close_timeout: float) -> Iterator[Callable[..., BackgroundWriter]]:
    """Build background writers on ``spool_dir`` (a path or an ``s3://`` URL), closed on exit."""
    writers: list[BackgroundWriter] = []

    def build(handler: Callable[[JobContext], None], **kwargs: Any) -> BackgroundWriter:
        kwargs.setdefault("spool_dir", spool_dir)
        kwargs.setdefault("flush_at_exit", False)
        kwargs.setdefault("base_delay", 0.001)
        writer = BackgroundWriter(handler, **kwargs)
        writers.append(writer)
        return writer

    yield build
    for writer in writers:
        writer.close(timeout=close_timeout, drain=False)


@contextlib.contextmanager
def s3_server(monkeypatch: pytest.MonkeyPatch, *buckets: str) -> Iterator[str]:
    """moto's S3 as a server this process and its children share (``AWS_ENDPOINT_URL_S3``), with ``buckets``.

    For tests where one process writes to S3 and another (killed or not) reads it back.
    """
    import boto3
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        for name, value in (("AWS_ENDPOINT_URL_S3", endpoint), ("AWS_ACCESS_KEY_ID", "testing"),
                            ("AWS_SECRET_ACCESS_KEY", "testing"), ("AWS_REGION", "us-east-1")):
            monkeypatch.setenv(name, value)
        client = boto3.client("s3", region_name="us-east-1")
        for bucket in buckets:
            client.create_bucket(Bucket=bucket)
        yield endpoint
    finally:
        server.stop()


def make_agent(
    store: S3VectorMemory | None = None,
    model: ScriptedModel | None = None,
    name: str = "assistant",
    prompt: Any = PROMPT,
    **plugin_kwargs: Any,
) -> tuple[Agent, S3VectorMemoryPlugin, ScriptedModel]:
    """An agent with the memory plugin and a scripted model (the store from the environment by default)."""
    store = store or S3VectorMemory()
    model = model or ScriptedModel()
    plugin = S3VectorMemoryPlugin(store=store, base_prompt=prompt, **plugin_kwargs)
    agent = Agent(model=model, name=name, plugins=[plugin], system_prompt=prompt, callback_handler=None)
    return agent, plugin, model


def say(agent: Agent, text: str, user: str, conv: str, end: bool = False, **extra: Any) -> Any:
    """One turn of ``user`` in conversation ``conv`` (``extra`` goes into invocation_state)."""
    return agent(text, invocation_state={"user_id": user, "conversation_id": conv, "end_session": end, **extra})


def asks_for_summary(messages: Any) -> bool:
    """Whether these model input messages ask for a conversation summary (recognised by their shape).

    For scripted responders: ``lambda messages, system_prompt: ... if asks_for_summary(messages)``.
    """
    return bool(messages) and parse_summary_request(message_text(messages[-1], fold=False)) is not None


def held_summaries(release: threading.Event, started: threading.Event | None = None,
                   wait: float = 60.0) -> Responder:
    """A scripted responder whose summary calls set ``started`` then wait for ``release`` (``wait`` s at most).

    Holds a conversation's write in flight, so a test can act (forget elsewhere, look at the spool)
    while the writer is busy with it; every other call answers as ``default_responder``.
    """

    def held(messages: Any, system_prompt: str | None) -> Any:
        if asks_for_summary(messages):
            if started is not None:
                started.set()
            release.wait(wait)
        return default_responder(messages, system_prompt)

    return held


def is_summary_request(request: ModelRequest) -> bool:
    """Whether a recorded model request asked to summarize a conversation."""
    return asks_for_summary(request.messages)


def chat_requests(model: ScriptedModel) -> list[ModelRequest]:
    """The model's requests that answered users (summary requests left out), oldest first."""
    return [request for request in list(model.requests) if not is_summary_request(request)]


def chat_prompts(model: ScriptedModel) -> list[str]:
    """System prompts of the chat requests, oldest first."""
    return [request.system_prompt or "" for request in chat_requests(model)]


def all_vectors(client: Any, bucket: str = "my-vector-memory", index: str = "memory") -> list[dict[str, Any]]:
    """Every vector of an index, with metadata (paging through ``list_vectors``).

    An index (or bucket) that was never created holds nothing: ``[]``, so "nothing was stored"
    checks hold whether validation failed before or after the index was created on first use.
    """
    out: list[dict[str, Any]] = []
    token: str | None = None
    while True:
        kwargs: dict[str, Any] = {"vectorBucketName": bucket, "indexName": index, "returnMetadata": True}
        if token:
            kwargs["nextToken"] = token
        try:
            page = client.list_vectors(**kwargs)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "NotFoundException" and not out:
                return []
            raise
        out.extend(page["vectors"])
        token = page.get("nextToken")
        if not token:
            return out


class HashingEmbedder:
    """A bag of hashed words (``dimension``-d, normalized): similar wording, similar vector; no model.

    ``token`` says what a word is (``[a-z]+`` makes digits, and so identifiers, invisible to it).
    """

    def __init__(self, dimension: int = 16, *, model_id: str | None = None, token: str = r"\w+") -> None:
        self.dimension = dimension
        self.model_id = model_id or f"hash-{dimension}"
        self._token = re.compile(token)

    def _vector(self, text: str) -> list[float]:
        vector = np.zeros(self.dimension)
        for word in self._token.findall(text.lower()):
            vector[zlib.crc32(word.encode()) % self.dimension] += 1.0
        return [float(x) for x in vector / (np.linalg.norm(vector) or 1.0)]

    def embed_query(self, text: str) -> list[float]:
        return self._vector(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        return [self._vector(t) for t in texts]

