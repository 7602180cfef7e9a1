"""The common options, declared once: the app callback takes them, every command reads a :class:`Where`."""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable, Mapping
from copy import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, get_args

import typer
from botocore.exceptions import BotoCoreError, ClientError

from ..config import (
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
from ..errors import ConfigurationError
from ..lifecycle import MAX_SEGMENTS
from ..tenancy import tenant_index_name

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

#: The common options by parameter name (the fields of :class:`Where`): the app callback takes them
#: before the command name, and :func:`common_options` lets each command take the ones it uses after it.
COMMON_OPTIONS: dict[str, Any] = {
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
INDEX_OPTIONS = tuple(COMMON_OPTIONS)

AgentOption = Annotated[str | None, typer.Option("--agent", help="Only the memories of this agent name")]
UserOption = Annotated[str, typer.Option("--user", help="The user id whose memories to use")]
SegmentsOption = Annotated[
    int, typer.Option("--segments", min=1, max=MAX_SEGMENTS, help="Parallel ListVectors segments for scans")
]


@dataclass(frozen=True)
class Where:
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

    def overridden(self, given: Mapping[str, Any]) -> Where:
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
        from ..store import MultiTenantS3VectorMemory, S3VectorMemory

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
        from ..index import make_s3vectors_client

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


def signed(function: Callable[..., None], parameters: list[inspect.Parameter]) -> Callable[..., None]:
    """``function`` as typer should see it: typer builds a command's options from its signature."""
    function.__signature__ = inspect.Signature(parameters)  # type: ignore[attr-defined]
    function.__annotations__ = {p.name: p.annotation for p in parameters}
    return function


def option_parameter(name: str, option: Any, *, hidden: bool = False, prefix: str = "") -> inspect.Parameter:
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


def common_options(*names: str) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """Hand a command the common options as its ``where`` keyword, and accept ``names`` after its name.

    The options are declared once (:data:`COMMON_OPTIONS`) and taken by the app callback; so that
    command lines of earlier versions (``list --user u1 --backend local``) keep working, each command
    also takes the ones it uses after its name, hidden from its help, and those win over the callback's.
    """

    def decorate(command: Callable[..., None]) -> Callable[..., None]:
        own = [p for p in inspect.signature(command, eval_str=True).parameters.values() if p.name != "where"]
        hidden = [option_parameter(n, COMMON_OPTIONS[n], hidden=True, prefix=_HIDDEN_PREFIX) for n in names]

        @functools.wraps(command)
        def run(**kwargs: Any) -> None:
            ctx = kwargs.pop("ctx")
            given = {name: kwargs.pop(_HIDDEN_PREFIX + name) for name in names}
            where = ctx.obj if isinstance(ctx.obj, Where) else Where()
            command(**kwargs, where=where.overridden(given))

        run.__doc__ = f"{inspect.cleandoc(command.__doc__ or '')}\n\n{_COMMON_NOTE}"
        return signed(run, [*own, _CONTEXT, *hidden])

    return decorate



def _root(ctx: typer.Context, **options: Any) -> None:
    """Resolve the common options once, for the command to read from ``ctx.obj`` (see :func:`common_options`)."""
    ctx.obj = Where(**options)


app.callback()(
    signed(
        _root,
        [
            inspect.Parameter("ctx", inspect.Parameter.POSITIONAL_OR_KEYWORD, annotation=typer.Context),
            *(option_parameter(name, option) for name, option in COMMON_OPTIONS.items()),
        ],
    )
)


