"""Read a Docusaurus site folder into pages with the exact URLs Docusaurus serves them at.

Why exact: every citation the bot gives is a link; a URL that is off by a number prefix, a
trailing slash or a heading id sends the reader to a 404 or the top of the wrong page. So the
rules below follow Docusaurus's own (plugin-content-docs ``numberPrefix.ts``, ``slug.ts``,
``docs.ts``; ``@docusaurus/utils`` ``normalizeUrl`` and ``applyTrailingSlash``):

- doc id: the path with a leading ``\\d+[-_.]`` number prefix stripped from each segment
  (not from version-like ``1.2-x`` or date-like ``2021-05-x`` names); ``id:`` front matter
  replaces the file part;
- slug: ``slug: /x`` is absolute (under the docs route), ``slug: x`` is relative to the doc's
  folder; ``index``, ``README`` and ``<folder>/<folder>`` are their folder's page;
- permalink: ``baseUrl`` + [locale] + ``routeBasePath`` + [version] + slug, then
  ``trailingSlash`` applied except to ``/`` and to ``baseUrl`` itself;
- not pages: anything under a ``_``-prefixed name, ``draft: true``, ``unlisted: true``.

The config (``docusaurus.config.{ts,js,mjs,cjs,mts,cts}``) is code, so it is parsed with
tree-sitter and never run: the exported config object is the object literal that holds
``baseUrl``, and its values are evaluated by a small interpreter of literals, constants,
``process.env.X`` (always undefined: the production build with no special environment),
``!``, ``&&``, ``||``, ``??``, ``===``/``!==`` and ``?:``. Anything else is "unknown" and
falls back to Docusaurus's default.
"""

from __future__ import annotations

import hashlib
import json
import os
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import tree_sitter_typescript
from tree_sitter import Language, Node, Parser

from ingestion_jobs.documents import Page, PageError, Section, SiteConfig, SiteRead
from ingestion_jobs.markdown import FrontmatterError, parse_page

__all__ = [
    "doc_slug",
    "join_url_path",
    "read_site",
    "read_site_config",
    "strip_number_prefix",
]

CONFIG_NAMES = (
    "docusaurus.config.ts",
    "docusaurus.config.mts",
    "docusaurus.config.cts",
    "docusaurus.config.js",
    "docusaurus.config.mjs",
    "docusaurus.config.cjs",
)
MARKDOWN_SUFFIXES = (".md", ".mdx")


# --- config: a tiny evaluator over the tree-sitter syntax tree ------------------------------


class _Undefined:
    """JavaScript's ``undefined``: known to be absent (unlike ``_UNKNOWN``)."""

    def __repr__(self) -> str:
        return "undefined"


_UNDEFINED = _Undefined()
_UNKNOWN = object()  # a value this evaluator cannot know without running the code


@lru_cache(maxsize=2)
def _parser(typescript: bool) -> Parser:
    language = (
        tree_sitter_typescript.language_typescript()
        if typescript
        else tree_sitter_typescript.language_tsx()  # TSX: JavaScript plus JSX, a superset
    )
    return Parser(Language(language))


def _truthy(value: Any) -> bool:
    return value not in (None, False, 0, "") and value is not _UNDEFINED


class _ConfigEvaluator:
    """Evaluates constant expressions of a config file; unknown parts yield ``_UNKNOWN``."""

    def __init__(self, source: bytes, *, typescript: bool) -> None:
        self.root = _parser(typescript).parse(source).root_node
        self.declarations: dict[str, Node] = {}
        self._resolving: set[str] = set()
        for node in self._walk(self.root):
            if node.type == "variable_declarator":
                name, value = node.child_by_field_name("name"), node.child_by_field_name("value")
                if name is not None and value is not None and name.type == "identifier":
                    self.declarations.setdefault(_text(name), value)

    @staticmethod
    def _walk(node: Node) -> Iterator[Node]:
        stack = [node]
        while stack:
            current = stack.pop()
            yield current
            stack.extend(reversed(current.named_children))

    def config_object(self) -> Node | None:
        """The object literal holding ``baseUrl`` (and ``url``): the site config."""
        best: Node | None = None
        for node in self._walk(self.root):
            if node.type != "object":
                continue
            keys = {_key(child) for child in node.named_children}
            if "baseUrl" in keys and "url" in keys:
                return node
            if best is None and "baseUrl" in keys:
                best = node
        return best

    def evaluate(self, node: Node | None) -> Any:
        if node is None:
            return _UNKNOWN
        kind = node.type
        if kind in {"parenthesized_expression", "as_expression", "satisfies_expression"}:
            return self.evaluate(node.named_children[0] if node.named_children else None)
        if kind == "non_null_expression":
            return self.evaluate(node.named_children[0])
        if kind == "string":
            return _string_value(node)
        if kind == "template_string":
            if any(child.type == "template_substitution" for child in node.named_children):
                return _UNKNOWN
            return _string_value(node)
        if kind == "number":
            try:
                return float(_text(node).replace("_", ""))
            except ValueError:
                return _UNKNOWN
        if kind in {"true", "false"}:
            return kind == "true"
        if kind == "null":
            return None
        if kind == "undefined":
            return _UNDEFINED
        if kind in {"identifier", "shorthand_property_identifier"}:
            return self._resolve(_text(node))
        if kind == "member_expression":
            # process.env.ANYTHING is undefined: we read the plain production config.
            return _UNDEFINED if _text(node).startswith("process.env.") else _UNKNOWN
        if kind == "unary_expression":
            return self._unary(node)
        if kind == "binary_expression":
            return self._binary(node)
        if kind == "ternary_expression":
            condition = self.evaluate(node.child_by_field_name("condition"))
            if condition is _UNKNOWN:
                return _UNKNOWN
            branch = "consequence" if _truthy(condition) else "alternative"
            return self.evaluate(node.child_by_field_name(branch))
        if kind == "object":
            return self.object_value(node)
        if kind == "array":
            return [self.evaluate(child) for child in node.named_children]
        return _UNKNOWN

    def object_value(self, node: Node) -> dict[str, Any]:
        result: dict[str, Any] = {}
        for child in node.named_children:
            if child.type == "pair":
                key = _key(child)
                if key is not None:
                    result[key] = self.evaluate(child.child_by_field_name("value"))
            elif child.type == "shorthand_property_identifier":
                result[_text(child)] = self.evaluate(child)
        return result

    def _resolve(self, name: str) -> Any:
        if name == "undefined":
            return _UNDEFINED
        declaration = self.declarations.get(name)
        if declaration is None or name in self._resolving:
            return _UNKNOWN
        self._resolving.add(name)
        try:
            return self.evaluate(declaration)
        finally:
            self._resolving.discard(name)

    def _unary(self, node: Node) -> Any:
        operator = node.child_by_field_name("operator")
        value = self.evaluate(node.child_by_field_name("argument"))
        if operator is None or value is _UNKNOWN:
            return _UNKNOWN
        if operator.type == "!":
            return not _truthy(value)
        return _UNKNOWN

    def _binary(self, node: Node) -> Any:
        operator_node = node.child_by_field_name("operator")
        operator = operator_node.type if operator_node is not None else ""
        left = self.evaluate(node.child_by_field_name("left"))
        if operator in {"&&", "||", "??"}:
            if left is _UNKNOWN:
                return _UNKNOWN
            if operator == "&&":
                return self.evaluate(node.child_by_field_name("right")) if _truthy(left) else left
            if operator == "||":
                return left if _truthy(left) else self.evaluate(node.child_by_field_name("right"))
            absent = left is None or left is _UNDEFINED
            return self.evaluate(node.child_by_field_name("right")) if absent else left
        right = self.evaluate(node.child_by_field_name("right"))
        if left is _UNKNOWN or right is _UNKNOWN:
            return _UNKNOWN
        if operator in {"===", "=="}:
            return left == right and type(left) is type(right)
        if operator in {"!==", "!="}:
            return not (left == right and type(left) is type(right))
        if operator == "+" and isinstance(left, str) and isinstance(right, str):
            return left + right
        return _UNKNOWN


def _text(node: Node) -> str:
    return (node.text or b"").decode("utf-8", "replace")


_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "0": "\0"}


def _string_value(node: Node) -> str:
    parts: list[str] = []
    for child in node.named_children:
        if child.type == "string_fragment":
            parts.append(_text(child))
        elif child.type == "escape_sequence":
            escaped = _text(child)[1:]
            parts.append(_ESCAPES.get(escaped, escaped))
    return "".join(parts)


def _key(node: Node) -> str | None:
    if node.type == "shorthand_property_identifier":
        return _text(node)
    if node.type != "pair":
        return None
    key = node.child_by_field_name("key")
    if key is None:
        return None
    if key.type == "string":
        return _string_value(key)
    if key.type in {"property_identifier", "number"}:
        return _text(key)
    return None


@dataclass(frozen=True, slots=True)
class _SiteFacts:
    """Config facts beyond SiteConfig that only the reader needs."""

    config: SiteConfig
    docs_path: str = "docs"
    blog_route_base_path: str | None = "blog"
    blog_path: str = "blog"
    default_locale: str = "en"


def _str_or(value: Any, default: str) -> str:
    return value if isinstance(value, str) else default


def _plugin_options(config: dict[str, Any]) -> tuple[dict[str, Any] | None, Any]:
    """(default docs plugin options, preset blog option) from presets and plugins."""
    docs: dict[str, Any] | None = None
    blog: Any = _UNDEFINED
    for preset in config.get("presets") or []:
        if isinstance(preset, list) and len(preset) > 1 and isinstance(preset[1], dict):
            options = preset[1]
            if isinstance(options.get("docs"), dict):
                docs = options["docs"]
            blog = options.get("blog", blog)
    for plugin in config.get("plugins") or []:
        if not (isinstance(plugin, list) and len(plugin) > 1 and isinstance(plugin[0], str)):
            continue
        if plugin[0].endswith("plugin-content-docs") and isinstance(plugin[1], dict):
            plugin_id = plugin[1].get("id", _UNDEFINED)
            if plugin_id is _UNDEFINED or plugin_id == "default":
                docs = plugin[1]
    return docs, blog


def _read_site_facts(site_dir: Path) -> _SiteFacts:
    config_file = next((site_dir / n for n in CONFIG_NAMES if (site_dir / n).is_file()), None)
    if config_file is None:
        return _SiteFacts(SiteConfig(url="", base_url="/", trailing_slash=None))
    evaluator = _ConfigEvaluator(
        config_file.read_bytes(), typescript=config_file.suffix in {".ts", ".mts", ".cts"}
    )
    node = evaluator.config_object()
    values = evaluator.object_value(node) if node is not None else {}
    docs, blog = _plugin_options(values)
    trailing = values.get("trailingSlash")
    i18n = values.get("i18n")
    blog_options = blog if isinstance(blog, dict) else {}
    site = SiteConfig(
        url=_str_or(values.get("url"), "").rstrip("/"),
        base_url=_normalize_base_url(_str_or(values.get("baseUrl"), "/")),
        trailing_slash=trailing if isinstance(trailing, bool) else None,
        docs_route_base_path=_str_or((docs or {}).get("routeBasePath"), "docs"),
        title=_str_or(values.get("title"), ""),
    )
    return _SiteFacts(
        config=site,
        docs_path=_str_or((docs or {}).get("path"), "docs"),
        blog_route_base_path=None
        if blog is False
        else _str_or(blog_options.get("routeBasePath"), "blog"),
        blog_path=_str_or(blog_options.get("path"), "blog"),
        default_locale=_str_or(i18n.get("defaultLocale") if isinstance(i18n, dict) else None, "en"),
    )


def _normalize_base_url(base_url: str) -> str:
    return "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"


def read_site_config(site_dir: Path) -> SiteConfig:
    """Read url, baseUrl, trailingSlash, title and the docs routeBasePath from the config.

    A site with no config file gets url "", baseUrl "/" and Docusaurus's defaults.
    """
    return _read_site_facts(site_dir).config


# --- URL rules ------------------------------------------------------------------------------

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


def _apply_trailing_slash(path: str, config: SiteConfig) -> str:
    if config.trailing_slash is None or path in {"/", config.base_url}:
        return path
    if config.trailing_slash:
        return path if path.endswith("/") else path + "/"
    return path.rstrip("/") or "/"


_BLOG_DATE = re.compile(r"^(?P<y>\d{4})[-/](?P<m>\d{1,2})[-/](?P<d>\d{1,2})[-/]?(?P<rest>.*)$")


def _blog_slug(source: str, frontmatter: dict[str, Any]) -> str:
    """Blog post slug: ``slug:`` front matter, else the date-prefixed path as YYYY/MM/DD/name."""
    slug = frontmatter.get("slug")
    if slug is not None:
        return "/" + str(slug).lstrip("/")
    without_ext = posixpath.splitext(source)[0]
    if posixpath.basename(without_ext).lower() in {"index", "readme"}:
        without_ext = posixpath.dirname(without_ext)
    match = _BLOG_DATE.match(without_ext)
    if match is None:
        return "/" + without_ext
    rest = match.group("rest")
    return f"/{match.group('y')}/{int(match.group('m')):02d}/{int(match.group('d')):02d}/{rest}"


# --- walking the site -----------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _ContentRoot:
    """A folder of docs (or blog posts) and where its pages are served."""

    folder: Path
    route: str  # path under baseUrl, e.g. "docs", "fr/docs/1.0", "blog"
    version: str | None = None
    locale: str | None = None
    blog: bool = False


def _content_roots(site_dir: Path, facts: _SiteFacts) -> list[_ContentRoot]:
    route = facts.config.docs_route_base_path
    versions: list[str] = []
    versions_file = site_dir / "versions.json"
    if versions_file.is_file():
        try:
            loaded = json.loads(versions_file.read_text(encoding="utf-8"))
            versions = [str(v) for v in loaded] if isinstance(loaded, list) else []
        except (OSError, ValueError):
            versions = []
    versioned_dir = site_dir / "versioned_docs"
    if not versions and versioned_dir.is_dir():
        versions = sorted(p.name.removeprefix("version-") for p in versioned_dir.iterdir())

    def version_route(version: str | None) -> str:
        # Docusaurus serves the latest released version at the route root and "current"
        # (the docs/ folder) under "next" once versions exist.
        if version is None:
            return join_url_path(route, "next") if versions else route
        return route if versions and version == versions[0] else join_url_path(route, version)

    roots = [_ContentRoot(site_dir / facts.docs_path, version_route(None))]
    roots += [
        _ContentRoot(versioned_dir / f"version-{v}", version_route(v), version=v) for v in versions
    ]
    if facts.blog_route_base_path is not None:
        roots.append(
            _ContentRoot(site_dir / facts.blog_path, facts.blog_route_base_path, blog=True)
        )
    i18n_dir = site_dir / "i18n"
    if i18n_dir.is_dir():
        for locale_dir in sorted(p for p in i18n_dir.iterdir() if p.is_dir()):
            locale = locale_dir.name
            prefix = "" if locale == facts.default_locale else locale
            docs_dir = locale_dir / "docusaurus-plugin-content-docs"
            roots.append(
                _ContentRoot(
                    docs_dir / "current", join_url_path(prefix, version_route(None)), locale=locale
                )
            )
            roots += [
                _ContentRoot(
                    docs_dir / f"version-{v}",
                    join_url_path(prefix, version_route(v)),
                    version=v,
                    locale=locale,
                )
                for v in versions
            ]
            if facts.blog_route_base_path is not None:
                roots.append(
                    _ContentRoot(
                        locale_dir / "docusaurus-plugin-content-blog",
                        join_url_path(prefix, facts.blog_route_base_path),
                        locale=locale,
                        blog=True,
                    )
                )
    return [root for root in roots if root.folder.is_dir()]


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


def _read_page(
    path: Path,
    root: _ContentRoot,
    site_dir: Path,
    facts: _SiteFacts,
    origin: str,
    max_file_bytes: int,
) -> Page | PageError | None:
    """One file to a Page, a PageError, or None when it is not published (draft, unlisted)."""
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
        parsed = parse_page(raw)
    except FrontmatterError as exc:
        return PageError(rel_site, "bad_frontmatter", str(exc))
    frontmatter = parsed.frontmatter
    if frontmatter.get("draft") is True or frontmatter.get("unlisted") is True:
        return None
    source = path.relative_to(root.folder).as_posix()
    if root.blog:
        slug = _blog_slug(source, frontmatter)
        fallback_title = posixpath.basename(posixpath.splitext(source)[0])
    else:
        if "/" in str(frontmatter.get("id", "")):
            return PageError(rel_site, "bad_frontmatter", "front matter id cannot hold a slash")
        slug = doc_slug(source, frontmatter)
        fallback_title = str(frontmatter.get("id", strip_number_prefix(path.stem)))
    config = facts.config
    permalink = _apply_trailing_slash(join_url_path(config.base_url, root.route, slug), config)
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
        url=origin + permalink,
        title=title,
        description=str(frontmatter.get("description") or ""),
        content_hash=hashlib.sha256(data).hexdigest(),
        sections=tuple(sections),
        keywords=_as_strings(frontmatter.get("keywords")),
        tags=_as_strings(frontmatter.get("tags")),
        version=root.version,
        locale=root.locale,
    )


def read_site(
    site_dir: Path, *, site_url: str | None = None, max_file_bytes: int = 5_000_000
) -> SiteRead:
    """Read every published doc (and blog post) of a site; bad files become PageErrors.

    ``site_url`` (e.g. "https://example.com/book/") replaces the config's url and baseUrl, for
    a site served somewhere else than its config says.
    """
    site_dir = Path(site_dir)
    facts = _read_site_facts(site_dir)
    if site_url:
        split = urlsplit(site_url)
        config = SiteConfig(
            url=f"{split.scheme}://{split.netloc}" if split.netloc else "",
            base_url=_normalize_base_url(split.path),
            trailing_slash=facts.config.trailing_slash,
            docs_route_base_path=facts.config.docs_route_base_path,
            title=facts.config.title,
        )
        facts = _SiteFacts(
            config,
            facts.docs_path,
            facts.blog_route_base_path,
            facts.blog_path,
            facts.default_locale,
        )
    site_real = site_dir.resolve()
    pages: list[Page] = []
    errors: list[PageError] = []
    for root in _content_roots(site_dir, facts):
        for path in _walk_markdown(root.folder, site_real, errors, site_dir):
            result = _read_page(path, root, site_dir, facts, facts.config.url, max_file_bytes)
            if isinstance(result, Page):
                pages.append(result)
            elif isinstance(result, PageError):
                errors.append(result)
    return SiteRead(site=facts.config, pages=pages, errors=errors)
