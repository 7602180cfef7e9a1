"""Subprocess helper: one request to a serverless example, in an environment that is then reclaimed.

Usage: python example_turn.py {lambda|agentcore} EVENT_JSON [SESSION_ID]
``BedrockModel()`` builds a scripted model (offline); the memory backend, data dir, session bucket
and S3 endpoint come from the parent test. After the request it prints the reply as one JSON line
and waits: the parent kills it, as Lambda or AgentCore reclaim an environment (no exit hook runs).
"""

from __future__ import annotations

import json
import runpy
import sys
import threading
from pathlib import Path
from typing import Any

import strands.models

from strands_s3_vectors_memory.testing import ScriptedModel

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


def main() -> None:
    kind, event = sys.argv[1], json.loads(sys.argv[2])
    strands.models.BedrockModel = lambda *args, **kwargs: ScriptedModel()  # type: ignore[misc,assignment]
    if kind == "lambda":
        reply: Any = runpy.run_path(str(EXAMPLES / "lambda_handler.py"), run_name="__example__")["handler"](event)
    else:
        from starlette.testclient import TestClient

        app = runpy.run_path(str(EXAMPLES / "agentcore_app.py"), run_name="__example__")["app"]
        response = TestClient(app).post("/invocations", json=event, headers={
            "X-Amzn-Bedrock-AgentCore-Runtime-Session-Id": sys.argv[3]})
        reply = response.json()
    print(json.dumps(reply), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
