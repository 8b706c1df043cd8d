"""Extractive answering for the offline model: pick the retrieved sentences that answer best.

No generation, so nothing is invented: every sentence of the answer is copied from a retrieved
passage and cited with that passage's number. The decline rule: if the best passage shares too
little of the question's content words, the site does not cover the question.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ingestion_jobs.sparse import tokenize
from shared.passages import Passage

__all__ = ["compose_answer", "question_coverage"]

_FENCE = re.compile(r"```.*?```", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\"'(\[])|\n{2,}|\n(?=\s*[-*] |\s*\d+\. )")
_HOW = re.compile(r"\b(how|example|command|code|snippet|configure|install|run|write)\b", re.I)

MIN_COVERAGE = 0.5
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
    found = _terms(" ".join([passage.text, passage.heading, *passage.breadcrumb]))
    return len(question_terms & found) / len(question_terms)


def compose_answer(
    question: str, passages: dict[int, Passage], *, selection: str | None = None
) -> str | None:
    """An answer of up to three cited sentences, or None when the passages do not cover it."""
    if not passages:
        return None
    q_terms = _terms(question)
    if selection and len(q_terms) < 3:
        # "what does this mean?" about highlighted text: the selection carries the topic.
        q_terms |= _terms(selection)
    if not q_terms:
        return None
    ranked = sorted(passages.items())
    best_cov = max(question_coverage(q_terms, p) for _, p in ranked)
    if best_cov < MIN_COVERAGE:
        return None

    # Rarer question terms (in fewer passages) say more about what is asked.
    doc_freq = {t: sum(1 for _, p in ranked if t in _terms(p.text)) for t in q_terms}
    weight = {t: math.log(1 + len(ranked) / (1 + doc_freq[t])) + 0.1 for t in q_terms}
    wants_code = bool(_HOW.search(question))

    scored: list[tuple[float, int, _Unit]] = []
    order = 0
    for rank, (number, passage) in enumerate(ranked):
        if question_coverage(q_terms, passage) < MIN_COVERAGE / 2:
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
    chosen = sorted(scored, key=lambda s: (-s[0], s[1]))[:MAX_SENTENCES]
    chosen.sort(key=lambda s: (s[2].rank, s[1]))  # read in the page's own order
    parts = []
    for _, _, unit in chosen:
        if unit.is_code:
            parts.append(f"{unit.text}\n[{unit.number}]")
        else:
            parts.append(f"{unit.text} [{unit.number}]")
    return "\n\n".join(parts) if any(u.is_code for _, _, u in chosen) else " ".join(parts)
