"""A site read for the index, as the page catalog (`shared/site_pages.py`) stores it.

Each page becomes one Markdown document: its title as `# h1`, its description as a quote, then
its sections in reading order under their own headings, with the readable text the index holds
(JSX stripped, code blocks fenced and whole). The catalog groups pages for `llms.txt` by the
folder their URL sits in below the site's base URL (`docs/guides/x` → "Guides"; a page at a
docs route's root → that route, e.g. "Docs"; blog posts → "Blog").
"""

from __future__ import annotations

from urllib.parse import urlsplit

from ingestion_jobs.documents import Page, SiteRead
from shared.site_pages import SitePage, SiteSummary, url_path_key

__all__ = ["page_markdown", "site_catalog"]


def page_markdown(page: Page) -> str:
    """The page as one Markdown document (see the module docstring)."""
    parts = [f"# {page.title}"]
    if page.description:
        parts.append("> " + " ".join(page.description.split()))
    for section in page.sections:
        if section.heading is not None:
            parts.append("#" * max(1, min(section.level, 6)) + " " + section.heading)
        if section.text.strip():
            parts.append(section.text.strip())
    return "\n\n".join(parts) + "\n"


def _humanize(segment: str) -> str:
    words = segment.replace("-", " ").replace("_", " ").strip()
    return words[:1].upper() + words[1:] if words else segment


def _section(page: Page, base_path: str) -> str:
    """The llms.txt group of a page (see the module docstring)."""
    path = url_path_key(page.url)
    base = base_path.rstrip("/")
    relative = path[len(base) :] if base and path.startswith(base) else path
    segments = [segment for segment in relative.strip("/").split("/") if segment]
    skip = {page.locale, page.version, None if page.last_version else "next"}
    folders = [segment for segment in segments[:-1] if segment not in skip]
    if len(folders) >= 2 and not folders[1].isdigit():  # not a blog post's date
        return _humanize(folders[1])
    return _humanize(folders[0] if folders else segments[0] if segments else "") or "Pages"


def site_catalog(read: SiteRead, site: str) -> tuple[SiteSummary, list[SitePage]]:
    """The catalog rows of a site read: its summary and its pages in reading order.

    A URL read twice (two files Docusaurus would serve at one route) keeps the first, as the
    build does not serve both either.
    """
    config = read.site
    base_path = urlsplit(config.base_url).path or "/"
    summary = SiteSummary(
        site=site,
        title=config.title,
        tagline=config.tagline,
        url=config.url + config.base_url,
    )
    pages: list[SitePage] = []
    seen: set[str] = set()
    for position, page in enumerate(read.pages):
        if page.url in seen:
            continue
        seen.add(page.url)
        pages.append(
            SitePage(
                site=site,
                url=page.url,
                url_path=url_path_key(page.url),
                path=page.path,
                title=page.title,
                description=page.description,
                markdown=page_markdown(page),
                section=_section(page, base_path),
                position=position,
                version=page.version,
                locale=page.locale,
                last_version=page.last_version,
                content_hash=page.content_hash,
            )
        )
    return summary, pages
