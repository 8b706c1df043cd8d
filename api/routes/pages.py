"""The site's pages for coding assistants: `/llms.txt`, `/llms-full.txt`, `/llms/<page>.md`
and `GET /v1/page`, read from the page catalog the last ingestion wrote (shared/site_pages.py).

`llms.txt` follows the llmstxt.org proposal: the site's title as `# h1`, its tagline as a
quote, then one `## section` per docs folder listing each page as `- [title](url): description`,
linking to the page's Markdown at `/llms/<url path>.md` (the llmstxt.org convention: the page's
URL with `.md` appended). `llms-full.txt` is every page's Markdown, each headed by its URL.

Every listing is of one docs version and one locale: by default what a reader sees at the docs
root (Docusaurus's `lastVersion`) in the default locale; `?version=<name>` (or `current` for the
unreleased docs) and `?locale=<code>` pick another. While the site's first ingestion runs these
answer 503 `index_building`, before any 404 `index_empty`; an unknown page 404 `page_not_found`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel, Field

from api.deps import AppState, StateDep
from api.errors import ApiError
from api.limits import check_rate_limits
from api.schemas import ErrorBody
from shared.errors import ErrorCode
from shared.index_state import building_job
from shared.site_pages import PageCatalog, SitePage, SiteSummary

__all__ = ["PageMarkdown", "markdown_url", "read_page", "router"]

router = APIRouter(tags=["pages"])

MARKDOWN = "text/markdown; charset=utf-8"
# Pages change with the next ingestion: caches may keep them briefly.
CACHE = "public, max-age=300"

VersionQuery = Annotated[
    str | None,
    Query(
        max_length=100,
        description="Docs version name, or `current` for the unreleased docs; default: the "
        "version served at the docs root",
    ),
]
LocaleQuery = Annotated[
    str | None, Query(max_length=35, description="Locale (`fr`); default: the default locale")
]


class PageMarkdown(BaseModel):
    """One page of the site as Markdown."""

    url: str = Field(description="The page's URL as the site serves it (no anchor)")
    markdown_url: str = Field(description="This page's Markdown at the API (`/llms/….md`)")
    path: str = Field(description="Source file, relative to the site root")
    title: str
    description: str
    version: str | None = Field(description="Docs version; null for unversioned/current docs")
    locale: str | None = Field(description="Locale; null for the default locale")
    markdown: str


def _base(state: AppState, request: Request) -> str:
    return (state.settings.public_base_url or str(request.base_url)).rstrip("/")


def markdown_url(base: str, page: SitePage) -> str:
    """Where the API serves `page` as Markdown: `/llms` + its URL path + `.md`
    (`/docs/` → `/llms/docs/index.md`, `/` → `/llms/index.md`)."""
    return f"{base}/llms{page.url_path.rstrip('/') or '/index'}.md"


def _public(base: str, page: SitePage) -> PageMarkdown:
    return PageMarkdown(
        url=page.url,
        markdown_url=markdown_url(base, page),
        path=page.path,
        title=page.title,
        description=page.description,
        version=page.version,
        locale=page.locale,
        markdown=page.markdown,
    )


async def _summary(state: AppState) -> SiteSummary:
    summary = await PageCatalog(state.sessionmaker).summary(state.settings.site_name)
    if summary is not None:
        return summary
    if await building_job(state.redis, state.jobs, state.settings.site_name) is not None:
        raise ApiError(
            503,
            ErrorCode.INDEX_BUILDING,
            "The site is being indexed for the first time; retry shortly.",
            headers={"Retry-After": "10"},
        )
    # Also an index built before the catalog existed: its next ingestion writes the catalog.
    raise ApiError(
        404,
        ErrorCode.INDEX_EMPTY,
        "No ingestion has listed the site's pages yet (`bookchat ingest`, POST /v1/ingestions, "
        "or the nightly re-index writes them).",
    )


async def read_page(
    state: AppState, base: str, reference: str, *, source_path: bool = True
) -> PageMarkdown:
    """The page a URL or source path names (`PageCatalog.find`), as Markdown.

    Raises ApiError 503 `index_building` / 404 `index_empty` before the first ingestion,
    404 `page_not_found` when no page matches."""
    await _summary(state)
    catalog = PageCatalog(state.sessionmaker)
    page = await catalog.find(state.settings.site_name, reference, source_path=source_path)
    if page is None:
        raise ApiError(404, ErrorCode.PAGE_NOT_FOUND, f"No page of the site at {reference!r}.")
    return _public(base, page)


async def _listing(
    state: AppState, version: str | None, locale: str | None, *, with_markdown: bool
) -> tuple[SiteSummary, list[SitePage]]:
    summary = await _summary(state)
    catalog = PageCatalog(state.sessionmaker)
    pages = await catalog.pages(
        state.settings.site_name, version=version, locale=locale, with_markdown=with_markdown
    )
    if not pages and (version is not None or locale is not None):
        known = ", ".join(await catalog.versions(state.settings.site_name)) or "none"
        raise ApiError(
            404,
            ErrorCode.PAGE_NOT_FOUND,
            f"No pages for version={version!r} locale={locale!r} (released versions: {known}).",
        )
    return summary, pages


def _sections(pages: Iterable[SitePage]) -> dict[str, list[SitePage]]:
    """Pages by llms.txt section: shallowest URLs first (a docs root's pages before its
    folders'), then the site's reading order; the same order within a section."""

    def order(page: SitePage) -> tuple[int, int]:
        return page.url_path.count("/"), page.position

    grouped: dict[str, list[SitePage]] = {}
    for page in sorted(pages, key=order):
        grouped.setdefault(page.section or "Pages", []).append(page)
    return grouped


def _one_line(text: str) -> str:
    return " ".join(text.split())


@router.get(
    "/llms.txt",
    response_class=PlainTextResponse,
    responses={404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def llms_txt(
    request: Request, state: StateDep, version: VersionQuery = None, locale: LocaleQuery = None
) -> PlainTextResponse:
    """The site's pages as an llms.txt index (llmstxt.org), grouped by docs folder."""
    summary, pages = await _listing(state, version, locale, with_markdown=False)
    base = _base(state, request)
    lines = [f"# {_one_line(summary.title) or state.settings.site_name}", ""]
    if summary.tagline:
        lines += [f"> {_one_line(summary.tagline)}", ""]
    lines += [
        f"Site: {summary.url}. Each page below links to its Markdown; all pages in one file: "
        f"{base}/llms-full.txt",
        "",
    ]
    for section, members in _sections(pages).items():
        lines += [f"## {section}", ""]
        for page in members:
            described = f": {_one_line(page.description)}" if page.description else ""
            lines.append(f"- [{_one_line(page.title)}]({markdown_url(base, page)}){described}")
        lines.append("")
    return PlainTextResponse("\n".join(lines), headers={"Cache-Control": CACHE})


@router.get(
    "/llms-full.txt",
    response_class=PlainTextResponse,
    responses={404: {"model": ErrorBody}, 429: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def llms_full_txt(
    request: Request, state: StateDep, version: VersionQuery = None, locale: LocaleQuery = None
) -> PlainTextResponse:
    """Every page's Markdown in reading order, each headed by its URL (rate limited per IP:
    it is the largest response the API serves)."""
    client_ip = request.client.host if request.client else "unknown"
    await check_rate_limits(state, client_ip=client_ip, session_id=None)
    summary, pages = await _listing(state, version, locale, with_markdown=True)
    title = _one_line(summary.title) or state.settings.site_name
    parts = [f"# {title}\n\n" + (f"> {_one_line(summary.tagline)}\n" if summary.tagline else "")]
    parts += [f"---\nurl: {page.url}\n---\n\n{page.markdown}" for page in pages]
    return PlainTextResponse("\n".join(parts), headers={"Cache-Control": CACHE})


@router.get(
    "/llms/{reference:path}",
    response_class=PlainTextResponse,
    responses={404: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def page_markdown(reference: str, request: Request, state: StateDep) -> PlainTextResponse:
    """One page as Markdown: `/llms` + the page's URL path + `.md` (as llms.txt links it)."""
    if not reference.endswith(".md") or len(reference) > 2048:
        raise ApiError(404, ErrorCode.PAGE_NOT_FOUND, "Page Markdown URLs end in `.md`.")
    page = await read_page(state, _base(state, request), "/" + reference, source_path=False)
    return PlainTextResponse(page.markdown, media_type=MARKDOWN, headers={"Cache-Control": CACHE})


@router.get(
    "/v1/page",
    response_model=PageMarkdown,
    responses={404: {"model": ErrorBody}, 422: {"model": ErrorBody}, 503: {"model": ErrorBody}},
)
async def get_page(
    request: Request,
    state: StateDep,
    ref: Annotated[
        str,
        Query(
            min_length=1,
            max_length=2048,
            description="The page's URL (host, #anchor and trailing slash optional) or its "
            "source path (`docs/intro.md`)",
        ),
    ],
) -> PageMarkdown:
    """One page of the site as Markdown, found by URL or source path."""
    return await read_page(state, _base(state, request), ref)
