"""The write spool's files: format, claims, dead letters, and what the CLI sees from outside a writer."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest

from strands_s3_vectors_memory.durability._spool import (
    Spool,
    dead_letters,
    default_spool_dir,
    drop_dead_letter,
    pending_files,
    retry_dead_letter,
)
from strands_s3_vectors_memory.durability._spool_format import WriteJob, decode_job, encode_job, job_key
from strands_s3_vectors_memory.durability._writer import BackgroundWriter, JobContext


def _job(job_id: str = "sum-abc", **payload: object) -> WriteJob:
    return WriteJob(job_id=job_id, payload={"conversation_id": "c1", **payload}, created_at=time.time())


def test_a_job_survives_encoding_with_its_count_of_failed_rounds() -> None:
    job = WriteJob("sum-1", {"transcript": "USER: héllo ✓"}, created_at=123.5, rounds=2)
    again = decode_job(encode_job(job))
    assert again == WriteJob("sum-1", {"transcript": "USER: héllo ✓"}, created_at=123.5, rounds=2)


def test_files_written_by_earlier_versions_still_decode() -> None:
    old = {"format": 1, "job_id": "sum-1", "kind": "conversation", "created_at": 5.0, "payload": {"x": 1}}
    job = decode_job(json.dumps(old).encode())
    assert job.job_id == "sum-1" and job.rounds == 0 and job.payload == {"x": 1}


@pytest.mark.parametrize("record", [
    {"format": 2, "job_id": "a", "created_at": 1.0, "payload": {}},
    {"format": 1, "job_id": 7, "created_at": 1.0, "payload": {}},
    {"format": 1, "job_id": "a", "created_at": "now", "payload": {}},
    {"format": 1, "job_id": "a", "created_at": 1.0, "payload": []},
    {"format": 1, "job_id": "a", "created_at": 1.0, "payload": {}, "rounds": -1},
    ["not", "a", "job"],
])
def test_anything_else_is_refused_as_not_a_job(record: object) -> None:
    with pytest.raises(ValueError):
        decode_job(json.dumps(record).encode())


def test_a_payload_json_cannot_hold_is_refused_before_anything_is_written() -> None:
    with pytest.raises(ValueError):
        encode_job(_job(score=float("nan")))


def test_default_spool_dirs_are_safe_file_names(tmp_path: Path) -> None:
    assert default_spool_dir(tmp_path, "assistant") == tmp_path / "spool" / "assistant"
    assert default_spool_dir(tmp_path, "../../etc") == tmp_path / "spool" / "etc"
    assert default_spool_dir(tmp_path, "...").name == "agent"
    assert default_spool_dir(tmp_path, "café bot").name == "caf_bot"


def test_a_live_spools_files_are_seen_as_owned_and_a_released_ones_as_adoptable(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    key = job_key("sum-1")
    spool.write(key, encode_job(_job("sum-1")))
    (pending,) = pending_files(tmp_path)
    assert pending.owner_alive and pending.path == spool.path(key)
    spool.remove(key)
    spool.write(job_key("sum-2"), encode_job(_job("sum-2")))
    spool.release()  # the process ends with a job still pending
    (pending,) = pending_files(tmp_path)
    assert not pending.owner_alive
    heir = Spool(tmp_path)
    adopted: list[str] = []
    heir.adopt_dead(lambda staged, key: adopted.append(decode_job(staged.read_bytes()).job_id))
    assert adopted == ["sum-2"]
    other = Spool(tmp_path)
    other.adopt_dead(lambda staged, key: adopted.append("twice"))
    assert adopted == ["sum-2"]  # each file is claimed by exactly one replayer


def test_a_buried_job_is_a_dead_letter_that_can_be_retried_or_dropped(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    key = job_key("sum-1")
    job = _job("sum-1", transcript="USER: hi")
    spool.write(key, encode_job(job))
    buried = spool.bury(key, WriteJob(job.job_id, job.payload, job.created_at, rounds=3), ValueError("bad model"))
    assert not spool.path(key).exists() and buried.exists()
    (letter,) = dead_letters(tmp_path)
    assert letter.key == key and letter.job.rounds == 3 and letter.error == "ValueError: bad model"
    assert letter.dead_at == pytest.approx(time.time(), abs=60)
    spool.release()

    retry_dead_letter(tmp_path, key)
    assert dead_letters(tmp_path) == []
    ran: list[WriteJob] = []

    def handler(context: JobContext) -> None:
        ran.append(context.job)

    with BackgroundWriter(handler, spool_dir=tmp_path, flush_at_exit=False) as writer:
        assert writer.replay_spool() == 1 and writer.flush(10)
    assert [j.job_id for j in ran] == ["sum-1"] and ran[0].rounds == 0  # a fresh start, stored once

    spool = Spool(tmp_path)
    spool.write(key, encode_job(job))
    spool.bury(key, job, "gave up")
    drop_dead_letter(tmp_path, key)
    assert dead_letters(tmp_path) == []


def test_an_unreadable_file_is_quarantined_never_deleted(tmp_path: Path) -> None:
    spool = Spool(tmp_path)
    path = spool.path(job_key("x"))
    path.write_bytes(b"{not json")
    moved = spool.quarantine(path)
    assert moved is not None and moved.read_bytes() == b"{not json" and moved.parent.name == "corrupt"
