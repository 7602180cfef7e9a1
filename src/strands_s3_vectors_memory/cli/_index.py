"""Commands on the memories of an index: search, list, forget, export, import, prune, stats.

Facts are memories of type ``fact``: ``list --facts`` shows only them with their status (current or
superseded, since when, until when, replaced by what), ``prune --superseded-older-than DAYS`` trims
their history, ``stats`` counts them by status; export, import and forget carry them like any memory.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from ..config import resolve_backend
from ..index import TYPE_FACT, Memory
from ..lifecycle import ForgetIncompleteError
from ._options import INDEX_OPTIONS, AgentOption, SegmentsOption, UserOption, Where, app, common_options
from ._output import (
    JsonLinesOut,
    counts_table,
    err,
    failures,
    markup,
    memory_json,
    memory_table,
    print_json,
    printable,
    progress_bar,
    rich_console,
    say,
)


@app.command()
@common_options(*INDEX_OPTIONS)
def search(
    query: Annotated[str, typer.Argument(help="What to look for")],
    user: UserOption,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=100, help="How many memories")] = 5,
    threshold: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Minimum similarity (default: the model's)")
    ] = None,
    agent: AgentOption = None,
    *,
    where: Where,
) -> None:
    """Search a user's memories as the agent would, best first."""
    with failures(where.debug):
        store = where.existing_store(user, agent)
        found = store.search(
            user, query, top_k=top_k, tenant_context=where.tenant_context, agent_name=agent,
            similarity_threshold=threshold,
        )
    if where.as_json:
        print_json([memory_json(m) for m in found])
    else:
        memory_table(found, f"{len(found)} memories of {user} for {query!r}", ranked=True)


@app.command("list")
@common_options(*INDEX_OPTIONS)
def list_(
    user: UserOption,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000, help="Memories per page")] = 100,
    next_token: Annotated[str | None, typer.Option("--next-token", help="Continue after a previous page")] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Every page, not just one")] = False,
    include_expired: Annotated[bool, typer.Option("--include-expired", help="Also expired memories")] = False,
    agent: AgentOption = None,
    facts_only: Annotated[
        bool, typer.Option("--facts", help="Only the user's facts, current then superseded, with their history")
    ] = False,
    *,
    where: Where,
) -> None:
    """List a user's memories, one page at a time (or --all); --facts: the facts, current vs superseded."""
    with failures(where.debug):
        store = where.existing_store(user, agent)
        memories: list[Memory] = []
        token = next_token
        while True:
            page = store.list_memories(
                user, agent_name=agent, tenant_context=where.tenant_context, page_size=page_size,
                next_token=token, include_expired=include_expired,
            )
            memories.extend(m for m in page.memories if m.type == TYPE_FACT or not facts_only)
            token = page.next_token
            if token is None or not all_pages:
                break
    if facts_only:
        memories.sort(key=lambda m: (not m.is_current_fact, m.stored_at, m.key))
    if where.as_json:
        print_json({"memories": [memory_json(m) for m in memories], "next_token": token})
        return
    if memories and facts_only:
        _facts_table(memories, user)
    elif memories:
        memory_table(memories, f"{len(memories)} memories of {user}")
    else:
        err(f"no {'facts' if facts_only else 'memories'} of {user}")
    if token is not None:
        err(f"more memories: --next-token {token}")


def _facts_table(facts: list[Memory], user: str) -> None:
    """Facts with their status: current ones (what is injected), then superseded ones (history)."""
    from rich.table import Table

    current = sum(1 for fact in facts if fact.is_current_fact)
    table = Table(title=markup(f"{current} current and {len(facts) - current} superseded facts of {user}"))
    for name in ("status", "key", "since", "until", "superseded by", "content"):
        table.add_column(name, overflow="fold")
    for fact in facts:
        table.add_row(markup(fact.fact_status or ""), markup(fact.key), markup(fact.stored_at),
                      markup(fact.valid_to or ""), markup(fact.superseded_by or ""), markup(fact.content, cell=True))
    rich_console().print(table)


@app.command()
@common_options(*INDEX_OPTIONS)
def forget(
    user: Annotated[str | None, typer.Option("--user", help="Forget this user (in --tenant's index if given)")] = None,
    agent: AgentOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    segments: SegmentsOption = 4,
    *,
    where: Where,
) -> None:
    """Delete every memory of a user (--user), or a tenant's whole index (--tenant alone). Irreversible."""
    tenant = where.tenant
    if user is None and tenant is None:
        raise typer.BadParameter("pass --user USER, --tenant TENANT, or both", param_hint="what to forget")
    if user is None and agent is not None:
        raise typer.BadParameter("--agent needs --user", param_hint="'--agent'")
    with failures(where.debug):
        if user is None:
            store = where.store()
            where.require_bucket(store)  # a missing index is nothing to delete; a missing bucket is a typo
        else:
            store = where.existing_store(user, agent)  # a malformed id is a usage error, before asking
        index = where.index_name()
        if user is not None:
            whose = f"user {user!r}" + (f" (agent {agent!r})" if agent else "")
            question = f"Delete every memory of {whose} in index {index!r} of bucket {store.bucket_name!r}?"
        else:
            question = f"Delete index {index!r} of tenant {tenant!r} with all its memories?"
        if not yes:
            typer.confirm(printable(question), abort=True, err=True)
        if user is None:
            forgotten = store.forget_tenant(where.tenant_context)
            result: dict[str, Any] = {"tenant_id": tenant, "index_name": index, "deleted": forgotten.existed,
                                      "pending_cancelled": forgotten.pending_cancelled}
            message = f"deleted index {index}" if forgotten else f"index {index} did not exist: nothing to delete"
            message += f"; cancelled {forgotten.pending_cancelled} pending write(s)"
        else:
            try:
                with progress_bar(f"forgetting {user}") as progress:
                    report = store.forget_user(
                        user, agent_name=agent, tenant_context=where.tenant_context, segments=segments,
                        progress=progress,
                    )
            except ForgetIncompleteError as exc:
                if where.as_json:
                    print_json(exc.report.as_dict())
                raise
            result = report.as_dict()
            message = (
                f"forgot {report.deleted} memories of {user} in {report.index_name} "
                f"(verified: {report.remaining} left, {report.scanned} vectors scanned in {report.seconds:.1f}s); "
                f"cancelled {report.pending_cancelled} pending write(s)"
            )
    if where.as_json:
        print_json(result)
    else:
        say(message)


@app.command()
@common_options(*INDEX_OPTIONS)
def export(
    user: UserOption,
    output: Annotated[str, typer.Option("--output", "-o", help="File to write, or - for stdout")] = "-",
    with_vectors: Annotated[bool, typer.Option("--with-vectors", help="Include the vectors")] = False,
    include_expired: Annotated[bool, typer.Option("--include-expired", help="Also expired memories")] = False,
    agent: AgentOption = None,
    *,
    where: Where,
) -> None:
    """Export a user's memories as JSON Lines (key, content, metadata[, vector])."""
    with failures(where.debug):
        store = where.existing_store(user, agent)

        def run(fp: Any) -> int:
            with progress_bar(f"exporting {user}") as progress:
                count: int = store.export_memories(
                    user, fp, agent_name=agent, tenant_context=where.tenant_context, include_vectors=with_vectors,
                    include_expired=include_expired, progress=progress,
                )
            return count

        count = run(JsonLinesOut(sys.stdout)) if output == "-" else _write_atomically(Path(output), run)
    if where.as_json and output != "-":
        print_json({"exported": count, "output": output})
    else:
        err(f"exported {count} memories of {user}" + ("" if output == "-" else f" to {output}"))


def _write_atomically(path: Path, write: Any) -> int:
    """Write through a temporary file renamed into place, so a failed export leaves no partial file."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        with partial.open("w", encoding="utf-8") as fp:
            count: int = write(fp)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
    return count


@app.command("import")
@common_options(*INDEX_OPTIONS)
def import_(
    source: Annotated[str, typer.Argument(help="JSON Lines file from `export`, or - for stdin")],
    keep_vectors: Annotated[
        bool, typer.Option("--keep-vectors", help="Reuse exported vectors when the model and dimension match")
    ] = False,
    *,
    where: Where,
) -> None:
    """Import memories exported by `export` into an existing index, keeping keys and metadata.

    The content is re-embedded unless --keep-vectors can reuse the exported vector. A line whose key
    does not belong to the user, agent and conversation of its own metadata is refused (never written,
    reported on stderr, exit status 1); the other lines are still imported.
    """
    with failures(where.debug):
        store = where.existing_store()
        with contextlib.ExitStack() as stack:
            fp = sys.stdin if source == "-" else stack.enter_context(Path(source).open(encoding="utf-8"))
            progress = stack.enter_context(progress_bar("importing", unit=" memories"))
            report = store.import_memories(
                fp, tenant_context=where.tenant_context, keep_vectors=keep_vectors, verify_keys=True,
                progress=progress,
            )
    if where.as_json:
        print_json(report.as_dict())
    else:
        say(
            f"imported {report.imported} memories ({report.re_embedded} re-embedded, "
            f"{report.kept_vectors} with their exported vectors)"
        )
    if report.rejected:
        _report_rejections(report)
        raise typer.Exit(1)


def _report_rejections(report: Any) -> None:
    """One stderr line per refused import line (as many as the report details), then the count."""
    for rejection in report.rejections:
        err(f"line {rejection.line}: refused key {rejection.key!r}: {rejection.reason}")
    if report.rejected > len(report.rejections):
        err(f"... and {report.rejected - len(report.rejections)} more refused lines")
    err(
        f"refused {report.rejected} lines whose key is not their own (another user's, agent's, conversation's "
        "or tenant's, or not a memory key): nothing of them was written"
    )


@app.command()
@common_options(*INDEX_OPTIONS)
def prune(
    segments: SegmentsOption = 4,
    superseded_older_than: Annotated[
        float | None,
        typer.Option("--superseded-older-than", min=0.0, metavar="DAYS",
                     help="Also delete superseded facts that stopped being true more than DAYS days ago"),
    ] = None,
    *,
    where: Where,
) -> None:
    """Delete every expired memory (past its expires_at) in the index (and old fact history, if asked)."""
    with failures(where.debug):
        store = where.existing_store()
        with progress_bar("pruning") as progress:
            pruned = store.prune_expired(tenant_context=where.tenant_context, segments=segments, progress=progress)
        history = 0
        if superseded_older_than is not None:
            with progress_bar("pruning fact history") as progress:
                history = store.prune_superseded_facts(
                    before=time.time() - superseded_older_than * 86400, tenant_context=where.tenant_context,
                    segments=segments, progress=progress,
                )
        index = where.index_name()
    if where.as_json:
        result: dict[str, Any] = {"pruned": pruned, "index_name": index}
        if superseded_older_than is not None:
            result["superseded_facts_pruned"] = history
        print_json(result)
    else:
        extra = f" and {history} superseded facts" if superseded_older_than is not None else ""
        say(f"pruned {pruned} expired memories{extra} from {index}")


@app.command()
@common_options(*INDEX_OPTIONS)
def stats(segments: SegmentsOption = 4, *, where: Where) -> None:
    """Count the index's memories by type, agent and user, and show its configuration."""
    with failures(where.debug):
        store = where.existing_store()
        with progress_bar("counting") as progress:
            result = store.stats(tenant_context=where.tenant_context, segments=segments, progress=progress)
    if where.as_json:
        print_json(result.as_dict())
        return
    from rich.columns import Columns

    console = rich_console()
    backend_name = resolve_backend(where.backend).value
    console.print(
        f"[bold]{markup(result.bucket_name)}/{markup(result.index_name)}[/bold] ({backend_name}): "
        f"{result.dimension}-d {markup(result.data_type)}, {markup(result.distance_metric)}; non-filterable: "
        f"{markup(', '.join(result.non_filterable_metadata_keys))}"
    )
    console.print(f"{result.total} memories, {result.expired} expired (run `prune` to delete them)")
    if result.facts:
        console.print(f"facts: {result.facts.get('current', 0)} current, {result.facts.get('superseded', 0)} "
                      "superseded (history: `prune --superseded-older-than DAYS` trims it)")
    if result.summaries:
        console.print("summaries: " + ", ".join(f"{count} {how}" for how, count in result.summaries.items())
                      + " (how each was written: structured output, salvaged, text protocol, extractive)")
    console.print(Columns([
        counts_table("by type", result.by_type),
        counts_table("by agent", result.by_agent),
        counts_table("by user", result.by_user),
    ]))


