"""The durable turn buffer: an open conversation's turns on the S3 spool, for request-scoped runtimes.

Why: without a session manager, an open conversation's turns live in the process that saw them. On
Lambda or AgentCore Runtime the turns of one conversation land on different environments, and an
environment is reclaimed without a hook: what it saw is gone, unless every request pays a summary
call (``end_open``). With ``durable_turns=True`` each turn's rendered text is written as one small
object below the conversation's folder of the S3 spool, ``If-None-Match: *`` (one PUT per turn, no
model call, never overwriting anything). Whoever ends the conversation (the environment that gets
``end_session``, an idle or evicted end, an idle sweep of a conversation whose environment is gone,
``s3-vectors-memory replay``) reads the folder in order, hands it to the writer with what it holds
itself, and then deletes exactly the objects it read: a turn written meanwhile stays for the next end.

Layout below the spool (``s3://bucket/prefix/<agent>``)::

    turns/<job key>/<ns since the epoch, 20 digits>-<8 hex>.json   one turn (identity, text, time)
    turn-sweeps/<job key>.json                                    an idle sweep's claim on a folder

A conversation whose newest turn is older than its idle timeout is swept by one instance: the claim
is written ``If-None-Match: *`` (exactly one racing sweeper wins) and deleted when it is done; a claim
left by a crashed sweeper is taken over after ``_SWEEP_CLAIM_SECONDS``.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Callable
from contextlib import suppress
from dataclasses import dataclass
from datetime import timedelta

from ..errors import ConfigurationError
from ..identity import Invocation
from ..index import MemoryScope, summary_key
from ._s3_location import S3Client, S3Location, S3Objects
from ._spool_backend import SpoolConflictError
from ._spool_format import job_key

__all__ = ["BufferedTurns", "TurnBuffer", "conversation_key", "turn_buffer_for"]

logger = logging.getLogger(__name__)

TURNS, SWEEPS = "turns", "turn-sweeps"
#: An idle sweep's claim older than this belongs to a sweeper that died: another one takes it over.
_SWEEP_CLAIM_SECONDS = 300.0


@dataclass(frozen=True)
class BufferedTurns:
    """The turns of one conversation read from the buffer, oldest first, and the objects they came from."""

    invocation: Invocation
    transcript: str
    has_text: bool
    started_at: float
    names: tuple[str, ...]
    #: When the last of them was said (the conversation's time, see :class:`~..archive._jobs.ConversationJob`).
    last_turn_at: float | None = None


class TurnBuffer:
    """The turn buffer of one S3 spool (see the module docstring)."""

    def __init__(self, location: S3Location, client: S3Client | None = None) -> None:
        self.location = location
        self._s3 = S3Objects(location.bucket, client)

    def append(self, invocation: Invocation, text: str, *, has_text: bool) -> None:
        """Write one turn of ``invocation``'s conversation (raises ``OSError`` when S3 refuses it)."""
        ns = time.time_ns()  # one reading: the turn's time and the name that orders it
        body = json.dumps({
            "tenant_id": invocation.scope.tenant_id, "user_id": invocation.scope.user_id,
            "agent_name": invocation.scope.agent_name, "conversation_id": invocation.conversation_id,
            "text": text, "has_text": has_text, "at": ns / 1e9,
        }, ensure_ascii=False).encode()
        name = f"{ns:020d}-{uuid.uuid4().hex[:8]}.json"
        self._s3.put(f"{self._folder(conversation_key(invocation))}/{name}", body, if_absent=True)

    def record(self, invocation: Invocation, text: str, *, has_text: bool) -> bool:
        """:meth:`append`, or False with a warning when S3 refused it (the caller keeps the turn itself)."""
        try:
            self.append(invocation, text, has_text=has_text)
            return True
        except OSError as exc:
            logger.warning("conversation %s: the turn could not be buffered on the S3 spool (%s); it is kept in "
                           "this process until the conversation ends", invocation.conversation_id, exc)
            return False

    def take_for(self, invocation: Invocation) -> BufferedTurns | None:
        """:meth:`take` of ``invocation``'s conversation; ``None`` (with a warning) when S3 cannot be read:
        the turns stay for a later end or the idle sweep."""
        try:
            return self.take(conversation_key(invocation))
        except OSError as exc:
            logger.warning("conversation %s: its buffered turns could not be read (%s)",
                           invocation.conversation_id, exc)
            return None

    def take(self, conversation: str) -> BufferedTurns | None:
        """The buffered turns of a conversation (its :func:`conversation_key`), ``None`` when there are none."""
        folder = self._folder(conversation)
        listed, _now = self._s3.listing(folder)
        turns: list[dict[str, object]] = []
        names: list[str] = []
        for item in sorted(listed, key=lambda entry: entry.name):
            try:
                data, _etag = self._s3.get(f"{folder}/{item.name}")
                turn = json.loads(data)
                if not isinstance(turn, dict) or not isinstance(turn.get("user_id"), str):
                    raise ValueError("not a buffered turn")
            except FileNotFoundError:
                continue  # taken by another end meanwhile
            except ValueError:
                logger.warning("skipping an unreadable buffered turn %s/%s", folder, item.name)
                continue
            turns.append(turn)
            names.append(f"{folder}/{item.name}")
        if not turns:
            return None
        first = turns[0]
        scope = MemoryScope(str(first["user_id"]), _text(first.get("agent_name")), _text(first.get("tenant_id")))
        said = [float(at) for turn in turns if isinstance(at := turn.get("at"), int | float)]
        return BufferedTurns(
            Invocation(scope, str(first["conversation_id"])),
            "\n".join(str(turn["text"]) for turn in turns if turn.get("text")),
            any(bool(turn.get("has_text")) for turn in turns),
            min(said, default=time.time()),
            tuple(names),
            max(said, default=None),
        )

    def discard(self, taken: BufferedTurns) -> None:
        """Delete the objects ``taken`` was read from (once its turns are spooled)."""
        for name in taken.names:
            with suppress(FileNotFoundError):
                self._s3.delete(name)

    def idle(self, idle_seconds: float) -> list[str]:
        """The conversations (job keys) whose newest buffered turn is older than ``idle_seconds`` (S3's clock)."""
        listed, now = self._s3.listing(self.location.key(TURNS))
        newest: dict[str, float] = {}
        for item in listed:
            folder, _, _name = item.name.partition("/")
            age = (now - item.modified) / timedelta(seconds=1)
            newest[folder] = min(newest.get(folder, age), age)
        return [folder for folder, age in newest.items() if age >= idle_seconds]

    def sweep(self, idle_seconds: float, submit: Callable[[BufferedTurns], object]) -> int:
        """Hand every conversation idle for ``idle_seconds`` to ``submit`` (which spools it), once across
        sweepers, then delete its turns; how many were handed over."""
        handed = 0
        for conversation in self.idle(idle_seconds):
            if not self._claim_sweep(conversation):
                continue
            try:
                taken = self.take(conversation)
                if taken is not None:
                    submit(taken)
                    self.discard(taken)
                    handed += 1
            finally:
                with suppress(OSError):
                    self._s3.delete(self.location.key(SWEEPS, f"{conversation}.json"))
        return handed

    def erase(self, forgotten: Callable[[BufferedTurns], bool]) -> int:
        """``forget``: delete the buffered turns of the conversations ``forgotten`` covers; how many."""
        listed, _now = self._s3.listing(self.location.key(TURNS))
        erased = 0
        for conversation in sorted({item.name.partition("/")[0] for item in listed}):
            taken = self.take(conversation)
            if taken is not None and forgotten(taken):
                self.discard(taken)
                erased += 1
        return erased

    def _claim_sweep(self, conversation: str) -> bool:
        """Claim an idle conversation for this sweeper; False when another one holds it."""
        key = self.location.key(SWEEPS, f"{conversation}.json")
        body = json.dumps({"at": time.time()}).encode()
        try:
            self._s3.put(key, body, if_absent=True)
            return True
        except SpoolConflictError:
            pass
        try:
            data, etag = self._s3.get(key)
            stale = time.time() - float(json.loads(data).get("at", 0)) > _SWEEP_CLAIM_SECONDS
            if stale:
                self._s3.put(key, body, if_match=etag)
            return stale
        except (OSError, ValueError):
            return False

    def _folder(self, conversation: str) -> str:
        return self.location.key(TURNS, conversation)


def turn_buffer_for(spool: object) -> TurnBuffer:
    """The turn buffer of a spool, which must be on S3 (:class:`ConfigurationError` otherwise: a local
    spool goes with the environment the buffer must outlive)."""
    if not isinstance(spool, S3Location):
        raise ConfigurationError(
            "WritingSettings(durable_turns=True) buffers each turn on the S3 spool: set S3_VECTORS_MEMORY_SPOOL="
            "s3://bucket/prefix (or spool_dir='s3://...'); a local spool goes with the environment"
        )
    return TurnBuffer(spool)


def conversation_key(invocation: Invocation) -> str:
    """The buffer folder of a conversation: the spool's file-safe key of its job id."""
    return job_key(summary_key(invocation.scope, invocation.conversation_id))


def _text(value: object) -> str | None:
    return value if isinstance(value, str) else None

