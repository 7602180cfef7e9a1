"""Fork safety: a plugin built in a parent works in a forked child (gunicorn --preload, Celery prefork,
multiprocessing with fork), with its own threads and spool claim; the parent's work stays the parent's."""

from __future__ import annotations

import faulthandler
import os
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from strands_s3_vectors_memory.durability._spool_format import WriteJob
from strands_s3_vectors_memory.durability._writer import JobContext
from support import all_vectors, chat_prompts, make_agent, say, writer_factory

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")


def _summaries(client: Any) -> dict[tuple[str, str], str]:
    """(user id, conversation id) -> stored summary content."""
    return {(v["metadata"]["user_id"], v["metadata"]["conversation_id"]): v["metadata"]["content"]
            for v in all_vectors(client) if v["metadata"]["type"] == "summary"}


def _reap(pid: int, timeout: float = 120.0) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.05)
    os.kill(pid, 9)
    os.waitpid(pid, 0)
    raise AssertionError("the forked child hung")


def test_a_scope_being_archived_in_the_parent_at_the_fork_is_free_in_the_child(tmp_path: Path) -> None:
    """The parent is running one of alice's jobs when it forks: the child's writer runs alice's next
    job at once, instead of keeping it parked behind a job that stayed the parent's."""
    parent = os.getpid()
    started, release = threading.Event(), threading.Event()

    def handler(ctx: JobContext) -> None:
        if os.getpid() == parent:
            started.set()
            release.wait(60)

    with writer_factory(tmp_path / "spool", close_timeout=5) as make_writer:
        writer = make_writer(handler, workers=2, group=lambda job: job.payload["user"])
        writer.submit(WriteJob("a1", {"user": "alice"}, time.time()))
        assert started.wait(10)
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                faulthandler.dump_traceback_later(30, exit=True)
                writer.submit(WriteJob("a2", {"user": "alice"}, time.time()))
                code = 0 if writer.flush(10) else 3
            finally:
                os._exit(code)
        try:
            assert _reap(pid, 60) == 0
        finally:
            release.set()


def test_a_plugin_built_before_fork_stores_the_childs_conversations(local_env: Path) -> None:
    from strands_s3_vectors_memory.index._clients import local_client

    agent, plugin, model = make_agent()
    say(agent, "I was born in PORTO.", "parent-user", "p1", end=True)
    assert plugin.flush(60)  # the parent's writer threads and the embedding model have run
    say(agent, "I am still talking.", "parent-user", "p2")  # open in the parent at the fork
    pid = os.fork()
    if pid == 0:  # the child: its turns must not hang, its ended conversation must be stored
        code = 1
        try:
            faulthandler.dump_traceback_later(90, exit=True)
            say(agent, "I keep BEES on the roof.", "child-user", "k1", end=True)
            stored = plugin.flush(60)
            say(agent, "What do I keep?", "child-user", "k2")  # the child's own read-your-writes
            code = 0 if stored and "BEES" in chat_prompts(model)[-1] else 3
        finally:
            os._exit(code)
    assert _reap(pid) == 0
    summaries = _summaries(local_client(local_env))
    assert "BEES" in summaries["child-user", "k1"]
    assert ("parent-user", "p2") not in summaries  # the parent's open conversation is the parent's to end
    say(agent, "Bye.", "parent-user", "p2", end=True)
    assert plugin.flush(60)
    assert "still talking" in _summaries(local_client(local_env))["parent-user", "p2"]


def test_gunicorn_preload_with_two_workers_stores_every_conversation(local_env: Path, tmp_path: Path) -> None:
    """The example app under ``gunicorn --preload -w 2``: conversations ended in both workers are all stored."""
    import asyncio
    import signal
    import socket
    import subprocess
    import sys

    import httpx

    import strands_s3_vectors_memory
    from strands_s3_vectors_memory.index._clients import local_client

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    src = str(Path(strands_s3_vectors_memory.__file__).resolve().parents[1])
    env = {**os.environ, "MEMORY_MODEL": "scripted", "PYTHONPATH": os.pathsep.join([src, *sys.path])}
    server = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--preload", "-w", "2", "-k", "uvicorn.workers.UvicornWorker",
         "--bind", f"127.0.0.1:{port}", "--control-socket", str(tmp_path / "gunicorn.ctl"),
         "--chdir", str(Path(__file__).parent / "plugin_helpers"), "gunicorn_app:app"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"

    async def end_one(user: str) -> str:
        async with httpx.AsyncClient(base_url=base, timeout=60) as client:  # a connection of its own
            body = {"user_id": user, "conversation_id": "c1", "message": f"My lucky word is WORD{user}.",
                    "end_session": True}
            async with client.stream("POST", "/chat", json=body) as response:
                assert response.status_code == 200
                text = "".join([line async for line in response.aiter_lines()])
                assert "event: done" in text and "event: error" not in text, text
                return response.headers["x-worker-pid"]

    try:
        deadline = time.monotonic() + 60
        while True:
            assert server.poll() is None and time.monotonic() < deadline, "gunicorn did not start"
            try:
                if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        users: list[str] = []
        pids: set[str] = set()
        while len(pids) < 2 or len(users) < 8:
            assert len(users) < 200, f"only workers {pids} answered"
            batch = [f"u{len(users) + i}" for i in range(8)]

            async def ends(batch: list[str] = batch) -> list[str]:
                return list(await asyncio.gather(*(end_one(user) for user in batch)))

            pids.update(asyncio.run(ends()))
            users += batch
        client = local_client(local_env)
        deadline = time.monotonic() + 60
        while True:
            stored = _summaries(client)
            if all(f"WORD{user}" in stored.get((user, "c1"), "") for user in users):
                break
            assert time.monotonic() < deadline, f"not stored: {sorted(set(users) - {u for u, _ in stored})}"
            time.sleep(0.2)
    finally:
        server.send_signal(signal.SIGTERM)
        output, _ = server.communicate(timeout=60)
    assert server.returncode == 0, output.decode(errors="replace")[-3000:]
