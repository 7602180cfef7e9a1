"""Commands that set things up or run them: demo, setup, tvm-role, serve."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..config import DEFAULT_INDEX_NAME, TVM_ROLE_ENV, resolve_backend, resolve_data_dir, resolve_region
from ..errors import ConfigurationError
from ._options import Where, app, common_options
from ._output import err, failures, print_json, say


@app.command()
def demo(
    model: Annotated[
        str | None,
        typer.Option(help="scripted (default), bedrock[:MODEL_ID], ollama:MODEL, openai:MODEL or llamacpp:PATH"),
    ] = None,
    base_url: Annotated[str | None, typer.Option(help="Server URL for ollama/openai models")] = None,
    data_dir: Annotated[
        Path | None, typer.Option(help="Keep the demo's memories here (default: a fresh temporary directory)")
    ] = None,
    backend: Annotated[str, typer.Option(help="local (default) or aws")] = "local",
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks")] = False,
) -> None:
    """Run four conversations of two users and show what was stored, retrieved and injected.

    Exits 1 when a conversation could not be stored.
    """
    from ._demo import run_demo

    with failures(debug):  # a model server that is not running is one line, not a traceback
        try:
            result = run_demo(model_spec=model, base_url=base_url, data_dir=data_dir, backend=backend)
        except ValueError as exc:
            raise typer.BadParameter(str(exc)) from exc
    if result["unstored"]:
        raise typer.Exit(1)


@app.command()
@common_options("backend", "data_dir", "bucket", "region", "tenant", "embedding_model", "as_json", "debug")
def setup(
    dimension: Annotated[
        int | None,
        typer.Option(min=1, max=4096, help="Vector dimension (default: the embedding model's, 1024 for Nova)"),
    ] = None,
    index_name: Annotated[str, typer.Option("--index-name", help="Index name (single-tenant)")] = DEFAULT_INDEX_NAME,
    upgrade: Annotated[
        bool,
        typer.Option("--upgrade", help="Move an existing index to ENHANCED with content full-text searchable "
                     "(hybrid retrieval) and wait until it is ACTIVE; safe to run again"),
    ] = False,
    *,
    where: Where,
) -> None:
    """Create the vector bucket and the memory index (float32, cosine, spec metadata layout); idempotent."""
    from ..embeddings import make_embedder
    from ..lifecycle import setup_index

    with failures(where.debug):
        name = where.index_name(index_name)
        bucket_name = where.bucket_name()
        if dimension is None:
            embedder = make_embedder(
                resolve_backend(where.backend), where.embedding_model, region=resolve_region(where.region)
            )
            dimension = embedder.dimension
        result = setup_index(where.client(), bucket_name, name, dimension=dimension, upgrade=upgrade)
    if where.as_json:
        print_json(result.as_dict())
        return
    say(f"bucket {result.bucket_name}: {'created' if result.bucket_created else 'already exists'}")
    say(
        f"index {result.index_name}: {'created' if result.index_created else 'already exists'} "
        f"({result.dimension}-d {result.data_type}, {result.distance_metric}, non-filterable: "
        f"{', '.join(result.non_filterable_metadata_keys)})"
    )
    if result.index_mode is not None:
        text = f"content full-text search {result.full_text}" if result.full_text else "no full-text search"
        done = f" (upgraded: {', '.join(result.upgraded)})" if result.upgraded else ""
        say(f"index mode {result.index_mode}, {text}{done}")


@app.command("tvm-role")
@common_options("bucket", "region", "as_json", "debug")
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
    where: Where,
) -> None:
    """Print the Token Vending Machine role's trust and permissions policies, or create the role."""
    import boto3

    from ..index import AWS_RETRY_CONFIG
    from ..tenancy import TVM_POLICY_NAME, create_tvm_role, tvm_permissions_policy, tvm_trust_policy

    with failures(where.debug):
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
        print_json({
            "role_name": role_name, "role_arn": role_arn, "policy_name": TVM_POLICY_NAME,
            "trust_policy": trust, "permissions_policy": permissions,
        })
        return
    typer.echo("# Trust policy")
    typer.echo(json.dumps(trust, indent=2))
    typer.echo(f"# Permissions policy (inline policy {TVM_POLICY_NAME})")
    typer.echo(json.dumps(permissions, indent=2))
    if role_arn is not None:
        err(f"role {role_name} is ready")
        say(f"export {TVM_ROLE_ENV}={role_arn}")


@app.command()
@common_options("data_dir", "debug")
def serve(
    host: Annotated[str, typer.Option(help="Interface to bind (no signature checks: keep loopback)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="TCP port")] = 9000,
    *,
    where: Where,
) -> None:
    """Serve the embedded engine as a local S3 Vectors endpoint (for boto3 / the AWS CLI) until Ctrl-C."""
    try:
        from s3vectors_engine import server
    except ModuleNotFoundError as exc:  # a core install: the message names the ``server`` extra
        if (exc.name or "").partition(".")[0] not in {"starlette", "uvicorn"}:
            raise
        err(f"error: {exc}")
        raise typer.Exit(2) from None

    with failures(where.debug):
        server.serve(resolve_data_dir(where.data_dir), host=host, port=port)


