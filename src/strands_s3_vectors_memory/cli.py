"""The ``s3-vectors-memory`` command line.

Every command works against AWS or the embedded engine by the same setting as the library
(``S3_VECTORS_MEMORY_BACKEND`` / ``--backend``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

app = typer.Typer(
    name="s3-vectors-memory",
    help="Long-term memory for Strands Agents on Amazon S3 Vectors (or the embedded engine, offline).",
    no_args_is_help=True,
    add_completion=False,
)


@app.callback()
def _root() -> None:
    """Long-term memory for Strands Agents on Amazon S3 Vectors (or the embedded engine, offline)."""


@app.command()
def demo(
    model: Annotated[
        str | None,
        typer.Option(help="scripted (default), bedrock[:MODEL_ID], ollama:MODEL or openai:MODEL"),
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="Server URL for ollama/openai models")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the demo's memories here (default: a fresh temporary directory)")
    ] = None,
    backend: Annotated[str, typer.Option(help="local (default) or aws")] = "local",
) -> None:
    """Run four conversations of two users and show what was stored, retrieved and injected."""
    from .demo import run_demo

    try:
        run_demo(model_spec=model, base_url=base_url, data_dir=data_dir, backend=backend)
    except ValueError as exc:
        raise typer.BadParameter(str(exc)) from exc


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
