"""The ``s3-vectors-memory`` command line.

Every command works against AWS or the embedded engine by the same settings as the library
(``--backend`` / ``S3_VECTORS_MEMORY_BACKEND``, ``--data-dir``, ``--bucket`` / ``S3_VECTOR_BUCKET_NAME``,
``--region``); ``--tenant`` selects a tenant's index (through the Token Vending Machine on AWS).

Shell conventions: results go to stdout (``--json`` for scripts), messages and progress bars to
stderr; exit status 0 on success, 1 on an operational failure (a one-line message, the traceback
only with ``--debug``), 2 on a usage error.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TextIO

import typer
from botocore.exceptions import BotoCoreError, ClientError

from .config import (
    BACKEND_ENV,
    BUCKET_ENV,
    DATA_DIR_ENV,
    DEFAULT_INDEX_NAME,
    EMBEDDING_MODEL_ENV,
    REGION_ENV,
    TVM_ROLE_ENV,
    resolve_backend,
    resolve_data_dir,
    resolve_region,
)
from .errors import ConfigurationError, InvalidIdentityError, S3VectorMemoryError
from .lifecycle import MAX_SEGMENTS, ForgetIncompleteError, ProgressCallback
from .records import Memory
from .tenancy import tenant_index_name

app = typer.Typer(
    name="s3-vectors-memory",
    help="Long-term memory for Strands Agents on Amazon S3 Vectors (or the embedded engine, offline).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_show_locals=False,
)

# --- options shared by the commands -----------------------------------------------------------------

BackendOption = Annotated[
    str | None, typer.Option("--backend", envvar=BACKEND_ENV, help="aws (default) or local (embedded engine)")
]
DataDirOption = Annotated[
    Path | None, typer.Option("--data-dir", envvar=DATA_DIR_ENV, help="Where the local backend keeps its data")
]
BucketOption = Annotated[str | None, typer.Option("--bucket", envvar=BUCKET_ENV, help="S3 Vectors bucket name")]
RegionOption = Annotated[str | None, typer.Option("--region", envvar=REGION_ENV, help="AWS region (us-east-1)")]
TenantOption = Annotated[
    str | None, typer.Option("--tenant", help="Tenant id: use the tenant's index memory-{tenant}")
]
TvmOption = Annotated[
    str | None,
    typer.Option("--tvm-role-arn", envvar=TVM_ROLE_ENV, help="TVM role for tenant credentials on AWS"),
]
ModelOption = Annotated[
    str | None, typer.Option("--embedding-model", envvar=EMBEDDING_MODEL_ENV, help="Embedding model id")
]
AgentOption = Annotated[str | None, typer.Option("--agent", help="Only the memories of this agent name")]
UserOption = Annotated[str, typer.Option("--user", help="The user id whose memories to use")]
SegmentsOption = Annotated[
    int, typer.Option("--segments", min=1, max=MAX_SEGMENTS, help="Parallel ListVectors segments for scans")
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Log details and show tracebacks on errors")]


@dataclass(frozen=True)
class _Where:
    """Which index a command works on, and with what: the common options, resolved once."""

    backend: str | None
    data_dir: Path | None
    bucket: str | None
    region: str | None
    tenant: str | None = None
    tvm_role_arn: str | None = None
    embedding_model: str | None = None

    @property
    def tenant_context(self) -> dict[str, str] | None:
        return {"tenantId": self.tenant} if self.tenant is not None else None

    def bucket_name(self) -> str:
        if not self.bucket:
            raise typer.BadParameter(f"no vector bucket: pass --bucket or set {BUCKET_ENV}", param_hint="'--bucket'")
        return self.bucket

    def index_name(self, default: str = DEFAULT_INDEX_NAME) -> str:
        return tenant_index_name(self.tenant) if self.tenant is not None else default

    def store(self, *, create_index: bool = False) -> Any:
        """The single-tenant store, or the multi-tenant one when ``--tenant`` was given."""
        from .store import MultiTenantS3VectorMemory, S3VectorMemory

        common: dict[str, Any] = {
            "backend": self.backend,
            "data_dir": self.data_dir,
            "create_index": create_index,
        }
        bucket = self.bucket_name()
        if self.tenant is not None:
            self.index_name()  # validate the tenant id before anything else
            return MultiTenantS3VectorMemory(
                bucket, self.region, self.embedding_model, tvm_role_arn=self.tvm_role_arn, **common
            )
        return S3VectorMemory(bucket, self.region, self.embedding_model, **common)

    def client(self) -> Any:
        """An unscoped S3 Vectors client (operator credentials on AWS, the engine locally)."""
        from .clients import make_s3vectors_client

        return make_s3vectors_client(
            resolve_backend(self.backend), region=resolve_region(self.region), data_dir=resolve_data_dir(self.data_dir)
        )


# --- output, errors, progress -----------------------------------------------------------------------


def _err(message: str) -> None:
    typer.echo(message, err=True)


def _print_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, indent=2, default=str))


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    if isinstance(exc, S3VectorMemoryError | ClientError | BotoCoreError | OSError | ValueError):
        return text or type(exc).__name__
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


@contextlib.contextmanager
def _failures(debug: bool) -> Iterator[None]:
    """Turn exceptions into shell behaviour: usage errors exit 2, failures 1 with one line on stderr."""
    if debug:
        logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    try:
        yield
    except (typer.BadParameter, typer.Exit, typer.Abort):
        raise
    except InvalidIdentityError as exc:
        if debug:
            raise
        raise typer.BadParameter(_one_line(exc)) from None
    except Exception as exc:
        if debug:
            raise
        hint = "" if isinstance(exc, S3VectorMemoryError | ClientError | BotoCoreError | OSError) else (
            " (run with --debug for the traceback)"
        )
        _err(f"error: {_one_line(exc)}{hint}")
        raise typer.Exit(1) from None


@contextlib.contextmanager
def _progress(label: str, unit: str = " vectors") -> Iterator[ProgressCallback]:
    """A tqdm bar on stderr (hidden when stderr is not a terminal) fed by ``progress(scanned, matched)``."""
    from tqdm import tqdm

    bar = tqdm(desc=label, unit=unit, file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)
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


def _memory_json(memory: Memory) -> dict[str, Any]:
    return {**memory.as_dict(), "user_id": memory.user_id, "expires_at": memory.expires_at}


def _memory_table(memories: list[Memory], title: str, *, ranked: bool = False) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=title, show_lines=False)
    if ranked:
        table.add_column("score", justify="right")
        table.add_column("similarity", justify="right")
    for name in ("key", "agent", "type", "stored_at", "content"):
        table.add_column(name, overflow="fold")
    for memory in memories:
        cells = [memory.key, memory.agent_name, memory.type, memory.stored_at, memory.content]
        if ranked:
            cells = [f"{memory.score or 0:.3f}", f"{memory.similarity or 0:.3f}", *cells]
        table.add_row(*cells)
    Console().print(table)


def _counts_table(title: str, counts: Mapping[str, int], limit: int = 20) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column(title.split()[-1])
    table.add_column("memories", justify="right")
    for name, count in list(counts.items())[:limit]:
        table.add_row(name, str(count))
    if len(counts) > limit:
        table.add_row(f"... {len(counts) - limit} more", "")
    return table


# --- commands ---------------------------------------------------------------------------------------


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


@app.command()
def setup(
    dimension: Annotated[
        int | None,
        typer.Option(min=1, max=4096, help="Vector dimension (default: the embedding model's, 1024 for Nova)"),
    ] = None,
    index_name: Annotated[str, typer.Option("--index-name", help="Index name (single-tenant)")] = DEFAULT_INDEX_NAME,
    backend: BackendOption = None,
    data_dir: DataDirOption = None,
    bucket: BucketOption = None,
    region: RegionOption = None,
    tenant: TenantOption = None,
    embedding_model: ModelOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Create the vector bucket and the memory index (float32, cosine, spec metadata layout); idempotent."""
    from .embeddings import make_embedder
    from .lifecycle import setup_index

    where = _Where(backend, data_dir, bucket, region, tenant, embedding_model=embedding_model)
    with _failures(debug):
        name = where.index_name(index_name)
        bucket_name = where.bucket_name()
        if dimension is None:
            embedder = make_embedder(resolve_backend(backend), embedding_model, region=resolve_region(region))
            dimension = embedder.dimension
        result = setup_index(where.client(), bucket_name, name, dimension=dimension)
    if as_json:
        _print_json(result.as_dict())
        return
    typer.echo(f"bucket {result.bucket_name}: {'created' if result.bucket_created else 'already exists'}")
    typer.echo(
        f"index {result.index_name}: {'created' if result.index_created else 'already exists'} "
        f"({result.dimension}-d {result.data_type}, {result.distance_metric}, non-filterable: "
        f"{', '.join(result.non_filterable_metadata_keys)})"
    )


@app.command("tvm-role")
def tvm_role(
    principal: Annotated[
        list[str],
        typer.Option("--principal", help="ARN of a role/user allowed to vend tenant credentials (repeatable)"),
    ],
    bucket: BucketOption = None,
    region: RegionOption = None,
    account_id: Annotated[
        str | None, typer.Option("--account-id", help="AWS account id (default: the caller's, from STS)")
    ] = None,
    create: Annotated[bool, typer.Option("--create", help="Create (or update) the role in IAM")] = False,
    role_name: Annotated[str, typer.Option("--role-name", help="Name of the role to create")] = "s3-vectors-memory-tvm",
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Print the Token Vending Machine role's trust and permissions policies, or create the role."""
    import boto3

    from .clients import AWS_RETRY_CONFIG
    from .iam import TVM_POLICY_NAME, create_tvm_role, tvm_permissions_policy, tvm_trust_policy

    where = _Where(None, None, bucket, region)
    with _failures(debug):
        bucket_name = where.bucket_name()
        region_name = resolve_region(region)
        if account_id is None:
            sts = boto3.client("sts", region_name=region_name, config=AWS_RETRY_CONFIG)
            account_id = str(sts.get_caller_identity()["Account"])
        try:
            trust = tvm_trust_policy(principal)
            permissions = tvm_permissions_policy(bucket_name, region=region_name, account_id=account_id)
        except ConfigurationError as exc:  # a bad --principal, --bucket, --account-id or --region
            raise typer.BadParameter(str(exc)) from None
        role_arn = None
        if create:
            iam = boto3.client("iam", region_name=region_name, config=AWS_RETRY_CONFIG)
            role_arn = create_tvm_role(
                iam, role_name=role_name, bucket_name=bucket_name, principal_arns=principal,
                region=region_name, account_id=account_id,
            )
    if as_json:
        _print_json({
            "role_name": role_name, "role_arn": role_arn, "policy_name": TVM_POLICY_NAME,
            "trust_policy": trust, "permissions_policy": permissions,
        })
        return
    typer.echo("# Trust policy")
    typer.echo(json.dumps(trust, indent=2))
    typer.echo(f"# Permissions policy (inline policy {TVM_POLICY_NAME})")
    typer.echo(json.dumps(permissions, indent=2))
    if role_arn is not None:
        _err(f"role {role_name} is ready")
        typer.echo(f"export {TVM_ROLE_ENV}={role_arn}")


@app.command()
def serve(
    data_dir: DataDirOption = None,
    host: Annotated[str, typer.Option(help="Interface to bind (no signature checks: keep loopback)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port")] = 9000,
    debug: DebugOption = False,
) -> None:
    """Serve the embedded engine as a local S3 Vectors endpoint (for boto3 / the AWS CLI) until Ctrl-C."""
    from . import server

    with _failures(debug):
        server.serve(resolve_data_dir(data_dir), host=host, port=port)


@app.command()
def search(
    query: Annotated[str, typer.Argument(help="What to look for")],
    user: UserOption,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=100, help="How many memories")] = 5,
    threshold: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Minimum similarity (default: the model's)")
    ] = None,
    agent: AgentOption = None,
    tenant: TenantOption = None,
    backend: BackendOption = None,
    data_dir: DataDirOption = None,
    bucket: BucketOption = None,
    region: RegionOption = None,
    tvm_role_arn: TvmOption = None,
    embedding_model: ModelOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Search a user's memories as the agent would, best first."""
    where = _Where(backend, data_dir, bucket, region, tenant, tvm_role_arn, embedding_model)
    with _failures(debug):
        store = where.store()
        found = store.search(
            user, query, top_k=top_k, tenant_context=where.tenant_context, agent_name=agent,
            similarity_threshold=threshold,
        )
    if as_json:
        _print_json([_memory_json(m) for m in found])
    else:
        _memory_table(found, f"{len(found)} memories of {user} for {query!r}", ranked=True)


@app.command("list")
def list_(
    user: UserOption,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000, help="Memories per page")] = 100,
    next_token: Annotated[str | None, typer.Option("--next-token", help="Continue after a previous page")] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Every page, not just one")] = False,
    include_expired: Annotated[bool, typer.Option("--include-expired", help="Also expired memories")] = False,
    agent: AgentOption = None,
    tenant: TenantOption = None,
    backend: BackendOption = None,
    data_dir: DataDirOption = None,
    bucket: BucketOption = None,
    region: RegionOption = None,
    tvm_role_arn: TvmOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """List a user's memories, one page at a time (or --all)."""
    where = _Where(backend, data_dir, bucket, region, tenant, tvm_role_arn)
    with _failures(debug):
        store = where.store()
        memories: list[Memory] = []
        token = next_token
        while True:
            page = store.list_memories(
                user, agent_name=agent, tenant_context=where.tenant_context, page_size=page_size,
                next_token=token, include_expired=include_expired,
            )
            memories.extend(page.memories)
            token = page.next_token
            if token is None or not all_pages:
                break
    if as_json:
        _print_json({"memories": [_memory_json(m) for m in memories], "next_token": token})
        return
    if memories:
        _memory_table(memories, f"{len(memories)} memories of {user}")
    else:
        _err(f"no memories of {user}")
    if token is not None:
        _err(f"more memories: --next-token {token}")


@app.command()
def forget(
    user: Annotated[str | None, typer.Option("--user", help="Forget this user (in --tenant's index if given)")] = None,
    tenant: Annotated[
        str | None, typer.Option("--tenant", help="Tenant id; without --user, delete the tenant's whole index")
    ] = None,
    agent: AgentOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    segments: SegmentsOption = 4,
    backend: BackendOption = None,
    data_dir: DataDirOption = None,
    bucket: BucketOption = None,
    region: RegionOption = None,
    tvm_role_arn: TvmOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Delete every memory of a user (--user), or a tenant's whole index (--tenant alone). Irreversible."""
    if user is None and tenant is None:
        raise typer.BadParameter("pass --user USER, --tenant TENANT, or both", param_hint="what to forget")
    if user is None and agent is not None:
        raise typer.BadParameter("--agent needs --user", param_hint="'--agent'")
    where = _Where(backend, data_dir, bucket, region, tenant, tvm_role_arn)
    with _failures(debug):
        store = where.store()
        index = where.index_name()
        if user is not None:
            store.scope(user, agent, where.tenant_context)  # a malformed id is a usage error, before asking
            whose = f"user {user!r}" + (f" (agent {agent!r})" if agent else "")
            question = f"Delete every memory of {whose} in index {index!r} of bucket {store.bucket_name!r}?"
        else:
            question = f"Delete index {index!r} of tenant {tenant!r} with all its memories?"
        if not yes:
            typer.confirm(question, abort=True, err=True)
        if user is None:
            existed = store.forget_tenant(where.tenant_context)
            result: dict[str, Any] = {"tenant_id": tenant, "index_name": index, "deleted": existed}
            message = f"deleted index {index}" if existed else f"index {index} did not exist: nothing to delete"
        else:
            try:
                with _progress(f"forgetting {user}") as progress:
                    report = store.forget_user(
                        user, agent_name=agent, tenant_context=where.tenant_context, segments=segments,
                        progress=progress,
                    )
            except ForgetIncompleteError as exc:
                if as_json:
                    _print_json(exc.report.as_dict())
                raise
            result = report.as_dict()
            message = (
                f"forgot {report.deleted} memories of {user} in {report.index_name} "
                f"(verified: {report.remaining} left, {report.scanned} vectors scanned in {report.seconds:.1f}s)"
            )
    if as_json:
        _print_json(result)
    else:
        typer.echo(message)


@app.command()
def export(
    user: UserOption,
    output: Annotated[str, typer.Option("--output", "-o", help="File to write, or - for stdout")] = "-",
    with_vectors: Annotated[bool, typer.Option("--with-vectors", help="Include the vectors")] = False,
    include_expired: Annotated[bool, typer.Option("--include-expired", help="Also expired memories")] = False,
    agent: AgentOption = None,
    tenant: TenantOption = None,
    backend: BackendOption = None,
    data_dir: DataDirOption = None,
    bucket: BucketOption = None,
    region: RegionOption = None,
    tvm_role_arn: TvmOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Export a user's memories as JSON Lines (key, content, metadata[, vector])."""
    where = _Where(backend, data_dir, bucket, region, tenant, tvm_role_arn)
    with _failures(debug):
        store = where.store()

        def run(fp: TextIO) -> int:
            with _progress(f"exporting {user}") as progress:
                count: int = store.export_memories(
                    user, fp, agent_name=agent, tenant_context=where.tenant_context, include_vectors=with_vectors,
                    include_expired=include_expired, progress=progress,
                )
            return count

        count = run(sys.stdout) if output == "-" else _write_atomically(Path(output), run)
    if as_json and output != "-":
        _print_json({"exported": count, "output": output})
    else:
        _err(f"exported {count} memories of {user}" + ("" if output == "-" else f" to {output}"))


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
def import_(
    source: Annotated[str, typer.Argument(help="JSON Lines file from `export`, or - for stdin")],
    keep_vectors: Annotated[
        bool, typer.Option("--keep-vectors", help="Reuse exported vectors when the model and dimension match")
    ] = False,
    tenant: TenantOption = None,
    backend: BackendOption = None,
    data_dir: DataDirOption = None,
    bucket: BucketOption = None,
    region: RegionOption = None,
    tvm_role_arn: TvmOption = None,
    embedding_model: ModelOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Import memories exported by `export`, keeping keys and metadata (re-embedding the content)."""
    where = _Where(backend, data_dir, bucket, region, tenant, tvm_role_arn, embedding_model)
    with _failures(debug):
        store = where.store(create_index=True)
        with contextlib.ExitStack() as stack:
            fp = sys.stdin if source == "-" else stack.enter_context(Path(source).open(encoding="utf-8"))
            progress = stack.enter_context(_progress("importing", unit=" memories"))
            report = store.import_memories(
                fp, tenant_context=where.tenant_context, keep_vectors=keep_vectors, progress=progress
            )
    if as_json:
        _print_json(report.as_dict())
    else:
        typer.echo(
            f"imported {report.imported} memories ({report.re_embedded} re-embedded, "
            f"{report.kept_vectors} with their exported vectors)"
        )


@app.command()
def prune(
    tenant: TenantOption = None,
    segments: SegmentsOption = 4,
    backend: BackendOption = None,
    data_dir: DataDirOption = None,
    bucket: BucketOption = None,
    region: RegionOption = None,
    tvm_role_arn: TvmOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Delete every expired memory (past its expires_at) in the index."""
    where = _Where(backend, data_dir, bucket, region, tenant, tvm_role_arn)
    with _failures(debug):
        store = where.store()
        with _progress("pruning") as progress:
            pruned = store.prune_expired(tenant_context=where.tenant_context, segments=segments, progress=progress)
        index = where.index_name()
    if as_json:
        _print_json({"pruned": pruned, "index_name": index})
    else:
        typer.echo(f"pruned {pruned} expired memories from {index}")


@app.command()
def stats(
    tenant: TenantOption = None,
    segments: SegmentsOption = 4,
    backend: BackendOption = None,
    data_dir: DataDirOption = None,
    bucket: BucketOption = None,
    region: RegionOption = None,
    tvm_role_arn: TvmOption = None,
    as_json: JsonOption = False,
    debug: DebugOption = False,
) -> None:
    """Count the index's memories by type, agent and user, and show its configuration."""
    where = _Where(backend, data_dir, bucket, region, tenant, tvm_role_arn)
    with _failures(debug):
        store = where.store()
        with _progress("counting") as progress:
            result = store.stats(tenant_context=where.tenant_context, segments=segments, progress=progress)
    if as_json:
        _print_json(result.as_dict())
        return
    from rich.columns import Columns
    from rich.console import Console

    console = Console()
    backend_name = resolve_backend(backend).value
    console.print(
        f"[bold]{result.bucket_name}/{result.index_name}[/bold] ({backend_name}): {result.dimension}-d "
        f"{result.data_type}, {result.distance_metric}; non-filterable: "
        f"{', '.join(result.non_filterable_metadata_keys)}"
    )
    console.print(f"{result.total} memories, {result.expired} expired (run `prune` to delete them)")
    console.print(Columns([
        _counts_table("by type", result.by_type),
        _counts_table("by agent", result.by_agent),
        _counts_table("by user", result.by_user),
    ]))


def main() -> None:
    """Console-script entry point."""
    app()


if __name__ == "__main__":
    main()
