"""The in-memory side of an index: one contiguous float32 matrix plus an inverted index.

A cache mirrors one index (identified by its uid) at a known sequence number and is brought up to
date by applying the delta the storage layer reports (rows upserted and keys deleted since then).
Rows live in slots of a matrix that grows by doubling; deleted slots are masked and the matrix is
compacted once they pile up. Cosine indexes store unit rows, so scoring is a single mat-vec.

Filtering works on *metadata combinations* rather than rows: rows whose filterable metadata is
the same JSON text (all of one user's memories for one agent, typically) share one combination
id. The inverted index maps (filterable key, value token) -> combination ids, and each combination
knows its rows. A filter pinning equalities (the memory store's ``user_id``/``agent_name``) thus
intersects a handful of small sets and scores only the matching rows, never other users'
vectors. A numeric range is answered the same way, by a binary search over the field's distinct
numbers (sorted once after a change, then kept); only ``$ne``/``$nin``/``$exists`` are evaluated
once per distinct combination. When a filter admits many combinations (a filterable key unique per
row, a timestamp say, makes one per row), their rows are found with one numpy pass over the slots,
and a filter admitting every combination scores the whole matrix as no filter would.
"""

from __future__ import annotations

import functools
import gc
import itertools
import json
import threading
from collections.abc import Collection, Iterable, Sequence
from typing import Any

import numpy as np

from ._filters import Node, Token, value_tokens
from ._text import TextField

_MIN_CAPACITY = 16
#: A filter's rows come from one pass over the slots once it admits more than one combination per
#: this many slots (or rows of more than an eighth of them); see :meth:`IndexCache.matching`.
_SLOTS_PER_COMBINATION = 256
#: Which ``numpy.searchsorted`` side finds the first number outside each range operator's lower part.
_RANGE_SIDE = {"$gt": "right", "$gte": "left", "$lt": "left", "$lte": "right"}
#: Rough Python-object cost per row (key string, dict entry, set entry) for the memory budget.
_ROW_OVERHEAD_BYTES = 240

Row = tuple[int, str, bytes, str, str]
"""(rowid, key, float32 bytes, filterable metadata JSON, full metadata JSON or '') as read from storage.

The full metadata is read only for an index with searchable text keys (it feeds the BM25 postings).
"""
TextSpec = tuple[tuple[str, str | None], ...]
"""The (metadata key, analyzer language) pairs whose text a cache indexes for BM25."""


def _dot_rows(block: np.ndarray, query: np.ndarray) -> np.ndarray:
    """``block @ query`` on this thread alone (numpy's own loop, not BLAS).

    A mat-vec reads each row once, so its speed is memory's, not arithmetic's: BLAS threads add
    little, and on a busy machine (an agent embedding beside its queries, other processes) they wait
    for each other. Measured interleaved on 2 loaded cores (``bench/engine_matvec.py``): 3,000 x 384
    took 18 ms p50 with OpenBLAS' threads and 0.2 ms here; 300,000 x 384, 141 ms and 79 ms.
    """
    scores: np.ndarray = np.einsum("ij,j->i", block, query)
    return scores


@functools.lru_cache(maxsize=65_536)
def _parse(fmeta_json: str) -> dict[str, Any]:
    """Filterable metadata, parsed once per distinct JSON text. Shared: callers must not mutate it."""
    parsed: dict[str, Any] = json.loads(fmeta_json)
    return parsed


class _Postings:
    """The cache's inverted index as a filter's :class:`~._filters.Lookup`."""

    def __init__(self, cache: IndexCache) -> None:
        self._cache = cache

    def __call__(self, field: str, tok: Token) -> set[int]:
        return self._cache._lookup(field, tok)

    def prefix(self, field: str, prefix: str) -> set[int]:
        return self._cache._prefix(field, prefix)

    def range(self, field: str, op: str, bound: float) -> set[int]:
        return self._cache._range(field, op, bound)


class IndexCache:
    """One index's vectors in memory; all access is under ``lock``.

    Per row, Python holds only a key string, a dict entry and a set entry: no per-row containers,
    so the garbage collector has little to walk even at millions of rows.
    """

    def __init__(self, uid: str, dimension: int, metric: str, text: TextSpec = ()) -> None:
        self.uid = uid
        self.dimension = dimension
        self.cosine = metric == "cosine"
        self.text_spec = text
        self.lock = threading.RLock()
        self.seq = 0
        self._reset()

    def _reset(self, capacity: int = _MIN_CAPACITY) -> None:
        self.size = 0
        self.matrix = np.zeros((capacity, self.dimension), dtype=np.float32)
        self.sqnorm = np.zeros(capacity, dtype=np.float32)
        self.alive = np.zeros(capacity, dtype=bool)
        self.rowids = np.zeros(capacity, dtype=np.int64)
        self.combo = np.full(capacity, -1, dtype=np.int64)  # combination id of each slot
        self.keys: list[str | None] = []
        self.slot_of: dict[str, int] = {}
        self._combo_id: dict[str, int] = {}  # filterable-metadata JSON -> live combination id
        self._combo_text: list[str] = []
        self._combo_rows: list[set[int]] = []
        self.postings: dict[str, dict[Token, set[int]]] = {}  # field -> token -> combination ids
        # field -> (its distinct numbers sorted, the combination id of each); dropped on any change
        self._numbers: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self.text: dict[str, TextField] = {key: TextField(key, lang) for key, lang in self.text_spec}
        self.dead = 0

    @property
    def nbytes(self) -> int:
        """Approximate memory held: arrays exactly, Python objects by a per-row estimate."""
        arrays = sum(a.nbytes for a in (self.matrix, self.sqnorm, self.alive, self.rowids, self.combo))
        return int(arrays + _ROW_OVERHEAD_BYTES * self.size)

    @property
    def count(self) -> int:
        """Live vectors."""
        return len(self.slot_of)

    def metadata(self, slot: int) -> dict[str, Any]:
        """The filterable metadata of a live slot (shared dict: do not mutate)."""
        return _parse(self._combo_text[int(self.combo[slot])])

    # -- maintenance ---------------------------------------------------------------------------

    def load(self, chunks: Iterable[Sequence[Row]], seq: int, expected: int = 0) -> None:
        """Replace the whole content from ``chunks`` of rows (initial load, or after falling behind
        pruned tombstones). Chunks keep the transient memory to one chunk, not the whole index."""
        self._reset(max(_MIN_CAPACITY, expected))
        # Row tuples are GC-tracked: collections triggered mid-load would rescan the whole heap
        # again and again for nothing (nothing here forms a cycle).
        was_enabled = gc.isenabled()
        gc.disable()
        try:
            for rows in chunks:
                if rows:
                    self._upsert(rows)
        finally:
            if was_enabled:
                gc.enable()
        self.seq = seq

    def apply(self, rows: Sequence[Row], deleted: Iterable[str], seq: int) -> None:
        """Apply deletions, then upserts, then move to ``seq``."""
        for key in deleted:
            self._remove(key)
        if rows:
            self._upsert(rows)
        self.seq = seq
        if self.dead > 1024 and self.dead > self.size // 4:
            self._compact()

    def _combination(self, text: str) -> int:
        """The live combination id of ``text``, created (and indexed) on first sight."""
        cid = self._combo_id.get(text)
        if cid is not None:
            return cid
        cid = len(self._combo_text)
        self._combo_id[text] = cid
        self._combo_text.append(text)
        self._combo_rows.append(set())
        self._numbers.clear()
        postings = self.postings
        for name, value in _parse(text).items():
            field = postings.get(name)
            if field is None:
                field = postings[name] = {}
            for tok in value_tokens(value):
                ids = field.get(tok)
                if ids is None:
                    field[tok] = ids = set()
                ids.add(cid)
        return cid

    def _leave(self, slot: int) -> None:
        """Take ``slot`` out of its combination; retire the combination when it empties."""
        cid = int(self.combo[slot])
        if cid < 0:
            return
        self.combo[slot] = -1
        rows = self._combo_rows[cid]
        rows.discard(slot)
        if rows:
            return
        text = self._combo_text[cid]
        del self._combo_id[text]
        self._numbers.clear()
        for name, value in _parse(text).items():
            field = self.postings.get(name, {})
            for tok in value_tokens(value):
                ids = field.get(tok)
                if ids is not None:
                    ids.discard(cid)
                    if not ids:
                        del field[tok]

    def _upsert(self, rows: Sequence[Row]) -> None:
        n = len(rows)
        self._ensure(self.size + sum(1 for r in rows if r[1] not in self.slot_of))
        slot_of, keys = self.slot_of, self.keys
        groups: dict[str, list[int]] = {}  # rows sharing filterable metadata join their combination together
        slot_list: list[int] = []
        size = self.size
        for _rowid, key, _data, fmeta_json, _meta in rows:
            slot = slot_of.get(key)
            if slot is None:
                slot = size
                size += 1
                slot_of[key] = slot
                keys.append(key)
            else:
                self._leave(slot)
            slot_list.append(slot)
            group = groups.get(fmeta_json)
            if group is None:
                groups[fmeta_json] = group = []
            group.append(slot)
        self.size = size
        for text, group in groups.items():
            cid = self._combination(text)
            self._combo_rows[cid].update(group)
            self.combo[group] = cid
        slots = np.array(slot_list, dtype=np.int64)
        self.rowids[slots] = np.fromiter((r[0] for r in rows), dtype=np.int64, count=n)
        vecs = np.frombuffer(b"".join(r[2] for r in rows), dtype=np.float32).reshape(n, self.dimension)
        lo = int(slots[0])
        if int(slots[-1]) - lo + 1 == n and (n == 1 or bool((np.diff(slots) == 1).all())):
            target = self.matrix[lo : lo + n]  # appended rows: write in place, no temporary copy
            target[:] = vecs
            self._normalize(target, slice(lo, lo + n))
        else:
            block = np.array(vecs)
            self._normalize(block, slots)
            self.matrix[slots] = block
        self.alive[slots] = True
        if self.text:
            for slot, row in zip(slot_list, rows, strict=True):
                meta = json.loads(row[4]) if row[4] else {}
                for field in self.text.values():
                    field.add(slot, meta)

    def _normalize(self, block: np.ndarray, where: slice | np.ndarray) -> None:
        """Unit rows for cosine (in place); squared norms for euclidean."""
        sq = np.einsum("ij,ij->i", block, block)
        if self.cosine:
            norms = np.sqrt(sq)
            norms[norms == 0] = 1
            block /= norms[:, None]
        else:
            self.sqnorm[where] = sq

    def _ensure(self, needed: int) -> None:
        capacity = self.matrix.shape[0]
        if needed <= capacity:
            return
        while capacity < needed:
            capacity *= 2
        grown = np.zeros((capacity, self.dimension), dtype=np.float32)
        grown[: self.size] = self.matrix[: self.size]
        self.matrix = grown
        extra = capacity - len(self.alive)
        self.sqnorm = np.concatenate([self.sqnorm, np.zeros(extra, np.float32)])
        self.alive = np.concatenate([self.alive, np.zeros(extra, bool)])
        self.rowids = np.concatenate([self.rowids, np.zeros(extra, np.int64)])
        self.combo = np.concatenate([self.combo, np.full(extra, -1, np.int64)])

    def _remove(self, key: str) -> None:
        slot = self.slot_of.pop(key, None)
        if slot is None:
            return
        self._leave(slot)
        for field in self.text.values():
            field.remove(slot)
        self.keys[slot] = None
        self.alive[slot] = False
        self.dead += 1

    def _compact(self) -> None:
        live = np.flatnonzero(self.alive[: self.size])
        matrix, sqnorm, rowids = self.matrix[live], self.sqnorm[live], self.rowids[live]
        keys = [self.keys[i] for i in live]
        texts = [self._combo_text[int(c)] for c in self.combo[live]]
        text_fields = self.text
        self._reset(max(_MIN_CAPACITY, len(live) * 2))
        moves = {int(old): new for new, old in enumerate(live.tolist())}
        for field in text_fields.values():
            field.remap(moves)
        self.text = text_fields
        n = len(live)
        self.matrix[:n] = matrix
        self.sqnorm[:n] = sqnorm
        self.rowids[:n] = rowids
        self.alive[:n] = True
        self.size = n
        self.keys = list(keys)
        for slot, (key, text) in enumerate(zip(keys, texts, strict=True)):
            assert key is not None
            self.slot_of[key] = slot
            cid = self._combination(text)
            self._combo_rows[cid].add(slot)
            self.combo[slot] = cid

    # -- search --------------------------------------------------------------------------------

    def _lookup(self, field: str, tok: Token) -> set[int]:
        return self.postings.get(field, {}).get(tok, set())

    def _prefix(self, field: str, prefix: str) -> set[int]:
        """Combinations holding a string value of ``field`` that starts with ``prefix`` (one pass over
        the field's distinct values, not over rows)."""
        out: set[int] = set()
        for (kind, value), ids in self.postings.get(field, {}).items():
            if kind == "s" and isinstance(value, str) and value.startswith(prefix):
                out |= ids
        return out

    def _range(self, field: str, op: str, bound: float) -> set[int]:
        """Combinations holding a number of ``field`` within ``op bound`` (any element of a list)."""
        numbers = self._numbers.get(field)
        if numbers is None:
            pairs = [(tok[1], cid) for tok, ids in self.postings.get(field, {}).items() if tok[0] == "n" for cid in ids]
            values = np.array([value for value, _cid in pairs], dtype=np.float64)
            order = np.argsort(values, kind="stable")
            numbers = self._numbers[field] = (values[order], np.array([c for _v, c in pairs], dtype=np.int64)[order])
        values, ids = numbers
        cut = int(np.searchsorted(values, bound, side=_RANGE_SIDE[op]))  # type: ignore[call-overload]
        return set((ids[cut:] if op in ("$gt", "$gte") else ids[:cut]).tolist())

    def matching(self, node: Node | None) -> np.ndarray | None:
        """The live slots matching ``node``, ascending (None: every live slot, as without a filter)."""
        if node is None:
            return None
        found = node.candidates(_Postings(self))  # combination ids, or None when nothing is pinned
        combos: Collection[int] = self._combo_id.values() if found is None else found
        if found is None or not node.exact:
            combos = [c for c in combos if node.matches(_parse(self._combo_text[c]))]
        if len(combos) == len(self._combo_id):  # live combinations only: every one admitted
            return None
        # Many combinations, or many rows: one vectorised pass over the slots' combination ids (a few
        # ns per slot) beats joining the per-combination sets (about 1 us per combination and 30 ns
        # per row, in Python): at 1M slots, one user's 10,000 one-row combinations took 3 ms against 12.
        if len(combos) * _SLOTS_PER_COMBINATION > self.size or (
            sum(len(self._combo_rows[c]) for c in combos) * 8 > self.size
        ):
            admitted = np.zeros(len(self._combo_text) + 1, dtype=bool)  # the last: a free slot's -1
            admitted[np.fromiter(combos, dtype=np.int64, count=len(combos))] = True
            return np.flatnonzero(admitted[self.combo[: self.size]])
        members = [self._combo_rows[c] for c in combos]
        if not members:
            return np.zeros(0, dtype=np.int64)
        if len(members) == 1:
            rows = np.fromiter(members[0], dtype=np.int64, count=len(members[0]))
        else:
            rows = np.fromiter(itertools.chain.from_iterable(members), dtype=np.int64)
        rows.sort()  # ascending slots: the gather below walks memory forwards
        return rows

    def nearest(self, query: np.ndarray, top_k: int, rows: np.ndarray | None) -> list[tuple[int, float]]:
        """(slot, exact distance) of the ``top_k`` nearest of ``rows`` (every live slot when None)."""
        if rows is not None and not len(rows):
            return []
        return self._score(query, top_k, rows)

    def hit(self, slot: int) -> tuple[int, str]:
        """(rowid, key) of a live slot."""
        return int(self.rowids[slot]), str(self.keys[slot])

    def _score(self, query: np.ndarray, top_k: int, rows: np.ndarray | None) -> list[tuple[int, float]]:
        """Rank ``rows`` (or every live row) with one mat-vec, then refine the winners exactly.

        Selection uses float32 similarities (argpartition, O(n)); the reported distances of the
        ``top_k`` winners are recomputed in float64, as ``1 - cos`` or the L2 norm, so they match
        what the service reports to float precision.
        """
        block = self.matrix[: self.size] if rows is None else self.matrix[rows]
        q64 = query.astype(np.float64)
        qq = float(q64 @ q64)
        if self.cosine:
            score = _dot_rows(block, query / np.float32(np.sqrt(qq)))  # higher is nearer
        else:
            sq = self.sqnorm[: self.size] if rows is None else self.sqnorm[rows]
            score = 2.0 * _dot_rows(block, query) - sq  # = qq - distance², higher is nearer
        if rows is None:
            score = np.where(self.alive[: self.size], score, -np.inf)
        n = score.shape[0]
        k = min(top_k, n)
        part = np.argpartition(score, n - k)[n - k :] if k < n else np.arange(n)
        if rows is None:
            part = part[np.isfinite(score[part])]
            slots = part
        else:
            slots = rows[part]
        winners = block[part].astype(np.float64)
        if self.cosine:
            cos = (winners @ q64) / np.sqrt((winners * winners).sum(axis=1) * qq)
            exact = np.maximum(1.0 - cos, 0.0)
        else:
            exact = np.linalg.norm(winners - q64, axis=1)
        order = np.lexsort((slots, exact))
        return [(int(s), float(d)) for s, d in zip(slots[order].tolist(), exact[order].tolist(), strict=True)]
