"""The async server example, end to end: uvicorn on 127.0.0.1, concurrent users over HTTP, SSE replies."""

from __future__ import annotations

import asyncio
import json
import runpy
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "starlette_server.py"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def server(local_env: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The example app served by uvicorn in this process; yields its base URL, stops it after."""
    monkeypatch.setenv("MEMORY_MODEL", "scripted")
    app = runpy.run_path(str(EXAMPLE), run_name="starlette_server")["app"]
    port = _free_port()
    instance = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=instance.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not instance.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    instance.should_exit = True
    thread.join(30)
    assert not thread.is_alive()


async def _say(client: httpx.AsyncClient, user: str, conversation: str, message: str, end: bool = False) -> str:
    """One turn over HTTP; the reply text, put together from the server-sent events."""
    body = {"user_id": user, "conversation_id": conversation, "message": message, "end_session": end}
    text, events = [], []
    async with client.stream("POST", "/chat", json=body) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        event = None
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line[len("event: "):]
            elif line.startswith("data: "):
                events.append(event)
                data: dict[str, Any] = json.loads(line[len("data: "):])
                if event == "delta":
                    text.append(data["text"])
                assert event != "error", data
    assert events[-1] == "done"
    return "".join(text)


def test_concurrent_users_stream_replies_and_a_returning_user_is_remembered(server: str) -> None:
    users = [f"user-{i}" for i in range(6)]

    async def conversation(client: httpx.AsyncClient, user: str) -> str:
        await _say(client, user, "c1", f"My favourite city is CITY{user[-1]}.")
        await _say(client, user, "c1", "Thanks, bye.", end=True)
        return await _say(client, user, "c2", "Which city do I like?")  # a returning user, new conversation

    async def main() -> list[str]:
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            assert (await client.get("/health")).json() == {"ok": True}
            return list(await asyncio.gather(*(conversation(client, user) for user in users)))

    replies = asyncio.run(main())
    for user, reply in zip(users, replies, strict=True):
        assert f"CITY{user[-1]}" in reply  # the scripted model repeats the memory it was given
        assert all(f"CITY{other[-1]}" not in reply for other in users if other != user)


def test_bad_requests_get_clear_errors(server: str) -> None:
    async def main() -> tuple[int, str]:
        async with httpx.AsyncClient(base_url=server, timeout=60) as client:
            empty = await client.post("/chat", json={"user_id": "u1", "conversation_id": "c1", "message": ""})
            invalid = {"user_id": "tab\there", "conversation_id": "c", "message": "hi"}  # the plugin refuses it
            async with client.stream("POST", "/chat", json=invalid) as response:
                body = "".join([line async for line in response.aiter_lines()])
            return empty.status_code, body

    status, body = asyncio.run(main())
    assert status == 400
    assert "event: error" in body and "user_id" in body


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "JSON object"),
        (b"\xff\xfe", "JSON object"),
        (b'["a", "list"]', "JSON object"),
        (b'{"conversation_id": "c1", "message": "hi"}', "user_id"),
        (b'{"user_id": "", "conversation_id": "c1", "message": "hi"}', "user_id"),
        (b'{"user_id": "u1", "message": "hi"}', "conversation_id"),
        (b'{"user_id": "u1", "conversation_id": "c1"}', "message"),
        (b'{"user_id": "u1", "conversation_id": "c1", "message": "   "}', "message"),
        (b'{"user_id": 7, "conversation_id": "c1", "message": "hi"}', "user_id"),
        (b'{"user_id": "u1", "conversation_id": "c1", "message": "hi", "end_session": "false"}', "end_session"),
        (b'{"user_id": "u1", "conversation_id": "c1", "message": "hi", "end_session": 1}', "end_session"),
    ],
)
def test_a_bad_request_is_a_400_with_a_json_error(server: str, body: bytes, error: str) -> None:
    response = httpx.post(f"{server}/chat", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 400, response.text
    assert response.headers["content-type"].startswith("application/json")
    assert error in response.json()["error"]
