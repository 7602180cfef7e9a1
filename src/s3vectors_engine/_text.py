"""Full-text search of the embedded engine: the service's text analyzers and BM25 over searchable keys.

An index's ``textSearchConfigurations`` name metadata keys whose string values are full-text
searchable, each with an analyzer: the standard one (Unicode words, lower-cased; a Chinese or
Japanese ideograph/kana is a word of its own, as in Lucene's standard tokenizer) or one of the ten
language analyzers. The stemmers and segmenters are well-kept libraries, never our own rules:
Snowball (``snowballstemmer``) for en/fr/es/pt/it/de/nl, ``jieba`` for Chinese, ``janome`` for
Japanese and ``kiwipiepy`` for Korean. The CJK segmenters load dictionaries (jieba ~1 s, Kiwi ~4 s),
so each is imported on first use of its language only.

Ranking is Okapi BM25 with Lucene's defaults (``k1 = 1.2``, ``b = 0.75``, idf
``log(1 + (N - n + 0.5) / (n + 0.5))``), statistics over the whole index, and hybrid fusion is
Reciprocal Rank Fusion with the customary ``k = 60``.
"""

from __future__ import annotations

import functools
import math
import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np

Analyzer = Callable[[str], list[str]]

#: Okapi BM25 parameters (Lucene's defaults).
BM25_K1 = 1.2
BM25_B = 0.75
#: Reciprocal Rank Fusion constant (Cormack et al. 2009; the value search engines default to).
RRF_K = 60

#: Language analyzers stemmed by Snowball, by the service's language code.
SNOWBALL_LANGUAGES: Mapping[str, str] = {
    "en": "english",
    "fr": "french",
    "es": "spanish",
    "pt": "portuguese",
    "it": "italian",
    "de": "german",
    "nl": "dutch",
}
#: Every language code the service accepts (the model's ``LanguageCode`` enum).
LANGUAGES = frozenset({*SNOWBALL_LANGUAGES, "zh", "ja", "ko"})

_IDEOGRAPH = r"\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff"
#: Standard tokenizer: one token per ideograph/kana, otherwise runs of word characters.
_STANDARD = re.compile(rf"[{_IDEOGRAPH}]|[^\W{_IDEOGRAPH}]+", re.UNICODE)
_WORDLIKE = re.compile(r"\w", re.UNICODE)


def _standard(text: str) -> list[str]:
    return [t.lower() for t in _STANDARD.findall(text)]


def _snowball(language: str) -> Analyzer:
    import snowballstemmer

    stemmer = snowballstemmer.stemmer(SNOWBALL_LANGUAGES[language])
    lock = threading.Lock()  # a Snowball stemmer object keeps state between calls

    def analyze(text: str) -> list[str]:
        words = _standard(text)
        with lock:
            stemmed: list[str] = stemmer.stemWords(words)
        return stemmed

    return analyze


def _chinese() -> Analyzer:
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)

    def analyze(text: str) -> list[str]:
        return [t.lower() for t in jieba.cut_for_search(text) if _WORDLIKE.search(t)]

    return analyze


def _japanese() -> Analyzer:
    from janome.tokenizer import Tokenizer

    tokenizer = Tokenizer(wakati=True)

    def analyze(text: str) -> list[str]:
        return [str(t).lower() for t in tokenizer.tokenize(text) if _WORDLIKE.search(str(t))]

    return analyze


def _korean() -> Analyzer:
    from kiwipiepy import Kiwi

    kiwi = Kiwi()

    def analyze(text: str) -> list[str]:
        return [t.form.lower() for t in kiwi.tokenize(text) if _WORDLIKE.search(t.form)]

    return analyze


_ANALYZER_LOCK = threading.Lock()


@functools.cache
def _build(language: str | None) -> Analyzer:
    if language is None:
        return _standard
    if language in SNOWBALL_LANGUAGES:
        return _snowball(language)
    if language == "zh":
        return _chinese()
    if language == "ja":
        return _japanese()
    if language == "ko":
        return _korean()
    raise ValueError(f"unknown analyzer language {language!r}")


#: The module each language analyzer needs and the extra that installs it: the stemmers come with the
#: ``local`` (offline mode) and ``server`` extras, the CJK segmenters with ``cjk``; the core install (the
#: plugin on AWS) has none of them, and the standard analyzer needs nothing.
ANALYZER_LIBRARIES: Mapping[str, tuple[str, str]] = {
    **{language: ("snowballstemmer", "local") for language in SNOWBALL_LANGUAGES},
    "zh": ("jieba", "cjk"),
    "ja": ("janome", "cjk"),
    "ko": ("kiwipiepy", "cjk"),
}


def available(language: str | None) -> bool:
    """Whether the analyzer's library is installed."""
    import importlib.util

    library = ANALYZER_LIBRARIES.get(language or "")
    return library is None or importlib.util.find_spec(library[0]) is not None


def analyzer(language: str | None) -> Analyzer:
    """The analyzer of a text search configuration (``None``: the standard analyzer), built once."""
    with _ANALYZER_LOCK:
        return _build(language)


def searchable_text(value: Any) -> str | None:
    """The text a metadata value contributes: a string, or the strings of a list joined; else None."""
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        parts = [v for v in value if isinstance(v, str)]
        return " ".join(parts) if parts else None
    return None


class TextField:
    """BM25 postings of one searchable metadata key over the slots of an :class:`IndexCache`.

    Postings map a term to ``{slot: term frequency}``; per slot the distinct terms are kept so a
    row can be taken out again on update or delete. A query reads each of its terms' postings as two
    arrays (slots ascending, frequencies), built on first use and dropped when the term's posting
    changes, and scores them with numpy: a common word's posting spans every row of a large user,
    which a loop in Python took tens of milliseconds to walk. All access is under the owning cache's lock.
    """

    def __init__(self, key: str, language: str | None) -> None:
        self.key = key
        self.language = language
        self._analyze = analyzer(language)
        self.postings: dict[str, dict[int, int]] = {}
        self.length: dict[int, int] = {}
        self._terms: dict[int, tuple[str, ...]] = {}
        self.total = 0
        self._lengths = np.zeros(0, dtype=np.float64)  # slot -> its token count (0: no text)
        self._arrays: dict[str, tuple[np.ndarray, np.ndarray]] = {}  # term -> (slots ascending, frequencies)

    def add(self, slot: int, metadata: Mapping[str, Any]) -> None:
        """Index the key's text in ``metadata`` at ``slot`` (replacing what the slot held)."""
        self.remove(slot)
        text = searchable_text(metadata.get(self.key))
        if not text:
            return
        tokens = self._analyze(text)
        if not tokens:
            return
        counts: dict[str, int] = {}
        for tok in tokens:
            counts[tok] = counts.get(tok, 0) + 1
        for term, tf in counts.items():
            posting = self.postings.get(term)
            if posting is None:
                self.postings[term] = posting = {}
            posting[slot] = tf
            self._arrays.pop(term, None)
        self._terms[slot] = tuple(counts)
        self.length[slot] = len(tokens)
        self.total += len(tokens)
        if slot >= len(self._lengths):
            grown = np.zeros(max(slot + 1, 2 * len(self._lengths)), dtype=np.float64)
            grown[: len(self._lengths)] = self._lengths
            self._lengths = grown
        self._lengths[slot] = len(tokens)

    def remove(self, slot: int) -> None:
        terms = self._terms.pop(slot, None)
        if terms is None:
            return
        for term in terms:
            posting = self.postings[term]
            del posting[slot]
            if not posting:
                del self.postings[term]
            self._arrays.pop(term, None)
        self.total -= self.length.pop(slot)
        self._lengths[slot] = 0.0

    def remap(self, moves: Mapping[int, int]) -> None:
        """Renumber slots after the cache compacted its matrix (``moves``: old slot -> new slot)."""
        self.postings = {t: {moves[s]: tf for s, tf in p.items()} for t, p in self.postings.items()}
        self.length = {moves[s]: n for s, n in self.length.items()}
        self._terms = {moves[s]: t for s, t in self._terms.items()}
        self._arrays.clear()
        self._lengths = np.zeros(max(self.length, default=-1) + 1, dtype=np.float64)
        for slot, n in self.length.items():
            self._lengths[slot] = n

    def _posting(self, term: str) -> tuple[np.ndarray, np.ndarray] | None:
        """``term``'s posting as (slots ascending, frequencies), or None when no row holds it."""
        arrays = self._arrays.get(term)
        if arrays is None:
            posting = self.postings.get(term)
            if not posting:
                return None
            slots = np.fromiter(posting.keys(), dtype=np.int64, count=len(posting))
            freqs = np.fromiter(posting.values(), dtype=np.float64, count=len(posting))
            order = np.argsort(slots, kind="stable")
            arrays = self._arrays[term] = (slots[order], freqs[order])
        return arrays

    def scores(self, text: str, allowed: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """(slots ascending, BM25 scores) of every slot matching at least one query term.

        ``allowed``: only these slots (ascending, as :meth:`IndexCache.matching` gives them). The smaller
        side of a posting and ``allowed`` is looked up in the other, so a common word's posting costs a
        small scope no more than the scope's size.
        """
        n_docs = len(self.length)
        parts: list[tuple[np.ndarray, np.ndarray]] = []
        avg = self.total / n_docs if n_docs else 1.0
        for term in dict.fromkeys(self._analyze(text)) if n_docs else ():
            arrays = self._posting(term)
            if arrays is None:
                continue
            slots, freqs = arrays
            idf = math.log(1.0 + (n_docs - len(slots) + 0.5) / (len(slots) + 0.5))
            if allowed is not None:
                keep = _members(slots, allowed)
                slots, freqs = slots[keep], freqs[keep]
            norm = freqs + BM25_K1 * (1.0 - BM25_B + BM25_B * self._lengths[slots] / avg)
            parts.append((slots, idf * freqs * (BM25_K1 + 1.0) / norm))
        return summed(parts)


def summed(parts: Sequence[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(slots ascending, scores) with each slot's scores from every part added up (a part: slots, scores)."""
    if not parts:
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.float64)
    if len(parts) == 1:
        return parts[0]
    found, where = np.unique(np.concatenate([slots for slots, _ in parts]), return_inverse=True)
    return found, np.bincount(where, weights=np.concatenate([score for _, score in parts]), minlength=len(found))


def _members(slots: np.ndarray, allowed: np.ndarray) -> np.ndarray:
    """Indexes into ``slots`` (ascending) of the slots that are also in ``allowed`` (ascending)."""
    if len(allowed) < len(slots):  # look the scope up in the posting
        at = np.searchsorted(slots, allowed)
        inside = at < len(slots)
        at = at[inside]
        found: np.ndarray = at[slots[at] == allowed[inside]]
        return found
    at = np.searchsorted(allowed, slots)  # look the posting up in the scope
    inside = at < len(allowed)
    hit = np.zeros(len(slots), dtype=bool)
    hit[inside] = allowed[at[inside]] == slots[inside]
    return np.flatnonzero(hit)


def best(slots: np.ndarray, scores: np.ndarray, k: int) -> list[int]:
    """The ``k`` best of ``slots`` by descending score, ties by slot (so rankings are deterministic)."""
    if len(slots) > k > 0:
        cut = np.partition(scores, len(scores) - k)[len(scores) - k]  # the k-th best score
        chosen = scores >= cut
        slots, scores = slots[chosen], scores[chosen]
    order = np.lexsort((slots, -scores))[:k]
    return [int(s) for s in slots[order]]


def ranked(scores: Mapping[int, float]) -> list[int]:
    """Slots by descending score (ties by slot, so rankings are deterministic)."""
    return sorted(scores, key=lambda s: (-scores[s], s))


def rrf(rankings: Iterable[Sequence[int]]) -> dict[int, float]:
    """Reciprocal Rank Fusion: each ranking adds ``1 / (RRF_K + rank)`` (ranks from 1) to its slots."""
    fused: dict[int, float] = {}
    for ranking in rankings:
        for rank, slot in enumerate(ranking, start=1):
            fused[slot] = fused.get(slot, 0.0) + 1.0 / (RRF_K + rank)
    return fused
