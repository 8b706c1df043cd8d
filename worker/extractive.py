"""Extractive answering for the offline model: pick the retrieved sentences that answer best.

No generation, so nothing is invented: every sentence of the answer is copied from a retrieved
passage and cited with that passage's number. The decline rule: if the best passage shares too
little of the question's content words, the site does not cover the question.
"""

from __future__ import annotations

import difflib
import math
import re
from dataclasses import dataclass

from ingestion_jobs.sparse import tokenize
from shared.passages import Passage

__all__ = ["compose_answer", "decline_reason", "question_coverage"]

_FENCE = re.compile(r"```.*?```", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\"'(\[])|\n{2,}|\n(?=\s*[-*] |\s*\d+\. )")
_HOW = re.compile(r"\b(how|example|command|code|snippet|configure|install|run|write)\b", re.I)

MIN_COVERAGE = 0.5  # share of the question's topic words the passages must contain
MAX_SENTENCES = 3


@dataclass(slots=True)
class _Unit:
    number: int
    rank: int
    text: str
    terms: set[str]
    is_code: bool


def _terms(text: str) -> set[str]:
    return set(tokenize(text))


def _units(number: int, rank: int, passage: Passage) -> list[_Unit]:
    units: list[_Unit] = []
    text = passage.text
    last = 0
    for match in _FENCE.finditer(text):
        units.extend(_prose_units(number, rank, text[last : match.start()]))
        code = match.group(0)
        units.append(_Unit(number, rank, code, _terms(code), True))
        last = match.end()
    units.extend(_prose_units(number, rank, text[last:]))
    return units


def _prose_units(number: int, rank: int, text: str) -> list[_Unit]:
    units = []
    for raw in _SENTENCE_END.split(text):
        sentence = " ".join(raw.split())
        if len(sentence) < 12 or sentence.startswith("#"):
            continue
        units.append(_Unit(number, rank, sentence, _terms(sentence), False))
    return units


def question_coverage(question_terms: set[str], passage: Passage) -> float:
    """Share of the question's content words found in the passage, its heading and breadcrumb."""
    if not question_terms:
        return 0.0
    return len(question_terms & _passage_terms(passage)) / len(question_terms)


def _passage_terms(passage: Passage) -> set[str]:
    return _terms(" ".join([passage.text, passage.heading, passage.title, *passage.breadcrumb]))


# Words that say how something is asked, not what about: they carry no topic.
_GENERIC = frozenset(
    tokenize(
        "show tell give explain help need want use using make get way thing something someone "
        "inside isn't whats how can could would should please actually really exactly also "
        "still right example examples difference work works"
    )
)
_SPECIFIC = re.compile(r"[\w][\w/.+#-]*")


def _specific_terms(question: str) -> list[str]:
    """Names and identifiers in the question: `WordPress`, `FIFA`, `ros1_bridge`, `A/B`, `2022`.
    If the site never mentions one of these, it is not what the site is about."""
    found = []
    for index, word in enumerate(_SPECIFIC.findall(question)):
        word = word.strip(".-")
        if len(word) < 2 or "://" in word:
            continue
        marked = (
            any(c.isdigit() for c in word)
            or "_" in word
            or "/" in word
            or (word.isupper() and word.isalpha())
            or (index > 0 and word[0].isupper())
            or any(c.isupper() for c in word[1:])
        )
        if marked:
            found.append(word)
    return found


def _mentioned(word: str, vocabulary: set[str]) -> bool:
    terms = _terms(word)
    if not terms:
        return True
    # A near miss counts (a typo of a name the site does use).
    return all(t in vocabulary or difflib.get_close_matches(t, vocabulary, 1, 0.8) for t in terms)


def decline_reason(
    question: str, passages: dict[int, Passage], *, min_cosine: float | None = None
) -> str | None:
    """Why the retrieved passages do not support an answer, or None if they may.

    Three signals, none of them a lone score threshold: most of the question's topic words
    must appear in what was retrieved; a name or identifier the question turns on must appear
    there too; and (with a calibrated embedder) the best passage must be close in meaning.
    """
    if not passages:
        return "nothing retrieved"
    vocabulary = set().union(*(_passage_terms(p) for p in passages.values()))
    topic = _terms(question) - _GENERIC
    if topic and len(topic & vocabulary) / len(topic) < MIN_COVERAGE:
        return "topic words not found"
    missing = [w for w in _specific_terms(question) if not _mentioned(w, vocabulary)]
    if missing:
        return f"not mentioned: {', '.join(missing)}"
    if min_cosine is not None:
        best = max((p.dense_score or 0.0) for p in passages.values())
        if best < min_cosine:
            return f"best passage too far in meaning ({best:.2f})"
    return None


def compose_answer(
    question: str,
    passages: dict[int, Passage],
    *,
    selection: str | None = None,
    min_cosine: float | None = None,
) -> str | None:
    """An answer of up to three cited sentences, or None when the passages do not cover it."""
    if not passages:
        return None
    q_terms = _terms(question) - _GENERIC
    # A passage must hold this share of the question's topic words to contribute a sentence.
    gate = MIN_COVERAGE / 2
    if selection and len(q_terms) < 3:
        # "what does this mean?" about highlighted text: the selection carries the topic. A
        # highlighted paragraph has many words and the docs phrase them their own way, so a
        # passage need only share a few of them.
        q_terms |= _terms(selection)
        gate = min(gate, 3 / max(len(q_terms), 1))
    elif decline_reason(question, passages, min_cosine=min_cosine) is not None:
        return None
    if not q_terms:
        return None
    ranked = sorted(passages.items())

    # Rarer question terms (in fewer passages) say more about what is asked.
    doc_freq = {t: sum(1 for _, p in ranked if t in _terms(p.text)) for t in q_terms}
    weight = {t: math.log(1 + len(ranked) / (1 + doc_freq[t])) + 0.1 for t in q_terms}
    wants_code = bool(_HOW.search(question))

    scored: list[tuple[float, int, _Unit]] = []
    order = 0
    for rank, (number, passage) in enumerate(ranked):
        if question_coverage(q_terms, passage) < gate:
            continue
        for unit in _units(number, rank, passage):
            matched = q_terms & unit.terms
            if not matched and not (unit.is_code and wants_code and rank == 0):
                continue
            score = sum(weight[t] for t in matched) / math.sqrt(1 + len(unit.terms) / 12)
            score *= 1.0 / (1 + 0.25 * rank)
            if unit.is_code:
                score *= 1.2 if wants_code else 0.3
            scored.append((score, order, unit))
            order += 1
    if not scored:
        return None
    # Answer from the best passage; another passage adds a sentence only when it is nearly as
    # good, so an answer does not wander across pages.
    best_score, _, best = max(scored, key=lambda s: (s[0], -s[1]))
    keep = [
        item
        for item in scored
        if (item[2].number == best.number and item[0] >= 0.3 * best_score)
        or item[0] >= 0.75 * best_score
    ]
    chosen = []
    seen_texts: set[str] = set()
    for item in sorted(keep, key=lambda s: (-s[0], s[1])):
        # Overlapping chunks (a parent heading's chunk repeats its first sub-section) can hold
        # the same sentence twice: say it once, citing the better-ranked passage.
        text_key = " ".join(item[2].text.lower().split())
        if text_key in seen_texts:
            continue
        seen_texts.add(text_key)
        chosen.append(item)
        if len(chosen) == MAX_SENTENCES:
            break
    chosen.sort(key=lambda s: (s[2].rank, s[1]))  # read in the page's own order
    parts = []
    for _, _, unit in chosen:
        if unit.is_code:
            parts.append(f"{unit.text}\n[{unit.number}]")
        else:
            parts.append(f"{unit.text} [{unit.number}]")
    return "\n\n".join(parts) if any(u.is_code for _, _, u in chosen) else " ".join(parts)
