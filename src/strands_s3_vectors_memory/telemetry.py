"""OpenTelemetry spans for memory work: retrieve, search, embed, put, summarize.

Only the OpenTelemetry *API* is used, so tracing costs nothing until the application installs an SDK
(``strands.telemetry.StrandsTelemetry`` or its own ``TracerProvider``); then every span lands in the
application's trace. Spans start from the current context, so they nest under the Strands agent span
that is current when the plugin or a ``MemoryManager`` calls the store.

Attributes describe *shape and cost* only: counts, ``top_k``, the index name, the embedding or chat
model id, durations. Never query text, memory content, summaries or user ids: a trace backend is read
by more people than the memories are. The one identity-derived value is ``scope_hash``, a truncated
SHA-256 of tenant, user and agent that lets an operator group slow searches by scope without learning
who is behind it. Errors are recorded by type (``error.type`` and an ``exception`` event with the
stack frames) and never by message or source line, because both can quote ids or content.

Work that runs later in another thread (the background writer) starts from whatever context is
current there. :func:`capture_context` / :func:`attached_context` carry the submitting span across
as a W3C ``traceparent`` dict (JSON-safe, so it survives the writer's spool), should the caller want
the write to nest under the turn that produced it.
"""

from __future__ import annotations

import functools
import time
import traceback
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ParamSpec, TypeVar

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

__all__ = [
    "ATTRIBUTE_PREFIX",
    "DURATION_MS",
    "ERROR_TYPE",
    "SERVICE_NAME",
    "SPAN_EMBED",
    "SPAN_PUT",
    "SPAN_RETRIEVE",
    "SPAN_SEARCH",
    "SPAN_SUMMARIZE",
    "TRACER_NAME",
    "MemorySpan",
    "Scalar",
    "annotate",
    "attached_context",
    "attribute_name",
    "capture_context",
    "model_id_of",
    "record_error",
    "span",
    "traced",
]

#: The one spelling of this library's name in telemetry: the tracer, every span and attribute, and
#: (being the package name) every logger and thread.
SERVICE_NAME = "strands_s3_vectors_memory"
#: Instrumentation scope of every span this package emits.
TRACER_NAME = SERVICE_NAME
#: Prefix of every attribute this package sets (``error.type`` excepted: it is the OTel convention).
ATTRIBUTE_PREFIX = f"{SERVICE_NAME}."

SPAN_RETRIEVE = f"{SERVICE_NAME}.retrieve"
SPAN_SEARCH = f"{SERVICE_NAME}.search"
SPAN_EMBED = f"{SERVICE_NAME}.embed"
SPAN_PUT = f"{SERVICE_NAME}.put"
SPAN_SUMMARIZE = f"{SERVICE_NAME}.summarize"

#: Wall-clock duration of the span's work, in milliseconds (set on every span, errors included).
DURATION_MS = ATTRIBUTE_PREFIX + "duration_ms"
ERROR_TYPE = "error.type"

Scalar = str | bool | int | float

P = ParamSpec("P")
R = TypeVar("R")

_TRACER = trace.get_tracer(TRACER_NAME)
_PROPAGATOR = TraceContextTextMapPropagator()


def attribute_name(key: str) -> str:
    """The full attribute name for a short keyword, e.g. ``top_k`` -> ``s3_vectors_memory.top_k``."""
    return key if key.startswith(ATTRIBUTE_PREFIX) else ATTRIBUTE_PREFIX + key


def _attributes(values: Mapping[str, Scalar | None]) -> dict[str, Scalar]:
    return {attribute_name(key): value for key, value in values.items() if value is not None}


class MemorySpan:
    """The span of one memory operation, with keyword-style attribute setters."""

    def __init__(self, span: Span) -> None:
        self.span = span

    def set(self, **attributes: Scalar | None) -> None:
        """Set attributes by short name (``result_count=3``); ``None`` values are skipped."""
        if self.span.is_recording():
            self.span.set_attributes(_attributes(attributes))

    def record_error(self, exc: BaseException) -> None:
        """Mark the span failed: status ERROR, ``error.type``, and an ``exception`` event without the message."""
        record_error(exc, self.span)


def _frames(exc: BaseException) -> str:
    """Where the error came from, as file/line/function only: source lines may hold literals worth hiding."""
    return "\n".join(
        f'File "{frame.filename}", line {frame.lineno}, in {frame.name}'
        for frame in traceback.extract_tb(exc.__traceback__, limit=50)
    )


def record_error(exc: BaseException, span: Span | None = None) -> None:
    """Record ``exc`` on ``span`` (default: the current span) by type and stack trace, never by message.

    Used where an error is handled rather than raised (retrieval fails open), so the trace still shows
    the failure the reply path swallowed.
    """
    target = span if span is not None else trace.get_current_span()
    if not target.is_recording():
        return
    error_type = f"{type(exc).__module__}.{type(exc).__qualname__}"
    target.set_attribute(ERROR_TYPE, error_type)
    target.add_event(
        "exception",
        {
            "exception.type": error_type,
            "exception.stacktrace": _frames(exc),
        },
    )
    target.set_status(Status(StatusCode.ERROR, type(exc).__name__))


def annotate(**attributes: Scalar | None) -> None:
    """Set attributes on the current span: how a :func:`traced` function reports what it found."""
    MemorySpan(trace.get_current_span()).set(**attributes)


@contextmanager
def span(name: str, **attributes: Scalar | None) -> Iterator[MemorySpan]:
    """Run the block in a child span of the current context; record its duration and any error.

    The error is re-raised unchanged: tracing never alters behaviour.
    """
    started = time.perf_counter()
    with _TRACER.start_as_current_span(
        name,
        kind=SpanKind.INTERNAL,
        attributes=_attributes(attributes),
        record_exception=False,
        set_status_on_exception=False,
    ) as current:
        handle = MemorySpan(current)
        try:
            yield handle
        except Exception as exc:
            handle.record_error(exc)
            raise
        finally:
            handle.set(duration_ms=round((time.perf_counter() - started) * 1000.0, 3))


def traced(name: str, **attributes: Scalar | None) -> Callable[[Callable[P, R]], Callable[P, R]]:
    """Decorator running every call of the function in :func:`span` ``name``.

    Lets an existing function gain a span with one line; it reports its findings with :func:`annotate`.
    """

    def decorate(function: Callable[P, R]) -> Callable[P, R]:
        @functools.wraps(function)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with span(name, **attributes):
                return function(*args, **kwargs)

        return wrapper

    return decorate


def model_id_of(model: Any) -> str | None:
    """The model id a strands ``Model`` reports in its config, if any (never raises)."""
    try:
        config = model.get_config()
    except Exception:
        return None
    value = config.get("model_id") if isinstance(config, Mapping) else None
    return str(value) if value else None


def capture_context() -> dict[str, str]:
    """The current span as W3C trace-context headers (``traceparent``), or ``{}`` when there is none.

    Only trace ids cross over, never baggage: baggage may carry application data, and the dict may be
    spooled to disk.
    """
    carrier: dict[str, str] = {}
    _PROPAGATOR.inject(carrier)
    return carrier


@contextmanager
def attached_context(carrier: Mapping[str, str] | None) -> Iterator[None]:
    """Make the span captured by :func:`capture_context` current for the block (no-op when empty)."""
    if not carrier:
        yield
        return
    token = otel_context.attach(_PROPAGATOR.extract(dict(carrier)))
    try:
        yield
    finally:
        otel_context.detach(token)
