"""The plugin's settings: three typed groups, their defaults, and the checks that refuse a bad one.

:class:`~._plugin.S3VectorMemoryPlugin` takes the spec's two arguments (``store``, ``base_prompt``), four
common knobs as keywords, and the rest in three frozen groups, one per stage of a conversation's life:

- :class:`RetrievalSettings`: what a conversation is shown of the user's memories (its first turn, the
  recall tool);
- :class:`WritingSettings`: when a conversation ends (idle, evicted, ``end_session``) and how it reaches
  the store (the spool, the background writer, ``write_mode``);
- :class:`SummarySettings`: what is stored of an ended conversation (summary, details, facts, expiry);
  the archiver takes this group as it is (it lives in the archive room, which owns what is stored, and
  is re-exported here).

A group is checked when it is built, so a wiring mistake fails at start with a
:class:`~..errors.ConfigurationError` that names the setting, never on a user's turn. Every default and
every refusal of the plugin is in this module (an agent name that is no valid id:
:class:`~..errors.InvalidIdentityError`, when the plugin is attached to its agent).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any, Literal, TypedDict, TypeVar

from ..archive import SummarySettings
from ..config import is_int, is_number, require_flags, require_setting
from ..errors import ConfigurationError
from ..index import validate_id
from ..store import S3VectorMemory
from ._prompt import DEFAULT_MEMORY_BUDGET_CHARS, MEMORY_PLACEHOLDER, has_placeholder

__all__ = [
    "DEFAULT_IDLE_TIMEOUT_SECONDS",
    "DEFAULT_INLINE_TIMEOUT",
    "DEFAULT_READ_YOUR_WRITES_TIMEOUT",
    "DEFAULT_TOP_K",
    "DEFAULT_WRITER_WORKERS",
    "MAX_OPEN_CONVERSATIONS",
    "STRANDS_DEFAULT_AGENT_NAME",
    "MovedKeywords",
    "RetrievalSettings",
    "SummarySettings",
    "WriteMode",
    "WritingSettings",
    "check_agent_name",
    "check_store_and_prompt",
    "group_settings",
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
#: Writer threads of a runtime. Each mostly waits (the summary model, the related-facts query, the
#: writes); with 2, fifty conversations ended at once against a 0.2 s embedder took longer to store
#: than a returning user's read-your-writes wait (bench/async_server.py); the bundled model runs
#: the writers' document calls on its two document lanes whatever the count.
DEFAULT_WRITER_WORKERS = 4


@dataclass(frozen=True)
class RetrievalSettings:
    """What a conversation is shown of its user's memories.

    Read on a conversation's first turn (the memory block injected into every model call of it) and by
    the ``recall_memories`` tool; ``top_k`` is also a keyword of the plugin.

    Attributes:
        top_k: Memories injected on the first turn (1-100).
        similarity_threshold: Minimum similarity (0-1) of an injected memory; ``None``: the store's.
        memory_budget_chars: Largest memory block, in characters (about 4 per token); ``None``: no limit.
        read_your_writes_timeout: A new conversation's first turn waits up to this long (seconds) for the
            same user's still-pending writes, so "bye" then "hello again" sees the first conversation;
            other users never wait. ``0`` disables.
        fetch_summaries: A conversation found by one of its details is shown by its summary when the
            search brought that too, else by the detail. ``True`` fetches the missing summary by key:
            more context, for one more S3 Vectors round trip after the query on about half of the
            first turns (the first turn is otherwise one round trip, facts and memories side by side).
    """

    top_k: int = DEFAULT_TOP_K
    similarity_threshold: float | None = None
    memory_budget_chars: int | None = DEFAULT_MEMORY_BUDGET_CHARS
    read_your_writes_timeout: float = DEFAULT_READ_YOUR_WRITES_TIMEOUT
    fetch_summaries: bool = False

    def __post_init__(self) -> None:
        require_setting(is_int(self.top_k) and 1 <= self.top_k <= 100, "top_k", "an integer from 1 to 100", self.top_k)
        threshold = self.similarity_threshold
        require_setting(threshold is None or (is_number(threshold) and 0 <= threshold <= 1), "similarity_threshold",
                        "None or a number from 0 to 1", threshold)
        budget = self.memory_budget_chars
        require_setting(budget is None or (is_int(budget) and budget >= 1), "memory_budget_chars",
                        "None or a positive integer", budget)
        wait = self.read_your_writes_timeout
        require_setting(is_number(wait) and wait >= 0, "read_your_writes_timeout", "a number of seconds >= 0", wait)
        require_flags(self, "fetch_summaries")


@dataclass(frozen=True)
class WritingSettings:
    """When a conversation ends and how it reaches the store.

    The conversation's end (``end_session``, idle, evicted, exit) and its write are one group because
    they are one pipeline: an ended conversation is spooled, then stored by the process's background
    writer; ``durable_turns`` buffers open conversations on the spool and ends them after the same idle
    timeout. ``spool_dir`` and ``write_mode`` are also keywords of the plugin.

    Attributes:
        spool_dir: Where pending writes wait until stored (``None``: ``<data dir>/spool/<agent name>``).
        write_mode: ``"background"``: ``end_session`` returns once the conversation is spooled and it is
            stored in the background. ``"inline"``: the ending turn returns once it is stored (up to
            ``inline_timeout``; after that it stays spooled), for runtimes frozen after the reply (AWS
            Lambda, AgentCore Runtime).
        inline_timeout: The longest an ending turn waits in ``"inline"`` mode (seconds).
        writer_workers: Background writer threads; the first plugin of a process and spool sets the
            count (the runtime is shared).
        flush_at_exit: Flush pending writes when the interpreter exits.
        durable_turns: Write each turn of an open conversation to the S3 spool (one small conditional PUT,
            no model call), so whichever environment ends it (or an idle sweep, or a replay) stores all of it.
        idle_timeout_seconds: A conversation without a new turn for this long is ended and stored.
        max_open_conversations: Open conversations kept in the process; beyond it the least recently used
            one is ended and stored.
    """

    spool_dir: str | Path | None = None
    write_mode: WriteMode = "background"
    inline_timeout: float = DEFAULT_INLINE_TIMEOUT
    writer_workers: int = DEFAULT_WRITER_WORKERS
    flush_at_exit: bool = True
    durable_turns: bool = False
    idle_timeout_seconds: float = DEFAULT_IDLE_TIMEOUT_SECONDS
    max_open_conversations: int = MAX_OPEN_CONVERSATIONS

    def __post_init__(self) -> None:
        require_setting(self.spool_dir is None or isinstance(self.spool_dir, str | Path), "spool_dir",
                        "None, a str or a Path", self.spool_dir)
        require_setting(self.write_mode in ("background", "inline"), "write_mode", "'background' or 'inline'",
                        self.write_mode)
        for name in ("inline_timeout", "idle_timeout_seconds"):
            seconds = getattr(self, name)
            require_setting(is_number(seconds) and seconds > 0, name, "a positive number of seconds", seconds)
        for name in ("writer_workers", "max_open_conversations"):
            count = getattr(self, name)
            require_setting(is_int(count) and count >= 1, name, "an integer >= 1", count)
        require_flags(self, "flush_at_exit", "durable_turns")

    @property
    def spool_path(self) -> Path | None:
        """``spool_dir`` as a path (``None``: the default one, which depends on the agent's name)."""
        return Path(self.spool_dir) if self.spool_dir is not None else None


class MovedKeywords(TypedDict, total=False):
    """The plugin's keywords of the 1.0 previews that now live in a group (deprecated, still accepted)."""

    similarity_threshold: float | None
    memory_budget_chars: int | None
    read_your_writes_timeout: float
    inline_timeout: float
    writer_workers: int
    flush_at_exit: bool
    durable_turns: bool
    idle_timeout_seconds: float
    max_open_conversations: int
    summary_prompt: str
    summary_max_chars: int
    store_details: bool
    ttl_seconds: float | None
    extract_facts: bool


#: The plugin's keyword of each group.
_GROUP_KEYWORD: dict[type, str] = {RetrievalSettings: "retrieval", WritingSettings: "writing",
                                   SummarySettings: "summary"}
#: Each setting's group, read from the groups themselves (a setting has one home).
_HOME: dict[str, type] = {field.name: group for group in _GROUP_KEYWORD for field in fields(group)}

_Group = TypeVar("_Group", RetrievalSettings, WritingSettings, SummarySettings)


def _fold(group: _Group, loose: Mapping[str, object]) -> _Group:
    """``group`` with the settings given as loose keywords; a setting given both ways must agree."""
    # (Any: the values come by name; the group's own checks refuse one of the wrong type.)
    given: dict[str, Any] = {name: value for name, value in loose.items() if _HOME[name] is type(group)}
    if not given:
        return group
    default = type(group)()
    for name, value in given.items():
        held = getattr(group, name)
        if held != getattr(default, name) and held != value:
            raise ConfigurationError(f"{name} is given twice: {name}={value!r} and "
                                     f"{_GROUP_KEYWORD[type(group)]}={type(group).__name__}({name}={held!r})")
    return replace(group, **given)


def group_settings(
    retrieval: RetrievalSettings | None,
    writing: WritingSettings | None,
    summary: SummarySettings | None,
    shortcuts: Mapping[str, object],
    moved: Mapping[str, object],
) -> tuple[RetrievalSettings, WritingSettings, SummarySettings]:
    """The plugin's three groups, from the groups given and its loose keywords.

    ``shortcuts`` are the plugin's keywords for common settings (``None``: not given); ``moved`` the
    deprecated keywords of the 1.0 previews, each accepted with a DeprecationWarning naming its group.
    """
    for name, value in moved.items():
        if name not in MovedKeywords.__optional_keys__:
            raise TypeError(f"S3VectorMemoryPlugin() got an unexpected keyword argument {name!r}")
        group = _HOME[name]
        warnings.warn(f"S3VectorMemoryPlugin({name}=...) is deprecated: pass "
                      f"{_GROUP_KEYWORD[group]}={group.__name__}({name}={value!r})",
                      DeprecationWarning, stacklevel=3)
    loose = {**{name: value for name, value in shortcuts.items() if value is not None}, **moved}
    return (_fold(retrieval or RetrievalSettings(), loose), _fold(writing or WritingSettings(), loose),
            _fold(summary or SummarySettings(), loose))


def check_store_and_prompt(store: object, base_prompt: object) -> None:
    """Refuse a store that is none of ours and a prompt without ``{memory_context}``."""
    if not isinstance(store, S3VectorMemory):
        raise ConfigurationError("store must be an S3VectorMemory or MultiTenantS3VectorMemory")
    if not isinstance(base_prompt, str | list):
        raise ConfigurationError("base_prompt must be a string (or content blocks) containing {memory_context}")
    if not has_placeholder(base_prompt):
        raise ConfigurationError(
            f"base_prompt must contain the {MEMORY_PLACEHOLDER} placeholder: it is where retrieved "
            "memories reach the model"
        )


def check_agent_name(name: object) -> str:
    """The agent's name, which is the memory namespace: explicit, stable and a valid id, or refused."""
    if not name or name == STRANDS_DEFAULT_AGENT_NAME:
        raise ConfigurationError(
            "S3VectorMemoryPlugin needs an explicit, stable agent name: it is the memory namespace.\n"
            "    Agent(model=..., name='assistant', plugins=[plugin])"
        )
    return validate_id(name, "agent name")
