"""A separate process that uses the background writer, for the crash / exit / concurrency tests.

Modes (argv[1]):

``hang SPOOL N PREFIX``
    Submit N jobs whose handler never returns, print READY, then wait to be SIGKILLed.
``exit SPOOL N PREFIX MARKERS``
    Submit N jobs whose handler writes MARKERS/<job_id> after a short delay, then fall off the end
    of the script: only the atexit flush can get the jobs done.
``hung-exit SPOOL N PREFIX``
    Like ``hang`` but exit normally with ``exit_timeout=0.5``: the interpreter must still exit.
``replay SPOOL LOG``
    Print READY, wait for a line on stdin (so two replayers start together), replay the spool and
    append ``<pid> <job_id>`` to LOG for every job the handler runs; print the replay count.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

from strands_s3_vectors_memory.durability._spool_format import WriteJob
from strands_s3_vectors_memory.durability._writer import BackgroundWriter, JobContext


def _jobs(count: int, prefix: str) -> list[WriteJob]:
    return [
        WriteJob(
            job_id=f"{prefix}-{i}",
            payload={"conversation_id": f"{prefix}-conv-{i}", "transcript": f"turns of {prefix} {i}"},
            created_at=time.time(),
        )
        for i in range(count)
    ]


def _block_forever(ctx: JobContext) -> None:
    threading.Event().wait()


def _hang(spool: str, count: int, prefix: str) -> None:
    writer = BackgroundWriter(_block_forever, spool_dir=spool, flush_at_exit=False)
    for job in _jobs(count, prefix):
        writer.submit(job)
    print("READY", flush=True)
    threading.Event().wait()


def _exit(spool: str, count: int, prefix: str, markers: str) -> None:
    def handler(ctx: JobContext) -> None:
        time.sleep(0.05)
        (Path(markers) / ctx.job.job_id).write_text(ctx.job.payload["transcript"])

    writer = BackgroundWriter(handler, spool_dir=spool, flush_at_exit=True, exit_timeout=20.0)
    for job in _jobs(count, prefix):
        writer.submit(job)
    print("SUBMITTED", flush=True)


def _hung_exit(spool: str, count: int, prefix: str) -> None:
    writer = BackgroundWriter(_block_forever, spool_dir=spool, flush_at_exit=True, exit_timeout=0.5)
    for job in _jobs(count, prefix):
        writer.submit(job)
    print("SUBMITTED", flush=True)


def _replay(spool: str, log: str) -> None:
    def handler(ctx: JobContext) -> None:
        fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, f"{os.getpid()} {ctx.job.job_id}\n".encode())
        finally:
            os.close(fd)
        time.sleep(0.005)

    writer = BackgroundWriter(handler, spool_dir=spool, flush_at_exit=False, workers=2)
    print("READY", flush=True)
    sys.stdin.readline()
    count = writer.replay_spool()
    if not writer.flush(30.0):
        print("FLUSH-TIMEOUT", flush=True)
        sys.exit(3)
    writer.close(5.0)
    print(count, flush=True)


def main(argv: list[str]) -> None:
    mode, spool = argv[1], argv[2]
    if mode == "hang":
        _hang(spool, int(argv[3]), argv[4])
    elif mode == "exit":
        _exit(spool, int(argv[3]), argv[4], argv[5])
    elif mode == "hung-exit":
        _hung_exit(spool, int(argv[3]), argv[4])
    elif mode == "replay":
        _replay(spool, argv[3])
    else:
        raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main(sys.argv)
