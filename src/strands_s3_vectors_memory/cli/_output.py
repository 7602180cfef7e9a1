"""How the CLI prints: user-controlled text escaped, JSON exact, failures as exit codes, progress bars."""

from __future__ import annotations

import contextlib
import json
import logging
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from typing import Any, TextIO

import typer
from botocore.exceptions import BotoCoreError, ClientError

from ..errors import InvalidIdentityError, S3VectorMemoryError
from ..index import Memory
from ..lifecycle import ProgressCallback

#: Never sent to a terminal as they are: C0 controls (ESC starts CSI and OSC sequences: clear the
#: screen, set the title, ...), DEL, C1 controls (0x9b is a CSI on its own), the bidirectional marks
#: and overrides that reorder what is shown, and the Unicode line separators.
_CONTROLS = r"\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029"
_UNSAFE_IN_CELL = re.compile(f"[{_CONTROLS}]")  # table cells keep their newlines and tabs
_UNSAFE_IN_LINE = re.compile(f"[\\t\\n{_CONTROLS}]")
#: What ``json.dumps`` leaves raw (it escapes C0 only); inside JSON strings a ``\\u`` escape is the same text.
_UNSAFE_IN_JSON = re.compile(r"[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _escaped(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def printable(text: object) -> str:
    """``text`` on one line, with each control character shown as its escape (``\\x1b``), never sent raw."""
    return _UNSAFE_IN_LINE.sub(_escaped, str(text))


def markup(text: object, *, cell: bool = False) -> str:
    """``text`` for Rich: printable (a table ``cell`` keeps its line breaks), with no markup interpreted.

    A ``[/bold]`` in a memory would otherwise crash the table, and ``[link=...]`` restyle it.
    """
    from rich.markup import escape

    return escape(_UNSAFE_IN_CELL.sub(_escaped, str(text)) if cell else printable(text))


def json_safe(text: str) -> str:
    """JSON text with the characters ``json.dumps`` leaves raw as ``\\u`` escapes: the same JSON."""
    return _UNSAFE_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class JsonLinesOut:
    """A stream writing JSON (Lines) through :func:`json_safe`, for exports printed on stdout."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(json_safe(text))


def rich_console() -> Any:
    """A Rich console on stdout that shows ``:name:`` as written instead of as an emoji."""
    from rich.console import Console

    return Console(emoji=False)


def say(message: str) -> None:
    typer.echo(printable(message))


def err(message: str) -> None:
    typer.echo(printable(message), err=True)


def print_json(value: Any) -> None:
    typer.echo(json_safe(json.dumps(value, ensure_ascii=False, indent=2, default=str)))


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, S3VectorMemoryError | ClientError | BotoCoreError | OSError | ValueError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def failures(debug: bool) -> Iterator[None]:
    """Turn exceptions into shell behaviour: usage errors exit 2, failures 1 with one line on stderr."""
    if debug:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
        logging.getLogger(__name__.split(".")[0]).setLevel(logging.DEBUG)  # ours: with the writer's tracebacks
    try:
        yield
    except (typer.BadParameter, typer.Exit, typer.Abort):
        raise
    except InvalidIdentityError as exc:
        if debug:
            raise
        raise typer.BadParameter(one_line(exc)) from None
    except Exception as exc:
        if debug:
            raise
        hint = "" if isinstance(exc, S3VectorMemoryError | ClientError | BotoCoreError | OSError) else (
            " (run with --debug for the traceback)"
        )
        err(f"error: {one_line(exc)}{hint}")
        raise typer.Exit(1) from None


@contextlib.contextmanager
def progress_bar(label: str, unit: str = " vectors") -> Iterator[ProgressCallback]:
    """A tqdm bar on stderr (hidden when stderr is not a terminal) fed by ``progress(scanned, matched)``."""
    from tqdm import tqdm

    bar = tqdm(desc=printable(label), unit=unit, file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)
    lock = threading.Lock()

    def update(done: int, matched: int) -> None:
        with lock:
            bar.n = done
            bar.set_postfix_str(f"{matched} matched", refresh=False)
            bar.refresh()

    try:
        yield update
    finally:
        bar.close()


def memory_json(memory: Memory) -> dict[str, Any]:
    return {**memory.as_dict(), "user_id": memory.user_id, "expires_at": memory.expires_at}


def memory_table(memories: list[Memory], title: str, *, ranked: bool = False) -> None:
    from rich.table import Table

    table = Table(title=markup(title), show_lines=False)
    if ranked:
        table.add_column("score", justify="right")
        table.add_column("similarity", justify="right")
    for name in ("key", "agent", "type", "stored_at", "content"):
        table.add_column(name, overflow="fold")
    for memory in memories:
        cells = [markup(memory.key), markup(memory.agent_name), markup(memory.type), markup(memory.stored_at),
                 markup(memory.content, cell=True)]
        if ranked:
            cells = [f"{memory.score or 0:.3f}", f"{memory.similarity or 0:.3f}", *cells]
        table.add_row(*cells)
    rich_console().print(table)


def counts_table(title: str, counts: Mapping[str, int], limit: int = 20) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column(title.split()[-1])
    table.add_column("memories", justify="right")
    for name, count in list(counts.items())[:limit]:
        table.add_row(markup(name), str(count))
    if len(counts) > limit:
        table.add_row(f"... {len(counts) - limit} more", "")
    return table


