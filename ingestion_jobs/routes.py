"""Docusaurus's URL rules: where each source file of a site is served.

Followed from Docusaurus 3.x's own code (and checked against real builds by
``tests/integration/test_docusaurus_conformance.py``):

- doc id: the path with a leading ``\\d+[-_.]`` number prefix stripped from each segment
  (not from version-like ``1.2-x`` or date-like ``2021-05-x`` names; plugin-content-docs
  ``numberPrefix.ts``); ``id:`` front matter replaces the file part;
- doc slug (``slug.ts``): ``slug: /x`` is absolute (under the version's route), ``slug: x`` is
  relative to the doc's folder; ``index``, ``README`` and ``<folder>/<folder>`` are their
  folder's page;
- version route (``versions/version.ts``): ``baseUrl`` + ``routeBasePath`` + the version's
  ``path`` option, else ``""`` for the last version (``lastVersion``, by default the first
  entry of ``[<id>_]versions.json``), ``next`` for ``current``, else the version name;
  ``onlyIncludeVersions`` and ``includeCurrentVersion`` choose the versions that exist;
- locales (``@docusaurus/core`` i18n): every locale but the default is served under
  ``baseUrl`` + ``<locale>/``; a page's localized file is
  ``i18n/<locale>/docusaurus-plugin-content-docs[-<id>]/<current|version-X>/<same path>``;
- blog post slug (plugin-content-blog ``blogUtils.ts``): ``slug:`` front matter, else a file
  named ``<folder><YYYY-M-D>[-]<text>[/index].md`` is ``/<YYYY/M/D>/<folder><text>`` (the date's
  digits as written), else its path without extension and ``/index``;
- permalink: ``normalizeUrl`` of those parts, then ``trailingSlash`` applied except to ``/``
  and to ``baseUrl`` itself (``@docusaurus/utils`` ``applyTrailingSlash``).
"""

from __future__ import annotations

import json
import os
import posixpath
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ingestion_jobs.documents import ReadWarning, SiteConfig
from ingestion_jobs.site_config import DEFAULT_ID, SiteOptions

__all__ = [
    "ContentRoot",
    "apply_trailing_slash",
    "blog_slug",
    "content_roots",
    "doc_slug",
    "join_url_path",
    "strip_number_prefix",
]

CURRENT = "current"

# Docusaurus's DefaultNumberPrefixParser (plugin-content-docs/src/numberPrefix.ts).
_IGNORED_PREFIX = re.compile(r"^\d+[-_.]\d+")
_NUMBER_PREFIX = re.compile(r"^(?P<number>\d+)\s*[-_.]+\s*(?P<suffix>[^-_.\s].*)$")


def strip_number_prefix(name: str) -> str:
    """``01-intro`` -> ``intro``; ``1.2-intro`` and ``2021-05-intro`` stay as they are."""
    if _IGNORED_PREFIX.match(name):
        return name
    match = _NUMBER_PREFIX.match(name)
    return match.group("suffix") if match else name


def join_url_path(*parts: str) -> str:
    """Join URL path parts like Docusaurus's normalizeUrl: one slash between, leading slash."""
    joined = "/".join(part for part in parts if part)
    return "/" + re.sub(r"/{2,}", "/", joined).lstrip("/")


def _resolve_pathname(relative: str, directory: str) -> str:
    """Resolve ``relative`` against the folder URL ``directory`` (ends with "/")."""
    segments = directory.strip("/").split("/") if directory.strip("/") else []
    pieces = relative.split("/")
    for piece in pieces:
        if piece == "..":
            if segments:
                segments.pop()
        elif piece not in {".", ""}:
            segments.append(piece)
    trailing = relative.endswith("/") or pieces[-1] in {".", ".."}
    return "/" + "/".join(segments) + ("/" if trailing and segments else "")


def doc_slug(source: str, frontmatter: dict[str, Any]) -> str:
    """The doc's slug, relative to its version's root, from its path in the docs folder.

    ``source`` is POSIX and relative to the docs folder, e.g. ``01-guides/02-setup.md``.
    """
    source_dir = posixpath.dirname(source) or "."
    stem = posixpath.splitext(posixpath.basename(source))[0]
    parse_prefixes = frontmatter.get("parse_number_prefixes", True) is not False
    dir_stripped = (
        "/".join(strip_number_prefix(s) for s in source_dir.split("/"))
        if parse_prefixes
        else source_dir
    )
    dir_slug = "/" if source_dir == "." else f"/{dir_stripped}/"
    slug = frontmatter.get("slug")
    slug = str(slug) if slug is not None else None
    if slug is not None and slug.startswith("/"):
        return slug
    folder = source_dir.split("/")[-1]
    if slug is None and stem.lower() in {"index", "readme", folder.lower()}:
        return dir_slug
    base_id = str(frontmatter.get("id", strip_number_prefix(stem) if parse_prefixes else stem))
    return _resolve_pathname(slug if slug is not None else base_id, dir_slug)


# plugin-content-blog's DATE_FILENAME_REGEX, as is.
_BLOG_DATE = re.compile(
    r"^(?P<folder>.*)(?P<date>\d{4}[-/]\d{1,2}[-/]\d{1,2})[-/]?(?P<text>.*?)(?:/index)?.mdx?$"
)


def blog_slug(source: str, frontmatter: dict[str, Any]) -> str:
    """A blog post's slug from its path in the blog folder (e.g. ``2024-01-02-hello.md``)."""
    slug = frontmatter.get("slug")
    if slug is not None:
        return str(slug)
    match = _BLOG_DATE.match(source)
    if match is not None:
        date = match.group("date").replace("-", "/")
        return f"/{date}/{match.group('folder')}{match.group('text')}"
    return "/" + re.sub(r"(?:/index)?\.mdx?$", "", source)


def apply_trailing_slash(path: str, config: SiteConfig) -> str:
    """Docusaurus's ``applyTrailingSlash``: ``/`` and the base URL are left as they are."""
    if config.trailing_slash is None or path in {"/", config.base_url}:
        return path
    if config.trailing_slash:
        return path if path.endswith("/") else path + "/"
    return path.rstrip("/") or "/"


@dataclass(frozen=True, slots=True)
class ContentRoot:
    """A folder of docs (or blog posts) in one locale, and where its pages are served.

    Pages are the Markdown files of ``folder``; each is read from ``localized`` instead when
    that folder holds the same path (a translation), as Docusaurus does.
    """

    folder: Path
    localized: Path | None
    route: str  # URL path from the site root, e.g. "/book/fr/docs/1.0"
    version: str | None = None
    locale: str | None = None
    blog: bool = False
    last_version: bool = True  # the docs version served at the docs root (`lastVersion`)


def _plugin_folder(name: str, plugin_id: str) -> str:
    return name if plugin_id == DEFAULT_ID else f"{name}-{plugin_id}"


def _version_names(
    site_dir: Path, plugin_id: str, options: Any, warnings: list[ReadWarning]
) -> list[str]:
    prefix = "" if plugin_id == DEFAULT_ID else f"{plugin_id}_"
    versions: list[str] = []
    versions_file = site_dir / f"{prefix}versions.json"
    if versions_file.is_file() and not options.disable_versioning:
        try:
            loaded = json.loads(versions_file.read_text(encoding="utf-8-sig"))
            versions = [str(v) for v in loaded] if isinstance(loaded, list) else []
        except (OSError, ValueError) as exc:
            warnings.append(ReadWarning(versions_file.name, "versions.json", str(exc)))
    names = ([CURRENT] if options.include_current_version else []) + versions
    if options.only_include_versions is not None:
        names = [name for name in names if name in options.only_include_versions]
    return names


def content_roots(
    site_dir: Path, options: SiteOptions
) -> tuple[list[ContentRoot], list[ReadWarning]]:
    """Every (folder, locale) whose Markdown files are pages, with the route they get."""
    warnings: list[ReadWarning] = []
    roots: list[ContentRoot] = []
    config = options.config
    for locale in options.locales or (options.default_locale,):
        locale_base = join_url_path(
            config.base_url, "" if locale == options.default_locale else locale
        )
        i18n = site_dir / "i18n" / locale
        for docs in options.docs:
            names = _version_names(site_dir, docs.id, docs, warnings)
            last = docs.last_version or next((n for n in names if n != CURRENT), CURRENT)
            prefix = "" if docs.id == DEFAULT_ID else f"{docs.id}_"
            for name in names:
                default_part = "" if name == last else ("next" if name == CURRENT else name)
                part = docs.version_paths.get(name, default_part)
                folder = (
                    site_dir / docs.path
                    if name == CURRENT
                    else site_dir / f"{prefix}versioned_docs" / f"version-{name}"
                )
                localized = (
                    i18n
                    / _plugin_folder("docusaurus-plugin-content-docs", docs.id)
                    / (CURRENT if name == CURRENT else f"version-{name}")
                )
                roots.append(
                    ContentRoot(
                        folder,
                        localized,
                        join_url_path(locale_base, docs.route_base_path, part),
                        version=None if name == CURRENT else name,
                        locale=None if locale == options.default_locale else locale,
                        last_version=name == last,
                    )
                )
        for blog in options.blogs:
            roots.append(
                ContentRoot(
                    site_dir / blog.path,
                    i18n / _plugin_folder("docusaurus-plugin-content-blog", blog.id),
                    join_url_path(locale_base, blog.route_base_path),
                    locale=None if locale == options.default_locale else locale,
                    blog=True,
                )
            )
    for i18n_dir in sorted((site_dir / "i18n").glob("*/")) if (site_dir / "i18n").is_dir() else []:
        if i18n_dir.is_dir() and i18n_dir.name not in options.locales:
            warnings.append(
                ReadWarning(
                    f"i18n/{i18n_dir.name}",
                    "i18n.locale",
                    f"locale {i18n_dir.name!r} is not in the config's i18n.locales; not built",
                )
            )
    present = [root for root in roots if root.folder.is_dir()]
    for root in roots:
        if root.folder.is_dir() or root.locale is not None:
            continue
        default_blog = root.blog and root.folder == site_dir / "blog"
        if not default_blog:  # the classic preset's blog/ is often simply absent
            warnings.append(
                ReadWarning(
                    os.path.relpath(root.folder, site_dir),
                    "content.missing",
                    f"the config's content folder is not there; nothing served at {root.route}",
                )
            )
    return present, warnings
