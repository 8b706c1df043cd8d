"""The one reader of what a model writes: its reasoning kept out, its citations in one shape.

Every path an answer takes reads the model's output here: the streamed deltas (`AnswerStream`,
in front of the job's token relay, so SSE, long-polls and ChatKit see the same text), the final
answer (`read_answer`, before the citations are checked in worker/agent.py), and so the ChatKit
thread items built from both.

What models really write (the provider corpus in tests/provider_shapes.py has one case each):

- Reasoning: `<think>…</think>` (DeepSeek R1, Qwen3/QwQ through most hosts), `<thinking>` and
  `<reasoning>` blocks, and a closing `</think>` with no opening (hosts that strip the opening
  tag). Blocks are removed whatever pieces the stream splits their tags into; an unclosed
  block hides the rest of the output. Reasoning sent in a `reasoning` or `reasoning_content`
  field never reaches the text: the Agents SDK makes it a reasoning item.
- Citation markers, rewritten to the `[n]` the checker reads: `[1, 2]` and `[1,2,3]`, ranges
  `[1-3]` (at most `_MAX_RANGE` numbers), `[Source 1]`, full-width `【1】` and `【1†source】`,
  footnotes `[^1]` (their `[^1]: …` definition lines dropped), a Markdown link whose target is
  a retrieved passage's URL (`[the guide](https://…/guide#setup)` -> `the guide [4]`), and
  `(1)` when unambiguous: the answer uses no bracketed marker, no `(n)` of it opens a line or
  list item (an enumeration), and every bare `(n)` names a retrieved passage.

Code spans and fenced blocks are never rewritten. Every pattern here is linear in the text
(no nested or overlapping quantifiers): model output is as untrusted as reader text.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable, Mapping
from urllib.parse import urlsplit

from shared.passages import Passage

__all__ = [
    "AnswerStream",
    "last_whole_sentences",
    "normalize_markers",
    "outside_code",
    "read_answer",
    "without_reasoning",
]

_TAGS = ("think", "thinking", "reasoning")
_OPENING = re.compile(r"<(think|thinking|reasoning)>", re.I)
_CLOSING = re.compile(r"</(think|thinking|reasoning)>", re.I)
_LONGEST_TAG = max(len(f"</{tag}>") for tag in _TAGS)
_MAX_RANGE = 20  # `[1-3]` expands; `[1-900]` is no citation list

# Code is quoted exactly: fenced blocks (to their closing fence, or the end of an unfinished
# answer) and inline spans; markers and spacing are only touched outside it.
_CODE = re.compile(r"```.*?(?:```|$)|`[^`\n]*`", re.S)

_NUMBER = r"\d{1,3}(?:\s{0,2}[-–]\s{0,2}\d{1,3})?"  # 2, or a range 2-4
_NUMBERS = _NUMBER + r"(?:\s{0,2}[,;]\s{0,2}" + _NUMBER + r"){0,30}"
_BRACKET_LIST = re.compile(
    r"\[(?:(?:sources?|passages?|refs?|docs?)\s{0,2})?(" + _NUMBERS + r")\]", re.I
)
_FULL_WIDTH = re.compile(r"【(\d{1,3})(?:†[^】\n]{0,80})?】")
_FOOTNOTE = re.compile(r"\[\^(\d{1,3})\]")
_FOOTNOTE_DEFINITION = re.compile(r"^[ \t]{0,3}\[\^?\d{1,3}\]:[^\n]*(?:\n|$)", re.M)
_PAREN = re.compile(r"(?<=[^\s(\[])([ \t]?)\((" + _NUMBERS + r")\)(?=[\s.,;:!?)]|$)")
_ANY_PAREN_NUMBER = re.compile(r"\((\d{1,3})\)")
_ENUMERATION = re.compile(r"^[ \t]{0,8}(?:[-*+][ \t]{1,4})?\(\d{1,3}\)", re.M)  # "(1) first"
_BRACKET_MARKER = re.compile(r"\[\d{1,3}\]")
# `[label](target)`, label without brackets, or a marker `[[2]](…)`; target without spaces.
_LINK = re.compile(
    r"\[(\[\d{1,3}\]|[^\[\]\n]{1,300})\]\(<?([^()\s<>]{1,2048})>?(?:\s\"[^\"\n]*\")?\)"
)
_SENTENCE_END = re.compile(r"[.!?。！？](?:\[\d{1,3}\])*(?=\s|$)")


def without_reasoning(text: str) -> str:
    """`text` minus its reasoning blocks: `<think>…</think>` (and `thinking`, `reasoning`),
    an unclosed block to the end, and everything before a closing tag that has no opening."""
    out: list[str] = []
    position = 0
    found = False
    while True:
        opening = _OPENING.search(text, position)
        closing = _CLOSING.search(text, position)
        if closing is not None and (opening is None or closing.start() < opening.start()):
            out.clear()  # a closing tag with no opening: what came before was reasoning
            position, found = closing.end(), True
            continue
        if opening is None:
            out.append(text[position:])
            break
        found = True
        out.append(text[position : opening.start()])
        closing = _CLOSING.search(text, opening.end())
        if closing is None:
            break
        position = closing.end()
    visible = "".join(out)
    return visible.lstrip() if found else visible


def _expand(numbers: str) -> list[int] | None:
    """`"1, 2-4"` -> [1, 2, 3, 4]; None when a range is backwards or too wide."""
    found: list[int] = []
    for part in re.split(r"\s*[,;]\s*", numbers.strip()):
        low, dash, high = _range_parts(part)
        if dash:
            first, last = int(low), int(high)
            if last < first or last - first >= _MAX_RANGE:
                return None
            found.extend(range(first, last + 1))
        else:
            found.append(int(low))
    return found


def _range_parts(part: str) -> tuple[str, str, str]:
    match = re.fullmatch(r"(\d{1,3})(?:\s*([-–])\s*(\d{1,3}))?", part.strip())
    if match is None:
        return part.strip(), "", ""
    return match.group(1), match.group(2) or "", match.group(3) or ""


def _markers(numbers: list[int]) -> str:
    return "".join(f"[{n}]" for n in dict.fromkeys(numbers))


def outside_code(text: str, edit: Callable[[str], str]) -> str:
    """`edit` applied to the prose of `text`; code blocks and spans kept byte for byte."""
    out: list[str] = []
    last = 0
    for match in _CODE.finditer(text):
        out.append(edit(text[last : match.start()]))
        out.append(match.group(0))
        last = match.end()
    out.append(edit(text[last:]))
    return "".join(out)


def _bracketed(prose: str) -> str:
    """The bracketed shapes that mean a citation whatever was retrieved, as `[n]` markers."""

    def bracket_list(match: re.Match[str]) -> str:
        numbers = _expand(match.group(1))
        return match.group(0) if numbers is None else _markers(numbers)

    prose = _FULL_WIDTH.sub(r"[\1]", prose)
    prose = _FOOTNOTE_DEFINITION.sub("", prose)
    prose = _FOOTNOTE.sub(r"[\1]", prose)
    return _BRACKET_LIST.sub(bracket_list, prose)


def _same_page(target: str, passage_url: str) -> tuple[bool, bool]:
    """(same page, same section) of a link target and a passage URL; a root-relative target
    matches the passage's path."""
    want, have = urlsplit(target), urlsplit(passage_url)
    if want.scheme and (want.scheme, want.netloc) != (have.scheme, have.netloc):
        return False, False
    if not want.path and not want.netloc:
        return False, False
    page = want.path.rstrip("/") == have.path.rstrip("/")
    return page, page and want.fragment == have.fragment


def _linked(prose: str, passages: Mapping[int, Passage]) -> str:
    """Markdown links to a retrieved passage's page as `label [n]` (the section's number, or
    the first passage of that page)."""

    def link(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        section: int | None = None
        page: int | None = None
        for known, passage in sorted(passages.items()):
            same_page, same_section = _same_page(target, passage.url)
            if same_section:
                section = known
                break
            if same_page and page is None:
                page = known
        cited = section or page
        if cited is None:
            return match.group(0)
        if _BRACKET_MARKER.fullmatch(label) or label.strip().isdigit():
            return f"[{cited}]"
        return f"{label} [{cited}]"

    return _LINK.sub(link, prose)


def _parenthesised(prose: str, passages: Mapping[int, Passage]) -> str:
    """`(n)` as `[n]`, only where that cannot be anything else (see the module's docstring)."""
    if _BRACKET_MARKER.search(prose) or _ENUMERATION.search(prose):
        return prose
    bare = [int(n) for n in _ANY_PAREN_NUMBER.findall(prose)]
    if not bare or any(n not in passages for n in bare):
        return prose

    def paren(match: re.Match[str]) -> str:
        numbers = _expand(match.group(2))
        if numbers is None or any(n not in passages for n in numbers):
            return match.group(0)
        return f"{match.group(1)}{_markers(numbers)}"

    return _PAREN.sub(paren, prose)


def normalize_markers(text: str, passages: Mapping[int, Passage] | None = None) -> str:
    """Every citation shape of the module's docstring as `[n]` markers, outside code. Without
    `passages` (a stream, before the run's searches are final) only the bracketed shapes are
    rewritten; links and `(n)` need to know what was retrieved."""

    def edit(prose: str) -> str:
        if passages:
            prose = _linked(prose, passages)
        prose = _bracketed(prose)
        if passages:
            prose = _parenthesised(prose, passages)
        return prose

    return outside_code(text, edit)


def read_answer(output: str, passages: Mapping[int, Passage]) -> str:
    """A final answer as the checker reads it: reasoning removed, markers normalized, no
    surrounding blank space."""
    return normalize_markers(without_reasoning(output), passages).strip()


def last_whole_sentences(text: str) -> str:
    """`text` cut after its last whole sentence (a `.`, `!`, `?` or `。` followed by a space or
    the end, with the markers right after it), outside an unclosed code block; "" when no
    sentence is whole. For an answer the token limit cut off mid-sentence."""
    fence = text.count("```")
    if fence % 2:  # an unclosed code block: what it holds is incomplete
        text = text[: text.rfind("```")]
    end = 0
    for match in _SENTENCE_END.finditer(text):
        end = match.end()
    return text[:end].rstrip()


def _partial_suffix(text: str, patterns: tuple[str, ...]) -> int:
    """How many trailing characters of `text` could begin one of `patterns` (case-insensitive):
    held back until the next delta shows what they are."""
    lowered = text[-_LONGEST_TAG:].lower()
    for size in range(min(len(lowered), _LONGEST_TAG), 0, -1):
        tail = lowered[-size:]
        if any(p.startswith(tail) and p != tail for p in patterns):
            return size
    return 0


_TAG_TEXTS = tuple(f"<{tag}>" for tag in _TAGS) + tuple(f"</{tag}>" for tag in _TAGS)
_OPEN_MARKER = re.compile(r"[\[【][^\]】\n]{0,40}$")


class AnswerStream:
    """The model's text deltas as a reader should see them: reasoning removed (whatever pieces
    its tags come in), bracketed citation shapes rewritten to `[n]`, passed on to `send`.

    Text that could still turn out to be a tag or a marker (`<thi`, `[1, `) is held back until
    the next delta decides it; `flush()` hands on what is left. A closing tag with no opening
    means that what was streamed so far was reasoning: `retract` is awaited (readers drop what
    they were shown, as on a restarted attempt) and the stream goes on after the tag."""

    def __init__(
        self,
        send: Callable[[str], Awaitable[None]],
        retract: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self._send, self._retract = send, retract
        self._held = ""  # text not yet judged
        self._in_reasoning = False
        self._shown = False  # anything visible sent yet (leading blanks after reasoning dropped)
        self._sent = ""  # visible text sent, for telling code from prose

    async def add(self, delta: str) -> None:
        text = self._held + delta
        visible: list[str] = []
        while text:
            if self._in_reasoning:
                closing = _CLOSING.search(text)
                if closing is None:
                    keep = _partial_suffix(text, _TAG_TEXTS)
                    text = text[len(text) - keep :] if keep else ""
                    break
                text = text[closing.end() :]
                self._in_reasoning = False
                continue
            opening, closing = _OPENING.search(text), _CLOSING.search(text)
            if closing is not None and (opening is None or closing.start() < opening.start()):
                visible.clear()
                if (self._shown or self._sent) and self._retract is not None:
                    await self._retract()
                self._shown, self._sent = False, ""
                text = text[closing.end() :]
                continue
            if opening is not None:
                visible.append(text[: opening.start()])
                text = text[opening.end() :]
                self._in_reasoning = True
                continue
            keep = _partial_suffix(text, _TAG_TEXTS)
            if not keep and not self._in_code(text) and (marker := _OPEN_MARKER.search(text)):
                keep = len(text) - marker.start()
            visible.append(text[: len(text) - keep])
            text = text[len(text) - keep :]
            break
        self._held = text
        await self._emit("".join(visible))

    def _in_code(self, text: str) -> bool:
        sent = self._sent + text
        return sent.count("```") % 2 == 1 or sent.rsplit("\n", 1)[-1].count("`") % 2 == 1

    async def _emit(self, text: str) -> None:
        if not self._shown:
            text = text.lstrip()
        if not text:
            return
        out = text if self._in_code("") else normalize_markers(text)
        self._shown = True
        self._sent += text
        await self._send(out)

    async def flush(self) -> None:
        """Hand on what is held back (an unfinished marker, a lone `<`), unless reasoning."""
        held, self._held = self._held, ""
        if not self._in_reasoning:
            await self._emit(held)
