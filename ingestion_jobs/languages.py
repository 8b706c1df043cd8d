"""The languages a site is written in, and how text of each becomes words and index terms.

Used by the keyword index (``sparse.py``), the chunker's size estimate (``chunking.py``) and the
offline answerer's reading of a question (``worker/decline_rule.py``), so all three see the same
words.

- **A page's language** is its Docusaurus locale's: ``i18n.defaultLocale`` for the default
  locale's pages, ``<locale>`` for ``i18n/<locale>/``. Locales are BCP 47 tags (``zh-Hans``,
  ``pt-BR``, ``de``); the language is the primary subtag, lowercased (``language_of``).
- **Alphabetic scripts**: words are lowercased, stop words dropped and the rest stemmed with the
  language's Snowball stemmer (PyStemmer, ``STEMMERS``). Stop words come from the ``stop-words``
  package, except English, which keeps the short list the index has always used
  (``ENGLISH_STOPWORDS``), so English sites index exactly as before. A language with no stemmer
  keeps its words unstemmed.
- **Chinese, Japanese, Korean** are written without spaces between words, so a run of Han, kana
  or Hangul characters is indexed as its overlapping character bigrams, and a lone character as
  itself: the rule of Lucene's ``CJKAnalyzer`` (``CJKBigramFilter``) and Elasticsearch's ``cjk``
  analyzer. It needs no dictionary and finds any word of two or more characters, at the cost of
  some bigrams that straddle two words. Latin words inside CJK text (product names, code) are
  analysed as English. This holds whatever the page's language (a German page quoting Chinese).
- **A question's language** (the reader's locale is not known): CJK script says Chinese (Han
  only), Japanese (any kana) or Korean (Hangul); otherwise the language whose stop words the
  question uses most (``detect_language``), English on a tie. A question with no stop word at all
  ("Zwischenspeicher konfigurieren") is undecided: search then stems it in every language
  (``ALL_ALPHABETIC``), the answerer reads it in the language of what was retrieved.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

import Stemmer
from stop_words import StopWordError, get_stop_words

__all__ = [
    "ALL_ALPHABETIC",
    "CJK_CHARACTERS",
    "CJK_LANGUAGES",
    "ENGLISH_STOPWORDS",
    "Analysis",
    "analysis",
    "cjk_bigrams",
    "detect_language",
    "is_cjk",
    "language_of",
    "stop_characters",
]

_ENGLISH_STOPWORD_TEXT = """
    a about above after again against all am an and any are as at be because been before
    being below between both but by can could did do does doing down during each few for from
    further had has have having he her here hers herself him himself his how i if in into is it
    its itself just me more most my myself no nor not now of off on once only or other our ours
    ourselves out over own same she should so some such than that the their theirs them
    themselves then there these they this those through to too under until up very was we were
    what when where which while who whom why will with would you your yours yourself yourselves
    s t d ll m re ve"""
ENGLISH_STOPWORDS = frozenset(_ENGLISH_STOPWORD_TEXT.split())

#: ISO 639-1 language -> PyStemmer (Snowball) algorithm.
STEMMERS = {
    "ar": "arabic",
    "ca": "catalan",
    "cs": "czech",
    "da": "danish",
    "de": "german",
    "el": "greek",
    "en": "english",
    "es": "spanish",
    "et": "estonian",
    "eu": "basque",
    "fa": "persian",
    "fi": "finnish",
    "fr": "french",
    "ga": "irish",
    "hi": "hindi",
    "hu": "hungarian",
    "hy": "armenian",
    "id": "indonesian",
    "it": "italian",
    "lt": "lithuanian",
    "nb": "norwegian",
    "ne": "nepali",
    "nl": "dutch",
    "nn": "norwegian",
    "no": "norwegian",
    "pl": "polish",
    "pt": "portuguese",
    "ro": "romanian",
    "ru": "russian",
    "sr": "serbian",
    "sv": "swedish",
    "ta": "tamil",
    "tr": "turkish",
    "yi": "yiddish",
}
CJK_LANGUAGES = frozenset({"zh", "ja", "ko"})
#: The languages an undecided question is stemmed in (every one with a stemmer).
ALL_ALPHABETIC = tuple(sorted(set(STEMMERS) - {"nn", "no"}))

# Han (with extension A and compatibility ideographs), Hiragana, Katakana (with the phonetic
# extensions and half-width forms), Hangul syllables and jamo.
CJK_CHARACTERS = (
    "\u1100-\u11ff\u3040-\u309f\u30a0-\u30ff\u31f0-\u31ff\u3130-\u318f\u3400-\u4dbf"
    "\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff\uff66-\uff9f"
)
_CJK_RUN = re.compile(f"[{CJK_CHARACTERS}]+")
_KANA = re.compile("[\u3040-\u30ff\u31f0-\u31ff\uff66-\uff9f]")
_HANGUL = re.compile("[\u1100-\u11ff\u3130-\u318f\uac00-\ud7af]")
_LETTERS = re.compile(rf"(?:(?![{CJK_CHARACTERS}])[^\W\d_])+")


def language_of(locale: str | None, default: str = "en") -> str:
    """The language of a BCP 47 locale tag: ``zh-Hans`` -> ``zh``, ``pt-BR`` -> ``pt``;
    ``default`` for None or an empty tag."""
    if not locale:
        return default
    return re.split(r"[-_]", locale.strip(), maxsplit=1)[0].lower() or default


def is_cjk(text: str) -> bool:
    """Whether ``text`` holds a Han, kana or Hangul character."""
    return _CJK_RUN.search(text) is not None


def cjk_bigrams(run: str) -> list[str]:
    """A run of CJK characters as its overlapping bigrams; a lone character as itself."""
    if len(run) == 1:
        return [run]
    return [run[i : i + 2] for i in range(len(run) - 1)]


@dataclass(frozen=True, slots=True)
class Analysis:
    """How words of one language become terms: its stop words and its stemmer."""

    language: str
    stopwords: frozenset[str]
    stem: Callable[[str], str]


def _stopwords(language: str) -> frozenset[str]:
    if language == "en" or language in CJK_LANGUAGES:
        return ENGLISH_STOPWORDS  # Latin words in CJK text are English (names, code)
    try:
        return frozenset(word.lower() for word in get_stop_words(language))
    except StopWordError:
        return frozenset()


@lru_cache(maxsize=64)
def analysis(language: str) -> Analysis:
    """The analysis of ``language`` (ISO 639-1); one that bookchat has no stemmer for keeps
    its words unstemmed, and CJK languages analyse their Latin words as English."""
    algorithm = STEMMERS.get("en" if language in CJK_LANGUAGES else language)
    if algorithm is None:
        return Analysis(language, _stopwords(language), lambda word: word)
    stemmer = Stemmer.Stemmer(algorithm)
    return Analysis(language, _stopwords(language), lambda word: str(stemmer.stemWord(word)))


@lru_cache(maxsize=4)
def stop_characters() -> frozenset[str]:
    """Single-character function words of Chinese and Japanese (``的``, ``哪``, ``の``, ``か``),
    from the ``stop-words`` lists: a question's bigrams that hold one say how it is asked (``在哪``,
    ``什么``), not what about."""
    chars: set[str] = set()
    for language in ("zh", "ja"):
        chars.update(word for word in get_stop_words(language) if len(word) == 1)
    return frozenset(chars)


def _words(text: str) -> Iterator[str]:
    for match in _LETTERS.finditer(text.lower()):
        yield match.group()


def detect_language(text: str) -> str | None:
    """The language ``text`` is most likely written in, or None when nothing tells.

    CJK script decides first (kana: ``ja``; Hangul: ``ko``; Han alone: ``zh``); otherwise the
    language of ``ALL_ALPHABETIC`` whose stop words occur most often, English winning a tie
    (``"Plugins in Docusaurus"``: "in" is English, German and Dutch alike)."""
    if _KANA.search(text):
        return "ja"
    if _HANGUL.search(text):
        return "ko"
    if is_cjk(text):
        return "zh"
    words = list(_words(text))
    if not words:
        return None
    best, best_hits = None, 0
    for language in ("en", *ALL_ALPHABETIC):
        stopwords = analysis(language).stopwords
        hits = sum(1 for word in words if word in stopwords)
        if hits > best_hits:
            best, best_hits = language, hits
    return best
