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

import contextlib
import dataclasses
import functools
import inspect
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Mapping
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, TextIO, get_args

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
    Backend,
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
    help=(
        "Long-term memory for Strands Agents on Amazon S3 Vectors (or the embedded engine, offline).\n\n"
        "The options below are common to the commands: give them before the command name "
        "(s3-vectors-memory --backend local list --user u1); the commands also accept them after it."
    ),
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
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON on stdout")]
DebugOption = Annotated[bool, typer.Option("--debug", help="Log details and show tracebacks on errors")]

#: The common options by parameter name (the fields of :class:`_Where`): the app callback takes them
#: before the command name, and :func:`_common` lets each command take the ones it uses after it.
_COMMON_OPTIONS: dict[str, Any] = {
    "backend": BackendOption,
    "data_dir": DataDirOption,
    "bucket": BucketOption,
    "region": RegionOption,
    "tenant": TenantOption,
    "tvm_role_arn": TvmOption,
    "embedding_model": ModelOption,
    "as_json": JsonOption,
    "debug": DebugOption,
}
#: The common options of the commands that read or write the memory index.
_INDEX_OPTIONS = tuple(_COMMON_OPTIONS)

AgentOption = Annotated[str | None, typer.Option("--agent", help="Only the memories of this agent name")]
UserOption = Annotated[str, typer.Option("--user", help="The user id whose memories to use")]
SegmentsOption = Annotated[
    int, typer.Option("--segments", min=1, max=MAX_SEGMENTS, help="Parallel ListVectors segments for scans")
]


@dataclass(frozen=True)
class _Where:
    """Which index a command works on, with what, and how it reports: the common options, resolved once."""

    backend: str | None = None
    data_dir: Path | None = None
    bucket: str | None = None
    region: str | None = None
    tenant: str | None = None
    tvm_role_arn: str | None = None
    embedding_model: str | None = None
    as_json: bool = False
    debug: bool = False

    def overridden(self, given: Mapping[str, Any]) -> _Where:
        """These options with the ones given after the command name (not ``None``, not ``False``) instead."""
        return dataclasses.replace(self, **{name: v for name, v in given.items() if v is not None and v is not False})

    @property
    def tenant_context(self) -> dict[str, str] | None:
        return {"tenantId": self.tenant} if self.tenant is not None else None

    def bucket_name(self) -> str:
        if not self.bucket:
            raise typer.BadParameter(f"no vector bucket: pass --bucket or set {BUCKET_ENV}", param_hint="'--bucket'")
        return self.bucket

    def index_name(self, default: str = DEFAULT_INDEX_NAME) -> str:
        return tenant_index_name(self.tenant) if self.tenant is not None else default

    def store(self) -> Any:
        """The single-tenant store, or the multi-tenant one when ``--tenant`` was given.

        It never creates an index: that is what ``setup`` is for, so a typo in ``--bucket`` or
        ``--tenant`` is an error rather than a new, empty index.
        """
        from .store import MultiTenantS3VectorMemory, S3VectorMemory

        common: dict[str, Any] = {"backend": self.backend, "data_dir": self.data_dir, "create_index": False}
        bucket = self.bucket_name()
        if self.tenant is not None:
            self.index_name()  # validate the tenant id before anything else
            return MultiTenantS3VectorMemory(
                bucket, self.region, self.embedding_model, tvm_role_arn=self.tvm_role_arn, **common
            )
        return S3VectorMemory(bucket, self.region, self.embedding_model, **common)

    def existing_store(self, user: str | None = None, agent: str | None = None) -> Any:
        """:meth:`store`, once its index is known to exist; else a one-line error that says what to fix.

        Without this a read of a missing index finds nothing and reports success (``list`` prints no
        memories, ``forget`` deletes 0), which hides a wrong ``--bucket``, ``--tenant`` or data dir.
        The index is checked with the store's own client (the tenant's credentials on AWS), after
        ``user`` and ``agent`` are validated: a malformed id is a usage error whatever the index.
        """
        store = self.store()
        if user is not None:
            store.scope(user, agent, self.tenant_context)
        if store._existing_target(self.tenant_context) is None:
            if _bucket_exists(store._base_client(), store.bucket_name) is False:
                raise ConfigurationError(self._missing_bucket(store.bucket_name))
            raise ConfigurationError(
                f"index {self.index_name()!r} does not exist in bucket {store.bucket_name!r}: "
                + ("check --tenant, or " if self.tenant is not None else "")
                + f"create it with `{self._setup_command()}`"
            )
        return store

    def require_bucket(self, store: Any) -> None:
        """Fail with a one-line error naming ``--bucket`` when the store's bucket does not exist."""
        if _bucket_exists(store._base_client(), store.bucket_name) is False:
            raise ConfigurationError(self._missing_bucket(store.bucket_name))

    def _missing_bucket(self, bucket: str) -> str:
        local = resolve_backend(self.backend) is Backend.LOCAL
        place = f" in {resolve_data_dir(self.data_dir)}" if local else ""
        options = "--bucket and --data-dir" if local else "--bucket and --region"
        return (
            f"vector bucket {bucket!r} does not exist{place}: check {options}, "
            f"or create it with `{self._setup_command()}`"
        )

    def _setup_command(self) -> str:
        return "s3-vectors-memory" + (f" --tenant {self.tenant}" if self.tenant is not None else "") + " setup"

    def client(self) -> Any:
        """An unscoped S3 Vectors client (operator credentials on AWS, the engine locally)."""
        from .clients import make_s3vectors_client

        return make_s3vectors_client(
            resolve_backend(self.backend), region=resolve_region(self.region), data_dir=resolve_data_dir(self.data_dir)
        )


def _bucket_exists(client: Any, bucket: str) -> bool | None:
    """Whether the vector bucket exists; ``None`` when the caller may not ask (the answer is unknown)."""
    try:
        client.get_vector_bucket(vectorBucketName=bucket)
    except ClientError as exc:
        if exc.response.get("Error", {}).get("Code") == "NotFoundException":
            return False
        return None
    except BotoCoreError:
        return None
    return True


def _signed(function: Callable[..., None], parameters: list[inspect.Parameter]) -> Callable[..., None]:
    """``function`` as typer should see it: typer builds a command's options from its signature."""
    function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    function.__annotations__ = {p.name: p.annotation for p in parameters}
    return function


def _option_parameter(name: str, option: Any, *, hidden: bool = False, prefix: str = "") -> inspect.Parameter:
    """A keyword parameter declaring ``option``; ``hidden`` also drops its environment variable.

    The hidden copy on a command must not read the environment itself, or an environment value
    would override the same option given before the command name.
    """
    kind, info = get_args(option)
    if hidden:
        info = copy(info)
        info.hidden, info.envvar = True, None
    return inspect.Parameter(
        prefix + name, inspect.Parameter.KEYWORD_ONLY, default=False if kind is bool else None,
        annotation=Annotated[kind, info],
    )


_COMMON_NOTE = "The common options (s3-vectors-memory --help) go before the command name, or after it."
_CONTEXT = inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=typer.Context)
_HIDDEN_PREFIX = "common_"


def _common(*names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Hand a command the common options as its ``where`` keyword, and accept ``names`` after its name.

    The options are declared once (:data:`_COMMON_OPTIONS`) and taken by the app callback; so that
    command lines of earlier versions (``list --user u1 --backend local``) keep working, each command
    also takes the ones it uses after its name, hidden from its help, and those win over the callback's.
    """

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "where"]
        hidden = [_option_parameter(n, _COMMON_OPTIONS[n], hidden=True, prefix=_HIDDEN_PREFIX) for n in names]

        @functools.wraps(command)
        def run(**kwargs: Any) -> None:
            ctx = kwargs.pop("ctx")
            given = {name: kwargs.pop(_HIDDEN_PREFIX + name) for name in names}
            where = ctx.obj if isinstance(ctx.obj, _Where) else _Where()
            command(**kwargs, where=where.overridden(given))

        run.__doc__ = f"{inspect.cleandoc(command.__doc__ or '')}\n\n{_COMMON_NOTE}"
        return _signed(run, [*own, _CONTEXT, *hidden])

    return decorate


# --- output, errors, progress -----------------------------------------------------------------------

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


def _printable(text: object) -> str:
    """``text`` on one line, with each control character shown as its escape (``\\x1b``), never sent raw."""
    return _UNSAFE_IN_LINE.sub(_escaped, str(text))


def _markup(text: object, *, cell: bool = False) -> str:
    """``text`` for Rich: printable (a table ``cell`` keeps its line breaks), with no markup interpreted.

    A ``[/bold]`` in a memory would otherwise crash the table, and ``[link=...]`` restyle it.
    """
    from rich.markup import escape

    return escape(_UNSAFE_IN_CELL.sub(_escaped, str(text)) if cell else _printable(text))


def _json_safe(text: str) -> str:
    """JSON text with the characters ``json.dumps`` leaves raw as ``\\u`` escapes: the same JSON."""
    return _UNSAFE_IN_JSON.sub(lambda match: f"\\u{ord(match.group()):04x}", text)


class _JsonLinesOut:
    """A stream writing JSON (Lines) through :func:`_json_safe`, for exports printed on stdout."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return self._stream.write(_json_safe(text))


def _console() -> Any:
    """A Rich console on stdout that shows ``:name:`` as written instead of as an emoji."""
    from rich.console import Console

    return Console(emoji=False)


def _say(message: str) -> None:
    typer.echo(_printable(message))


def _err(message: str) -> None:
    typer.echo(_printable(message), err=True)


def _print_json(value: Any) -> None:
    typer.echo(_json_safe(json.dumps(value, ensure_ascii=False, indent=2, default=str)))


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

    bar = tqdm(desc=_printable(label), unit=unit, file=sys.stderr, disable=None, leave=False, dynamic_ncols=True)
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
    from rich.table import Table

    table = Table(title=_markup(title), show_lines=False)
    if ranked:
        table.add_column("score", justify="right")
        table.add_column("similarity", justify="right")
    for name in ("key", "agent", "type", "stored_at", "content"):
        table.add_column(name, overflow="fold")
    for memory in memories:
        cells = [_markup(memory.key), _markup(memory.agent_name), _markup(memory.type), _markup(memory.stored_at),
                 _markup(memory.content, cell=True)]
        if ranked:
            cells = [f"{memory.score or 0:.3f}", f"{memory.similarity or 0:.3f}", *cells]
        table.add_row(*cells)
    _console().print(table)


def _counts_table(title: str, counts: Mapping[str, int], limit: int = 20) -> Any:
    from rich.table import Table

    table = Table(title=title)
    table.add_column(title.split()[-1])
    table.add_column("memories", justify="right")
    for name, count in list(counts.items())[:limit]:
        table.add_row(_markup(name), str(count))
    if len(counts) > limit:
        table.add_row(f"... {len(counts) - limit} more", "")
    return table


# --- commands ---------------------------------------------------------------------------------------


def _root(ctx: typer.Context, **options: Any) -> None:
    """Resolve the common options once, for the command to read from ``ctx.obj`` (see :func:`_common`)."""
    ctx.obj = _Where(**options)


app.callback()(
    _signed(
        _root,
        [
            inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
            *(_option_parameter(name, option) for name, option in _COMMON_OPTIONS.items()),
        ],
    )
)


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
@_common("backend", "data_dir", "bucket", "region", "tenant", "embedding_model", "as_json", "debug")
def setup(
    dimension: Annotated[
        int | None,
        typer.Option(min=1, max=4096, help="Vector dimension (default: the embedding model's, 1024 for Nova)"),
    ] = None,
    index_name: Annotated[str, typer.Option("--index-name", help="Index name (single-tenant)")] = DEFAULT_INDEX_NAME,
    *,
    where: _Where,
) -> None:
    """Create the vector bucket and the memory index (float32, cosine, spec metadata layout); idempotent."""
    from .embeddings import make_embedder
    from .lifecycle import setup_index

    with _failures(where.debug):
        name = where.index_name(index_name)
        bucket_name = where.bucket_name()
        if dimension is None:
            embedder = make_embedder(
                resolve_backend(where.backend), where.embedding_model, region=resolve_region(where.region)
            )
            dimension = embedder.dimension
        result = setup_index(where.client(), bucket_name, name, dimension=dimension)
    if where.as_json:
        _print_json(result.as_dict())
        return
    _say(f"bucket {result.bucket_name}: {'created' if result.bucket_created else 'already exists'}")
    _say(
        f"index {result.index_name}: {'created' if result.index_created else 'already exists'} "
        f"({result.dimension}-d {result.data_type}, {result.distance_metric}, non-filterable: "
        f"{', '.join(result.non_filterable_metadata_keys)})"
    )


@app.command("tvm-role")
@_common("bucket", "region", "as_json", "debug")
def tvm_role(
    principal: Annotated[
        list[str],
        typer.Option("--principal", help="ARN of a role/user allowed to vend tenant credentials (repeatable)"),
    ],
    account_id: Annotated[
        str | None, typer.Option("--account-id", help="AWS account id (default: the caller's, from STS)")
    ] = None,
    create: Annotated[bool, typer.Option("--create", help="Create (or update) the role in IAM")] = False,
    role_name: Annotated[str, typer.Option("--role-name", help="Name of the role to create")] = "s3-vectors-memory-tvm",
    *,
    where: _Where,
) -> None:
    """Print the Token Vending Machine role's trust and permissions policies, or create the role."""
    import boto3

    from .clients import AWS_RETRY_CONFIG
    from .iam import TVM_POLICY_NAME, create_tvm_role, tvm_permissions_policy, tvm_trust_policy

    with _failures(where.debug):
        bucket_name = where.bucket_name()
        region_name = resolve_region(where.region)
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
    if where.as_json:
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
        _say(f"export {TVM_ROLE_ENV}={role_arn}")


@app.command()
@_common("data_dir", "debug")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (no signature checks: keep loopback)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port")] = 9000,
    *,
    where: _Where,
) -> None:
    """Serve the embedded engine as a local S3 Vectors endpoint (for boto3 / the AWS CLI) until Ctrl-C."""
    from . import server

    with _failures(where.debug):
        server.serve(resolve_data_dir(where.data_dir), host=host, port=port)


@app.command()
@_common(*_INDEX_OPTIONS)
def search(
    query: Annotated[str, typer.Argument(help="What to look for")],
    user: UserOption,
    top_k: Annotated[int, typer.Option("--top-k", min=1, max=100, help="How many memories")] = 5,
    threshold: Annotated[
        float | None, typer.Option(min=0.0, max=1.0, help="Minimum similarity (default: the model's)")
    ] = None,
    agent: AgentOption = None,
    *,
    where: _Where,
) -> None:
    """Search a user's memories as the agent would, best first."""
    with _failures(where.debug):
        store = where.existing_store(user, agent)
        found = store.search(
            user, query, top_k=top_k, tenant_context=where.tenant_context, agent_name=agent,
            similarity_threshold=threshold,
        )
    if where.as_json:
        _print_json([_memory_json(m) for m in found])
    else:
        _memory_table(found, f"{len(found)} memories of {user} for {query!r}", ranked=True)


@app.command("list")
@_common(*_INDEX_OPTIONS)
def list_(
    user: UserOption,
    page_size: Annotated[int, typer.Option("--page-size", min=1, max=1000, help="Memories per page")] = 100,
    next_token: Annotated[str | None, typer.Option("--next-token", help="Continue after a previous page")] = None,
    all_pages: Annotated[bool, typer.Option("--all", help="Every page, not just one")] = False,
    include_expired: Annotated[bool, typer.Option("--include-expired", help="Also expired memories")] = False,
    agent: AgentOption = None,
    *,
    where: _Where,
) -> None:
    """List a user's memories, one page at a time (or --all)."""
    with _failures(where.debug):
        store = where.existing_store(user, agent)
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
    if where.as_json:
        _print_json({"memories": [_memory_json(m) for m in memories], "next_token": token})
        return
    if memories:
        _memory_table(memories, f"{len(memories)} memories of {user}")
    else:
        _err(f"no memories of {user}")
    if token is not None:
        _err(f"more memories: --next-token {token}")


@app.command()
@_common(*_INDEX_OPTIONS)
def forget(
    user: Annotated[str | None, typer.Option("--user", help="Forget this user (in --tenant's index if given)")] = None,
    agent: AgentOption = None,
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation")] = False,
    segments: SegmentsOption = 4,
    *,
    where: _Where,
) -> None:
    """Delete every memory of a user (--user), or a tenant's whole index (--tenant alone). Irreversible."""
    tenant = where.tenant
    if user is None and tenant is None:
        raise typer.BadParameter("pass --user USER, --tenant TENANT, or both", param_hint="what to forget")
    if user is None and agent is not None:
        raise typer.BadParameter("--agent needs --user", param_hint="'--agent'")
    with _failures(where.debug):
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
            typer.confirm(_printable(question), abort=True, err=True)
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
                if where.as_json:
                    _print_json(exc.report.as_dict())
                raise
            result = report.as_dict()
            message = (
                f"forgot {report.deleted} memories of {user} in {report.index_name} "
                f"(verified: {report.remaining} left, {report.scanned} vectors scanned in {report.seconds:.1f}s)"
            )
    if where.as_json:
        _print_json(result)
    else:
        _say(message)


@app.command()
@_common(*_INDEX_OPTIONS)
def export(
    user: UserOption,
    output: Annotated[str, typer.Option("--output", "-o", help="File to write, or - for stdout")] = "-",
    with_vectors: Annotated[bool, typer.Option("--with-vectors", help="Include the vectors")] = False,
    include_expired: Annotated[bool, typer.Option("--include-expired", help="Also expired memories")] = False,
    agent: AgentOption = None,
    *,
    where: _Where,
) -> None:
    """Export a user's memories as JSON Lines (key, content, metadata[, vector])."""
    with _failures(where.debug):
        store = where.existing_store(user, agent)

        def run(fp: Any) -> int:
            with _progress(f"exporting {user}") as progress:
                count: int = store.export_memories(
                    user, fp, agent_name=agent, tenant_context=where.tenant_context, include_vectors=with_vectors,
                    include_expired=include_expired, progress=progress,
                )
            return count

        count = run(_JsonLinesOut(sys.stdout)) if output == "-" else _write_atomically(Path(output), run)
    if where.as_json and output != "-":
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
@_common(*_INDEX_OPTIONS)
def import_(
    source: Annotated[str, typer.Argument(help="JSON Lines file from `export`, or - for stdin")],
    keep_vectors: Annotated[
        bool, typer.Option("--keep-vectors", help="Reuse exported vectors when the model and dimension match")
    ] = False,
    *,
    where: _Where,
) -> None:
    """Import memories exported by `export` into an existing index, keeping keys and metadata.

    The content is re-embedded unless --keep-vectors can reuse the exported vector. A line whose key
    does not belong to the user, agent and conversation of its own metadata is refused (never written,
    reported on stderr, exit status 1); the other lines are still imported.
    """
    with _failures(where.debug):
        store = where.existing_store()
        with contextlib.ExitStack() as stack:
            fp = sys.stdin if source == "-" else stack.enter_context(Path(source).open(encoding="utf-8"))
            progress = stack.enter_context(_progress("importing", unit=" memories"))
            report = store.import_memories(
                fp, tenant_context=where.tenant_context, keep_vectors=keep_vectors, verify_keys=True,
                progress=progress,
            )
    if where.as_json:
        _print_json(report.as_dict())
    else:
        _say(
            f"imported {report.imported} memories ({report.re_embedded} re-embedded, "
            f"{report.kept_vectors} with their exported vectors)"
        )
    if report.rejected:
        _report_rejections(report)
        raise typer.Exit(1)


def _report_rejections(report: Any) -> None:
    """One stderr line per refused import line (as many as the report details), then the count."""
    for rejection in report.rejections:
        _err(f"line {rejection.line}: refused key {rejection.key!r}: {rejection.reason}")
    if report.rejected > len(report.rejections):
        _err(f"... and {report.rejected - len(report.rejections)} more refused lines")
    _err(
        f"refused {report.rejected} lines whose key is not their own (another user's, agent's, conversation's "
        "or tenant's, or not a memory key): nothing of them was written"
    )


@app.command()
@_common(*_INDEX_OPTIONS)
def prune(segments: SegmentsOption = 4, *, where: _Where) -> None:
    """Delete every expired memory (past its expires_at) in the index."""
    with _failures(where.debug):
        store = where.existing_store()
        with _progress("pruning") as progress:
            pruned = store.prune_expired(tenant_context=where.tenant_context, segments=segments, progress=progress)
        index = where.index_name()
    if where.as_json:
        _print_json({"pruned": pruned, "index_name": index})
    else:
        _say(f"pruned {pruned} expired memories from {index}")


@app.command()
@_common(*_INDEX_OPTIONS)
def stats(segments: SegmentsOption = 4, *, where: _Where) -> None:
    """Count the index's memories by type, agent and user, and show its configuration."""
    with _failures(where.debug):
        store = where.existing_store()
        with _progress("counting") as progress:
            result = store.stats(tenant_context=where.tenant_context, segments=segments, progress=progress)
    if where.as_json:
        _print_json(result.as_dict())
        return
    from rich.columns import Columns

    console = _console()
    backend_name = resolve_backend(where.backend).value
    console.print(
        f"[bold]{_markup(result.bucket_name)}/{_markup(result.index_name)}[/bold] ({backend_name}): "
        f"{result.dimension}-d {_markup(result.data_type)}, {_markup(result.distance_metric)}; non-filterable: "
        f"{_markup(', '.join(result.non_filterable_metadata_keys))}"
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
