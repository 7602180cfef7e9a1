"""Lexical matching for the client-side rerank: tokens, overlap and Okapi BM25 over a few candidates.

S3 Vectors only answers "nearest vectors"; it has no keyword index. Dense embeddings are weak
exactly where memories are most specific (names, places, numbers, rare words), so the store
rescores its dense candidates (at most 100, already scoped to one user) with BM25 computed over
those candidates alone. At that size a direct implementation is cheaper than any index, needs no
dependency, and its statistics (IDF) describe the very set being ranked.

Tokens are lower-cased Unicode words minus a short English stop list, lightly stemmed (plural and
``-ing``/``-ed`` endings) so "painting"/"paints"/"painted" meet; runs of CJK characters become
character bigrams, since those scripts do not separate words with spaces.
"""

from __future__ import annotations

import functools
import math
import re
from collections import Counter
from collections.abc import Sequence

__all__ = ["BM25_B", "BM25_K1", "STOPWORDS", "bm25_scores", "novelty", "token_jaccard", "tokenize"]

#: Okapi BM25 parameters (the usual defaults: term-frequency saturation and length normalisation).
BM25_K1 = 1.2
BM25_B = 0.75

_WORD = re.compile(r"\w+", re.UNICODE)
_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]")

_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before being below
    between both but by can could did do does doing down during each few for from further had has have
    having he her here hers herself him himself his how i if in into is it its itself just me more most
    my myself no nor not now of off on once only or other our ours ourselves out over own same she
    should so some such than that the their theirs them themselves then there these they this those
    through to too under until up very was we were what when where which while who whom why will with
    would you your yours yourself yourselves s t d ll m re ve don doesn didn isn wasn aren weren
    let lets also get got really yeah yes ok okay oh hey hi hello thanks thank bye please sure well like
    im ive id youre thats dont cant
"""
#: Function words and conversational filler: frequent everywhere, evidence of nothing.
STOPWORDS: frozenset[str] = frozenset(_STOPWORD_TEXT.split())


def _stem(word: str) -> str:
    """Strip the commonest English inflections; deliberately crude, applied to queries and documents alike."""
    if len(word) > 4 and word.endswith(("ies", "ied")):
        return word[:-3] + "y"
    if len(word) > 5 and word.endswith("ing"):
        return word[:-3]
    if len(word) > 4 and word.endswith("ed"):
        return word[:-2]
    if len(word) > 3 and word.endswith("s") and not word.endswith(("ss", "us", "is")):
        return word[:-1]
    return word


def _split_cjk(token: str) -> list[str]:
    """Character bigrams of a token written in a script without spaces (a lone character stays whole)."""
    if len(token) < 2:
        return [token]
    return [token[i : i + 2] for i in range(len(token) - 1)]


@functools.lru_cache(maxsize=1 << 16)
def _word_tokens(raw: str) -> tuple[str, ...]:
    """The tokens one case-folded word contributes (none for a stop word), memoised.

    Every search tokenises up to 100 candidate records of a few dozen words each; words repeat
    across records and searches, so caching per word makes tokenising about 5x cheaper.
    """
    if _CJK.search(raw):
        return tuple(_split_cjk(raw))
    if raw in STOPWORDS or (len(raw) == 1 and not raw.isdigit()):
        return ()
    return (_stem(raw.replace("_", "")) or raw,)


def tokenize(text: str) -> list[str]:
    """Content tokens of ``text``, in order, with repeats: what BM25 and overlap tests compare."""
    return list(_text_tokens(text))


@functools.lru_cache(maxsize=2048)
def _text_tokens(text: str) -> tuple[str, ...]:
    """Memoised per text: a user's records come back as candidates search after search (a few MB at most)."""
    tokens: list[str] = []
    for raw in _WORD.findall(text.casefold()):
        tokens.extend(_word_tokens(raw))
    return tuple(tokens)


def bm25_scores(query: Sequence[str], documents: Sequence[Sequence[str]]) -> list[float]:
    """Okapi BM25 of each tokenised document for the tokenised ``query``, IDF taken over ``documents``.

    Uses the non-negative IDF ``ln(1 + (N - df + 0.5) / (df + 0.5))``, so a term present in every
    candidate still counts a little instead of subtracting. Each distinct query term counts once.
    """
    if not documents:
        return []
    counts = [Counter(doc) for doc in documents]
    lengths = [len(doc) for doc in documents]
    average = (sum(lengths) / len(lengths)) or 1.0
    terms = list(dict.fromkeys(query))
    total = len(documents)
    idf = {
        term: math.log(1.0 + (total - df + 0.5) / (df + 0.5))
        for term in terms
        if (df := sum(1 for c in counts if term in c))
    }
    scores: list[float] = []
    for doc_counts, length in zip(counts, lengths, strict=True):
        norm = BM25_K1 * (1.0 - BM25_B + BM25_B * length / average)
        score = 0.0
        for term, weight in idf.items():
            tf = doc_counts.get(term, 0)
            if tf:
                score += weight * tf * (BM25_K1 + 1.0) / (tf + norm)
        scores.append(score)
    return scores


def token_jaccard(left: Sequence[str], right: Sequence[str]) -> float:
    """Jaccard similarity of two token sets (1.0 for two empty texts)."""
    a, b = set(left), set(right)
    if not a and not b:
        return 1.0
    return len(a & b) / len(a | b)


def word_overlap(a: str, b: str) -> float:
    """Jaccard similarity of the two texts' sets of lower-cased words, every word kept (1.0 for two empty texts).

    Deliberately not :func:`tokenize`'s tokens: dedupe-on-write asks whether two texts are *worded*
    near-identically, so stop words and inflections must count ("is vegan" vs "was vegan"), where
    ranking asks whether they are about the same things. The dedupe guard (0.85, see
    ``lifecycle/_dedupe.py``) is calibrated on this measure.
    """
    return token_jaccard(_WORD.findall(a.lower()), _WORD.findall(b.lower()))


def novelty(candidate: Sequence[str], reference: Sequence[str]) -> float:
    """Share of ``candidate``'s distinct tokens absent from ``reference`` (0.0: nothing new)."""
    tokens = set(candidate)
    if not tokens:
        return 0.0
    return len(tokens - set(reference)) / len(tokens)
