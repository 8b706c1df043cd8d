"""The offline answerer's decline rule: whether the retrieved passages support an answer to a
question at all, and the reading of a question it rests on (its topic words, the names it turns
on, a section's heading said as a phrase). worker/extractive.py, which composes the answer,
uses the same reading to pick the section that answers.

The rule asks for evidence, not coincidence: most of the question's topic words (not numbers
or one-letter tokens) must appear in what was retrieved, every name the question turns on
("ROS", "WordPress", `ros1_bridge`) must appear there too, and (with a calibrated embedder)
the best passage must be close in meaning, unless the question names a section outright.
"""

from __future__ import annotations

import difflib
import functools
import re
from collections.abc import Callable

from ingestion_jobs.sparse import tokenize
from shared.passages import Passage

__all__ = [
    "MIN_COVERAGE",
    "decline_reason",
    "found",
    "mentioned",
    "names_heading",
    "passage_terms",
    "question_coverage",
    "specific_terms",
    "stemmed_words",
    "terms",
    "topic_terms",
]

MIN_COVERAGE = 0.5  # share of the question's topic words the retrieved passages must contain


def terms(text: str) -> set[str]:
    return set(tokenize(text))


def topic_terms(text: str) -> set[str]:
    """Topic words: terms that say what is asked about; not numbers, not question phrasing."""
    return {t for t in terms(text) - _GENERIC if len(t) > 1 and not t.isdigit()}


def question_coverage(question_terms: set[str], passage: Passage) -> float:
    """Share of the question's content words found in the passage, its heading and breadcrumb
    (each word or another name for it, see `found`)."""
    if not question_terms:
        return 0.0
    vocabulary = passage_terms(passage)
    return sum(found(t, vocabulary) for t in question_terms) / len(question_terms)


def found(term: str, vocabulary: set[str]) -> bool:
    """Whether `vocabulary` holds the term, or another name for the same thing ("RAM" where
    the page says "memory", "ran" where it says "run")."""
    return term in vocabulary or any(other <= vocabulary for other in _same_thing().get(term, ()))


# Words readers and pages use for one thing: abbreviations and irregular inflections (the
# stemmer folds the regular ones: "runs", "running"). General English, not any site's words.
_SAME_THING_TEXT = (
    "RAM = memory",
    "PSU = power supply",
    "OS = operating system",
    "CPU = processor",
    "GPU = graphics card",
    "PC = computer",
    "DB = database",
    "repo = repository",
    "config = configuration",
    "dir = directory = folder",
    "delete = remove",
    "launch = start",
    "execute = run",
    "ran = run",
    "built = build",
    "written = wrote = write",
    "hidden = hid = hide",
    "chosen = chose = choose",
    "sent = send",
    "kept = keep",
    "shown = show",
    "taken = took = take",
    "made = make",
)


@functools.cache
def _same_thing() -> dict[str, list[frozenset[str]]]:
    """Each one-term name -> the term sets of its other names."""
    table: dict[str, list[frozenset[str]]] = {}
    for line in _SAME_THING_TEXT:
        names = [frozenset(terms(name)) for name in line.split("=")]
        for name in names:
            if len(name) != 1:
                continue
            (term,) = name
            table.setdefault(term, []).extend(other for other in names if other != name)
    return table


def passage_terms(passage: Passage) -> set[str]:
    return terms(" ".join([passage.text, passage.heading, passage.title, *passage.breadcrumb]))


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
# A number with a plural or a qualifier is still a number: "404s", "1060-class", "13-week".
_COUNTED = re.compile(r"\d+(?:\.\d+)?(?:s|-[a-z]+)")
# Words joined by "/" ("kinematics/dynamics", as ../shared/eval/validate_questions.py reads them).
_WORD_LIST = re.compile(r"[A-Za-z]{2,}(?:/[A-Za-z]{2,})+")
_SENTENCE_START = re.compile(r"[.!?]\s+$")


def specific_terms(question: str) -> list[str]:
    """Names and identifiers in the question: `WordPress`, `FIFA`, `ros1_bridge`, `A/B`, `ROS`.
    If the site never mentions one of these, it is not what the site is about. A bare number
    is no name ("ROS 2": the "2" proves nothing)."""
    found = []
    for index, match in enumerate(_SPECIFIC.finditer(question)):
        word = match.group()
        flag = word.startswith("-")  # a command-line option: `--turbo`
        word = word.strip(".-")
        if len(word) < 2 or "://" in word or word.isdigit() or _COUNTED.fullmatch(word):
            continue
        if _WORD_LIST.fullmatch(word):
            continue  # "OS/RAM/disk": topic words, each counted as one (not "A/B", a name)
        # A capital after a sentence's end starts the sentence ("... 404s. What should I
        # change?"): it marks no name.
        starts_sentence = _SENTENCE_START.search(question[: match.start()]) is not None
        marked = (
            flag
            or re.search(r"\w\.\w", word) is not None  # a file name: `.gitlab-ci.yml`
            or any(c.isdigit() for c in word)
            or "_" in word
            or "/" in word
            or (word.isupper() and word.isalpha())
            or (index > 0 and word[0].isupper() and not starts_sentence)
            or any(c.isupper() for c in word[1:])
        )
        if marked:
            found.append(word)
    return found


def mentioned(word: str, vocabulary: set[str]) -> bool:
    """Whether the site's `vocabulary` (passage_terms) holds the name `word`: every one of its
    terms, each maybe with a typo."""
    word_terms = {t for t in terms(word) if not t.isdigit()}
    if not word_terms:
        return True
    # A near miss counts (a typo of a name the site does use), but only for words long enough
    # for a typo to be told from another word.
    return all(
        found(t, vocabulary) or (len(t) >= 5 and difflib.get_close_matches(t, vocabulary, 1, 0.8))
        for t in word_terms
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
    vocabulary = set().union(*(passage_terms(p) for p in passages.values()))
    topic = topic_terms(question)
    if topic and sum(found(t, vocabulary) for t in topic) / len(topic) < MIN_COVERAGE:
        return "topic words not found"
    missing = [w for w in specific_terms(question) if not mentioned(w, vocabulary)]
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
    words = stemmed_words(question)
    if any(names_heading(words, p) for p in passages.values()):
        return True
    first = next(iter(passages.values()))  # the search's best
    return len(topic) >= 2 and topic <= passage_terms(first)


def stemmed_words(text: str) -> list[str]:
    """Lower-case stemmed words, stop words kept: for matching a heading as a phrase."""
    stem = _stem()
    return [stem(w) for w in re.findall(r"[a-z0-9]+", text.lower())]


def _stem() -> Callable[[str], str]:
    from ingestion_jobs.sparse import _stemmer

    stemmer = _stemmer()
    return lambda word: str(stemmer.stemWord(word))


def names_heading(question_words: list[str], passage: Passage) -> bool:
    """The question says the section's heading as a phrase ("How do I *power on* the robot?",
    "How do I *verify the install*?"): a heading of at least two words, in order."""
    heading = stemmed_words(passage.heading)
    if len(heading) < 2:
        return False
    n = len(heading)
    return any(question_words[i : i + n] == heading for i in range(len(question_words) - n + 1))
