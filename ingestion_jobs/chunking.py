"""Cut a parsed page into retrievable chunks along its headings.

Decisions, and why:

- One heading section is the unit. A chunk never spans two sections, so every chunk has one
  exact ``url#anchor`` to cite, and a question about "Duplicate Routes" finds the chunk whose
  heading is "Duplicate Routes". Tiny sections are kept as their own chunk rather than merged:
  merging would make one of the two headings uncitable, and the breadcrumb that is embedded
  with every chunk ("Page > Section > Subsection") gives even a two-line section its context.
  A heading with no text of its own (directly followed by a sub-heading) gets one chunk made
  of its first sub-section, so it stays citable (see ``_units``); a page with no text at all
  still yields one chunk (title and description) so it can be found.
- Size is bounded in the embedder's own tokens when it has a tokenizer and an input limit
  (``Embedder.max_tokens`` / ``count_tokens``: MiniLM reads 256 WordPiece tokens, e5 512
  SentencePiece ones), so no chunk is cut short when it is embedded; the indexer passes both.
  Otherwise by an estimate: the count of ``\\w+`` runs plus single punctuation marks, each CJK
  character counted as one token (WordPiece splits Han into single characters, SentencePiece
  rarely does better). It costs one regex pass, needs no tokenizer, and tracks WordPiece/BPE
  counts of English prose within ~20% (they split rare words further, so it under-counts).
  The breadcrumb counts against the bound, since it is embedded with the text.
- A long section is split at blank-line blocks, prose then at sentence ends (``。！？``
  included); a fenced code block is one block and is only split (at line boundaries) when it
  alone exceeds the bound. A Markdown table is split
  between rows, one row per line, and every piece starts with the table's header row and its
  separator, so a chunk holding row 40 still says which column is which. Consecutive chunks
  of one section overlap by up to ``overlap_tokens`` of trailing prose sentences, so a fact
  cut at a boundary is whole in at least one chunk. Code and tables are never used as overlap.
- Ids are uuid5 over (site, path, anchor, ordinal within that anchor): stable across runs and
  unaffected by edits to other sections, which keeps re-indexing incremental.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from collections.abc import Callable

from ingestion_jobs.documents import Chunk, Page, Section
from ingestion_jobs.languages import CJK_CHARACTERS
from shared.url_encoding import encode_fragment

__all__ = ["CHUNK_NAMESPACE", "chunk_page", "embedding_text", "estimate_tokens"]

CHUNK_NAMESPACE = uuid.UUID("5b0c7f8e-3a51-4d0e-9a4c-2f1e6d7b9c10")
_TOKEN = re.compile(rf"[{CJK_CHARACTERS}]|(?:(?![{CJK_CHARACTERS}])\w)+|[^\w\s]")
_BLOCK_SPLIT = re.compile(r"\n[ \t]*\n")
_FENCE = re.compile(r"^(`{3,}|~{3,})")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[。！？])|\n")
#: A token counter: the embedder's tokenizer, or ``estimate_tokens``.
TokenCount = Callable[[str], int]
_MIN_BODY_TOKENS = 64  # never squeeze the text budget below this, however deep the breadcrumb
_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-+:?\s*(\|\s*:?-+:?\s*)*\|?$")


def _is_table(block: str) -> bool:
    """A GFM table: a header row, a separator row, then rows, each on its own line."""
    lines = block.split("\n")
    return (
        len(lines) >= 2
        and "|" in lines[0]
        and _TABLE_SEPARATOR.match(lines[1].strip()) is not None
        and "-" in lines[1]
    )


def _split_table(block: str, budget: int, count: TokenCount) -> list[str]:
    """Pieces of a table, each its header + separator + as many whole rows as fit."""
    lines = block.split("\n")
    header, rows = lines[:2], lines[2:]
    pieces = _pack_lines(
        rows, budget, count("\n".join(header)), lambda part: [*header, *part], count
    )
    return pieces or ["\n".join(header)]


def _pack_lines(
    lines: list[str],
    budget: int,
    overhead: int,
    wrap: Callable[[list[str]], list[str]],
    count: TokenCount,
) -> list[str]:
    """`lines` in order, as pieces of whole lines within `budget` tokens (a longer line is a
    piece of its own); each piece is `wrap(lines)` joined, where `wrap` adds what every piece
    repeats (a table's header, a code block's fences), `overhead` tokens of it."""
    pieces: list[str] = []
    current: list[str] = []
    size = overhead
    for line in lines:
        tokens = count(line)
        if current and size + tokens > budget:
            pieces.append("\n".join(wrap(current)))
            current, size = [], overhead
        current.append(line)
        size += tokens
    if current:
        pieces.append("\n".join(wrap(current)))
    return pieces


def _separate_tables(part: str) -> list[str]:
    """A blank-line block as blocks: a table that follows prose lines is a block of its own."""
    lines = part.split("\n")
    for index in range(len(lines) - 1):
        if _is_table("\n".join(lines[index : index + 2])) and index > 0:
            return ["\n".join(lines[:index]).strip(), "\n".join(lines[index:]).strip()]
    return [part]


def estimate_tokens(text: str) -> int:
    """Word runs plus punctuation marks: a fast, tokenizer-free size estimate."""
    return len(_TOKEN.findall(text))


def _embedded(breadcrumb: tuple[str, ...], text: str) -> str:
    return " > ".join(breadcrumb) + "\n\n" + text


def embedding_text(chunk: Chunk) -> str:
    """What is embedded: the breadcrumb line, then the text, so vectors know the context."""
    return _embedded(chunk.breadcrumb, chunk.text)


def _blocks(text: str) -> list[tuple[str, bool]]:
    """Split text into (block, is_code) at blank lines, keeping fenced code blocks whole."""
    blocks: list[tuple[str, bool]] = []
    lines = text.split("\n")
    prose: list[str] = []

    def flush_prose() -> None:
        joined = "\n".join(prose).strip()
        if joined:
            blocks.extend(
                (block, False)
                for part in _BLOCK_SPLIT.split(joined)
                for block in _separate_tables(part.strip())
                if block
            )
        prose.clear()

    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if fence is None:
            prose.append(lines[index])
            index += 1
            continue
        flush_prose()
        marker = fence.group(1)
        code = [lines[index]]
        index += 1
        while index < len(lines):
            line = lines[index]
            code.append(line)
            index += 1
            closing = line.strip()
            if len(closing) >= len(marker) and set(closing) == {marker[0]}:
                break
        blocks.append(("\n".join(code), True))
    flush_prose()
    return blocks


def _windows(text: str, budget: int, count: TokenCount) -> list[str]:
    """A sentence longer than the budget as windows of words, each within the budget; a word
    longer than the budget (CJK text has no spaces) as windows of characters."""
    windows: list[str] = []
    current = ""
    for word in text.split():
        if count(word) > budget:
            if current:
                windows.append(current)
            windows.extend(_windows_of(list(word), "", budget, count))
            current = ""
        elif current and count(f"{current} {word}") > budget:
            windows.append(current)
            current = word
        else:
            current = f"{current} {word}" if current else word
    if current:
        windows.append(current)
    return windows


def _windows_of(parts: list[str], joiner: str, budget: int, count: TokenCount) -> list[str]:
    windows: list[str] = []
    current: list[str] = []
    for part in parts:
        if current and count(joiner.join([*current, part])) > budget:
            windows.append(joiner.join(current))
            current = []
        current.append(part)
    if current:
        windows.append(joiner.join(current))
    return windows


def _split_oversized(block: str, is_code: bool, budget: int, count: TokenCount) -> list[str]:
    """Cut one block that exceeds the budget: code at lines, tables at rows (each piece with
    the header), prose at sentences, then words."""
    if not is_code and _is_table(block):
        return _split_table(block, budget, count)
    if is_code:
        lines = block.split("\n")
        opener, closer, body = lines[0], lines[-1], lines[1:-1]
        overhead = count(opener) + count(closer)  # each piece re-fences
        return _pack_lines(body, budget, overhead, lambda part: [opener, *part, closer], count)
    units = [u for u in _SENTENCE_END.split(block) if u.strip()]
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    for unit in units:
        tokens = count(unit)
        if tokens > budget:  # a monster sentence: fall back to word windows
            if current:
                pieces.append(_joined(current))
                current, size = [], 0
            pieces.extend(_windows(unit, budget, count))
            continue
        if current and size + tokens > budget:
            pieces.append(_joined(current))
            current, size = [], 0
        current.append(unit.strip())
        size += tokens
    if current:
        pieces.append(_joined(current))
    return pieces


def _joined(sentences: list[str]) -> str:
    """Sentences joined as they were written: CJK sentences without a space between them."""
    text = sentences[0]
    for sentence in sentences[1:]:
        text += sentence if text.endswith(("。", "！", "？")) else " " + sentence
    return text


def _overlap_tail(block: str, is_code: bool, overlap_tokens: int, count: TokenCount) -> str:
    """The last whole sentences of a prose block that fit in the overlap budget."""
    if is_code or overlap_tokens <= 0 or _is_table(block):
        return ""
    sentences = [s.strip() for s in _SENTENCE_END.split(block) if s.strip()]
    tail: list[str] = []
    size = 0
    for sentence in reversed(sentences):
        tokens = count(sentence)
        if size + tokens > overlap_tokens:
            break
        tail.insert(0, sentence)
        size += tokens
    return _joined(tail) if tail else ""


def _section_texts(text: str, budget: int, overlap_tokens: int, count: TokenCount) -> list[str]:
    """Pack a section's blocks into texts of at most ``budget`` tokens, with overlap."""
    pieces: list[tuple[str, bool]] = []
    for block, is_code in _blocks(text):
        if count(block) > budget:
            # Prose pieces leave room for the overlap carried into the next chunk.
            room = budget if is_code else max(budget // 2, budget - overlap_tokens)
            pieces.extend((part, is_code) for part in _split_oversized(block, is_code, room, count))
        else:
            pieces.append((block, is_code))

    texts: list[str] = []
    current: list[str] = []
    size = 0
    last: tuple[str, bool] | None = None
    for piece, is_code in pieces:
        tokens = count(piece)
        if current and size + tokens > budget:
            texts.append("\n\n".join(current))
            current, size = [], 0
            if last is not None:
                room = min(overlap_tokens, budget - tokens)
                tail = _overlap_tail(last[0], last[1], room, count)
                if tail:
                    current, size = [tail], count(tail)
        current.append(piece)
        size += tokens
        last = (piece, is_code)
    if current:
        texts.append("\n\n".join(current))
    return texts


def _make_chunk(page: Page, section: Section, text: str, ordinal: int, site: str) -> Chunk:
    anchor = section.anchor or ""
    chunk_id = uuid.uuid5(CHUNK_NAMESPACE, "\x1f".join((site, page.path, anchor, str(ordinal))))
    embedded = _embedded(section.breadcrumb, text)
    return Chunk(
        id=str(chunk_id),
        path=page.path,
        url=f"{page.url}#{encode_fragment(section.anchor)}" if section.anchor else page.url,
        heading=section.heading or page.title,
        title=page.title,
        breadcrumb=section.breadcrumb,
        text=text,
        content_hash=hashlib.sha256(embedded.encode("utf-8")).hexdigest(),
        page_hash=page.content_hash,
        version=page.version,
        locale=page.locale,
        language=page.language,
    )


def _units(sections: tuple[Section, ...]) -> list[tuple[Section, bool]]:
    """(section, first chunk only) pairs worth chunking, in reading order.

    A heading with no text of its own ("## Exercise 3" directly followed by "### Task") would
    otherwise be uncitable, and questions name the exercise, not "Task". So it gets one chunk
    of its own made of its first sub-section (sub-heading kept as a Markdown line), and the
    sub-section still gets its chunks under its own heading. The duplicated text is bounded to
    one chunk per such heading.
    """
    units: list[tuple[Section, bool]] = []
    carry: Section | None = None
    carried: list[str] = []
    for index, section in enumerate(sections):
        following = sections[index + 1] if index + 1 < len(sections) else None
        has_text = bool(section.text.strip())
        if carry is not None and section.level > carry.level and section.heading:
            heading_line = "#" * section.level + " " + section.heading
            if not has_text:
                carried.append(heading_line)
                continue
            text = "\n\n".join([*carried, heading_line, section.text])
            merged = Section(carry.heading, carry.anchor, carry.level, carry.breadcrumb, text)
            units.append((merged, True))
        carry, carried = None, []
        if has_text:
            units.append((section, False))
        elif section.heading and following is not None and following.level > section.level:
            carry = section
    return units


def chunk_page(
    page: Page,
    *,
    site: str = "default",
    max_tokens: int = 350,
    overlap_tokens: int = 50,
    count_tokens: TokenCount = estimate_tokens,
) -> list[Chunk]:
    """Chunks of one page, in reading order; every page yields at least one chunk.

    ``max_tokens`` bounds what is embedded of each chunk (breadcrumb line and text) as
    ``count_tokens`` counts it (the embedder's tokenizer, or the estimate), except a chunk whose
    breadcrumb alone leaves less than ``_MIN_BODY_TOKENS`` for its text."""
    chunks: list[Chunk] = []
    ordinals: dict[str, int] = {}
    for unit, first_only in _units(page.sections):
        crumb = count_tokens(" > ".join(unit.breadcrumb))
        budget = max(_MIN_BODY_TOKENS, max_tokens - crumb)
        texts = _section_texts(unit.text, budget, overlap_tokens, count_tokens)
        for text in texts[:1] if first_only else texts:
            key = unit.anchor or ""
            ordinal = ordinals.get(key, 0)
            ordinals[key] = ordinal + 1
            chunks.append(_make_chunk(page, unit, text, ordinal, site))
    if not chunks:
        intro = Section(None, None, 1, (page.title,), page.description or page.title)
        chunks.append(_make_chunk(page, intro, intro.text, 0, site))
    return chunks
