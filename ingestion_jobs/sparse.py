"""Sparse keyword vectors for Qdrant's hybrid search, computed here with nothing to download.

Dense embedders blur exact identifiers (`trailingSlash`, `docs:version`, `QoS`, `ros2`): a reader
who types one expects the page that uses it. A BM25-like sparse vector catches those. Qdrant
supplies the IDF part (the collection's sparse vector has ``modifier=IDF``), so a document vector
carries only the saturated term frequency and a query vector only which terms it asks for.

Tokens: lowercase; identifiers are kept whole AND split into their parts (camelCase, snake_case,
kebab-case, ``a:b``, ``a.b``, ``a/b``), so ``trailingSlash`` matches both the query
``trailingSlash`` and ``trailing slash``. Words are Snowball-stemmed and stop words dropped in
the text's language, and Chinese, Japanese and Korean text is indexed as character bigrams
(``languages.py`` says how, and how a question's language is told). A document is tokenized in
its page's language; a query in the language it is written in, or in every language when
nothing tells. Terms are hashed to a stable uint32 (blake2b), the same in every process and
release.
"""

from __future__ import annotations

import hashlib
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from ingestion_jobs.languages import (
    ALL_ALPHABETIC,
    CJK_CHARACTERS,
    ENGLISH_STOPWORDS,
    analysis,
    cjk_bigrams,
    detect_language,
)

__all__ = [
    "SparseVector",
    "document_vector",
    "query_languages",
    "query_vector",
    "term_index",
    "tokenize",
]

# BM25 constants. Qdrant knows no document length, so length normalisation happens here against
# a typical chunk length (in tokens after stopwords, identifiers counted with their parts).
K1 = 1.2
B = 0.75
AVG_DOC_TOKENS = 160.0

# A run of CJK characters, or a compound token: word characters joined by the punctuation
# identifiers use. Word characters are any letters (``größe``, ``café``) but CJK ones.
_WORD = rf"(?:(?![{CJK_CHARACTERS}])\w)+"
_TOKEN = re.compile(rf"(?P<cjk>[{CJK_CHARACTERS}]+)|{_WORD}(?:[:./\-]{_WORD})*")
_CAMEL = re.compile(r"[A-Z]+(?=[A-Z][a-z])|[A-Z]?[a-z]+|[A-Z]+|[0-9]+")

#: English stop words (kept here under their old name for callers).
STOPWORDS = ENGLISH_STOPWORDS


@dataclass(frozen=True, slots=True)
class SparseVector:
    indices: list[int]
    values: list[float]


def _parts(token: str) -> list[str]:
    """The pieces of an identifier: split on punctuation, then on camelCase / digits (a piece
    with letters beyond ASCII is one word: ``Größe``)."""
    pieces: list[str] = []
    for piece in re.split(r"[:./\-_]+", token):
        pieces.extend(_CAMEL.findall(piece) if piece.isascii() else [piece] if piece else [])
    return pieces


def tokenize(text: str, language: str = "en") -> list[str]:
    """Index terms of ``text`` read as ``language`` (ISO 639-1), in order, with repeats
    (repeats are the term frequency)."""
    words = analysis(language)
    terms: list[str] = []
    for match in _TOKEN.finditer(text):
        if match.group("cjk"):
            terms.extend(cjk_bigrams(match.group("cjk")))
            continue
        raw = match.group()
        parts = _parts(raw)
        whole = raw.lower().strip("_")
        if len(parts) > 1 and whole:
            # The identifier itself, unstemmed: `docs:version`, `trailingslash`, `use_sim_time`.
            terms.append(whole)
        for part in parts:
            word = part.lower()
            if word in words.stopwords or (len(word) == 1 and not word.isdigit()):
                continue
            terms.append(words.stem(word) if word.isalpha() else word)
    return terms


def query_languages(text: str) -> tuple[str, ...]:
    """The languages a query is tokenized in: the one it is written in, or every alphabetic
    language when nothing tells (a query of names alone)."""
    language = detect_language(text)
    return (language,) if language is not None else ALL_ALPHABETIC


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


def document_vector(text: str, language: str = "en") -> SparseVector:
    """BM25 term-frequency part for a passage in ``language``: saturating in tf, normalised by
    length."""
    counts = Counter(tokenize(text, language))
    length = sum(counts.values())
    norm = K1 * (1.0 - B + B * length / AVG_DOC_TOKENS)
    return _vector((term, tf * (K1 + 1.0) / (tf + norm)) for term, tf in counts.items())


def query_vector(text: str) -> SparseVector:
    """A query's terms (``query_languages``), each weighted 1: Qdrant multiplies in the IDF."""
    terms = [term for language in query_languages(text) for term in tokenize(text, language)]
    return _vector((term, 1.0) for term in dict.fromkeys(terms))
