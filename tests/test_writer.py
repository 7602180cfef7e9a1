"""The background writer: nothing submitted is lost, nothing runs twice, the reply path never waits."""

from __future__ import annotations

import errno
import itertools
import json
import logging
import os
import signal
import statistics
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import (
    ClientError,
    EndpointConnectionError,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from strands_s3_vectors_memory.durability._spool_format import WriteJob
from strands_s3_vectors_memory.durability._writer import BackgroundWriter, JobContext
from strands_s3_vectors_memory.errors import ConfigurationError
from support import writer_factory

CHILD = Path(__file__).parent / "writer_helpers" / "child.py"
WAIT = 10.0  # upper bound for anything that should take milliseconds; never reached when green


# ------------------------------------------------------------------------------------------- helpers


def _job(job_id: str, conversation_id: str | None = None, **payload: Any) -> WriteJob:
    body: dict[str, Any] = {"conversation_id": conversation_id or f"conv-{job_id}", **payload}
    return WriteJob(job_id=job_id, payload=body, created_at=time.time())


def _throttled(code: str = "ThrottlingException", status: int = 400) -> ClientError:
    return ClientError(
        {"Error": {"Code": code, "Message": "slow down"}, "ResponseMetadata": {"HTTPStatusCode": status}},
        "PutVectors",
    )


def _spooled(spool_dir: Path) -> dict[str, dict[str, Any]]:
    """job_id -> payload of every job file in the spool (what a restart would replay)."""
    found: dict[str, dict[str, Any]] = {}
    for path in spool_dir.rglob("*.json"):
        if "corrupt" in path.parts:
            continue
        record = json.loads(path.read_text())
        assert record["job_id"] not in found, "one file per job"
        found[record["job_id"]] = record["payload"]
    return found


class Recorder:
    """A thread-safe handler that records every call; optionally gated and/or failing."""

    def __init__(self, *, gate: threading.Event | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any], int, float]] = []
        self.lock = threading.Lock()
        self.gate = gate
        self.started = threading.Event()
        self.fail: Callable[[JobContext], BaseException | None] = lambda ctx: None
        self.before: Callable[[JobContext], None] = lambda ctx: None

    def __call__(self, ctx: JobContext) -> None:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT), "test gate never opened"
        with self.lock:
            self.calls.append((ctx.job.job_id, dict(ctx.job.payload), ctx.job.attempts, time.monotonic()))
        self.before(ctx)
        error = self.fail(ctx)
        if error is not None:
            raise error

    def ids(self) -> list[str]:
        with self.lock:
            return [call[0] for call in self.calls]


@pytest.fixture
def make_writer(tmp_path: Path) -> Iterator[Callable[..., BackgroundWriter]]:
    """Build writers on a per-test spool dir, closed at teardown."""
    with writer_factory(tmp_path / "spool", WAIT) as build:
        yield build


def _run_child(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, str(CHILD), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _expect_line(proc: subprocess.Popen[str], expected: str) -> None:
    assert proc.stdout is not None
    line = proc.stdout.readline().strip()
    if line != expected:
        proc.kill()
        _, err = proc.communicate(timeout=WAIT)
        pytest.fail(f"child said {line!r}, expected {expected!r}; stderr:\n{err}")


def _killed_child_spool(spool: Path, count: int, *prefixes: str) -> None:
    """Leave ``count`` jobs per prefix in ``spool`` from writer processes SIGKILLed mid-work."""
    procs = [_run_child("hang", str(spool), str(count), prefix) for prefix in prefixes]
    for proc in procs:
        _expect_line(proc, "READY")
    for proc in procs:
        proc.send_signal(signal.SIGKILL)
        proc.wait(WAIT)
        assert proc.returncode == -signal.SIGKILL


# ------------------------------------------------------------------------------------------ success


def test_success_runs_the_job_and_removes_its_spool_file(tmp_path: Path, make_writer: Any) -> None:
    gate = threading.Event()
    handler = Recorder(gate=gate)
    writer = make_writer(handler)

    writer.submit(_job("j1", transcript="hello"))
    assert handler.started.wait(WAIT)
    assert _spooled(tmp_path / "spool") == {"j1": {"conversation_id": "conv-j1", "transcript": "hello"}}

    gate.set()
    assert writer.flush(WAIT)
    assert handler.ids() == ["j1"]
    assert _spooled(tmp_path / "spool") == {}
    stats = writer.stats
    assert (stats.submitted, stats.succeeded, stats.failed, stats.pending) == (1, 1, 0, 0)


# ------------------------------------------------------------------------------------------ retries


def test_retryable_errors_are_retried_with_growing_delays_then_succeed(make_writer: Any) -> None:
    handler = Recorder()
    handler.fail = lambda ctx: _throttled() if ctx.job.attempts < 3 else None
    caps: list[float] = []

    def jitter(cap: float) -> float:
        caps.append(cap)
        return cap  # deterministic: wait the whole window

    writer = make_writer(handler, base_delay=0.02, max_delay=1.0, jitter=jitter)
    writer.submit(_job("j1"))
    assert writer.flush(WAIT)

    assert caps == pytest.approx([0.02, 0.04, 0.08])
    times = [call[3] for call in handler.calls]
    gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
    assert [call[2] for call in handler.calls] == [0, 1, 2, 3]
    assert all(gap >= cap for gap, cap in zip(gaps, caps, strict=True)), (gaps, caps)
    assert gaps[0] < gaps[2]
    stats = writer.stats
    assert (stats.retried, stats.succeeded, stats.failed) == (3, 1, 0)


def test_backoff_window_is_capped_by_max_delay(make_writer: Any) -> None:
    handler = Recorder()
    handler.fail = lambda ctx: TimeoutError("read timed out") if ctx.job.attempts < 5 else None
    caps: list[float] = []

    def jitter(cap: float) -> float:
        caps.append(cap)
        return 0.0

    writer = make_writer(handler, base_delay=1.0, max_delay=3.0, jitter=jitter)
    writer.submit(_job("j1"))
    assert writer.flush(WAIT)
    assert caps == [1.0, 2.0, 3.0, 3.0, 3.0]


def test_a_job_waiting_to_retry_does_not_block_other_jobs(make_writer: Any) -> None:
    handler = Recorder()
    handler.fail = lambda ctx: _throttled() if ctx.job.job_id == "slow" and ctx.job.attempts == 0 else None
    writer = make_writer(handler, workers=1, base_delay=0.5, jitter=lambda cap: cap)

    writer.submit(_job("slow"))
    assert handler.started.wait(WAIT)
    writer.submit(_job("fast"))
    assert writer.flush(WAIT)

    order = [(call[0], call[2]) for call in handler.calls]
    assert order == [("slow", 0), ("fast", 0), ("slow", 1)]
    first, fast, second = (call[3] for call in handler.calls)
    assert fast - first < 0.4  # ran during the 0.5 s backoff on the single worker
    assert second - first >= 0.5


def test_a_job_waiting_to_retry_does_not_hold_its_groups_other_jobs(make_writer: Any) -> None:
    """One user's conversation backing off after a throttle: the same user's next one is stored meanwhile."""
    handler = Recorder()
    handler.fail = lambda ctx: _throttled() if ctx.job.job_id == "slow" and ctx.job.attempts == 0 else None
    writer = make_writer(handler, workers=2, base_delay=0.5, jitter=lambda cap: cap, group=lambda job: "alice")

    writer.submit(_job("slow"))
    assert handler.started.wait(WAIT)
    writer.submit(_job("next"))
    assert writer.flush(WAIT)

    assert [(call[0], call[2]) for call in handler.calls] == [("slow", 0), ("next", 0), ("slow", 1)]
    first, following, _second = (call[3] for call in handler.calls)
    assert following - first < 0.4  # ran during the 0.5 s backoff


def test_non_retryable_error_fails_keeps_spool_and_logs_conversation_id(
    tmp_path: Path, make_writer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder()
    handler.fail = lambda ctx: _throttled("ValidationException", 400)
    writer = make_writer(handler, max_attempts=5)

    with caplog.at_level(logging.ERROR, logger="strands_s3_vectors_memory.durability._writer"):
        writer.submit(_job("job-17", conversation_id="conv-abc-123", transcript="t"))
        assert writer.flush(WAIT)

    assert handler.ids() == ["job-17"]  # not retried
    assert writer.stats.failed == 1
    assert writer.stats.succeeded == 0
    assert _spooled(tmp_path / "spool") == {"job-17": {"conversation_id": "conv-abc-123", "transcript": "t"}}
    errors = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1
    assert "job-17" in errors[0].getMessage()
    assert "conv-abc-123" in errors[0].getMessage()


def test_an_outage_longer_than_a_round_is_retried_in_process_until_it_ends(
    tmp_path: Path, make_writer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    """Rounds of attempts keep coming, capped at max_delay apart, until the outage ends: no restart needed."""
    handler = Recorder()
    outage = threading.Event()
    outage.set()
    down = EndpointConnectionError(endpoint_url="https://s3vectors.example")
    handler.fail = lambda ctx: down if outage.is_set() else None
    caps: list[float] = []

    def jitter(cap: float) -> float:
        caps.append(cap)
        return cap

    writer = make_writer(handler, max_attempts=3, base_delay=0.01, max_delay=0.05, jitter=jitter)
    with caplog.at_level(logging.DEBUG, logger="strands_s3_vectors_memory.durability._writer"):
        writer.submit(_job("j9", conversation_id="conv-999"))
        deadline = time.monotonic() + WAIT
        while len(handler.calls) < 10:  # more than three rounds of three attempts
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert writer.stats.pending == 1 and set(_spooled(tmp_path / "spool")) == {"j9"}
        outage.clear()
        assert writer.flush(WAIT)

    assert max(caps) == 0.05  # the backoff is capped
    stats = writer.stats
    assert (stats.failed, stats.succeeded, stats.pending, stats.dead_lettered) == (0, 1, 0, 0)
    assert _spooled(tmp_path / "spool") == {}
    rounds = [r for r in caplog.records if r.levelno == logging.WARNING and "j9" in r.getMessage()]
    assert len(rounds) >= 3 and all("conv-999" in r.getMessage() for r in rounds)
    assert "attempt 3:" in rounds[0].getMessage() and "EndpointConnectionError" in rounds[0].getMessage()


def test_one_line_per_failed_round_and_the_traceback_only_at_debug(
    make_writer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder()
    handler.fail = lambda ctx: ValueError("the model refused\nsecond line")
    for level, traced in ((logging.INFO, False), (logging.DEBUG, True)):
        caplog.clear()
        writer = make_writer(handler)
        with caplog.at_level(level, logger="strands_s3_vectors_memory.durability._writer"):
            writer.submit(_job(f"j-{level}", conversation_id="conv-7"))
            assert writer.flush(WAIT)
        (error,) = [r for r in caplog.records if r.levelno == logging.ERROR]
        message = error.getMessage()
        assert "conv-7" in message and "ValueError: the model refused" in message and "\n" not in message
        assert (error.exc_info is not None) is traced


def test_a_job_failing_transiently_past_max_age_becomes_a_dead_letter(tmp_path: Path, make_writer: Any) -> None:
    handler = Recorder()
    handler.fail = lambda ctx: _throttled()
    salvaged: list[str] = []
    writer = make_writer(handler, max_age=0.2, max_delay=0.02,
                         on_dead_letter=lambda job, exc: salvaged.append(job.job_id))
    writer.submit(_job("old"))
    assert writer.flush(WAIT)
    stats = writer.stats
    assert (stats.dead_lettered, stats.failed, stats.pending) == (1, 1, 0) and salvaged == ["old"]
    assert len(handler.calls) > 1  # retried until then
    (letter,) = (tmp_path / "spool").rglob("dead/*.json")
    assert set(_spooled(tmp_path / "spool")) == {"old"} and json.loads(letter.read_text())["job_id"] == "old"


def test_a_failed_job_is_replayed_by_the_next_start(tmp_path: Path, make_writer: Any) -> None:
    failing = Recorder()
    failing.fail = lambda ctx: ValueError("bad request")
    first = make_writer(failing)
    first.submit(_job("j1", transcript="keep me"))
    assert first.flush(WAIT)
    first.close(WAIT)

    succeeding = Recorder()
    second = make_writer(succeeding)
    assert second.replay_spool() == 1
    assert second.flush(WAIT)
    assert succeeding.calls[0][:2] == ("j1", {"conversation_id": "conv-j1", "transcript": "keep me"})
    assert _spooled(tmp_path / "spool") == {}
    assert second.stats.replayed == 1


def test_replay_spool_requeues_this_writers_own_failed_jobs(tmp_path: Path, make_writer: Any) -> None:
    handler = Recorder()
    outage = threading.Event()
    outage.set()
    handler.fail = lambda ctx: ValueError("down") if outage.is_set() else None
    writer = make_writer(handler)
    writer.submit(_job("j1"))
    assert writer.flush(WAIT)
    assert writer.stats.failed == 1

    outage.clear()
    assert writer.replay_spool() == 1
    assert writer.flush(WAIT)
    assert handler.ids() == ["j1", "j1"]
    assert writer.stats.succeeded == 1
    assert _spooled(tmp_path / "spool") == {}


# -------------------------------------------------------------------------------------- replacement


def test_same_job_id_replaces_the_pending_job_in_queue_and_spool(tmp_path: Path, make_writer: Any) -> None:
    gate = threading.Event()
    handler = Recorder(gate=gate)
    writer = make_writer(handler, workers=1)

    writer.submit(_job("blocker"))
    assert handler.started.wait(WAIT)
    writer.submit(_job("conv", transcript="first version"))
    writer.submit(_job("conv", transcript="second version"))
    assert _spooled(tmp_path / "spool")["conv"]["transcript"] == "second version"
    assert writer.stats.pending == 2

    gate.set()
    assert writer.flush(WAIT)
    assert handler.ids() == ["blocker", "conv"]
    assert handler.calls[1][1]["transcript"] == "second version"
    stats = writer.stats
    assert (stats.submitted, stats.replaced, stats.succeeded) == (3, 1, 2)


def test_resubmitting_a_running_job_runs_the_new_version_after_it(tmp_path: Path, make_writer: Any) -> None:
    gates = {"v1": threading.Event(), "v2": threading.Event()}
    started = {"v1": threading.Event(), "v2": threading.Event()}
    seen: list[str] = []

    def handler(ctx: JobContext) -> None:
        version = ctx.job.payload["transcript"]
        started[version].set()
        assert gates[version].wait(WAIT)
        ctx.checkpoint({**ctx.job.payload, "summary": f"summary of {version}"})
        seen.append(version)

    writer = make_writer(handler, workers=2)
    writer.submit(_job("conv", transcript="v1"))
    assert started["v1"].wait(WAIT)
    writer.submit(_job("conv", transcript="v2"))
    assert _spooled(tmp_path / "spool")["conv"]["transcript"] == "v2"

    gates["v1"].set()  # v1 checkpoints and succeeds: neither may touch v2's spool file
    assert started["v2"].wait(WAIT)
    assert _spooled(tmp_path / "spool") == {"conv": {"conversation_id": "conv-conv", "transcript": "v2"}}
    assert seen == ["v1"]

    gates["v2"].set()
    assert writer.flush(WAIT)
    assert seen == ["v1", "v2"]
    assert _spooled(tmp_path / "spool") == {}


def test_one_job_id_never_runs_concurrently(make_writer: Any) -> None:
    active: Counter[str] = Counter()
    overlaps: list[str] = []
    lock = threading.Lock()

    def handler(ctx: JobContext) -> None:
        with lock:
            active[ctx.job.job_id] += 1
            if active[ctx.job.job_id] > 1:
                overlaps.append(ctx.job.job_id)
        time.sleep(0.002)
        with lock:
            active[ctx.job.job_id] -= 1

    writer = make_writer(handler, workers=4)
    for i in range(60):
        writer.submit(_job(f"conv-{i % 3}", transcript=str(i)))
    assert writer.flush(WAIT)
    assert overlaps == []


def test_one_groups_burst_never_holds_the_workers_and_runs_one_at_a_time(tmp_path: Path, make_writer: Any) -> None:
    """A user with more jobs ready than workers (three replayed from the spool, known only by their
    file until read, two submitted now): another user's job runs while the first user's first job is
    still running, and the first user's jobs run one at a time, each once."""
    leftover = make_writer(Recorder())
    leftover.close(WAIT)
    for i in range(3):  # a closed writer spools them for the next start
        leftover.submit(_job(f"a{i}", user="alice"))
    gate = threading.Event()
    lock = threading.Lock()
    running: Counter[str] = Counter()
    most: Counter[str] = Counter()
    ran: list[str] = []
    alice_running_when_bob_ran: list[int] = []

    def handler(ctx: JobContext) -> None:
        user = ctx.job.payload["user"]
        with lock:
            running[user] += 1
            most[user] = max(most[user], running[user])
            if user == "bob":
                alice_running_when_bob_ran.append(running["alice"])
        if user == "alice":
            gate.wait(WAIT)  # the first of alice's jobs holds until bob's has run
        else:
            gate.set()
        with lock:
            running[user] -= 1
            ran.append(ctx.job.job_id)

    writer = make_writer(handler, workers=2, group=lambda job: job.payload["user"])
    assert writer.replay_spool() == 3
    for i in range(3, 5):
        writer.submit(_job(f"a{i}", user="alice"))
    writer.submit(_job("b0", user="bob"))
    assert writer.flush(WAIT)
    assert ran[0] == "b0"  # not behind alice's five: it ran while her first one was still running
    assert alice_running_when_bob_ran == [1]
    assert most["alice"] == 1  # never two of hers at once
    assert sorted(ran) == ["a0", "a1", "a2", "a3", "a4", "b0"]
    assert ran.index("a3") < ran.index("a4")  # a skipped job keeps its place


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(["a", "b", "c", "d"]), st.integers(0, 99)), min_size=1, max_size=25))
def test_last_submission_wins_for_every_job_id(tmp_path: Path, submissions: list[tuple[str, int]]) -> None:
    """Whatever the interleaving, the last version of every id is what is finally written."""
    final: dict[str, int] = {}
    lock = threading.Lock()

    def handler(ctx: JobContext) -> None:
        with lock:
            final[ctx.job.job_id] = ctx.job.payload["version"]

    spool = tmp_path / f"spool-{time.monotonic_ns()}"
    writer = BackgroundWriter(handler, spool_dir=spool, flush_at_exit=False, workers=2)
    try:
        for job_id, version in submissions:
            writer.submit(_job(job_id, version=version))
        assert writer.flush(WAIT)
    finally:
        writer.close(WAIT)
    expected = {job_id: version for job_id, version in submissions}
    assert final == expected
    assert _spooled(spool) == {}


# --------------------------------------------------------------------------------------- checkpoint


def test_checkpoint_persists_and_a_replay_sees_the_checkpointed_payload(tmp_path: Path, make_writer: Any) -> None:
    def summarize_then_fail(ctx: JobContext) -> None:
        ctx.checkpoint({**ctx.job.payload, "summary": "user likes Strands"})
        assert ctx.job.payload["summary"] == "user likes Strands"
        raise _throttled("AccessDeniedException", 403)

    first = make_writer(summarize_then_fail)
    first.submit(_job("j1", transcript="long transcript"))
    assert first.flush(WAIT)
    assert _spooled(tmp_path / "spool")["j1"]["summary"] == "user likes Strands"
    first.close(WAIT)

    seen = Recorder()
    second = make_writer(seen)
    assert second.replay_spool() == 1
    assert second.flush(WAIT)
    assert seen.calls[0][1] == {
        "conversation_id": "conv-j1",
        "transcript": "long transcript",
        "summary": "user likes Strands",
    }


def test_a_retry_sees_the_checkpointed_payload(make_writer: Any) -> None:
    summaries: list[int] = []

    def handler(ctx: JobContext) -> None:
        if "summary" not in ctx.job.payload:
            summaries.append(1)  # the expensive model call
            ctx.checkpoint({**ctx.job.payload, "summary": "s"})
        if ctx.job.attempts < 2:
            raise _throttled()

    writer = make_writer(handler)
    writer.submit(_job("j1"))
    assert writer.flush(WAIT)
    assert summaries == [1]
    assert writer.stats.succeeded == 1


def test_checkpoint_rejects_a_payload_that_cannot_be_spooled(make_writer: Any) -> None:
    errors: list[BaseException] = []

    def handler(ctx: JobContext) -> None:
        try:
            ctx.checkpoint({"summary": object()})
        except (TypeError, ValueError) as exc:
            errors.append(exc)

    writer = make_writer(handler)
    writer.submit(_job("j1"))
    assert writer.flush(WAIT)
    assert len(errors) == 1


# ------------------------------------------------------------------------------------ flush / speed


def test_a_handler_that_raises_systemexit_fails_the_job_instead_of_hanging(make_writer: Any) -> None:
    def handler(ctx: JobContext) -> None:
        sys.exit(1)

    writer = make_writer(handler)
    writer.submit(_job("j1"))
    assert writer.flush(WAIT)
    assert writer.stats.failed == 1


def test_flush_returns_false_on_timeout_and_true_once_done(make_writer: Any) -> None:
    gate = threading.Event()
    writer = make_writer(Recorder(gate=gate))
    writer.submit(_job("j1"))

    started = time.monotonic()
    assert writer.flush(0.05) is False
    assert time.monotonic() - started < 1.0
    gate.set()
    assert writer.flush(WAIT) is True
    assert writer.flush(0) is True


def test_flush_waits_for_jobs_that_end_in_failure_too(make_writer: Any) -> None:
    handler = Recorder()
    handler.fail = lambda ctx: RuntimeError("boom")
    writer = make_writer(handler)
    for i in range(5):
        writer.submit(_job(f"j{i}"))
    assert writer.flush(WAIT)
    assert writer.stats.failed == 5


def test_submit_returns_fast_while_the_handler_is_slow(make_writer: Any) -> None:
    gate = threading.Event()
    handler = Recorder(gate=gate)
    writer = make_writer(handler)

    durations = []
    for i in range(50):
        started = time.perf_counter()
        writer.submit(_job(f"j{i}", transcript="x" * 2000))
        durations.append(time.perf_counter() - started)
    assert handler.started.is_set() or handler.started.wait(WAIT)
    # The gate stays shut until after the loop, so a submit that waited for the handler would never
    # return; what a submit costs is spooling the job (an fsync), which a loaded machine can stretch
    # once in a while: the median is the cost, the maximum only bounds the outliers.
    assert statistics.median(durations) < 0.02, statistics.median(durations)
    assert max(durations) < 1.0, max(durations)
    assert handler.ids() == []  # nothing finished: the handler is still blocked
    gate.set()
    assert writer.flush(WAIT)
    assert len(handler.ids()) == 50


# ----------------------------------------------------------------------------------------- bounded


def test_memory_is_bounded_and_overflow_waits_on_disk_without_loss(tmp_path: Path, make_writer: Any) -> None:
    gate = threading.Event()
    handler = Recorder(gate=gate)
    writer = make_writer(handler, max_pending=5, workers=2)

    for i in range(50):
        writer.submit(_job(f"j{i}", transcript=f"body {i}"))
        assert writer.stats.in_memory <= 5
    stats = writer.stats
    assert stats.pending == 50
    assert stats.in_memory == 5
    assert stats.overflow == 45
    assert len(_spooled(tmp_path / "spool")) == 50

    gate.set()
    assert writer.flush(WAIT)
    assert sorted(handler.ids()) == sorted(f"j{i}" for i in range(50))
    assert all(call[1]["transcript"] == f"body {call[0][1:]}" for call in handler.calls)
    assert _spooled(tmp_path / "spool") == {}


def test_without_a_spool_nothing_is_dropped_beyond_max_pending(
    make_writer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    handler = Recorder(gate=gate)
    writer = make_writer(handler, spool_dir=None, max_pending=3)
    with caplog.at_level(logging.WARNING, logger="strands_s3_vectors_memory.durability._writer"):
        for i in range(12):
            writer.submit(_job(f"j{i}"))
    assert any("max_pending=3" in r.getMessage() for r in caplog.records)
    gate.set()
    assert writer.flush(WAIT)
    assert sorted(handler.ids()) == sorted(f"j{i}" for i in range(12))


# ------------------------------------------------------------------------------ unwritable spool


def test_an_unusable_spool_dir_degrades_to_memory_with_a_warning(
    tmp_path: Path, make_writer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_dir = tmp_path / "regular-file"
    not_a_dir.write_text("")
    handler = Recorder()
    with caplog.at_level(logging.WARNING, logger="strands_s3_vectors_memory.durability._writer"):
        writer = make_writer(handler, spool_dir=not_a_dir / "spool")
        writer.submit(_job("j1"))
        assert writer.flush(WAIT)
    assert handler.ids() == ["j1"]
    assert any("degraded durability" in r.getMessage() for r in caplog.records)
    assert writer.stats.spooled == 0


def test_a_full_disk_degrades_to_memory_and_recovers(
    tmp_path: Path, make_writer: Any, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    handler = Recorder(gate=gate)
    writer = make_writer(handler)
    real_replace = os.replace

    def disk_full(src: Any, dst: Any, **kwargs: Any) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "replace", disk_full)
    with caplog.at_level(logging.WARNING, logger="strands_s3_vectors_memory.durability._writer"):
        writer.submit(_job("j1"))  # must not raise into the caller
        writer.submit(_job("j2"))
    assert [r.levelno for r in caplog.records].count(logging.WARNING) == 1  # once per bad spell
    assert "degraded durability" in caplog.records[0].getMessage()
    assert _spooled(tmp_path / "spool") == {}
    assert not list((tmp_path / "spool").rglob("*.tmp"))  # no half-written leftovers
    assert writer.stats.spool_errors == 2

    monkeypatch.setattr(os, "replace", real_replace)
    writer.submit(_job("j3"))
    assert set(_spooled(tmp_path / "spool")) == {"j3"}
    gate.set()
    assert writer.flush(WAIT)
    assert sorted(handler.ids()) == ["j1", "j2", "j3"]


def test_a_payload_that_is_not_json_is_still_processed(make_writer: Any) -> None:
    handler = Recorder()
    writer = make_writer(handler)
    writer.submit(WriteJob("j1", {"when": object()}, time.time()))
    assert writer.flush(WAIT)
    assert handler.ids() == ["j1"]


# ----------------------------------------------------------------------------- multiple processes


def test_sigkilled_process_leaves_its_spool_and_a_new_process_replays_exactly_once(
    tmp_path: Path, make_writer: Any
) -> None:
    spool = tmp_path / "spool"
    _killed_child_spool(spool, 12, "dead")
    assert set(_spooled(spool)) == {f"dead-{i}" for i in range(12)}

    handler = Recorder()
    writer = make_writer(handler, spool_dir=spool, max_pending=4)
    assert writer.replay_spool() == 12
    assert writer.flush(WAIT)
    assert Counter(handler.ids()) == Counter({f"dead-{i}": 1 for i in range(12)})
    assert handler.calls[0][1]["conversation_id"].startswith("dead-conv-")
    assert _spooled(spool) == {}
    assert writer.replay_spool() == 0
    writer.close(WAIT)
    leftovers = sorted(p.relative_to(spool).as_posix() for p in spool.rglob("*"))
    assert leftovers == ["claims", "owners"]  # the dead writer's claim and lock are gone, ours too


def test_flush_at_exit_completes_jobs_before_the_process_ends(tmp_path: Path) -> None:
    spool, markers = tmp_path / "spool", tmp_path / "markers"
    markers.mkdir()
    proc = _run_child("exit", str(spool), "6", "bye", str(markers))
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert out.strip() == "SUBMITTED"
    assert sorted(p.name for p in markers.iterdir()) == sorted(f"bye-{i}" for i in range(6))
    assert _spooled(spool) == {}


def test_a_hung_handler_cannot_keep_the_interpreter_alive(tmp_path: Path) -> None:
    spool = tmp_path / "spool"
    started = time.monotonic()
    proc = _run_child("hung-exit", str(spool), "3", "hung")
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert time.monotonic() - started < 15  # exit_timeout=0.5 (+ interpreter start-up)
    assert set(_spooled(spool)) == {"hung-0", "hung-1", "hung-2"}  # kept for the next start


def test_two_processes_replaying_one_spool_never_run_a_job_twice(tmp_path: Path) -> None:
    spool, log = tmp_path / "spool", tmp_path / "runs.log"
    _killed_child_spool(spool, 15, "a", "b")

    replayers = [_run_child("replay", str(spool), str(log)) for _ in range(2)]
    for proc in replayers:
        _expect_line(proc, "READY")
    for proc in replayers:
        assert proc.stdin is not None
        proc.stdin.write("go\n")
        proc.stdin.flush()
    counts = []
    for proc in replayers:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        counts.append(int(out.strip()))

    runs = Counter(line.split()[1] for line in log.read_text().splitlines())
    expected = {f"{p}-{i}" for p in "ab" for i in range(15)}
    assert set(runs) == expected
    assert max(runs.values()) == 1
    assert sum(counts) == 30
    assert _spooled(spool) == {}


@pytest.mark.parametrize("round_", range(4))
def test_concurrent_replays_in_one_spool_split_the_work_without_duplicates(
    tmp_path: Path, make_writer: Any, round_: int
) -> None:
    spool = tmp_path / "spool"
    for owner in range(3):  # three writers that failed their jobs and went away
        failing = Recorder()
        failing.fail = lambda ctx: ValueError("down")
        gone = make_writer(failing)
        for i in range(10):
            gone.submit(_job(f"o{owner}-{i}"))
        assert gone.flush(WAIT)
        gone.close(WAIT)

    runs: Counter[str] = Counter()
    lock = threading.Lock()

    def handler(ctx: JobContext) -> None:
        with lock:
            runs[ctx.job.job_id] += 1

    replayers = [make_writer(handler) for _ in range(3)]
    barrier = threading.Barrier(len(replayers))
    counts: list[int] = []

    def replay(writer: BackgroundWriter) -> None:
        barrier.wait(WAIT)
        counts.append(writer.replay_spool())

    threads = [threading.Thread(target=replay, args=(w,)) for w in replayers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert all(w.flush(WAIT) for w in replayers)
    assert sum(counts) == 30
    assert set(runs) == {f"o{o}-{i}" for o in range(3) for i in range(10)}
    assert max(runs.values()) == 1
    assert _spooled(spool) == {}


def test_replay_never_takes_jobs_from_a_live_writer(tmp_path: Path, make_writer: Any) -> None:
    gate = threading.Event()
    busy = Recorder(gate=gate)
    live = make_writer(busy, workers=1)
    for i in range(4):
        live.submit(_job(f"live-{i}"))

    other = Recorder()
    peer = make_writer(other)
    assert peer.replay_spool() == 0
    gate.set()
    assert live.flush(WAIT)
    assert peer.flush(WAIT)
    assert other.ids() == []
    assert sorted(busy.ids()) == [f"live-{i}" for i in range(4)]


def test_a_replayed_job_older_than_the_pending_one_is_dropped(tmp_path: Path, make_writer: Any) -> None:
    failing = Recorder()
    failing.fail = lambda ctx: ValueError("down")
    gone = make_writer(failing)
    gone.submit(WriteJob("conv", {"v": "old"}, created_at=100.0))
    assert gone.flush(WAIT)
    gone.close(WAIT)

    gate = threading.Event()
    handler = Recorder(gate=gate)
    writer = make_writer(handler, workers=1)
    writer.submit(_job("blocker"))
    writer.submit(WriteJob("conv", {"v": "new"}, created_at=200.0))
    assert writer.replay_spool() == 0
    gate.set()
    assert writer.flush(WAIT)
    assert [call[1] for call in handler.calls if call[0] == "conv"] == [{"v": "new"}]
    assert _spooled(tmp_path / "spool") == {}


def test_an_unreadable_spool_file_is_quarantined_not_deleted(
    tmp_path: Path, make_writer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    failing = Recorder()
    failing.fail = lambda ctx: ValueError("down")
    gone = make_writer(failing)
    gone.submit(_job("j1"))
    gone.submit(_job("j2"))
    assert gone.flush(WAIT)
    gone.close(WAIT)
    files = sorted((tmp_path / "spool").rglob("*.json"))
    broken = next(p for p in files if json.loads(p.read_text())["job_id"] == "j1")
    broken.write_text("{ not json")

    handler = Recorder()
    writer = make_writer(handler)
    with caplog.at_level(logging.ERROR, logger="strands_s3_vectors_memory.durability._writer"):
        assert writer.replay_spool() == 2
        assert writer.flush(WAIT)
    assert handler.ids() == ["j2"]
    assert writer.stats.failed == 1
    quarantined = list((tmp_path / "spool" / "corrupt").iterdir())
    assert [p.read_text() for p in quarantined] == ["{ not json"]
    assert any("unreadable" in r.getMessage() for r in caplog.records)


# ----------------------------------------------------------------------------------------- closing


def test_close_drains_then_later_submissions_are_kept_for_the_next_start(tmp_path: Path, make_writer: Any) -> None:
    handler = Recorder()
    writer = make_writer(handler)
    writer.submit(_job("j1"))
    writer.close(WAIT)
    assert handler.ids() == ["j1"]
    assert writer.stats.succeeded == 1

    writer.submit(_job("late"))  # after close: never raises, spooled for the next start
    assert handler.ids() == ["j1"]
    assert writer.flush(0.01) is True  # late submissions are not pending on a closed writer
    nxt = Recorder()
    successor = make_writer(nxt)
    successor.replay_spool()
    assert successor.flush(WAIT)
    assert nxt.ids() == ["late"]


def test_bad_settings_are_refused() -> None:
    with pytest.raises(ConfigurationError):
        BackgroundWriter(lambda ctx: None, spool_dir=None, max_pending=0, flush_at_exit=False)
    with pytest.raises(ConfigurationError):
        BackgroundWriter(lambda ctx: None, spool_dir=None, base_delay=-1, flush_at_exit=False)


def test_closing_an_idle_writer_at_once_releases_its_claim_without_a_running_handler_warning(
    tmp_path: Path, make_writer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    handler = Recorder()
    writer = make_writer(handler, workers=4)
    writer.submit(_job("j1"))
    assert writer.flush(WAIT)
    with caplog.at_level(logging.WARNING, logger="strands_s3_vectors_memory.durability._writer"):
        writer.close(timeout=0)  # what the CLI's replay does once its flush is over
    assert not [r for r in caplog.records if "still running" in r.getMessage()]
    assert not list((tmp_path / "spool" / "claims").iterdir())  # released: nothing kept "until exit"


def test_closing_with_a_handler_running_keeps_the_claim_and_says_so(
    tmp_path: Path, make_writer: Any, caplog: pytest.LogCaptureFixture
) -> None:
    gate = threading.Event()
    handler = Recorder(gate=gate)
    writer = make_writer(handler)
    writer.submit(_job("stuck"))
    assert handler.started.wait(WAIT)
    with caplog.at_level(logging.WARNING, logger="strands_s3_vectors_memory.durability._writer"):
        writer.close(timeout=0.1)
    gate.set()
    assert [r for r in caplog.records if "a handler is still running" in r.getMessage()]
    assert list((tmp_path / "spool" / "claims").iterdir())
