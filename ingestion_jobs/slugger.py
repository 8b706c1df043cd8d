"""A faithful port of github-slugger 2.x: the anchor Docusaurus gives a heading with no id.

Docusaurus makes heading ids with github-slugger through ``@docusaurus/utils``
``createSlugger`` (one slugger per compiled file, so duplicates get ``-1``, ``-2``, ...).
"""

from __future__ import annotations

import unicodedata
from functools import lru_cache

__all__ = ["GithubSlugger", "github_slug"]

# No maintained Python port exists on PyPI (the one package named after it is a 2022 0.0.3 with
# no users), so this is a small faithful port of github-slugger 2.x, which Docusaurus uses via
# `createSlugger`: lowercase, delete every code point in the Unicode categories the upstream
# generator strips (Other_Number, all punctuation but connector punctuation and "-", all
# symbols, controls, format, private use, unassigned, separators but " "), except alphabetic
# ones, then turn each space into "-". Duplicates get "-1", "-2", ... like upstream.

_STRIPPED_CATEGORIES = frozenset(
    {"No", "Ps", "Pe", "Pi", "Pf", "Po", "Pd", "Cc", "Cf", "Co", "Cn", "Zs", "Zl", "Zp"}
)
# Symbols (So) that Unicode also marks Alphabetic: circled and squared Latin letters. Upstream
# removes Alphabetic code points from the strip set; Python has no Alphabetic property, and all
# other Alphabetic code points are letters, marks or letter numbers, which are kept anyway.
_ALPHABETIC_SYMBOLS = (
    (0x24B6, 0x24E9),
    (0x1F130, 0x1F149),
    (0x1F150, 0x1F169),
    (0x1F170, 0x1F189),
)


@lru_cache(maxsize=8192)
def _is_stripped(char: str) -> bool:
    if char in " -":
        return False
    category = unicodedata.category(char)
    if category not in _STRIPPED_CATEGORIES and category[0] != "S":
        return False
    code = ord(char)
    return not any(low <= code <= high for low, high in _ALPHABETIC_SYMBOLS)


def github_slug(value: str, *, maintain_case: bool = False) -> str:
    """Slug one string exactly like github-slugger's ``slug()`` (no de-duplication)."""
    if not maintain_case:
        value = value.lower()
    return "".join(ch for ch in value if not _is_stripped(ch)).replace(" ", "-")


class GithubSlugger:
    """Per-page slugger: the second "Intro" becomes "intro-1", like github-slugger's class."""

    def __init__(self) -> None:
        self._occurrences: dict[str, int] = {}

    def slug(self, value: str, *, maintain_case: bool = False) -> str:
        result = original = github_slug(value, maintain_case=maintain_case)
        while result in self._occurrences:
            self._occurrences[original] += 1
            result = f"{original}-{self._occurrences[original]}"
        self._occurrences[result] = 0
        return result
