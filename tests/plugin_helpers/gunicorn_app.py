"""The Starlette example as served in tests/test_fork.py: unchanged, plus a header naming the worker.

``x-worker-pid`` lets the test see that both gunicorn workers ended conversations.
"""

from __future__ import annotations

import os
import runpy
from collections.abc import Awaitable, Callable, MutableMapping
from pathlib import Path
from typing import Any

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "starlette_server.py"
_example = runpy.run_path(str(EXAMPLE), run_name="starlette_server")

Message = MutableMapping[str, Any]


async def app(scope: Message, receive: Callable[[], Awaitable[Message]],
              send: Callable[[Message], Awaitable[None]]) -> None:
    async def send_naming_the_worker(message: Message) -> None:
        if message["type"] == "http.response.start":
            headers = [*message.get("headers", []), (b"x-worker-pid", str(os.getpid()).encode())]
            message = {**message, "headers": headers}
        await send(message)

    await _example["app"](scope, receive, send_naming_the_worker if scope["type"] == "http" else send)
