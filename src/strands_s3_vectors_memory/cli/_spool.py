"""Commands on the write spools of a data directory: replay, and dead letters (list, retry, drop).

A spool holds the conversations that were ended but not stored yet. The plugin replays its own
spool when an agent of the same name starts; ``replay`` does it without an agent (after a crash,
from a cron job, or before retiring a machine). Jobs that failed too many rounds become dead
letters: their extractive summary and details are already stored; ``dead-letters retry`` queues
them again once the cause is fixed, so the model's summary replaces the extractive one.

Every command takes a spool on S3 as well (``--spool s3://bucket/prefix/agent``); without
``--spool``, the spools below ``S3_VECTORS_MEMORY_SPOOL`` are included when it is set.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..archive import ConversationJob
from ..config import resolve_data_dir, resolve_spool_url
from ..durability import (
    DeadLetter,
    S3Location,
    dead_letters,
    decode_job,
    default_spool_dir,
    drop_dead_letter,
    pending_files,
    retry_dead_letter,
    s3_agent_spools,
    s3_dead_letters,
    s3_drop_dead_letter,
    s3_pending_jobs,
    s3_retry_dead_letter,
)
from ._options import Where, app, common_options
from ._output import err, failures, markup, print_json, printable, rich_console, say

SpoolOption = Annotated[
    str | None,
    typer.Option("--spool", help="A spool directory or s3://bucket/prefix/agent (default: every spool of the "
                                 "data dir, and below $S3_VECTORS_MEMORY_SPOOL)"),
]
#: A spool directory, or an agent's spool on S3.
SpoolPlace = Path | S3Location
AgentSpoolOption = Annotated[
    str | None, typer.Option("--agent", help="The spool of this agent name (<data dir>/spool/<agent>)")
]

dead_letters_app = typer.Typer(
    name="dead-letters", help="Conversations that could not be summarized: list, retry or drop them.",
    no_args_is_help=True,
)
app.add_typer(dead_letters_app)


def _spools(where: Where, spool: str | None, agent: str | None) -> list[SpoolPlace]:
    """The spools a command works on."""
    if spool is not None:
        if spool.startswith("s3://"):
            return [S3Location.parse(spool)]
        path = Path(spool).expanduser()
        if not path.is_dir():  # a typo must not create an empty spool and report nothing to do
            raise typer.BadParameter(f"no spool directory at {path}", param_hint="'--spool'")
        return [path]
    data_dir = resolve_data_dir(where.data_dir)
    url = resolve_spool_url()
    base = S3Location.parse(url) if url is not None else None
    if agent is not None:
        return [base.child(default_spool_dir(data_dir, agent).name) if base else default_spool_dir(data_dir, agent)]
    root = data_dir / "spool"
    places: list[SpoolPlace] = []
    if root.is_dir():
        places.extend(sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")))
    if base is not None:
        places.extend(s3_agent_spools(base))
    return places


def _letters(spool: SpoolPlace) -> list[DeadLetter]:
    return s3_dead_letters(spool) if isinstance(spool, S3Location) else dead_letters(spool)


def _pending(spool: SpoolPlace) -> list[bytes]:
    """The pending jobs' bytes (for a look at what they are)."""
    if isinstance(spool, S3Location):
        return [pending.data for pending in s3_pending_jobs(spool)]
    found = []
    for pending in pending_files(spool):
        try:
            found.append(pending.path.read_bytes())
        except OSError:
            continue
    return found


def _needs_tenants(spool: SpoolPlace) -> bool:
    """Whether the spool's jobs belong to a multi-tenant store (they carry tenant ids)."""
    for data in _pending(spool):
        try:
            return ConversationJob.from_write_job(decode_job(data)).scope.tenant_id is not None
        except ValueError:
            continue
    return any(letter.job.payload.get("tenant_id") or letter.job.payload.get("tenant_context")
               for letter in _letters(spool))


def _store_for(where: Where, spool: SpoolPlace) -> Any:
    from ..store import MultiTenantS3VectorMemory, S3VectorMemory

    common: dict[str, Any] = {"backend": where.backend, "data_dir": where.data_dir}
    if _needs_tenants(spool):
        return MultiTenantS3VectorMemory(
            where.bucket_name(), where.region, where.embedding_model, tvm_role_arn=where.tvm_role_arn, **common
        )
    return S3VectorMemory(where.bucket_name(), where.region, where.embedding_model, **common)


@app.command()
@common_options("backend", "data_dir", "bucket", "region", "tvm_role_arn", "embedding_model", "as_json", "debug")
def replay(
    spool: SpoolOption = None,
    agent: AgentSpoolOption = None,
    model: Annotated[
        str | None,
        typer.Option(help="Summarize with: bedrock[:MODEL_ID], ollama:MODEL, openai:MODEL, llamacpp:PATH, scripted; "
                          "default: none (an extractive summary, marked as such)"),
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="Server URL for ollama/openai models")] = None,
    timeout: Annotated[float, typer.Option(help="Give up waiting after this many seconds")] = 600.0,
    *,
    where: Where,
) -> None:
    """Store the conversations waiting in the spools of dead processes, without an agent."""
    from ..plugin import replay as replay_spool

    results: list[dict[str, Any]] = []
    with failures(where.debug):
        chat_model = None
        if model is not None:
            from ..models import build_model

            try:
                chat_model = build_model(model, base_url)[0]
            except ValueError as exc:
                raise typer.BadParameter(str(exc), param_hint="'--model'") from None
        for path in _spools(where, spool, agent):
            stats = replay_spool(path, _store_for(where, path), chat_model, timeout=timeout)
            results.append({"spool": str(path), "replayed": stats.replayed, "stored": stats.succeeded,
                            "failed": stats.failed, "dead_lettered": stats.dead_lettered,
                            "pending": stats.pending})
    if where.as_json:
        print_json({"spools": results})
    elif not results:
        err("no spool to replay")
    for result in results if not where.as_json else []:
        say(f"{result['spool']}: {result['replayed']} replayed, {result['stored']} stored, "
            f"{result['failed']} failed, {result['dead_lettered']} dead-lettered, {result['pending']} pending")
    if any(result["failed"] or result["pending"] for result in results):
        raise typer.Exit(1)


def _letter_json(letter: DeadLetter, spool: SpoolPlace) -> dict[str, Any]:
    payload = letter.job.payload
    return {
        "key": letter.key,
        "spool": str(spool),
        "job_id": letter.job.job_id,
        "tenant_id": payload.get("tenant_id"),
        "user_id": payload.get("user_id"),
        "agent_name": payload.get("agent_name"),
        "conversation_id": payload.get("conversation_id"),
        "rounds": letter.job.rounds,
        "error": letter.error,
        "dead_at": letter.dead_at,
    }


@dead_letters_app.command("list")
@common_options("data_dir", "as_json", "debug")
def list_dead_letters(spool: SpoolOption = None, agent: AgentSpoolOption = None, *, where: Where) -> None:
    """List the dead letters (conversations set aside after failing too many times)."""
    with failures(where.debug):
        rows = [_letter_json(letter, path) for path in _spools(where, spool, agent) for letter in _letters(path)]
    if where.as_json:
        print_json({"dead_letters": rows})
        return
    if not rows:
        err("no dead letters")
        return
    from rich.table import Table

    table = Table(title=f"{len(rows)} dead letter(s)")
    for column in ("key", "user", "agent", "conversation", "rounds", "dead since", "error"):
        table.add_column(column, overflow="fold")
    for row in rows:
        since = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(row["dead_at"]))
        table.add_row(markup(row["key"][:16]), markup(row["user_id"]), markup(row["agent_name"]),
                      markup(row["conversation_id"]), str(row["rounds"]), since, markup(row["error"], cell=True))
    rich_console().print(table)


def _chosen(
    where: Where, spool: str | None, agent: str | None, keys: list[str], every: bool
) -> list[tuple[SpoolPlace, str]]:
    if not keys and not every:
        raise typer.BadParameter("name the dead letters (KEY ..., a prefix is enough) or pass --all")
    found = [(path, letter.key) for path in _spools(where, spool, agent) for letter in _letters(path)]
    if every:
        return found
    chosen = []
    for wanted in keys:
        matches = [(path, key) for path, key in found if key.startswith(wanted)]
        if len(matches) != 1:
            raise typer.BadParameter(f"{printable(wanted)!r} names {len(matches)} dead letters, not one")
        chosen.extend(matches)
    return chosen


@dead_letters_app.command("retry")
@common_options("data_dir", "as_json", "debug")
def retry_dead_letters(
    keys: Annotated[list[str] | None, typer.Argument(help="Keys (or unique prefixes) of dead letters")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter")] = False,
    spool: SpoolOption = None,
    agent: AgentSpoolOption = None,
    *,
    where: Where,
) -> None:
    """Put dead letters back in their spool: the next start (or `replay`) stores them again."""
    with failures(where.debug):
        chosen = _chosen(where, spool, agent, keys or [], every)
        for path, key in chosen:
            if isinstance(path, S3Location):
                s3_retry_dead_letter(path, key)
            else:
                retry_dead_letter(path, key)
    if where.as_json:
        print_json({"retried": [key for _, key in chosen]})
    else:
        say(f"{len(chosen)} dead letter(s) queued again: run `s3-vectors-memory replay` or restart the agent")


@dead_letters_app.command("drop")
@common_options("data_dir", "as_json", "debug")
def drop_dead_letters(
    keys: Annotated[list[str] | None, typer.Argument(help="Keys (or unique prefixes) of dead letters")] = None,
    every: Annotated[bool, typer.Option("--all", help="Every dead letter")] = False,
    spool: SpoolOption = None,
    agent: AgentSpoolOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    *,
    where: Where,
) -> None:
    """Delete dead letters for good (what was salvaged from them stays stored)."""
    with failures(where.debug):
        chosen = _chosen(where, spool, agent, keys or [], every)
        if chosen and not yes:
            typer.confirm(f"Delete {len(chosen)} dead letter(s) for good?", abort=True, err=True)
        for path, key in chosen:
            if isinstance(path, S3Location):
                s3_drop_dead_letter(path, key)
            else:
                drop_dead_letter(path, key)
    if where.as_json:
        print_json({"dropped": [key for _, key in chosen]})
    else:
        say(f"dropped {len(chosen)} dead letter(s)")
