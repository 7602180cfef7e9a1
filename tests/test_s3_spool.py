"""The spool on S3: durable before submit returns, one runner per job across instances, no lost version.

Offline on moto's S3 (see :mod:`s3_spool_support` for what moto implements and what the race tests
add). An "instance" is a writer with its own S3 spool claim; a killed one is an
:meth:`~strands_s3_vectors_memory.durability._s3_spool.S3Spool.abandon` ed claim whose lease runs out, as a Lambda
environment that vanishes leaves it; the SIGKILL of a real process is in ``test_s3_spool_plugin.py``.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from s3_spool_support import BUCKET, atomic_moto, job_objects, keys_below, offline_s3
from strands_s3_vectors_memory.durability import _s3_spool_admin as s3_spool_admin
from strands_s3_vectors_memory.durability import _s3_spool_layout as s3_spool_layout
from strands_s3_vectors_memory.durability._s3_location import S3Location, spool_location
from strands_s3_vectors_memory.durability._s3_spool import S3Spool
from strands_s3_vectors_memory.durability._spool_backend import SpoolConflictError
from strands_s3_vectors_memory.durability._spool_format import WriteJob, decode_job, encode_job, job_key
from strands_s3_vectors_memory.durability._writer import BackgroundWriter, JobContext
from strands_s3_vectors_memory.errors import ConfigurationError
from support import writer_factory

WAIT = 30.0
PREFIX = "spools/assistant"
URL = f"s3://{BUCKET}/{PREFIX}"
LOCATION = S3Location(BUCKET, PREFIX)
LEASE = 2.0  # seconds; S3's clocks have a one-second grain, so a silent owner is dead LEASE + 1..2 s later


@pytest.fixture
def s3(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    monkeypatch.setattr(s3_spool_layout, "DEFAULT_LEASE_SECONDS", LEASE)
    with offline_s3(monkeypatch) as client:
        yield client


@pytest.fixture
def make_writer(s3: Any) -> Iterator[Callable[..., BackgroundWriter]]:
    """Writers ("instances") on the S3 spool, closed at teardown."""
    with writer_factory(URL, WAIT) as build:
        yield build


class Runs:
    """A handler recording what it ran (thread-safe), optionally held at a gate."""

    def __init__(self, gate: threading.Event | None = None) -> None:
        self.gate = gate
        self.started = threading.Event()
        self.lock = threading.Lock()
        self.jobs: list[WriteJob] = []

    def __call__(self, context: JobContext) -> None:
        self.started.set()
        if self.gate is not None:
            assert self.gate.wait(WAIT), "test gate never opened"
        with self.lock:
            self.jobs.append(context.job)

    def ids(self) -> list[str]:
        with self.lock:
            return [job.job_id for job in self.jobs]


def _job(job_id: str, **payload: Any) -> WriteJob:
    return WriteJob(job_id=job_id, payload={"conversation_id": job_id, **payload}, created_at=time.time())


def _instance(jobs: list[WriteJob]) -> S3Spool:
    """An instance that spooled ``jobs`` and is alive (it renews its lease) until it is abandoned."""
    spool = S3Spool(LOCATION)
    for job in jobs:
        spool.publish(job_key(job.job_id), lambda _theirs, job=job: job)
    return spool


def _after_the_lease() -> None:
    time.sleep(LEASE + 2.5)


# ----------------------------------------------------------------------------- where a spool is


def test_the_setting_moves_default_spools_to_s3_and_leaves_explicit_local_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    data_dir = tmp_path / "data"
    default = data_dir / "spool" / "assistant"
    monkeypatch.delenv("S3_VECTORS_MEMORY_SPOOL", raising=False)
    assert spool_location(default, data_dir) == default.resolve()
    monkeypatch.setenv("S3_VECTORS_MEMORY_SPOOL", "s3://memory-spool/prod/")
    assert spool_location(default, data_dir) == S3Location("memory-spool", "prod/assistant")
    assert spool_location(tmp_path / "elsewhere", data_dir) == (tmp_path / "elsewhere").resolve()
    # A plugin's spool_dir="s3://..." reaches the runtime folded into a Path; it is read back intact.
    assert spool_location(Path("s3://memory-spool/team/bot"), data_dir) == S3Location("memory-spool", "team/bot")
    with pytest.raises(ConfigurationError):
        S3Location.parse("s3://Not_A_Bucket/x")


# ----------------------------------------------------------------------------- one instance


def test_a_job_is_in_the_bucket_before_submit_returns_and_deleted_once_stored(
    s3: Any, make_writer: Callable[..., BackgroundWriter]
) -> None:
    gate = threading.Event()
    runs = Runs(gate)
    writer = make_writer(runs)
    job = _job("sum-1", transcript="USER: my locker code is 2468")
    writer.submit(job)
    (spooled,) = job_objects(s3, PREFIX)  # durable before the handler even ran
    assert spooled.job_id == "sum-1" and spooled.payload == job.payload
    assert keys_below(s3, f"{PREFIX}/claims") == [f"{job_key('sum-1')}.json"]
    gate.set()
    assert writer.flush(WAIT)
    assert runs.ids() == ["sum-1"]
    assert job_objects(s3, PREFIX) == [] and keys_below(s3, f"{PREFIX}/claims") == []


def test_a_checkpoint_is_in_the_bucket_so_a_replay_does_not_repeat_the_work(
    s3: Any, make_writer: Callable[..., BackgroundWriter]
) -> None:
    def summarise_then_fail(context: JobContext) -> None:
        context.checkpoint({**context.job.payload, "summary": "the expensive part"})
        raise ValueError("put_vectors refused")  # not retryable: the round ends, the job stays

    writer = make_writer(summarise_then_fail)
    writer.submit(_job("sum-1"))
    assert writer.flush(WAIT) and writer.stats.failed == 1
    (spooled,) = job_objects(s3, PREFIX)
    assert spooled.payload["summary"] == "the expensive part" and spooled.rounds == 1


def test_an_unreachable_bucket_degrades_to_memory_with_a_warning(
    s3: Any, make_writer: Callable[..., BackgroundWriter], caplog: pytest.LogCaptureFixture
) -> None:
    runs = Runs()
    with caplog.at_level(logging.WARNING, logger="strands_s3_vectors_memory.durability._writer"):
        writer = make_writer(runs, spool_dir="s3://no-such-spool-bucket/x")
        writer.submit(_job("sum-1"))
        assert writer.flush(WAIT)
    assert runs.ids() == ["sum-1"]
    assert "unusable" in caplog.text and "degraded durability" in caplog.text


# ----------------------------------------------------------------------------- several instances


def test_two_instances_racing_for_a_dead_instances_jobs_run_each_job_once(
    s3: Any, make_writer: Callable[..., BackgroundWriter], monkeypatch: pytest.MonkeyPatch
) -> None:
    atomic_moto(monkeypatch)
    jobs = [_job(f"sum-{i}") for i in range(16)]
    owner = _instance(jobs)
    first, second = Runs(), Runs()
    a, b = make_writer(first), make_writer(second)
    assert a.replay_spool() == 0  # a live instance's jobs are its own
    owner.abandon()  # killed
    _after_the_lease()
    barrier = threading.Barrier(2)
    replayed: list[int] = []

    def replay(writer: BackgroundWriter) -> None:
        barrier.wait()
        replayed.append(writer.replay_spool())

    threads = [threading.Thread(target=replay, args=(w,)) for w in (a, b)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(WAIT)
    assert a.flush(WAIT) and b.flush(WAIT)
    assert sum(replayed) == len(jobs)
    assert sorted(first.ids() + second.ids()) == sorted(job.job_id for job in jobs)  # each ran once
    assert a.stats.failed == b.stats.failed == 0
    assert job_objects(s3, PREFIX) == [] and keys_below(s3, f"{PREFIX}/claims") == []


def test_a_killed_instances_jobs_wait_for_its_lease_then_run_with_their_checkpoints(
    s3: Any, make_writer: Callable[..., BackgroundWriter]
) -> None:
    jobs = [_job("sum-1"), _job("sum-2")]
    killed = _instance(jobs)
    # Mid-job: it had summarised sum-1 (checkpointed) when it was killed.
    killed.read(killed.path(job_key("sum-1")))
    killed.write(job_key("sum-1"), encode_job(replace(jobs[0], payload={**jobs[0].payload, "summary": "S"})))
    runs = Runs()
    heir = make_writer(runs)
    killed.abandon()
    assert heir.replay_spool() == 0  # its lease still runs: it may only be slow
    _after_the_lease()
    assert heir.replay_spool() == 2 and heir.flush(WAIT)
    by_id = {job.job_id: job for job in runs.jobs}
    assert sorted(by_id) == ["sum-1", "sum-2"] and by_id["sum-1"].payload["summary"] == "S"
    assert job_objects(s3, PREFIX) == []


def test_a_slow_owner_whose_lease_ran_out_cannot_overwrite_or_delete_the_adopters_version(
    s3: Any, make_writer: Callable[..., BackgroundWriter]
) -> None:
    job = _job("sum-1")
    slow = _instance([job])
    slow.abandon()  # not dead, only paused past its lease (a GC pause, a frozen Lambda)
    key = job_key("sum-1")
    gate = threading.Event()
    runs = Runs(gate)
    heir = make_writer(runs)
    _after_the_lease()
    assert heir.replay_spool() == 1 and runs.started.wait(WAIT)
    # The adopter has the job now; it is rewritten (a failed round, a newer version): the old owner
    # wakes up and its progress and its delete are both refused, never applied to the newer version.
    newer = replace(job, payload={**job.payload, "turns": 2})
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/jobs/{key}.json", Body=encode_job(newer))
    with pytest.raises(SpoolConflictError):
        slow.write(key, encode_job(replace(job, payload={**job.payload, "summary": "stale"})))
    slow.remove(key)
    (still,) = job_objects(s3, PREFIX)
    assert still.payload == newer.payload
    gate.set()
    assert heir.flush(WAIT) and runs.ids() == ["sum-1"]


def test_a_conversation_re_ended_on_another_instance_merges_with_the_pending_version(
    s3: Any, make_writer: Callable[..., BackgroundWriter]
) -> None:
    def merge(older: WriteJob, newer: WriteJob) -> WriteJob:
        return replace(newer, payload={**newer.payload, "turns": older.payload["turns"] + newer.payload["turns"]})

    gate_a, gate_b = threading.Event(), threading.Event()
    ran_a, ran_b = Runs(gate_a), Runs(gate_b)
    a, b = make_writer(ran_a, merge=merge), make_writer(ran_b, merge=merge)
    a.submit(_job("sum-1", turns=["first"]))
    assert ran_a.started.wait(WAIT)  # instance A is storing the first part right now
    b.submit(_job("sum-1", turns=["second"]))  # the user came back, through instance B
    (spooled,) = job_objects(s3, PREFIX)
    assert spooled.payload["turns"] == ["first", "second"]  # nothing of A's version is lost
    gate_a.set()
    assert a.flush(WAIT)
    (still,) = job_objects(s3, PREFIX)  # A finished its version; it did not delete B's newer one
    assert still.payload["turns"] == ["first", "second"]
    gate_b.set()
    assert b.flush(WAIT)
    assert [j.payload["turns"] for j in ran_b.jobs] == [["first", "second"]]
    assert job_objects(s3, PREFIX) == [] and keys_below(s3, f"{PREFIX}/claims") == []


def test_a_closed_instances_leftovers_are_adopted_at_once(
    s3: Any, make_writer: Callable[..., BackgroundWriter]
) -> None:
    def refuse(_context: JobContext) -> None:
        raise ValueError("the model is down")

    first = make_writer(refuse)
    first.submit(_job("sum-1"))
    assert first.flush(WAIT) and first.stats.failed == 1
    first.close(WAIT)  # releases its claims: no lease to wait for
    runs = Runs()
    second = make_writer(runs)
    assert second.replay_spool() == 1 and second.flush(WAIT)
    assert runs.ids() == ["sum-1"] and runs.jobs[0].rounds == 1


# ----------------------------------------------------------------------------- dead letters


def test_a_job_that_keeps_failing_is_a_dead_letter_on_s3_that_can_be_retried(
    s3: Any, make_writer: Callable[..., BackgroundWriter]
) -> None:
    def refuse(_context: JobContext) -> None:
        raise ValueError("bad model")

    writer = make_writer(refuse, max_rounds=1)
    writer.submit(_job("sum-1", transcript="USER: hi"))
    assert writer.flush(WAIT) and writer.stats.dead_lettered == 1
    (letter,) = s3_spool_admin.dead_letters(LOCATION)
    assert letter.key == job_key("sum-1") and letter.error == "ValueError: bad model" and letter.job.rounds == 1
    assert job_objects(s3, PREFIX) == []
    s3_spool_admin.retry_dead_letter(LOCATION, letter.key)
    assert s3_spool_admin.dead_letters(LOCATION) == []
    (again,) = job_objects(s3, PREFIX)
    assert again.rounds == 0 and again.payload["transcript"] == "USER: hi"
    runs = Runs()
    heir = make_writer(runs)
    assert heir.replay_spool() == 1 and heir.flush(WAIT) and runs.ids() == ["sum-1"]
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/dead/{letter.key}.json",
                  Body=encode_job(letter.job, error="gave up", dead_at=1.0))
    s3_spool_admin.drop_dead_letter(LOCATION, letter.key)
    assert s3_spool_admin.dead_letters(LOCATION) == []


def test_an_unreadable_job_object_is_quarantined_never_deleted(
    s3: Any, make_writer: Callable[..., BackgroundWriter]
) -> None:
    key = job_key("sum-1")
    s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/jobs/{key}.json", Body=b"{not json")
    runs = Runs()
    writer = make_writer(runs)
    assert writer.replay_spool() == 1 and writer.flush(WAIT)
    assert runs.ids() == [] and writer.stats.failed == 1
    (moved,) = keys_below(s3, f"{PREFIX}/corrupt")
    body = s3.get_object(Bucket=BUCKET, Key=f"{PREFIX}/corrupt/{moved}")["Body"].read()
    assert body == b"{not json" and job_objects(s3, PREFIX) == []
    with pytest.raises(ValueError):
        decode_job(body)
