"""Sparse keyword vectors for Qdrant's hybrid search, computed here with nothing to download.

Dense embedders blur exact identifiers (`trailingSlash`, `docs:version`, `QoS`, `ros2`): a reader
who types one expects the page that uses it. A BM25-like sparse vector catches those. Qdrant
supplies the IDF part (the collection's sparse vector has ``modifier=IDF``), so a document vector
carries only the saturated term frequency and a query vector only which terms it asks for.

Tokens: lowercase; identifiers are kept whole AND split into their parts (camelCase, snake_case,
kebab-case, ``a:b``, ``a.b``, ``a/b``), so ``trailingSlash`` matches both the query
``trailingSlash`` and ``trailing slash``. Words are Snowball-stemmed (English); stopwords go.
Terms are hashed to a stable uint32 (blake2b), the same in every process and release.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import Stemmer

__all__ = ["SparseVector", "document_vector", "query_vector", "term_index", "tokenize"]

# BM25 constants. Qdrant knows no document length, so length normalisation happens here against
# a typical chunk length (in tokens after stopwords, identifiers counted with their parts).
K1 = 1.2
B = 0.75
AVG_DOC_TOKENS = 160.0

# A compound token: word characters joined by the punctuation identifiers use.
_TOKEN = re.compile(r"[A-Za-z0-9_]+(?:[:./\-][A-Za-z0-9_]+)*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t d ll m re ve"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


@dataclass(frozen=True, slots=True)
class SparseVector:
    indices: list[int]
    values: list[float]


@lru_cache(maxsize=1)
def _stemmer() -> Stemmer.Stemmer:
    return Stemmer.Stemmer("english")


def _parts(token: str) -> list[str]:
    """The pieces of an identifier: split on punctuation, then on camelCase / digits."""
    pieces: list[str] = []
    for piece in re.split(r"[:./\-_]+", token):
        pieces.extend(_CAMEL.findall(piece))
    return pieces


def tokenize(text: str) -> list[str]:
    """Index terms of ``text``, in order, with repeats (repeats are the term frequency)."""
    stem = _stemmer().stemWord
    terms: list[str] = []
    for match in _TOKEN.finditer(text):
        raw = match.group()
        parts = _parts(raw)
        whole = raw.lower().strip("_")
        if len(parts) > 1 and whole:
            # The identifier itself, unstemmed: `docs:version`, `trailingslash`, `use_sim_time`.
            terms.append(whole)
        for part in parts:
            word = part.lower()
            if word in STOPWORDS or (len(word) == 1 and not word.isdigit()):
                continue
            terms.append(stem(word) if word.isalpha() else word)
    return terms


def term_index(term: str) -> int:
    """A stable uint32 for a term (collisions at 2^-32 per pair are harmless for ranking)."""
    return int.from_bytes(hashlib.blake2b(term.encode(), digest_size=4).digest(), "little")


def _vector(weights: Iterable[tuple[str, float]]) -> SparseVector:
    merged: dict[int, float] = {}
    for term, weight in weights:
        index = term_index(term)
        merged[index] = max(merged.get(index, 0.0), weight)
    ordered = sorted(merged.items())
    return SparseVector([i for i, _ in ordered], [w for _, w in ordered])


def document_vector(text: str) -> SparseVector:
    """BM25 term-frequency part for a passage: saturating in tf, normalised by length."""
    counts = Counter(tokenize(text))
    length = sum(counts.values())
    norm = K1 * (1.0 - B + B * length / AVG_DOC_TOKENS)
    return _vector((term, tf * (K1 + 1.0) / (tf + norm)) for term, tf in counts.items())


def query_vector(text: str) -> SparseVector:
    """A query's terms, each weighted 1: Qdrant multiplies in the IDF."""
    return _vector((term, 1.0) for term in dict.fromkeys(tokenize(text)))
