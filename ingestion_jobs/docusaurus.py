"""Read a Docusaurus site folder into pages with the exact URLs Docusaurus serves them at.

Why exact: every citation the bot gives is a link; a URL that is off by a number prefix, a
trailing slash or a heading id sends the reader to a 404 or the top of the wrong page.

Three files, one concern each: ``site_config.py`` reads ``docusaurus.config.*`` into plain
options, ``routes.py`` holds Docusaurus's URL rules and lists the content folders with their
routes, and this module reads the pages: for each content folder (docs instance x version x
locale, blog instance x locale) every Markdown file not under a ``_`` name, read from its
translation when the locale has one (a page with no translation is the default locale's page
shown again, and is indexed only there), skipping ``draft``/``unlisted`` front matter, with
the partials it imports inlined. Whatever the reader cannot interpret is a ``ReadWarning``.

The reader is static (no Node, no build): measured on the conformance fixtures, a real
``docusaurus build`` of even a small site takes 5-16 s of CPU after a 1-2 min install, and a
site's own build needs its plugins installed, against 1-2 s here for a ~90-page corpus.
``tests/integration/test_docusaurus_conformance.py`` holds these rules to real Docusaurus 3.x
builds (see docs/docusaurus.md).
"""

from __future__ import annotations

import hashlib
import os
import posixpath
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ingestion_jobs.documents import Page, PageError, ReadWarning, Section, SiteConfig, SiteRead
from ingestion_jobs.markdown import FrontmatterError, Include, parse_page
from ingestion_jobs.routes import (
    ContentRoot,
    apply_trailing_slash,
    blog_slug,
    content_roots,
    doc_slug,
    join_url_path,
    strip_number_prefix,
)
from ingestion_jobs.site_config import (
    CONFIG_NAMES,
    SiteOptions,
    normalize_base_url,
    read_site_config,
    read_site_options,
)
from shared.errors import BookchatError, ErrorCode

__all__ = [
    "doc_slug",
    "join_url_path",
    "read_site",
    "read_site_config",
    "strip_number_prefix",
]

MARKDOWN_SUFFIXES = (".md", ".mdx")
_MAX_PARTIAL_DEPTH = 8


def _walk_markdown(
    root: Path, site_real: Path, errors: list[PageError], site_dir: Path
) -> Iterator[Path]:
    """Markdown files under root, sorted, skipping ``_`` names, escaping links and cycles.

    Nothing outside the site folder is read: not through a symlink, nor through a content
    folder (``docs``, or a config's ``path: '../x'``) that itself resolves outside it."""
    seen: set[Path] = set()

    def report(path: Path, code: str, message: str) -> None:
        if path.suffix in MARKDOWN_SUFFIXES:
            errors.append(PageError(path.relative_to(site_dir).as_posix(), code, message))

    def walk(folder: Path) -> Iterator[Path]:
        try:
            real = folder.resolve()
        except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
            return
        if not real.is_relative_to(site_real):
            return
        if real in seen:
            return  # a symlink cycle, or a folder already read through another link
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError:
            return
        for entry in entries:
            if entry.name.startswith(("_", ".")):
                continue
            path = Path(entry.path)
            if entry.is_symlink():
                try:
                    target = path.resolve(strict=True)
                except (OSError, RuntimeError):
                    report(path, "broken_symlink", "symlink is dangling or loops; not read")
                    continue
                if not target.is_relative_to(site_real):
                    report(path, "outside_site", "symlink points outside the site folder; not read")
                    continue
            if entry.is_dir():
                yield from walk(path)
            elif entry.is_file() and path.suffix in MARKDOWN_SUFFIXES:
                yield path

    yield from walk(root)


def _as_strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list):
        return tuple(
            str(item.get("label", "")) if isinstance(item, dict) else str(item) for item in value
        )
    return ()


def _includer(
    path: Path, site_dir: Path, site_real: Path, warnings: list[ReadWarning], depth: int = 0
) -> Include:
    """Resolve ``import X from './_part.mdx'`` of ``path``: the file's text, inside the site."""

    def include(spec: str) -> tuple[str, Include | None] | None:
        rel_site = path.relative_to(site_dir).as_posix()
        if spec.startswith("@site/"):
            target = site_dir / spec.removeprefix("@site/")
        elif spec.startswith("."):
            target = path.parent / spec
        else:
            warnings.append(ReadWarning(rel_site, "mdx.import", f"{spec!r}: not a site file"))
            return None
        try:
            real = target.resolve(strict=True)
            if not real.is_relative_to(site_real) or depth >= _MAX_PARTIAL_DEPTH:
                raise OSError("outside the site folder or imports nested too deep")
            text = real.read_text(encoding="utf-8")
        except (OSError, RuntimeError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            warnings.append(
                ReadWarning(rel_site, "mdx.import", f"{spec!r} not indexed on this page: {reason}")
            )
            return None
        return text, _includer(target, site_dir, site_real, warnings, depth + 1)

    return include


def _read_page(
    path: Path,
    source: str,
    root: ContentRoot,
    site_dir: Path,
    options: SiteOptions,
    max_file_bytes: int,
    warnings: list[ReadWarning],
) -> Page | PageError | None:
    """One file to a Page, a PageError, or None when it is not published (draft, unlisted).

    ``path`` is the file read (a translation when there is one); ``source`` its path relative
    to the content folder, which (with its front matter) decides the URL.
    """
    rel_site = path.relative_to(site_dir).as_posix()
    try:
        size = path.stat().st_size
        if size > max_file_bytes:
            return PageError(rel_site, "too_large", f"{size} bytes exceeds {max_file_bytes}")
        data = path.read_bytes()
    except OSError as exc:
        return PageError(rel_site, "unreadable", f"cannot read the file: {exc.strerror}")
    if b"\x00" in data:
        return PageError(rel_site, "binary", "the file holds binary data, not text")
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return PageError(rel_site, "invalid_utf8", f"not UTF-8 at byte {exc.start}")
    try:
        parsed = parse_page(
            raw,
            include=_includer(path, site_dir, site_dir.resolve(), warnings),
            maintain_case=options.anchors_maintain_case,
            magic_comments=options.magic_comments,
            markdown_format=options.markdown_format,
            mdx_file=path.suffix == ".mdx",
        )
    except FrontmatterError as exc:
        return PageError(rel_site, "bad_frontmatter", str(exc))
    frontmatter = parsed.frontmatter
    if frontmatter.get("draft") is True or frontmatter.get("unlisted") is True:
        return None
    if root.blog:
        slug = blog_slug(source, frontmatter)
        fallback_title = posixpath.basename(posixpath.splitext(source)[0])
    else:
        if "/" in str(frontmatter.get("id", "")):
            return PageError(rel_site, "bad_frontmatter", "front matter id cannot hold a slash")
        slug = doc_slug(source, frontmatter)
        fallback_title = str(frontmatter.get("id", strip_number_prefix(path.stem)))
    config = options.config
    permalink = apply_trailing_slash(join_url_path(root.route, slug), config)
    title = str(frontmatter.get("title") or parsed.content_title or fallback_title)

    sections: list[Section] = []
    stack: list[tuple[int, str]] = []
    for parsed_section in parsed.sections:
        if parsed_section.heading is None:
            sections.append(Section(None, None, 1, (title,), parsed_section.text))
            continue
        while stack and stack[-1][0] >= parsed_section.level:
            stack.pop()
        stack.append((parsed_section.level, parsed_section.heading))
        sections.append(
            Section(
                heading=parsed_section.heading,
                anchor=parsed_section.anchor,
                level=parsed_section.level,
                breadcrumb=(title, *(text for _, text in stack)),
                text=parsed_section.text,
            )
        )
    return Page(
        path=rel_site,
        url=config.url + permalink,
        title=title,
        description=str(frontmatter.get("description") or ""),
        content_hash=hashlib.sha256(data).hexdigest(),
        sections=tuple(sections),
        keywords=_as_strings(frontmatter.get("keywords")),
        tags=_as_strings(frontmatter.get("tags")),
        version=root.version,
        locale=root.locale,
        last_version=root.last_version,
    )


def _with_site_url(options: SiteOptions, site_url: str) -> SiteOptions:
    split = urlsplit(site_url)
    config = SiteConfig(
        url=f"{split.scheme}://{split.netloc}" if split.netloc else "",
        base_url=normalize_base_url(split.path),
        trailing_slash=options.config.trailing_slash,
        docs_route_base_path=options.config.docs_route_base_path,
        title=options.config.title,
        tagline=options.config.tagline,
    )
    return SiteOptions(
        config=config,
        config_file=options.config_file,
        docs=options.docs,
        blogs=options.blogs,
        default_locale=options.default_locale,
        locales=options.locales,
        anchors_maintain_case=options.anchors_maintain_case,
        magic_comments=options.magic_comments,
        markdown_format=options.markdown_format,
        warnings=options.warnings,
    )


def read_site(
    site_dir: Path, *, site_url: str | None = None, max_file_bytes: int = 5_000_000
) -> SiteRead:
    """Read every published doc (and blog post) of a site; bad files become PageErrors and
    what the reader cannot interpret becomes ReadWarnings.

    ``site_url`` (e.g. "https://example.com/book/") replaces the config's url and baseUrl, for
    a site served somewhere else than its config says.
    """
    site_dir = Path(site_dir)
    options = read_site_options(site_dir)
    if site_url:
        options = _with_site_url(options, site_url)
    site_real = site_dir.resolve()
    pages: list[Page] = []
    errors: list[PageError] = []
    roots, warnings = content_roots(site_dir, options)
    has_config = any((site_dir / name).is_file() for name in CONFIG_NAMES)
    if not has_config and not any(root.folder.is_dir() for root in roots):
        # Indexing a folder that is no site would "remove" every page of the real one.
        raise BookchatError(
            ErrorCode.SITE_NOT_FOUND,
            f"{site_dir} is not a Docusaurus site (no docusaurus.config.* and no docs/ folder); "
            "the index was left as it was",
        )
    warnings = [*options.warnings, *warnings]
    for root in roots:
        default_locale = root.locale is None
        for path in _walk_markdown(root.folder, site_real, errors, site_dir):
            source = path.relative_to(root.folder).as_posix()
            localized = root.localized / source if root.localized is not None else None
            if localized is not None and localized.is_file():
                real = localized.resolve()
                path = localized if real.is_relative_to(site_real) else path
            elif not default_locale:
                continue  # untranslated: the default locale's page, indexed there
            result = _read_page(path, source, root, site_dir, options, max_file_bytes, warnings)
            if isinstance(result, Page):
                pages.append(result)
            elif isinstance(result, PageError):
                errors.append(result)
    return SiteRead(site=options.config, pages=pages, errors=errors, warnings=warnings)
