"""Conformance: what bookchat's reader emits against what a real Docusaurus build serves.

Each fixture site under ``tests/docusaurus/sites/`` is built with the pinned Docusaurus 3.x
(``tests/docusaurus_build.py``), its HTML parsed (every published page's canonical URL, every
element id, every heading's text, the text under each heading), and compared with the chunks
the reader and chunker make of the same source folder:

- each chunk's URL (without ``#anchor``) is the canonical URL of a page the build serves;
- its ``#anchor`` is an id on that page, of a heading whose text is the chunk's ``heading``;
  a chunk with no anchor carries the page's ``<h1>`` as heading;
- every published doc and blog post page (``docs-doc-page`` / ``blog-post-page``, not
  ``noindex``) is indexed, and nothing else is (drafts, ``unlisted``, ``_`` files, a blog that
  is switched off, versions not built);
- every word shown under a heading on the page is in the chunks of that heading, and no chunk
  holds a word the page does not show (code fence info strings aside);
- a chunk holding table rows starts its table with the header row, one row per line.

Mismatches fail the test as one table (fixture, rule, where, what).

Issue 13's four inputs are in ``classic-docs-only``: the stock template's config with its JSDoc
cast (``docusaurus.config.js``), ``{/* #id */}`` heading ids (``docs/intro.mdx``), a partial
imported by two pages (``docs/_partials/_proxy.mdx``, ``docs/install-*.mdx``) and a 60-row
table (``docs/02-reference/settings-table.md``); magic comments are in
``docs/mdx-features.mdx``. Cases and expected permalinks also follow Docusaurus's own plugin
tests (resolved and escaping relative slugs, blog file names), written anew.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import pytest
from lxml import etree
from lxml import html as lxml_html

from ingestion_jobs.chunking import chunk_page
from ingestion_jobs.documents import Chunk
from ingestion_jobs.docusaurus import read_site
from tests.docusaurus_build import build_seconds, build_site

pytestmark = [pytest.mark.integration, pytest.mark.timeout(900)]

SITES = Path(__file__).resolve().parents[1] / "docusaurus" / "sites"
FIXTURES = sorted(p.name for p in SITES.iterdir() if p.is_dir())
# Repositories whose site is in a subfolder (fixture, site folder): read as a git checkout is.
REPOS = Path(__file__).resolve().parents[1] / "docusaurus" / "repos"
REPO_FIXTURES = [("monorepo", "website")]
_WORD = re.compile(r"[^\W_]+")
# Rendered only for the eye or by the theme, never page text a reader asks about.
_SKIPPED_CLASSES = ("hash-link", "clean-btn", "buttonGroup")


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


def _norm(text: str) -> str:
    # Zero-width spaces and emoji presentation selectors (U+FE0F) are invisible.
    return " ".join(text.replace("\u200b", "").replace("\ufe0f", "").split())


@dataclass
class BuiltPage:
    url: str  # canonical URL
    file: str  # path of the HTML file in the build
    kind: str  # "doc", "blog" or "other"
    noindex: bool
    locale: str
    ids: set[str] = field(default_factory=set)
    headings: dict[str, str] = field(default_factory=dict)  # id -> heading text
    h1: str = ""
    sections: dict[str | None, str] = field(default_factory=dict)  # id (None: intro) -> text


def _skipped(element: lxml_html.HtmlElement) -> bool:
    if element.tag in {"script", "style", "svg", "button"}:
        return True
    classes = element.get("class", "")
    return any(name in classes for name in _SKIPPED_CLASSES)


_UTF8 = lxml_html.HTMLParser(encoding="utf-8")


def _parse_page(file: Path, build: Path, sitemap: dict[str, str]) -> BuiltPage | None:
    root = lxml_html.parse(str(file), parser=_UTF8).getroot()
    canonical = root.xpath("//link[@rel='canonical']/@href")
    if not canonical:
        return None
    classes = root.get("class", "")
    kind = (
        "doc" if "docs-doc-page" in classes else "blog" if "blog-post-page" in classes else "other"
    )
    robots = " ".join(root.xpath("//meta[@name='robots']/@content"))
    page = BuiltPage(
        url=_served(str(canonical[0]), sitemap),
        file=file.relative_to(build).as_posix(),
        kind=kind,
        noindex="noindex" in robots,
        locale=root.get("lang", ""),
        ids={str(i) for i in root.xpath("//@id")},
    )
    containers = root.xpath(
        "//article//div[contains(concat(' ', normalize-space(@class), ' '), ' markdown ')]"
    )
    titles = root.xpath("//article//h1")  # a blog post's title sits outside its body
    if titles:
        page.h1 = _norm("".join(titles[0].itertext()))
    if not containers:
        return page
    container = containers[0]
    sections: dict[str | None, list[str]] = defaultdict(list)
    current: list[str | None] = [None]
    skip_depth = 0
    for event, element in etree.iterwalk(container, events=("start", "end")):
        if not isinstance(element.tag, str):
            continue
        if event == "start":
            if skip_depth or _skipped(element):
                skip_depth += 1
                continue
            if re.fullmatch(r"h[1-6]", element.tag):
                text = _norm(
                    "".join(
                        t
                        for t in element.xpath(
                            ".//text()[not(ancestor::*[contains(@class,'hash-link')])]"
                        )
                    )
                )
                if element.tag != "h1" and element.get("id"):
                    page.headings[element.get("id")] = text
                    current[0] = element.get("id")
            if element.text:
                sections[current[0]].append(element.text)
        else:
            if skip_depth:
                skip_depth -= 1
            if element is not container and element.tail and not skip_depth:
                sections[current[0]].append(element.tail)
    page.sections = {key: _norm(" ".join(parts)) for key, parts in sections.items()}
    return page


def _sitemap(build: Path) -> dict[str, str]:
    """The build's sitemap.xml: each page URL as written there (percent-encoded, as a browser
    requests it), by its decoded form."""
    file = build / "sitemap.xml"
    if not file.is_file():
        return {}
    locs = etree.parse(str(file)).getroot().iterfind(".//{*}loc")
    return {unquote(str(loc.text)): str(loc.text) for loc in locs}


def _served(canonical: str, sitemap: dict[str, str]) -> str:
    """A page's URL as the site serves it: the HTML's canonical link holds it decoded
    (``/docs/über uns``), the sitemap encoded (``/docs/%C3%BCber%20uns``)."""
    return sitemap.get(unquote(canonical), canonical)


def _built_pages(build: Path) -> dict[str, BuiltPage]:
    pages: dict[str, BuiltPage] = {}
    sitemap = _sitemap(build)
    for file in sorted(build.rglob("*.html")):
        if file.name == "404.html":
            continue
        page = _parse_page(file, build, sitemap)
        if page is not None:
            pages.setdefault(page.url, page)
    return pages


_FENCE_LINE = re.compile(r"^\s*(?:`{3,}|~{3,}).*$", re.MULTILINE)
_CODE_TITLE = re.compile(r"title=([\"'])(.*?)\1")


def _shown(text: str) -> str:
    """Chunk text as a reader sees it: a code fence's info string shows only its title."""
    return _FENCE_LINE.sub(lambda m: " ".join(t[1] for t in _CODE_TITLE.findall(m.group(0))), text)


_TABLE_SEPARATOR = re.compile(r"^\|?\s*:?-{3,}")


def _table_problems(chunk: Chunk) -> list[str]:
    """Each run of table lines must start with a header row and its separator row."""
    problems: list[str] = []
    lines = chunk.text.split("\n")
    index = 0
    while index < len(lines):
        if not lines[index].lstrip().startswith("|"):
            # a table row flattened into a line of prose
            if lines[index].count("|") >= 6:
                problems.append(f"table rows run together on one line: {lines[index][:60]!r}")
            index += 1
            continue
        start = index
        while index < len(lines) and lines[index].lstrip().startswith("|"):
            index += 1
        run = lines[start:index]
        if len(run) < 2 or not _TABLE_SEPARATOR.match(run[1].strip()):
            problems.append(f"table without its header row: starts {run[0][:60]!r}")
    return problems


def _compare(
    fixture: str, site: Path, build: Path, repo_root: Path | None = None
) -> list[tuple[str, str, str, str]]:
    built = _built_pages(build)
    read = read_site(site, repo_root=repo_root)
    chunks = [chunk for page in read.pages for chunk in chunk_page(page)]
    problems: list[tuple[str, str, str, str]] = []

    def report(rule: str, where: str, what: str) -> None:
        problems.append((fixture, rule, where, what))

    by_section: dict[tuple[str, str | None], list[Chunk]] = defaultdict(list)
    for chunk in chunks:
        page_url, _, anchor = chunk.url.partition("#")
        by_section[(page_url, unquote(anchor) or None)].append(chunk)
        page = built.get(page_url)
        where = f"{chunk.path} -> {chunk.url}"
        if page is None:
            report("url is not a page of the build", where, "no built page has this URL")
            continue
        if page.kind == "other" or page.noindex:
            report("unpublished page indexed", where, f"{page.kind} page, noindex={page.noindex}")
        if anchor:
            anchor = unquote(anchor)  # the element id, as the browser looks it up
            if anchor not in page.ids:
                near = sorted(i for i, t in page.headings.items() if t == _norm(chunk.heading))
                report("anchor is not an id on the page", where, f"heading ids there: {near}")
            elif anchor in page.headings and page.headings[anchor] != _norm(chunk.heading):
                report(
                    "heading text differs",
                    where,
                    f"page shows {page.headings[anchor]!r}, chunk says {chunk.heading!r}",
                )
        elif page.h1 and _norm(chunk.heading) != page.h1:
            report("page title differs", where, f"page h1 {page.h1!r}, chunk {chunk.heading!r}")
        for problem in _table_problems(chunk):
            report("table rows", where, problem)

    indexed_pages = {url for url, _ in by_section}
    for url, page in sorted(built.items()):
        if page.kind == "other" or page.noindex or url in indexed_pages:
            continue
        if _is_locale_fallback(page, built):
            continue  # an untranslated page shown in another locale: indexed in its own
        report("published page not indexed", f"{page.file} ({url})", f"{page.kind} page")

    for url, page in sorted(built.items()):
        if url not in indexed_pages:
            continue
        page_words = _words(" ".join([*page.sections.values(), page.h1]))
        for anchor, text in page.sections.items():
            ours = by_section.get((url, anchor), [])
            if anchor is not None and anchor not in page.headings:
                continue
            heading = page.headings.get(anchor or "", page.h1)
            have = _words(" ".join(_shown(c.text) for c in ours))
            missing = _words(text) - have - _words(heading)
            if missing:
                where = f"{url}#{anchor}" if anchor else url
                report("page text not indexed", where, " ".join(sorted(missing)[:12]))
        for (chunk_url, anchor), ours in by_section.items():
            if chunk_url != url:
                continue
            extra = _words(" ".join(_shown(c.text) for c in ours)) - page_words
            if extra:
                where = f"{url}#{anchor}" if anchor else url
                report("indexed text not on the page", where, " ".join(sorted(extra)[:12]))
    return problems


def _is_locale_fallback(page: BuiltPage, built: dict[str, BuiltPage]) -> bool:
    """A page of a non-default locale that shows the default locale's page unchanged."""
    parts = urlsplit(page.url)
    for other in built.values():
        if other is page or other.locale == page.locale or other.kind != page.kind:
            continue
        if other.sections == page.sections and other.h1 == page.h1:
            other_path = urlsplit(other.url).path
            if parts.path.endswith(other_path.rstrip("/").rsplit("/", 1)[-1] or "/"):
                return True
    return False


def _table(problems: list[tuple[str, str, str, str]]) -> str:
    header = ("fixture", "rule", "where", "what")
    widths = [max(len(row[i]) for row in [header, *problems]) for i in range(3)]
    lines = [
        " | ".join(cell.ljust(widths[i]) if i < 3 else cell for i, cell in enumerate(row))
        for row in [header, *problems]
    ]
    return "\n".join([lines[0], "-" * len(lines[0]), *lines[1:]])


@pytest.mark.parametrize("fixture", FIXTURES)
def test_reader_matches_a_real_docusaurus_build(fixture: str) -> None:
    site = SITES / fixture
    build = build_site(site)
    print(f"{fixture}: built in {build_seconds(build)} s (cached build reused if None)")
    published = [p for p in _built_pages(build).values() if p.kind != "other"]
    # Guards against a parser that finds nothing (and so compares nothing): every built doc or
    # blog post page must have shown its Markdown container and an h1.
    assert published, "the build has no doc or blog post page: is the HTML parser stale?"
    assert all(p.sections and p.h1 for p in published), [p.url for p in published if not p.h1]
    problems = _compare(fixture, site, build)
    assert not problems, f"{len(problems)} mismatches with Docusaurus:\n{_table(problems)}"


@pytest.mark.parametrize(("fixture", "subdir"), REPO_FIXTURES)
def test_a_monorepo_site_matches_its_real_build(fixture: str, subdir: str) -> None:
    """The site in ``website/`` with ``docs: {path: '../docs'}``: every page of the docs
    beside it is indexed at the URL the build serves (issue 25: it was skipped silently)."""
    repo = REPOS / fixture
    build = build_site(repo, subdir=subdir)
    read = read_site(repo / subdir, repo_root=repo)
    assert not read.warnings, read.warnings
    assert {page.path for page in read.pages} >= {"../docs/intro.md", "../docs/guides/mooring.md"}
    problems = _compare(fixture, repo / subdir, build, repo_root=repo)
    assert not problems, f"{len(problems)} mismatches with Docusaurus:\n{_table(problems)}"
