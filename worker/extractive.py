"""Extractive answering for the offline model: answer from the section that answers the question.

No generation, so nothing is invented: every part of the answer is copied from a retrieved
passage and cited with that passage's number. Two steps, each from evidence the pipeline has:

1. **Pick the section.** Each retrieved passage (a section of a page) is scored on what says it
   is about the question: its rank from the hybrid retriever (dense meaning + exact words), its
   cosine to the question, its heading and breadcrumb naming the question's topic words, and the
   share of those words its text holds. The best section answers; a second one adds a part only
   when it is nearly as good (a question that spans two pages).
2. **Pick its parts.** A section is cut into units that are never altered: sentences of prose,
   and whole code blocks, lists and tables. A short section is the answer as it stands; from a
   long one the units that hold the question's words are kept, in the page's order. A sentence
   that introduces a code block or list (ends with ":") brings that block with it.

Whether to answer at all is the decline rule (worker/decline_rule.py): it asks for evidence,
not coincidence (the question's topic words and names in what was retrieved, and closeness in
meaning). Text inside a page that addresses the assistant or asks the reader for credentials
(worker/guard.py) is never quoted.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from shared.passages import Passage
from worker.decline_rule import (
    decline_reason,
    mentioned,
    names_heading,
    passage_terms,
    question_coverage,
    specific_terms,
    stemmed_words,
    terms,
    topic_terms,
)
from worker.guard import addresses_assistant

__all__ = ["compose_answer"]

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\S\n]*$", re.S | re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\"'(\[])")
_LIST_LINE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_HOW = re.compile(r"\b(how|example|command|code|snippet|configure|install|run|write|set)\b", re.I)

SECTION_COVERAGE = 0.25  # share of them the answering section must contain
SHORT_SECTION = 520  # characters: a section this short is the answer as it stands
MAX_UNITS = 4
LABEL_LENGTH = 80  # characters: a paragraph this short that ends with ":" is a title


@dataclass(slots=True)
class _Unit:
    number: int
    order: int  # position in its passage
    text: str
    terms: set[str]
    kind: str  # "prose", "label" (a title: never alone), "code", "list", "table"


def _blocks(text: str) -> list[tuple[str, str]]:
    """(kind, text) blocks of a passage in order: fenced code kept byte for byte, lists and
    tables as whole blocks, prose paragraphs."""
    blocks: list[tuple[str, str]] = []
    last = 0
    for match in _FENCE.finditer(text):
        blocks.extend(_text_blocks(text[last : match.start()]))
        blocks.append(("code", match.group(0)))
        last = match.end()
    blocks.extend(_text_blocks(text[last:]))
    return blocks


def _text_blocks(text: str) -> list[tuple[str, str]]:
    blocks: list[tuple[str, str]] = []
    for paragraph in re.split(r"\n\s*\n", text):
        lines = [line for line in paragraph.splitlines() if line.strip()]
        if not lines:
            continue
        if all(line.lstrip().startswith("|") for line in lines):
            blocks.append(("table", "\n".join(lines)))
        elif _LIST_LINE.match(lines[0]):
            blocks.append(("list", "\n".join(lines)))
        else:
            prose = [line for line in lines if not line.lstrip().startswith("#")]
            if prose:
                blocks.append(("prose", " ".join(" ".join(prose).split())))
    return blocks


def _units(number: int, passage: Passage) -> list[_Unit]:
    units: list[_Unit] = []
    for kind, block in _blocks(passage.text):
        if kind == "prose" and _is_label(block, passage):
            kind = "label"
        pieces = _SENTENCE_END.split(block) if kind == "prose" else [block]
        for piece in pieces:
            if kind == "prose" and len(piece) < 3:
                continue
            if addresses_assistant(piece):
                continue  # a page talking to the assistant (or phishing) is not an answer
            units.append(_Unit(number, len(units), piece, terms(piece), kind))
    return units


def _is_label(block: str, passage: Passage) -> bool:
    """A title, not a statement: an admonition's title as the page shows it ("Warning:",
    "Check the serial group:", ingestion_jobs/mdx_text.py) or a heading repeated as text. It
    says what follows, so it is quoted only with what follows."""
    key = _key(block).rstrip(":").strip()
    if key in {_key(passage.heading), _key(passage.title)}:
        return True
    return block.endswith(":") and len(block) <= LABEL_LENGTH and not _SENTENCE_END.search(block)


def _heading_terms(passage: Passage) -> set[str]:
    inner = re.findall(r"^#{1,6}\s+(.+)$", passage.text, re.M)
    return terms(" ".join([passage.heading, *passage.breadcrumb[-2:], *inner]))


def _section_scores(
    topic: set[str],
    passages: list[tuple[int, Passage]],
    weight: dict[str, float],
    question_words: list[str],
) -> list[tuple[float, int, Passage]]:
    """Each passage's evidence of being about the question (higher is better)."""
    total = sum(weight.get(t, 1.0) for t in topic) or 1.0
    best_dense = max((p.dense_score or 0.0) for _, p in passages)
    scored = []
    for rank, (number, passage) in enumerate(passages):
        body = sum(weight.get(t, 1.0) for t in topic & passage_terms(passage)) / total
        heading = sum(weight.get(t, 1.0) for t in topic & _heading_terms(passage)) / total
        dense = (passage.dense_score or 0.0) - best_dense  # 0 for the closest, negative below
        score = 1.0 / (1 + 0.5 * rank) + 1.2 * body + 0.9 * heading + 3.0 * dense
        if names_heading(question_words, passage):
            score += 2.5
        units = _units(number, passage)
        if not any(u.kind not in ("prose", "label") or len(u.text) >= 12 for u in units):
            score -= 2.0  # nothing to quote (a heading-only chunk)
        scored.append((score, number, passage))
    return sorted(scored, key=lambda s: (-s[0], s[1]))


def _pick_units(
    units: list[_Unit],
    topic: set[str],
    weight: dict[str, float],
    wants_code: bool,
    avoid: set[str],
) -> list[_Unit]:
    """The units of one section that answer, in the page's order."""
    units = [u for u in units if _key(u.text) not in avoid]
    if not units:
        return []
    if sum(len(u.text) for u in units) <= SHORT_SECTION:
        return _without_lone_labels(units, set(range(len(units))))
    scores = []
    for unit in units:
        matched = topic & unit.terms
        score = sum(weight.get(t, 1.0) for t in matched) / math.sqrt(1 + len(unit.terms) / 12)
        if unit.kind == "code":
            score = score * 1.3 + (0.8 if wants_code else 0.0)
        score += 0.3 / (1 + unit.order)  # a section's first sentence usually states its point
        scores.append(score)
    best = max(scores)
    ranked = sorted(range(len(units)), key=lambda i: (-scores[i], i))
    keep = [i for i in ranked[:MAX_UNITS] if scores[i] >= 0.35 * best and scores[i] > 0]
    chosen = set(keep)
    for i in keep:  # a sentence that introduces a block brings the block with it
        if units[i].text.rstrip().endswith(":") and i + 1 < len(units):
            chosen.add(i + 1)
        if (
            units[i].kind not in ("prose", "label")
            and i > 0
            and units[i - 1].text.rstrip().endswith(":")
        ):
            chosen.add(i - 1)
    return _without_lone_labels(units, chosen)


def _without_lone_labels(units: list[_Unit], chosen: set[int]) -> list[_Unit]:
    """The chosen units in order, minus a title whose unit after it is not quoted too."""
    return [
        units[i]
        for i in sorted(chosen)
        if units[i].kind != "label" or (i + 1 in chosen and units[i + 1].kind != "label")
    ]


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _render(units: list[_Unit]) -> str:
    parts: list[str] = []
    for unit in units:
        if unit.kind == "label":
            parts.append(unit.text)  # what it titles follows, with the citation
        elif unit.kind == "prose":
            parts.append(f"{unit.text} [{unit.number}]")
        else:
            parts.append(f"{unit.text}\n[{unit.number}]")
    if all(u.kind in ("prose", "label") for u in units):
        return " ".join(parts)
    return "\n\n".join(parts)


def compose_answer(
    question: str,
    passages: dict[int, Passage],  # citation number -> passage, in the search's order
    *,
    selection: str | None = None,
    min_cosine: float | None = None,
) -> str | None:
    """An answer quoted from the section that answers `question`, each part cited, or None when
    the passages do not cover it. With a `selection` (the reader highlighted text and asks about
    it) the selection supplies the topic, and the answer says more about it than the selection
    itself: the selected sentences are not quoted back."""
    if not passages:
        return None
    topic = topic_terms(question)
    avoid: set[str] = set()
    if selection:
        # "what does this mean?": the highlighted text carries the topic, and saying it back is
        # no answer.
        topic |= topic_terms(selection)
        avoid = {_key(s) for s in _SENTENCE_END.split(" ".join(selection.split())) if s}
    elif decline_reason(question, passages, min_cosine=min_cosine) is not None:
        return None
    if not topic:
        return None
    ranked = list(passages.items())  # best first: the order the search returned them
    # Rarer topic words (in fewer passages) say more about what is asked.
    doc_freq = {t: sum(1 for _, p in ranked if t in passage_terms(p)) for t in topic}
    weight = {t: math.log(1 + len(ranked) / (1 + doc_freq[t])) + 0.2 for t in topic}
    wants_code = bool(_HOW.search(question))

    # A section must hold a fair share of what is asked to answer it (coincidence is not
    # enough); the retrieved set as a whole already passed the decline rule.
    sections = [
        s
        for s in _section_scores(topic, ranked, weight, stemmed_words(question))
        if question_coverage(topic, s[2]) >= SECTION_COVERAGE
    ]
    if not selection:
        # The names the question turns on must be in the section that answers, not merely
        # somewhere in what was retrieved.
        names = specific_terms(question)
        sections = [s for s in sections if all(mentioned(n, passage_terms(s[2])) for n in names)]
    if not sections:
        return None
    best_score, best_number, best = sections[0]
    chosen = _pick_units(_units(best_number, best), topic, weight, wants_code, avoid)
    seen = {_key(u.text) for u in chosen}
    for score, number, passage in sections[1:3]:
        # A second section adds to the answer only when it is nearly as good and on another
        # heading (overlapping chunks repeat their parent's first sub-section).
        if score < best_score - 0.35:
            continue
        extra = _pick_units(_units(number, passage), topic, weight, wants_code, avoid | seen)
        extra = [u for u in extra if topic & u.terms][:2]
        if extra and passage.path != best.path or (extra and not chosen):
            chosen += extra
            seen |= {_key(u.text) for u in extra}
        break
    if not chosen:
        return None
    return _render(chosen)
