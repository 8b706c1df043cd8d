"""The data that flows through ingestion: pages read from a site, their sections, and chunks.

These types are the contract between the Docusaurus reader (`docusaurus.py`, `markdown.py`),
the chunker (`chunking.py`) and the indexer (`indexer.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["Chunk", "Page", "PageError", "ReadWarning", "Section", "SiteConfig", "SiteRead"]


@dataclass(frozen=True, slots=True)
class SiteConfig:
    """What `docusaurus.config.*` says about where pages are served."""

    url: str  # e.g. "https://docusaurus.io" (no trailing slash)
    base_url: str  # e.g. "/" or "/physical-ai-robotics-textbook/" (leading and trailing slash)
    trailing_slash: bool | None  # Docusaurus's `trailingSlash` (None = undefined)
    docs_route_base_path: str = "docs"  # of the default docs plugin instance
    title: str = ""
    tagline: str = ""


@dataclass(frozen=True, slots=True)
class Section:
    """A run of page text under one heading (or the page intro, before the first heading)."""

    heading: str | None  # plain text of the heading; None for the intro
    anchor: str | None  # the id Docusaurus renders for the heading; None for the intro
    level: int  # 1 for the intro / h1, 2 for h2, ...
    breadcrumb: tuple[str, ...]  # (page title, h2, h3, ...) down to this section
    text: str  # readable text: Markdown with JSX stripped, code blocks fenced and whole


@dataclass(frozen=True, slots=True)
class Page:
    """One Markdown/MDX document of the site, parsed."""

    path: str  # relative to the site root, POSIX separators, e.g. "docs/installation.mdx"
    url: str  # absolute page URL as Docusaurus serves it, no anchor
    title: str
    description: str
    content_hash: str  # sha256 of the raw file bytes
    sections: tuple[Section, ...]
    keywords: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    version: str | None = None  # docs version for versioned_docs, else None
    locale: str | None = None  # i18n locale for i18n/<locale>/..., else None
    # False for a docs version a reader does not see by default: the unreleased `current` or an
    # older release, when Docusaurus serves another one at the docs root (its `lastVersion`).
    last_version: bool = True


@dataclass(frozen=True, slots=True)
class PageError:
    """A file that could not be read; ingestion reports it and goes on."""

    path: str
    code: str  # stable, e.g. "bad_frontmatter", "invalid_utf8", "too_large"
    message: str


@dataclass(frozen=True, slots=True)
class ReadWarning:
    """Something the reader could not interpret; what it assumed instead is in ``message``.

    Shown by ``bookchat ingest`` and kept in the ingestion job's result, so that a URL the
    reader could not derive is never silently wrong.
    """

    path: str  # the file, relative to the site root ("" for the site as a whole)
    rule: str  # stable, e.g. "config.baseUrl", "mdx.import", "i18n.locale"
    message: str


@dataclass(frozen=True, slots=True)
class SiteRead:
    site: SiteConfig
    pages: list[Page] = field(default_factory=list)
    errors: list[PageError] = field(default_factory=list)
    warnings: list[ReadWarning] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Chunk:
    """A retrievable passage: the unit that is embedded and stored in Qdrant."""

    id: str  # deterministic UUID (uuid5 of site, path, anchor, ordinal)
    path: str
    url: str  # page URL plus "#anchor" when the chunk sits under a heading
    heading: str  # the nearest heading, or the page title for the intro
    title: str  # page title
    breadcrumb: tuple[str, ...]
    text: str  # the passage text as shown to readers and the LLM
    content_hash: str  # sha256 of what is embedded (breadcrumb + text)
    page_hash: str
    version: str | None = None
    locale: str | None = None
