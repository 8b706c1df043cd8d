"""Regular expressions that run in time linear in the text, for text a reader or a site sends.

Python's `re` backtracks: a pattern such as `(^|\\n)\\s*(#\\s*)?\\s*system` takes time cubic in a
run of newlines (issue 30: a 3 KB question held a worker's event loop for a minute). These
patterns are compiled by RE2 (the `google-re2` package), which runs an automaton and never
backtracks: matching takes O(len(pattern) * len(text)) whatever the pattern and the text. RE2
has no lookaround and no backreferences; a pattern that needs them fails at compile time
(`re2.error`), never at match time.

RE2's classes are ASCII (`\\w`, `\\b`, `\\s`: `[\\t\\n\\f\\r ]`), where Python's are Unicode:
`search` and `finditer` first map every other Unicode whitespace character to a plain space (one
character for one, so offsets agree), so `\\s` still sees a no-break or an ideographic space.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import re2

__all__ = ["LinearPattern", "compile_linear"]

# Whitespace Python's `\s` matches and RE2's does not (NBSP, U+2000..U+200A, U+3000, \v, ...).
_OTHER_SPACE = dict.fromkeys(
    [0x0B, *range(0x1C, 0x20), 0x85, 0xA0, 0x1680, *range(0x2000, 0x200B), 0x2028, 0x2029, 0x202F]
    + [0x205F, 0x3000],
    " ",
)


@dataclass(frozen=True, slots=True)
class LinearPattern:
    """A compiled RE2 pattern with the part of `re.Pattern`'s interface bookchat uses."""

    pattern: str
    _compiled: Any

    def search(self, text: str) -> re2._Match | None:
        """The first match in `text`, or None."""
        match: re2._Match | None = self._compiled.search(text.translate(_OTHER_SPACE))
        return match

    def finditer(self, text: str) -> Iterator[re2._Match]:
        """Every non-overlapping match in `text`, left to right."""
        matches: Iterator[re2._Match] = self._compiled.finditer(text.translate(_OTHER_SPACE))
        return matches


def compile_linear(
    pattern: str, *, ignore_case: bool = False, dot_all: bool = False
) -> LinearPattern:
    """`pattern` (Python `re` syntax without lookaround or backreferences) compiled by RE2.

    Raises re2.error when the pattern needs backtracking features RE2 does not have."""
    flags = ("i" if ignore_case else "") + ("s" if dot_all else "")
    return LinearPattern(pattern, re2.compile(f"(?{flags}){pattern}" if flags else pattern))
