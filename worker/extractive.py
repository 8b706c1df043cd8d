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

The decline rule asks for evidence, not coincidence: most of the question's topic words (not
numbers or one-letter tokens) must appear in the chosen section, every name the question turns
on ("ROS", "WordPress", `ros1_bridge`) must appear in what was retrieved, and (with a calibrated
embedder) the best passage must be close in meaning. Text inside a page that addresses the
assistant or asks the reader for credentials (worker/guard.py) is never quoted.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable
from dataclasses import dataclass

from ingestion_jobs.sparse import tokenize
from shared.passages import Passage
from worker.guard import addresses_assistant

__all__ = ["compose_answer", "decline_reason", "question_coverage"]

_FENCE = re.compile(r"^(```|~~~).*?^\1[^\S\n]*$", re.S | re.M)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\"'(\[])")
_LIST_LINE = re.compile(r"^\s*(?:[-*+]|\d+[.)])\s+")
_HOW = re.compile(r"\b(how|example|command|code|snippet|configure|install|run|write|set)\b", re.I)

MIN_COVERAGE = 0.5  # share of the question's topic words the retrieved passages must contain
SECTION_COVERAGE = 0.25  # share of them the answering section must contain
SHORT_SECTION = 520  # characters: a section this short is the answer as it stands
MAX_UNITS = 4


@dataclass(slots=True)
class _Unit:
    number: int
    order: int  # position in its passage
    text: str
    terms: set[str]
    kind: str  # "prose", "code", "list", "table"


def _terms(text: str) -> set[str]:
    return set(tokenize(text))


def _topic(text: str) -> set[str]:
    """Topic words: terms that say what is asked about; not numbers, not question phrasing."""
    return {t for t in _terms(text) - _GENERIC if len(t) > 1 and not t.isdigit()}


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
        pieces = _SENTENCE_END.split(block) if kind == "prose" else [block]
        for piece in pieces:
            if kind == "prose" and len(piece) < 3:
                continue
            if addresses_assistant(piece):
                continue  # a page talking to the assistant (or phishing) is not an answer
            units.append(_Unit(number, len(units), piece, _terms(piece), kind))
    return units


def question_coverage(question_terms: set[str], passage: Passage) -> float:
    """Share of the question's content words found in the passage, its heading and breadcrumb."""
    if not question_terms:
        return 0.0
    return len(question_terms & _passage_terms(passage)) / len(question_terms)


def _passage_terms(passage: Passage) -> set[str]:
    return _terms(" ".join([passage.text, passage.heading, passage.title, *passage.breadcrumb]))


def _heading_terms(passage: Passage) -> set[str]:
    inner = re.findall(r"^#{1,6}\s+(.+)$", passage.text, re.M)
    return _terms(" ".join([passage.heading, *passage.breadcrumb[-2:], *inner]))


# Words that say how something is asked, not what about: they carry no topic.
_GENERIC = frozenset(
    tokenize(
        "show tell give explain help need want use using make way thing something someone "
        "inside isn't whats how can could would should please actually really exactly also "
        "still right example examples difference work works does do did done happen happens "
        "possible able there their they mean means meaning about which what when where why "
        "who much many best good okay ok via"
    )
)
_SPECIFIC = re.compile(r"(?:--?)?[\w][\w/.+#-]*")


def _specific_terms(question: str) -> list[str]:
    """Names and identifiers in the question: `WordPress`, `FIFA`, `ros1_bridge`, `A/B`, `ROS`.
    If the site never mentions one of these, it is not what the site is about. A bare number
    is no name ("ROS 2": the "2" proves nothing)."""
    found = []
    for index, word in enumerate(_SPECIFIC.findall(question)):
        flag = word.startswith("-")  # a command-line option: `--turbo`
        word = word.strip(".-")
        if len(word) < 2 or "://" in word or word.isdigit():
            continue
        marked = (
            flag
            or re.search(r"\w\.\w", word) is not None  # a file name: `.gitlab-ci.yml`
            or any(c.isdigit() for c in word)
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
    terms = {t for t in _terms(word) if not t.isdigit()}
    if not terms:
        return True
    # A near miss counts (a typo of a name the site does use), but only for words long enough
    # for a typo to be told from another word.
    return all(
        t in vocabulary or (len(t) >= 5 and difflib.get_close_matches(t, vocabulary, 1, 0.8))
        for t in terms
    )


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
    topic = _topic(question)
    if topic and len(topic & vocabulary) / len(topic) < MIN_COVERAGE:
        return "topic words not found"
    missing = [w for w in _specific_terms(question) if not _mentioned(w, vocabulary)]
    if missing:
        return f"not mentioned: {', '.join(missing)}"
    if min_cosine is not None:
        best = max((p.dense_score or 0.0) for p in passages.values())
        if best < min_cosine and not _named_outright(question, topic, passages):
            return f"best passage too far in meaning ({best:.2f})"
    return None


def _named_outright(question: str, topic: set[str], passages: dict[int, Passage]) -> bool:
    """Lexical evidence strong enough to stand without the cosine (short questions embed
    poorly: "How do I verify the install?" is 0.28 from its own section with MiniLM): the
    question names a retrieved section's heading as a phrase, or the top passage holds every
    one of at least two topic words."""
    words = _words(question)
    if any(_names_heading(words, p) for p in passages.values()):
        return True
    first = passages[min(passages)]
    return len(topic) >= 2 and topic <= _passage_terms(first)


def _words(text: str) -> list[str]:
    """Lower-case stemmed words, stop words kept: for matching a heading as a phrase."""
    stem = _stem()
    return [stem(w) for w in re.findall(r"[a-z0-9]+", text.lower())]


def _stem() -> Callable[[str], str]:
    from ingestion_jobs.sparse import _stemmer

    stemmer = _stemmer()
    return lambda word: str(stemmer.stemWord(word))


def _names_heading(question_words: list[str], passage: Passage) -> bool:
    """The question says the section's heading as a phrase ("How do I *power on* the robot?",
    "How do I *verify the install*?"): a heading of at least two words, in order."""
    heading = _words(passage.heading)
    if len(heading) < 2:
        return False
    n = len(heading)
    return any(question_words[i : i + n] == heading for i in range(len(question_words) - n + 1))


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
        body = sum(weight.get(t, 1.0) for t in topic & _passage_terms(passage)) / total
        heading = sum(weight.get(t, 1.0) for t in topic & _heading_terms(passage)) / total
        dense = (passage.dense_score or 0.0) - best_dense  # 0 for the closest, negative below
        score = 1.0 / (1 + 0.5 * rank) + 1.2 * body + 0.9 * heading + 3.0 * dense
        if _names_heading(question_words, passage):
            score += 2.5
        if not any(u.kind != "prose" or len(u.text) >= 12 for u in _units(number, passage)):
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
        return units
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
        if units[i].kind != "prose" and i > 0 and units[i - 1].text.rstrip().endswith(":"):
            chosen.add(i - 1)
    return [units[i] for i in sorted(chosen)]


def _key(text: str) -> str:
    return " ".join(text.lower().split())


def _render(units: list[_Unit]) -> str:
    parts: list[str] = []
    for unit in units:
        if unit.kind == "prose":
            parts.append(f"{unit.text} [{unit.number}]")
        else:
            parts.append(f"{unit.text}\n[{unit.number}]")
    if all(u.kind == "prose" for u in units):
        return " ".join(parts)
    return "\n\n".join(parts)


def compose_answer(
    question: str,
    passages: dict[int, Passage],
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
    topic = _topic(question)
    avoid: set[str] = set()
    if selection:
        # "what does this mean?": the highlighted text carries the topic, and saying it back is
        # no answer.
        topic |= _topic(selection)
        avoid = {_key(s) for s in _SENTENCE_END.split(" ".join(selection.split())) if s}
    elif decline_reason(question, passages, min_cosine=min_cosine) is not None:
        return None
    if not topic:
        return None
    ranked = sorted(passages.items())
    # Rarer topic words (in fewer passages) say more about what is asked.
    doc_freq = {t: sum(1 for _, p in ranked if t in _passage_terms(p)) for t in topic}
    weight = {t: math.log(1 + len(ranked) / (1 + doc_freq[t])) + 0.2 for t in topic}
    wants_code = bool(_HOW.search(question))

    # A section must hold a fair share of what is asked to answer it (coincidence is not
    # enough); the retrieved set as a whole already passed the decline rule.
    sections = [
        s
        for s in _section_scores(topic, ranked, weight, _words(question))
        if question_coverage(topic, s[2]) >= SECTION_COVERAGE
    ]
    if not selection:
        # The names the question turns on must be in the section that answers, not merely
        # somewhere in what was retrieved.
        names = _specific_terms(question)
        sections = [s for s in sections if all(_mentioned(n, _passage_terms(s[2])) for n in names)]
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
