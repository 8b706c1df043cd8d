"""The demo page at `/` (api/static/demo.html) is the sample site's Safety page: its text is the
text the index holds, so its suggested questions and "Ask about this" on any of its paragraphs
are answered from that page (issue 27: the demo contradicted its own answers)."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from tests.conftest import ROOT, SAMPLE_SITE
from tests.unit.test_answers_sample_site import ask, bundled
from worker.retrieval import Retriever

__all__ = ["bundled"]  # the sample site's index, shared with test_answers_sample_site

pytestmark = pytest.mark.unit

DEMO = ROOT / "api" / "static" / "demo.html"
BLOCKS = {"h1", "h2", "p", "pre"}


class _Article(HTMLParser):
    """The text of each block inside <article>, and its data-source page."""

    def __init__(self) -> None:
        super().__init__()
        self.source = ""
        self.blocks: list[str] = []
        self._depth = 0
        self._open: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "article":
            self._depth += 1
            self.source = dict(attrs).get("data-source") or ""
        elif self._depth and tag in BLOCKS:
            self._open = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "article":
            self._depth -= 1
        elif self._open is not None and tag in BLOCKS:
            self.blocks.append(" ".join("".join(self._open).split()))
            self._open = None

    def handle_data(self, data: str) -> None:
        if self._open is not None:
            self._open.append(data)


def _article() -> _Article:
    parser = _Article()
    parser.feed(DEMO.read_text())
    return parser


def _plain(markdown: str) -> str:
    """Markdown as a reader sees it: no front matter, fences, admonition markers or backticks."""
    body = re.sub(r"\A---\n.*?\n---\n", "", markdown, flags=re.S)
    title = re.search(r"^title: (.+)$", markdown, flags=re.M)
    body = re.sub(r"^(#+ |:::\w*)", "", body, flags=re.M).replace("`", "")
    return " ".join(((title.group(1) if title else "") + "\n" + body).split())


def test_every_block_of_the_demo_article_is_the_sample_pages_text() -> None:
    article = _article()
    page = SAMPLE_SITE / article.source
    assert page.is_file(), article.source
    text = _plain(page.read_text())
    assert len(article.blocks) >= 5
    for block in article.blocks:
        assert block in text, f"not on {article.source}: {block!r}"


def _suggested() -> list[str]:
    match = re.search(r'data-suggested-questions="([^"]+)"', DEMO.read_text())
    assert match is not None
    return match.group(1).split("|")


@pytest.mark.parametrize("question", _suggested())
async def test_each_suggested_question_is_answered_from_the_docs(
    bundled: Retriever, question: str
) -> None:
    answer = await ask(bundled, question)
    assert not answer.refused, answer.answer
    assert answer.citations


@pytest.mark.parametrize("block", [b for b in _article().blocks if len(b) > 40])
async def test_ask_about_this_on_a_demo_paragraph_cites_its_page(
    bundled: Retriever, block: str
) -> None:
    answer = await ask(bundled, "Can you explain this passage?", selection=block)
    assert not answer.refused, answer.answer
    assert any(str(c["path"]).endswith("02-safety.md") for c in answer.citations), answer.citations
