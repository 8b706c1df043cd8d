"""The site's pages as Markdown: what `/llms.txt`, the `.md` pages and MCP's `get_page` serve.

The vector store holds chunks (overlapping, split for embedding), not pages; readers of whole
pages (coding assistants, `llms-full.txt`) need each page once, in reading order, with its
headings. So every successful ingestion also writes the catalog of the pages it read into the
history database (`site_page` rows), replacing the site's previous catalog in one transaction:
the API reads it directly, without a job, and a page removed from the site disappears from it
with the same ingestion that removes its chunks.

A page is looked up by what an agent has in hand (`find`): its URL as the site serves it (with
or without the host, an `#anchor`, a `?query`, a trailing slash or a `.md` suffix), or its
source path (`docs/intro.md`).
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import unquote, urlsplit

from sqlalchemy import Column, DateTime, Index, Text, func
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import Field, SQLModel, col, delete, or_, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.models import utcnow

__all__ = ["CURRENT_VERSION", "PageCatalog", "SitePage", "SiteSummary", "url_path_key"]

#: What `version=` names for the docs' unreleased version (Docusaurus's `current`, served
#: under `/next/` once the site has released versions).
CURRENT_VERSION = "current"


class SiteSummary(SQLModel, table=True):
    """What `llms.txt` says of the site as a whole, from its last ingestion."""

    __tablename__ = "site_summary"

    site: str = Field(primary_key=True, max_length=200)
    title: str = Field(default="", max_length=1000)  # the config's `title`
    tagline: str = Field(default="", sa_column=Column(Text, nullable=False))  # its `tagline`
    url: str = Field(default="", max_length=2048)  # the config's `url` + `baseUrl`
    indexed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


class SitePage(SQLModel, table=True):
    """One page of a site as its last ingestion read it."""

    __tablename__ = "site_page"
    __table_args__ = (Index("ix_site_page_site_url_path", "site", "url_path"),)

    site: str = Field(primary_key=True, max_length=200)
    url: str = Field(primary_key=True, max_length=2048)  # as served, no anchor
    url_path: str = Field(max_length=2048)  # `url_path_key(url)`: how a reference finds it
    path: str = Field(max_length=2048, index=True)  # source file, relative to the site root
    title: str = Field(max_length=1000)
    description: str = Field(default="", sa_column=Column(Text, nullable=False))
    markdown: str = Field(sa_column=Column(Text, nullable=False))
    section: str = Field(default="", max_length=1000)  # llms.txt groups pages by it
    position: int  # reading order of the site (the order ingestion read the pages in)
    version: str | None = Field(default=None, max_length=100)  # None: unversioned/current docs
    locale: str | None = Field(default=None, max_length=35)  # None: the default locale
    # True for what a reader sees by default: unversioned pages, blog posts, and the docs
    # version Docusaurus serves at the docs root (its `lastVersion`).
    last_version: bool = True
    content_hash: str = Field(max_length=64)
    indexed_at: datetime = Field(
        default_factory=utcnow, sa_column=Column(DateTime(timezone=True), nullable=False)
    )


def url_path_key(reference: str) -> str:
    """The part of a page URL (or of a reference to one) that identifies the page.

    `https://x.dev/docs/intro/#setup` → `/docs/intro`; `/docs/intro.md` → `/docs/intro`;
    `/docs/` → `/docs`; `/` → `/`. Percent-escapes are decoded, so `caf%C3%A9` and `café` agree.
    """
    parts = urlsplit(reference.strip())
    path = unquote(parts.path or "/")
    if not path.startswith("/"):
        path = "/" + path
    path = posixpath.normpath(path)
    if path.endswith("/index.md"):
        path = path[: -len("/index.md")] or "/"
    elif path.endswith(".md"):
        path = path[: -len(".md")]
    return path.rstrip("/") or "/"


class PageCatalog:
    """The `site_page` rows behind one sessionmaker. Cheap to build; holds no connection."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def replace(self, summary: SiteSummary, pages: Sequence[SitePage]) -> None:
        """Make `summary` and `pages` the site's whole catalog, in one transaction (readers see
        the old one or the new one, never a mix)."""
        async with self._sessionmaker() as db:
            await db.exec(delete(SitePage).where(col(SitePage.site) == summary.site))
            await db.exec(delete(SiteSummary).where(col(SiteSummary.site) == summary.site))
            db.add(summary)
            db.add_all(pages)
            await db.commit()

    async def summary(self, site: str) -> SiteSummary | None:
        """The site as its last ingestion saw it; None before its first ingestion."""
        async with self._sessionmaker() as db:
            return await db.get(SiteSummary, site)

    async def pages(
        self,
        site: str,
        *,
        version: str | None = None,
        locale: str | None = None,
        with_markdown: bool = False,
    ) -> list[SitePage]:
        """The site's pages in reading order, for one version and locale.

        `version=None` is what a reader sees by default (see `SitePage.last_version`);
        `CURRENT_VERSION` the unreleased docs; any other value a released version's name.
        `locale=None` is the default locale. Without `with_markdown` the page text is left out
        (`markdown` is then ""), for listings of large sites.
        """
        query = select(SitePage).where(col(SitePage.site) == site)
        if version is None:
            query = query.where(col(SitePage.last_version).is_(True))
        elif version == CURRENT_VERSION:
            query = query.where(col(SitePage.version).is_(None))
        else:
            query = query.where(col(SitePage.version) == version)
        query = query.where(
            col(SitePage.locale).is_(None) if locale is None else col(SitePage.locale) == locale
        )
        query = query.order_by(col(SitePage.position))
        async with self._sessionmaker() as db:
            rows = list((await db.exec(query)).all())
        if not with_markdown:
            for row in rows:
                row.markdown = ""
        return rows

    async def versions(self, site: str) -> list[str]:
        """The released versions' names in the site's catalog (`CURRENT_VERSION` excluded)."""
        query = (
            select(SitePage.version)
            .where(col(SitePage.site) == site, col(SitePage.version).is_not(None))
            .distinct()
        )
        async with self._sessionmaker() as db:
            return sorted(str(v) for v in (await db.exec(query)).all() if v)

    async def find(self, site: str, reference: str, *, source_path: bool = True) -> SitePage | None:
        """The page a URL or source path names, or None.

        A source path (`docs/intro.md`, `docs/intro.mdx`) matches exactly; otherwise the URL's
        path (`url_path_key`), the host ignored. Should both match different pages, the source
        path wins, then the reader's default version. With `source_path=False` only URLs match
        (a `.md` URL that happens to spell another page's source path, e.g. `/docs/codes.md`
        of the page served at `/docs/codes` while `docs/codes.md` is the unreleased one).
        """
        source = reference.strip().lstrip("/")
        key = url_path_key(reference)
        by_url = col(SitePage.url_path) == key
        query = (
            select(SitePage)
            .where(col(SitePage.site) == site)
            .where(or_(col(SitePage.path) == source, by_url) if source_path else by_url)
            .order_by(col(SitePage.last_version).desc(), col(SitePage.position))
        )
        async with self._sessionmaker() as db:
            rows = list((await db.exec(query)).all())
        exact = [row for row in rows if source_path and row.path == source]
        return next(iter(exact or rows), None)

    async def count(self, site: str) -> int:
        """How many pages the site's catalog holds, every version and locale."""
        query = select(func.count()).select_from(SitePage).where(col(SitePage.site) == site)
        async with self._sessionmaker() as db:
            return int((await db.exec(query)).one())
