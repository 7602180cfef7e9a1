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
"""

from __future__ import annotations

from . import _admin, _index, _spool  # noqa: F401  (each module registers its commands on the app)
from ._options import app

__all__ = ["app", "main"]


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
