"""The ``s3-vectors-memory`` command line.

Every command works against AWS or the embedded engine by the same settings as the library
(``--backend`` / ``S3_VECTORS_MEMORY_BACKEND``, ``--data-dir``, ``--bucket`` / ``S3_VECTOR_BUCKET_NAME``,
``--region``); ``--tenant`` selects a tenant's index (through the Token Vending Machine on AWS). These
common options are declared once, on the app, and go before the command name
(``s3-vectors-memory --backend local list --user u1``); the commands also accept them after their name,
as earlier versions did.

Shell conventions: results go to stdout (``--json`` for scripts), messages and progress bars to
stderr; exit status 0 on success, 1 on an operational failure (a one-line message, the traceback
only with ``--debug``; a missing bucket or index is one), 2 on a usage error.

Memories and ids are data, written by users and by any program that can write the index: the CLI
shows them and never lets the terminal or Rich interpret them (markup is escaped, control characters
are printed as escapes such as ``\\x1b``); ``--json`` output stays exact JSON.

The command line's own libraries (typer, rich, tqdm) are the ``cli`` extra, so a Lambda's plain
install carries none of them; without them the command says in one line which extra to install.
"""

from __future__ import annotations

import importlib
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import typer

__all__ = ["CLI_HINT", "CLI_LIBRARIES", "app", "main"]

#: The libraries only the command line needs: the ``cli`` extra (``local`` and ``server`` include it).
CLI_LIBRARIES = ("typer", "rich", "tqdm")
CLI_HINT = 'pip install "strands-s3-vectors-memory[cli]"'


def _app() -> typer.Typer:
    from . import _admin, _index, _spool  # noqa: F401  (each module registers its commands on the app)
    from ._options import app

    return app


def __getattr__(name: str) -> typer.Typer:
    if name == "app":  # the Typer app, built on first use (tests drive it with typer's CliRunner)
        return _app()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def main() -> None:
    """Console-script entry point."""
    try:
        for library in CLI_LIBRARIES:  # all of them up front: a command must not fail halfway for want of one
            importlib.import_module(library)
        app = _app()
    except ModuleNotFoundError as error:
        if (error.name or "").partition(".")[0] not in CLI_LIBRARIES:
            raise
        print(f"s3-vectors-memory needs {error.name!r}, which is not installed: {CLI_HINT}", file=sys.stderr)
        raise SystemExit(2) from None
    app()


if __name__ == "__main__":
    main()
