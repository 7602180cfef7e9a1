"""The plugin's knobs: their defaults, and the checks that refuse a bad one before any turn runs.

Kept beside the hooks (:mod:`.plugin`) rather than in them, so every default and every refusal of
:class:`~.plugin.S3VectorMemoryPlugin` is read in one place. Every check raises
:class:`~.errors.ConfigurationError` (an agent name that is no valid id:
:class:`~.errors.InvalidIdentityError`) when the plugin is built or attached to its agent: a wiring
mistake must fail at start, never on a user's turn.
"""

from __future__ import annotations

from typing import Literal

from ..errors import ConfigurationError
from ..index import validate_id
from ..store import S3VectorMemory
from ._prompt import MEMORY_PLACEHOLDER, has_placeholder

__all__ = [
    "DEFAULT_IDLE_TIMEOUT_SECONDS",
    "DEFAULT_INLINE_TIMEOUT",
    "DEFAULT_READ_YOUR_WRITES_TIMEOUT",
    "DEFAULT_TOP_K",
    "MAX_OPEN_CONVERSATIONS",
    "STRANDS_DEFAULT_AGENT_NAME",
    "WriteMode",
    "check_agent_name",
    "check_plugin_settings",
]

#: The name strands gives an agent that was not named: not a usable memory namespace.
STRANDS_DEFAULT_AGENT_NAME = "Strands Agents"
DEFAULT_TOP_K = 5
#: A conversation with no new turn for this long is ended and stored as if ``end_session`` was sent.
DEFAULT_IDLE_TIMEOUT_SECONDS = 30 * 60
MAX_OPEN_CONVERSATIONS = 10_000
#: write_mode="inline": how long an ending turn waits for its conversation to be stored.
DEFAULT_INLINE_TIMEOUT = 60.0
#: "background": ending a conversation returns at once; "inline": once it is stored (request-scoped runtimes).
WriteMode = Literal["background", "inline"]
#: How long a conversation's first turn waits for the same user's own pending writes.
DEFAULT_READ_YOUR_WRITES_TIMEOUT = 10.0


def check_plugin_settings(
    store: object,
    base_prompt: object,
    *,
    top_k: int,
    idle_timeout_seconds: float,
    max_open_conversations: int,
    write_mode: str,
    inline_timeout: float,
) -> None:
    """Refuse settings the plugin cannot work with (a prompt without ``{memory_context}`` above all)."""
    if not isinstance(store, S3VectorMemory):
        raise ConfigurationError("store must be an S3VectorMemory or MultiTenantS3VectorMemory")
    if not isinstance(base_prompt, str | list):
        raise ConfigurationError("base_prompt must be a string (or content blocks) containing {memory_context}")
    if not has_placeholder(base_prompt):
        raise ConfigurationError(
            f"base_prompt must contain the {MEMORY_PLACEHOLDER} placeholder: it is where retrieved "
            "memories reach the model"
        )
    if not 1 <= top_k <= 100:
        raise ConfigurationError("top_k must be between 1 and 100")
    if idle_timeout_seconds <= 0 or max_open_conversations < 1:
        raise ConfigurationError("idle_timeout_seconds must be positive and max_open_conversations at least 1")
    if write_mode not in ("background", "inline") or inline_timeout <= 0:
        raise ConfigurationError("write_mode must be 'background' or 'inline', inline_timeout positive")


def check_agent_name(name: object) -> str:
    """The agent's name, which is the memory namespace: explicit, stable and a valid id, or refused."""
    if not name or name == STRANDS_DEFAULT_AGENT_NAME:
        raise ConfigurationError(
            "S3VectorMemoryPlugin needs an explicit, stable agent name: it is the memory namespace.\n"
            "    Agent(model=..., name='assistant', plugins=[plugin])"
        )
    return validate_id(name, "agent name")
