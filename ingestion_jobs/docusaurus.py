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

import dataclasses
import hashlib
import os
import posixpath
import stat
from collections.abc import Iterator
from itertools import dropwhile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from ingestion_jobs.documents import Page, PageError, ReadWarning, Section, SiteRead
from ingestion_jobs.languages import language_of
from ingestion_jobs.markdown import FrontmatterError, Include, parse_page
from ingestion_jobs.partials import ExpansionTooLarge
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
from shared.url_encoding import encode_url_path

__all__ = [
    "doc_slug",
    "join_url_path",
    "read_site",
    "read_site_config",
    "strip_number_prefix",
]

MARKDOWN_SUFFIXES = (".md", ".mdx")
_MAX_PARTIAL_DEPTH = 8


def _relative(path: Path, site_dir: Path) -> str:
    """``path`` relative to the site folder, POSIX (``../docs/intro.md`` in a monorepo)."""
    return Path(os.path.relpath(path, site_dir)).as_posix()


def _walk_markdown(
    root: Path,
    bound: Path,
    errors: list[PageError],
    warnings: list[ReadWarning],
    site_dir: Path,
) -> Iterator[Path]:
    """Markdown files under root, sorted, skipping ``_`` names, escaping links and cycles.

    Nothing outside ``bound`` (see ``_bound``) is read, not through a symlink either; a file
    or folder not read for that reason is a PageError or a ReadWarning."""
    seen: set[Path] = set()

    def report(path: Path, code: str, message: str) -> None:
        if path.suffix in MARKDOWN_SUFFIXES:
            errors.append(PageError(_relative(path, site_dir), code, message))
        else:
            warnings.append(ReadWarning(_relative(path, site_dir), f"content.{code}", message))

    def walk(folder: Path) -> Iterator[Path]:
        try:
            real = folder.resolve()
        except (OSError, RuntimeError):  # a symlink loop (RuntimeError before Python 3.13)
            report(folder, "broken_symlink", "folder link loops; not read")
            return
        if not real.is_relative_to(bound):
            report(folder, "outside_site", f"resolves outside {bound}; not read")
            return
        if real in seen:
            return  # a symlink cycle, or a folder already read through another link
        seen.add(real)
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            # Said, not skipped in silence: a folder deeper than PATH_MAX (ENAMETOOLONG) held
            # pages that were dropped without a word (issue 30).
            rel = _relative(folder, site_dir)
            errors.append(PageError(rel, "unreadable", f"folder not read: {exc.strerror}"))
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
                if not target.is_relative_to(bound):
                    report(path, "outside_site", "symlink points outside the site; not read")
                    continue
            if entry.is_dir():
                yield from walk(path)
            elif entry.is_file() and path.suffix in MARKDOWN_SUFFIXES:
                yield path

    yield from walk(root)


def _bound(folder: Path, site_dir: Path, repo_root: Path | None) -> Path | None:
    """The folder a content root may be read within, or None when it is out of bounds.

    A site from a git repository may read anything in the repository (a monorepo's
    ``docs: {path: '../docs'}``); a plain folder its own tree, or the parent that a
    config path's leading ``..`` names explicitly (``../docs`` allows the site's parent; an
    absolute path or a symlink out of that parent is not read)."""
    real = folder.resolve()
    if repo_root is not None:
        root_real = repo_root.resolve()
        return root_real if real.is_relative_to(root_real) else None
    site_real = site_dir.resolve()
    if real.is_relative_to(site_real):
        return site_real
    if not folder.is_relative_to(site_dir):  # lexically: an absolute path names no parent chain
        return None
    parts = Path(os.path.relpath(os.path.normpath(folder), os.path.normpath(site_dir))).parts
    ups = len(parts) - len(tuple(dropwhile(lambda part: part == "..", parts)))
    if ups == 0 or ups > len(site_real.parents):
        return None
    parent = site_real.parents[ups - 1]
    return parent if real.is_relative_to(parent) else None


def _as_strings(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        return tuple(part.strip() for part in value.split(",") if part.strip())
    if isinstance(value, list):
        return tuple(
            str(item.get("label", "")) if isinstance(item, dict) else str(item) for item in value
        )
    return ()


def _read_regular(path: Path, max_bytes: int) -> bytes:
    """The bytes of a regular file of at most ``max_bytes``. Opened without blocking and
    checked on the open file, so a FIFO (or a device) is never read, even one put in the
    file's place after it was listed (a FIFO as a partial blocked ingestion for good, issue
    30). Raises OSError otherwise."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    with os.fdopen(fd, "rb") as file:
        info = os.fstat(file.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise OSError("not a regular file")
        if info.st_size > max_bytes:
            raise OSError(f"{info.st_size} bytes exceeds {max_bytes}")
        return file.read(max_bytes + 1)


def _read_partial(path: Path, max_bytes: int) -> str:
    """The text of a partial (`_read_regular`, decoded as UTF-8; a byte order mark dropped)."""
    return _read_regular(path, max_bytes).decode("utf-8-sig")


def _includer(
    path: Path,
    site_dir: Path,
    bound: Path,
    warnings: list[ReadWarning],
    max_bytes: int,
    depth: int = 0,
) -> Include:
    """Resolve ``import X from './_part.mdx'`` of ``path``: the file's text, within ``bound``
    (the page's content root's, see ``_bound``)."""

    def include(spec: str) -> tuple[str, Include | None] | None:
        rel_site = _relative(path, site_dir)
        if spec.startswith("@site/"):
            target = site_dir / spec.removeprefix("@site/")
        elif spec.startswith("."):
            target = path.parent / spec
        else:
            warnings.append(ReadWarning(rel_site, "mdx.import", f"{spec!r}: not a site file"))
            return None
        try:
            real = target.resolve(strict=True)
            if not real.is_relative_to(bound) or depth >= _MAX_PARTIAL_DEPTH:
                raise OSError("outside the site folder or imports nested too deep")
            text = _read_partial(real, max_bytes)
        except (OSError, RuntimeError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or str(exc)
            warnings.append(
                ReadWarning(rel_site, "mdx.import", f"{spec!r} not indexed on this page: {reason}")
            )
            return None
        return text, _includer(target, site_dir, bound, warnings, max_bytes, depth + 1)

    return include


def _read_page(
    path: Path,
    source: str,
    root: ContentRoot,
    site_dir: Path,
    options: SiteOptions,
    max_file_bytes: int,
    bound: Path,
    warnings: list[ReadWarning],
) -> Page | PageError | None:
    """One file to a Page, a PageError, or None when it is not published (draft, unlisted).

    ``path`` is the file read (a translation when there is one); ``source`` its path relative
    to the content folder, which (with its front matter) decides the URL.
    """
    rel_site = _relative(path, site_dir)
    try:
        size = path.stat().st_size
        if size > max_file_bytes:
            return PageError(rel_site, "too_large", f"{size} bytes exceeds {max_file_bytes}")
        data = _read_regular(path, max_file_bytes)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return PageError(rel_site, "unreadable", f"cannot read the file: {reason}")
    if b"\x00" in data:
        return PageError(rel_site, "binary", "the file holds binary data, not text")
    try:
        raw = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        return PageError(rel_site, "invalid_utf8", f"not UTF-8 at byte {exc.start}")
    try:
        parsed = parse_page(
            raw,
            include=_includer(path, site_dir, bound, warnings, max_file_bytes),
            maintain_case=options.anchors_maintain_case,
            magic_comments=options.magic_comments,
            markdown_format=options.markdown_format,
            mdx_file=path.suffix == ".mdx",
            max_chars=max_file_bytes,
            html_comment_ids=not options.mdx1_comments,
            emoji=options.emoji,
        )
    except FrontmatterError as exc:
        return PageError(rel_site, "bad_frontmatter", str(exc))
    except ExpansionTooLarge as exc:
        return PageError(rel_site, "too_large", str(exc))
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
        url=config.url + encode_url_path(permalink),
        title=title,
        description=str(frontmatter.get("description") or ""),
        content_hash=hashlib.sha256(data).hexdigest(),
        sections=tuple(sections),
        keywords=_as_strings(frontmatter.get("keywords")),
        tags=_as_strings(frontmatter.get("tags")),
        version=root.version,
        locale=root.locale,
        language=language_of(root.locale or options.default_locale),
        last_version=root.last_version,
    )


def _with_site_url(options: SiteOptions, site_url: str) -> SiteOptions:
    split = urlsplit(site_url)
    config = dataclasses.replace(
        options.config,
        url=f"{split.scheme}://{split.netloc}" if split.netloc else "",
        base_url=normalize_base_url(split.path),
    )
    return dataclasses.replace(options, config=config)


def read_site(
    site_dir: Path,
    *,
    site_url: str | None = None,
    max_file_bytes: int = 5_000_000,
    repo_root: Path | None = None,
) -> SiteRead:
    """Read every published doc (and blog post) of a site; bad files become PageErrors and
    what the reader cannot interpret or does not read becomes ReadWarnings.

    ``site_url`` (e.g. "https://example.com/book/") replaces the config's url and baseUrl, for
    a site served somewhere else than its config says. ``repo_root``: the site is in this git
    checkout, and content folders anywhere in it are read (see ``_bound``).
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
        bound = _bound(root.folder, site_dir, repo_root)
        if bound is None:
            where = "the repository" if repo_root is not None else "the site folder"
            warnings.append(
                ReadWarning(
                    _relative(root.folder, site_dir),
                    "content.outside_site",
                    f"a content folder outside {where}; its pages are not indexed",
                )
            )
            continue
        for path in _walk_markdown(root.folder, bound, errors, warnings, site_dir):
            source = path.relative_to(root.folder).as_posix()
            localized = root.localized / source if root.localized is not None else None
            if localized is not None and localized.is_file():
                if localized.resolve().is_relative_to(site_real):
                    path = localized
                else:
                    warnings.append(
                        ReadWarning(
                            _relative(localized, site_dir),
                            "content.outside_site",
                            "the translation links outside the site folder; the default "
                            "locale's text is indexed in its place",
                        )
                    )
            elif not default_locale:
                continue  # untranslated: the default locale's page, indexed there
            result = _read_page(
                path, source, root, site_dir, options, max_file_bytes, bound, warnings
            )
            if isinstance(result, Page):
                pages.append(result)
            elif isinstance(result, PageError):
                errors.append(result)
    return SiteRead(site=options.config, pages=pages, errors=errors, warnings=warnings)
