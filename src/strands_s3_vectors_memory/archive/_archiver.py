"""The archiver: an ended conversation in, its summary and detail records stored.

One flow, shared by the background writer's handler (``end_session``, idle and evicted
conversations, replays after a crash) and the synchronous 0.3.0 API (``close_session_with_data``):

1. a conversation its user has since forgotten is dropped (tombstones, see :mod:`..durability._tombstones`);
2. the summary already stored for the conversation (it was ended before and resumed) is read once,
   so the new summary covers the first part too;
3. the user's stored facts most related to the conversation are read (one bounded vector query,
   with the mean vector of the conversation's detail records, which are embedded first for it);
4. the agent's own model summarizes the transcript and, in the same call, lists the user's facts
   and which of the related facts the conversation supersedes (checkpointed together, so a retry
   never repeats it; facts it could not parse are dropped and counted, the summary is kept);
5. the summary, the user's turns (detail records) and the new facts are stored, then the facts they
   supersede are rewritten as superseded (same vector, ``valid_to``, ``superseded_by``); if the
   user was forgotten while those writes were on their way, everything just written is deleted
   again, so a forgotten user's facts never come back.

What an attempt embedded is kept in memory (float32, bounded) when it fails, so the next attempt
(or the salvage) of the same job embeds nothing twice: a throttled model or ``PutVectors`` must not
cost the embeddings again.

One user's conversations are archived one at a time (two browser tabs; a summary slower than the
read-your-writes wait), so the second conversation sees the first one's facts and two contradicting
facts never both stay current. The background writer schedules it: a job whose memory scope is being
archived is not handed to a worker until the scope is free (the writer's ``group``, see
:mod:`..durability._job_queue`), so other users' jobs always run in parallel, however many jobs one user has
ready. :class:`_OneAtATime` is the fallback for what the writer does not schedule.

A job that keeps failing ends as a dead letter; :meth:`Archiver.salvage` then stores what needs no
model: an extractive summary (the user's own words, marked as such) and the detail records (and the
facts, when the model's answer was checkpointed before the failure).
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
from cachetools import LRUCache

from ..durability import Tombstones, tombstones_dir
from ..forking import reset_in_child
from ..index import MemoryScope, validate_id
from ..text import has_text_content
from ._details import conversation_details
from ._facts import FactRef, resolve_changes
from ._jobs import ConversationJob
from ._settings import SummarySettings
from ._summarizer import extractive_summary, summarize_conversation
from ._transcript import render_transcript

if TYPE_CHECKING:
    from strands.models import Model

__all__ = ["ArchiveStore", "Archiver"]

logger = logging.getLogger(__name__)


class ArchiveStore(Protocol):
    """What the archiver needs of a memory store (:class:`~strands_s3_vectors_memory.S3VectorMemory` is one).

    A seam, so the archive room does not import the store room that reads what it writes: the store
    depends on the archive's record and fact rules, never the other way round.
    """

    @property
    def data_dir(self) -> Path: ...

    def embed_missing(self, texts: Sequence[str], memo: MutableMapping[str, list[float]]) -> list[list[float]]: ...

    def related_facts(
        self, scope: MemoryScope, transcript: str, *, limit: int = ..., near: Sequence[Sequence[float]] = ...
    ) -> list[FactRef]: ...

    def conversation_summary(self, scope: MemoryScope, conversation_id: str) -> str | None: ...

    def store_conversation_scope(
        self,
        scope: MemoryScope,
        conversation_id: str,
        summary: str,
        *,
        details: Sequence[str] = ...,
        ttl_seconds: float | None = ...,
        extractive: bool = ...,
        facts: Sequence[str] = ...,
        stated_at: float | None = ...,
        memo: MutableMapping[str, list[float]] | None = ...,
        summarized_by: str | None = ...,
    ) -> list[str]: ...

    def supersede_facts(
        self, scope: MemoryScope, ended: Mapping[str, str], *, ended_at: float | None = ...
    ) -> list[str]: ...

    def delete_keys(self, scope: MemoryScope, keys: Sequence[str]) -> None: ...


#: Document vectors kept (float32) from failed attempts for the next attempt of their job, at most this
#: many in all.
_KEPT_VECTORS = 2_000


class _OneAtATime:
    """A lock per memory scope, process-wide, held while one of its conversations is archived.

    The writer never runs two jobs of one scope at once, so its workers find the lock free and never
    wait on it. It is still needed for what bypasses that writer's queue: the synchronous API
    (``close_session_with_data``) called while the writer archives the same user, and two runtimes
    (plugins with different ``spool_dir``) storing one user. Process-wide because plugins built per
    request each have their own archiver. Re-entrant (an archive without a model salvages under the
    same hold); an entry lives only while held or waited for, so the table is as large as the number
    of users being stored right now.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._held: dict[MemoryScope, tuple[threading.RLock, int]] = {}

    @contextlib.contextmanager
    def hold(self, scope: MemoryScope) -> Iterator[None]:
        with self._lock:
            lock, users = self._held.get(scope) or (threading.RLock(), 0)
            self._held[scope] = (lock, users + 1)
        try:
            with lock:
                yield
        finally:
            with self._lock:
                lock, users = self._held[scope]
                if users > 1:
                    self._held[scope] = (lock, users - 1)
                else:
                    del self._held[scope]

    def reset(self) -> None:
        """A forked child starts with no holder (the threads that held them did not come along)."""
        self._lock = threading.Lock()
        self._held = {}


_ONE_AT_A_TIME = _OneAtATime()
reset_in_child(_ONE_AT_A_TIME, _OneAtATime.reset)


class Archiver:
    """Stores ended conversations into one store, summarizing with one agent's model."""

    def __init__(
        self,
        store: ArchiveStore,
        model: Callable[[], Model | None],
        settings: SummarySettings | None = None,
    ) -> None:
        self.store = store
        self._model = model
        self.settings = settings or SummarySettings()
        self._tombstones = Tombstones(tombstones_dir(store.data_dir))
        self._kept: LRUCache[tuple[object, ...], tuple[tuple[str, ...], npt.NDArray[np.float32]]] = LRUCache(
            maxsize=_KEPT_VECTORS, getsizeof=lambda kept: max(1, len(kept[0]))
        )
        self._kept_lock = threading.Lock()  # the writer's workers share one archiver

    def archive(
        self, job: ConversationJob, checkpoint: Callable[[ConversationJob], None] = lambda _job: None
    ) -> str | None:
        """Summarize and store ``job``; returns the stored summary (``None``: the user was forgotten).

        Errors propagate, so the writer can retry them or keep the job spooled.
        """
        if self._forgotten(job):
            return None
        with _ONE_AT_A_TIME.hold(job.scope):
            return self._archive(job, checkpoint)

    def _archive(self, job: ConversationJob, checkpoint: Callable[[ConversationJob], None]) -> str | None:
        if job.earlier_summary is None:
            job = self._with_earlier_summary(job)
            checkpoint(job)
        model = self._model() if job.summary is None else None
        if job.summary is None and model is None:  # no model at all (a replay from the command line)
            return self.salvage(job)
        details = self._details(job)
        memo = self._kept_vectors(job)  # what an earlier, failed attempt of this job embedded
        try:
            return self._summarize_and_store(job, model, details, memo, checkpoint)
        except BaseException:
            self._keep_vectors(job, memo)
            raise

    def _summarize_and_store(
        self,
        job: ConversationJob,
        model: Model | None,
        details: list[str],
        memo: dict[str, list[float]],
        checkpoint: Callable[[ConversationJob], None],
    ) -> str | None:
        if job.summary is None:
            assert model is not None
            extract = self.settings.extract_facts and bool(job.transcript.strip())
            # The details are embedded before the model call: their vectors are the facts' query.
            near = self.store.embed_missing(list(dict.fromkeys(details)), memo) if extract and details else []
            related = self.store.related_facts(job.scope, job.transcript, limit=self.settings.related_facts,
                                               near=near) if extract else []
            reply = summarize_conversation(
                model,
                job.transcript,
                earlier_summary=job.earlier_summary or "",
                current_facts=[fact.text for fact in related],
                extract_facts=extract,
                system_prompt=self.settings.summary_prompt,
                max_chars=self.settings.summary_max_chars,
            )
            job = replace(job, summary=reply.summary, related_facts=tuple(related),
                          fact_changes=resolve_changes(reply, related), summary_path=reply.path)
            checkpoint(job)
        self._store(job, job.summary or "", details, extractive=False, memo=memo)
        return job.summary

    def archive_messages(self, scope: MemoryScope, conversation_id: str, messages: Sequence[Any]) -> str | None:
        """Summarize and store a conversation given as strands messages, now (the 0.3.0 synchronous API).

        Returns the stored summary, or ``None`` when the messages carry no text.
        """
        validate_id(conversation_id, "conversation_id")
        if not messages or not has_text_content(messages):
            return None
        now = time.time()
        job = ConversationJob(scope, conversation_id, render_transcript(messages), started_at=now, ended_at=now,
                              reason="close_session")
        return self.archive(job) or None

    def salvage(self, job: ConversationJob) -> str | None:
        """Store what needs no model (a dead letter, or no model): an extractive summary and the details.

        The summary is marked ``extractive`` unless the model's summary was already checkpointed.
        """
        if self._forgotten(job):
            return None
        with _ONE_AT_A_TIME.hold(job.scope):
            return self._salvage(job)

    def _salvage(self, job: ConversationJob) -> str:
        summary = job.summary
        extractive = summary is None
        if summary is None:
            if job.earlier_summary is None:  # the job failed before it read the stored summary
                job = self._with_earlier_summary(job)
            summary = extractive_summary(
                job.transcript, self.settings.summary_max_chars, earlier_summary=job.earlier_summary or ""
            )
        self._store(job, summary, self._details(job), extractive=extractive, memo=self._kept_vectors(job))
        logger.warning(
            "conversation %s was not summarized by a model; stored %s and its detail records",
            job.conversation_id,
            "an extractive summary (marked as such)" if extractive else "its checkpointed summary",
        )
        return summary

    def _with_earlier_summary(self, job: ConversationJob) -> ConversationJob:
        """``job`` with the summary already stored for its conversation (``""``: none), so the new
        summary covers the conversation's earlier part too instead of replacing it."""
        return replace(job, earlier_summary=self.store.conversation_summary(job.scope, job.conversation_id) or "")

    @staticmethod
    def _job_key(job: ConversationJob) -> tuple[object, ...]:
        return job.scope, job.conversation_id, job.started_at, job.ended_at

    def _kept_vectors(self, job: ConversationJob) -> dict[str, list[float]]:
        """The document vectors a failed attempt of ``job`` left (text -> vector; empty if none)."""
        with self._kept_lock:
            kept = self._kept.pop(self._job_key(job), None)
        return {} if kept is None else dict(zip(kept[0], kept[1].tolist(), strict=True))

    def _keep_vectors(self, job: ConversationJob, memo: dict[str, list[float]]) -> None:
        """Keep what a failed attempt embedded (float32) for the next one, within ``_KEPT_VECTORS``."""
        if memo:
            with self._kept_lock, contextlib.suppress(ValueError):  # more than all of _KEPT_VECTORS: not kept
                self._kept[self._job_key(job)] = (tuple(memo), np.asarray(list(memo.values()), dtype=np.float32))

    def _details(self, job: ConversationJob) -> list[str]:
        return conversation_details(job.transcript) if self.settings.store_details else []

    def _store(
        self,
        job: ConversationJob,
        summary: str,
        details: list[str],
        *,
        extractive: bool,
        memo: dict[str, list[float]] | None = None,
    ) -> None:
        changes = job.fact_changes
        keys = self.store.store_conversation_scope(
            job.scope,
            job.conversation_id,
            summary,
            details=details,
            ttl_seconds=self.settings.ttl_seconds,
            extractive=extractive,
            summarized_by=job.summary_path,
            facts=[fact.text for fact in changes.facts] if changes is not None else [],
            stated_at=job.ended_at,
            memo=memo,
        )
        if changes is not None:  # after the new facts exist, so superseded_by never names a missing key
            keys += self.store.supersede_facts(job.scope, changes.superseded_by(job.scope), ended_at=job.ended_at)
        if keys and self._forgotten(job, after_write=True):
            self.store.delete_keys(job.scope, keys)

    def _forgotten(self, job: ConversationJob, *, after_write: bool = False) -> bool:
        scope = job.scope
        stone = self._tombstones.find(scope.tenant_id, scope.user_id, scope.agent_name, since=job.started_at)
        if stone is None:
            return False
        logger.info(
            "conversation %s belongs to a forgotten user: %s",
            job.conversation_id,
            "deleted what was just stored" if after_write else "not stored",
        )
        return True

