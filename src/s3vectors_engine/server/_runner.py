"""Running the app with uvicorn: in a background thread for tests, or blocking for the CLI.

The listening socket is bound here, before uvicorn starts, so a busy port fails loudly in the
caller (``OSError``) instead of silently inside a thread, and ``port=0`` yields the real port at
once.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import socket
import threading
import time
from pathlib import Path
from types import TracebackType
from typing import Any

import uvicorn
from uvicorn.config import LOGGING_CONFIG

from ._access import AccessPolicy
from ._app import create_app

logger = logging.getLogger(__name__)

ENDPOINT_ENV = "AWS_ENDPOINT_URL_S3VECTORS"
LOOPBACK = "127.0.0.1"


def _open_engine(data_dir: str | os.PathLike[str]) -> Any:
    """Open the embedded engine on a directory (imported late: it is optional for a bare app)."""
    from .._client import LocalS3VectorsClient

    return LocalS3VectorsClient(Path(data_dir))


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # Explicit IPPROTO_TCP, like the sockets asyncio creates itself (it keys TCP_NODELAY on it).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def _url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}"


def _config(app: Any, *, log_config: dict[str, Any] | None) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        log_config=log_config,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


class LocalEndpoint:
    """A local S3 Vectors endpoint on a background thread, for tests and notebooks.

    Use as a context manager; inside it, ``boto3.client("s3vectors", endpoint_url=endpoint.url,
    region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")`` talks to it.

    Args:
        source: a data directory (served by the embedded engine, ``LocalS3VectorsClient``) or any
            boto3-shaped s3vectors client object.
        host: interface to bind; loopback by default. Anything else exposes an endpoint that
            checks no signatures, so it must be asked for explicitly.
        port: TCP port; 0 picks a free one (read it back from :attr:`url` / :attr:`port`).
        access_policy: optional :class:`AccessPolicy` enforcing per-key index access.
    """

    def __init__(
        self,
        source: str | os.PathLike[str] | object,
        *,
        host: str = LOOPBACK,
        port: int = 0,
        access_policy: AccessPolicy | None = None,
        startup_timeout: float = 10.0,
    ) -> None:
        self._source = source
        self._host = host
        self._requested_port = port
        self._policy = access_policy
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._backend: Any = None
        self._owns_backend = False
        self._port: int | None = None

    @property
    def backend(self) -> Any:
        """The client object being served (the engine opened on the data directory, if one was given)."""
        if self._backend is None:
            raise RuntimeError("endpoint not started")
        return self._backend

    @property
    def port(self) -> int:
        """The bound port (the real one when 0 was requested)."""
        if self._port is None:
            raise RuntimeError("endpoint not started")
        return self._port

    @property
    def url(self) -> str:
        """``http://host:port``: give it to boto3 as ``endpoint_url`` or ``AWS_ENDPOINT_URL_S3VECTORS``."""
        return _url(self._host, self.port)

    def start(self) -> LocalEndpoint:
        """Bind, start uvicorn on a daemon thread, and return once it accepts connections."""
        if self._thread is not None:
            raise RuntimeError("endpoint already started")
        if isinstance(self._source, (str, os.PathLike)):
            self._backend, self._owns_backend = _open_engine(self._source), True
        else:
            self._backend, self._owns_backend = self._source, False
        sock = _bind(self._host, self._requested_port)
        self._port = int(sock.getsockname()[1])
        server = uvicorn.Server(_config(create_app(self._backend, access_policy=self._policy), log_config=None))
        thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=f"s3vectors-endpoint-{self._port}",
            daemon=True,
        )
        self._server, self._thread = server, thread
        thread.start()
        deadline = time.monotonic() + self._startup_timeout
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                sock.close()
                raise RuntimeError(f"local S3 Vectors endpoint failed to start on {self.url}")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Ask uvicorn to finish in-flight requests, close the port, and join the thread."""
        server, thread = self._server, self._thread
        if server is not None:
            server.should_exit = True
        if thread is not None:
            thread.join(timeout=self._startup_timeout + 10)
            if thread.is_alive() and server is not None:
                server.force_exit = True
                thread.join(timeout=5)
        self._server = self._thread = None
        if self._owns_backend:
            close = getattr(self._backend, "close", None)
            if callable(close):
                close()
        self._owns_backend = False

    def __enter__(self) -> LocalEndpoint:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(data_dir: str | os.PathLike[str], *, host: str = LOOPBACK, port: int = 9000) -> None:
    """Serve the embedded engine on ``data_dir`` until interrupted (Ctrl-C / SIGTERM).

    Logs the URL and the line that points boto3 (and the AWS CLI) at it. Binds loopback unless
    another ``host`` is given: the endpoint verifies no signatures.
    """
    backend = _open_engine(data_dir)
    try:
        sock = _bind(host, port)
        url = _url(host, int(sock.getsockname()[1]))
        log_config = copy.deepcopy(LOGGING_CONFIG)
        log_config["loggers"][__name__] = {"handlers": ["default"], "level": "INFO", "propagate": False}
        server = uvicorn.Server(_config(create_app(backend), log_config=log_config))
        logger.info("S3 Vectors endpoint for %s listening on %s", Path(data_dir), url)
        logger.info("point boto3 at it with:  export %s=%s", ENDPOINT_ENV, url)
        with contextlib.suppress(KeyboardInterrupt):  # uvicorn re-raises Ctrl-C after its graceful shutdown
            server.run(sockets=[sock])
        logger.info("S3 Vectors endpoint on %s stopped", url)
    finally:
        close = getattr(backend, "close", None)
        if callable(close):
            close()
