"""Read ``docusaurus.config.*`` into plain options: where each docs and blog instance lives.

The config is code (CommonJS, ES module, TypeScript, or a function returning the config, async
or not), so it is parsed with tree-sitter and never run: running it would need the site's
``node_modules`` and would execute the site's code. The site config is the object literal that
holds ``baseUrl`` (wherever it sits: a ``const``, ``module.exports``, ``export default``, the
body of ``export default async function``). Its values are evaluated by a small interpreter of
literals, ``const`` names, object spreads, template strings, ``require.resolve('x')``,
``process.env.X`` (always undefined: the plain production build), ``!``, ``&&``, ``||``,
``??``, ``===``/``!==``, ``+`` on strings and ``?:``. Comments (JSDoc casts like
``/** @type {...} */ ({...})``), ``as``/``satisfies`` and parentheses are seen through.

Anything else is "unknown": the option falls back to Docusaurus's default AND a
``ReadWarning(file, rule, message)`` says so, so that a URL the reader could not derive is
never silently wrong.

Options read (Docusaurus 3.x names and defaults, from ``@docusaurus/types`` ``Config``,
``preset-classic``, ``plugin-content-docs`` and ``plugin-content-blog`` option validation):
``url``, ``baseUrl``, ``trailingSlash``, ``title``, ``tagline``, ``i18n.defaultLocale``/``locales``,
``markdown.anchors.maintainCase``, ``markdown.format``, ``markdown.emoji``,
``markdown.mdx1Compat.comments`` (and ``future.v4``, which turns it off by default),
``themeConfig.prism.magicComments``; per docs instance
(preset ``docs``, or ``plugins: [['@docusaurus/plugin-content-docs' | 'content-docs', {...}]]``)
``id``, ``path``, ``routeBasePath``, ``lastVersion``, ``versions.<name>.path``,
``includeCurrentVersion``, ``onlyIncludeVersions``, ``disableVersioning``; per blog instance
``id``, ``path``, ``routeBasePath``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion_jobs.code_blocks import DEFAULT_MAGIC_COMMENTS, MagicComment
from ingestion_jobs.config_eval import (
    MAX_STEPS,
    MAX_STRING_CHARS,
    UNDEFINED,
    UNKNOWN,
    ConfigEvaluator,
)
from ingestion_jobs.documents import ReadWarning, SiteConfig

__all__ = [
    "CONFIG_NAMES",
    "BlogInstance",
    "DocsInstance",
    "SiteOptions",
    "normalize_base_url",
    "read_site_config",
    "read_site_options",
]

CONFIG_NAMES = (
    "docusaurus.config.ts",
    "docusaurus.config.mts",
    "docusaurus.config.cts",
    "docusaurus.config.js",
    "docusaurus.config.mjs",
    "docusaurus.config.cjs",
)
DEFAULT_ID = "default"


@dataclass(frozen=True, slots=True)
class DocsInstance:
    """One ``plugin-content-docs`` instance."""

    id: str = DEFAULT_ID
    path: str = "docs"
    route_base_path: str = "docs"
    last_version: str | None = None
    version_paths: dict[str, str] = field(default_factory=dict)  # version name -> URL part
    include_current_version: bool = True
    only_include_versions: tuple[str, ...] | None = None
    disable_versioning: bool = False


@dataclass(frozen=True, slots=True)
class BlogInstance:
    """One ``plugin-content-blog`` instance."""

    id: str = DEFAULT_ID
    path: str = "blog"
    route_base_path: str = "blog"


@dataclass(frozen=True, slots=True)
class SiteOptions:
    """Everything the reader needs from the config, in plain values."""

    config: SiteConfig
    config_file: str | None = None  # relative to the site root
    docs: tuple[DocsInstance, ...] = (DocsInstance(),)
    blogs: tuple[BlogInstance, ...] = (BlogInstance(),)
    default_locale: str = "en"
    locales: tuple[str, ...] = ("en",)
    anchors_maintain_case: bool = False
    magic_comments: tuple[MagicComment, ...] = DEFAULT_MAGIC_COMMENTS
    markdown_format: str = "mdx"  # markdown.format: "mdx", "md" or "detect"
    emoji: bool = True  # markdown.emoji: `:shortcode:` rendered as emoji
    # markdown.mdx1Compat.comments, default on unless future.v4 (mdx1CompatDisabledByDefault)
    mdx1_comments: bool = True
    warnings: tuple[ReadWarning, ...] = ()


def normalize_base_url(base_url: str) -> str:
    """``"book"`` -> ``"/book/"``; ``""`` -> ``"/"``."""
    return "/" + base_url.strip("/") + "/" if base_url.strip("/") else "/"


class _Options:
    """Typed reads of evaluated values that record a warning for anything unknown."""

    def __init__(self, file: str) -> None:
        self.file = file
        self.warnings: list[ReadWarning] = []

    def warn(self, rule: str, message: str) -> None:
        self.warnings.append(ReadWarning(self.file, rule, message))

    def get(self, values: Any, key: str, kind: type | tuple[type, ...], default: Any) -> Any:
        if not isinstance(values, dict):
            return default
        value = values.get(key, UNDEFINED)
        if value is UNDEFINED or value is None:
            return default
        if value is UNKNOWN or not isinstance(value, kind):
            self.warn(
                f"config.{key}",
                f"cannot evaluate `{key}` without running the config; "
                f"assumed Docusaurus's default {default!r}",
            )
            return default
        return value


_PLUGIN_NAMES = {
    "docs": ("content-docs", "@docusaurus/plugin-content-docs", "docusaurus-plugin-content-docs"),
    "blog": ("content-blog", "@docusaurus/plugin-content-blog", "docusaurus-plugin-content-blog"),
    "classic": ("classic", "@docusaurus/preset-classic", "docusaurus-preset-classic"),
}


def _plugin_name(value: Any) -> str | None:
    """The content plugin a plugin/preset name stands for: "docs", "blog", "classic" or None.

    Docusaurus resolves a short name ``x`` to ``@docusaurus/plugin-x`` or
    ``docusaurus-plugin-x`` (``preset-`` for presets); a resolved path ends with the package.
    """
    if not isinstance(value, str):
        return None
    name = value.rstrip("/").rsplit("/node_modules/", 1)[-1]
    return next((kind for kind, names in _PLUGIN_NAMES.items() if name in names), None)


def _entry(entry: Any) -> tuple[Any, Any]:
    """A plugin/preset entry (``'name'`` or ``['name', options]``) as (name, options)."""
    if isinstance(entry, list):
        return (entry[0] if entry else UNKNOWN), (entry[1] if len(entry) > 1 else {})
    return entry, {}


# Options that change which files are pages or what their URLs are, and that this reader does
# not interpret: their presence is a warning (Docusaurus's defaults are assumed).
_NOT_INTERPRETED = ("include", "exclude", "numberPrefixParser")


def _warn_not_interpreted(kind: str, options: dict[str, Any], reader: _Options) -> None:
    for key in _NOT_INTERPRETED:
        if key in options:
            reader.warn(
                f"config.{kind}.{key}",
                f"the {kind} option `{key}` is not interpreted; Docusaurus's default assumed",
            )


def _docs_instance(options: dict[str, Any], reader: _Options) -> DocsInstance:
    _warn_not_interpreted("docs", options, reader)
    versions = reader.get(options, "versions", dict, {})
    paths = {
        str(name): value["path"]
        for name, value in versions.items()
        if isinstance(value, dict) and isinstance(value.get("path"), str)
    }
    only = reader.get(options, "onlyIncludeVersions", list, None)
    return DocsInstance(
        id=reader.get(options, "id", str, DEFAULT_ID),
        path=reader.get(options, "path", str, "docs"),
        route_base_path=reader.get(options, "routeBasePath", str, "docs"),
        last_version=reader.get(options, "lastVersion", str, None),
        version_paths=paths,
        include_current_version=reader.get(options, "includeCurrentVersion", bool, True),
        only_include_versions=tuple(str(v) for v in only) if only is not None else None,
        disable_versioning=reader.get(options, "disableVersioning", bool, False),
    )


def _blog_instance(options: dict[str, Any], reader: _Options) -> BlogInstance:
    _warn_not_interpreted("blog", options, reader)
    return BlogInstance(
        id=reader.get(options, "id", str, DEFAULT_ID),
        path=reader.get(options, "path", str, "blog"),
        route_base_path=reader.get(options, "routeBasePath", str, "blog"),
    )


def _content_instances(
    values: dict[str, Any], reader: _Options
) -> tuple[list[DocsInstance], list[BlogInstance]]:
    docs: list[DocsInstance] = []
    blogs: list[BlogInstance] = []
    for entry in reader.get(values, "presets", list, []):
        name, options = _entry(entry)
        kind = _plugin_name(name)
        if kind != "classic":
            if name is UNKNOWN:
                reader.warn("config.presets", "a preset the reader cannot evaluate is ignored")
            continue
        options = options if isinstance(options, dict) else {}
        for key in ("docs", "blog"):
            value = options.get(key, UNDEFINED)
            if value is False:
                continue
            if value is UNKNOWN:
                reader.warn(f"config.presets.{key}", f"cannot evaluate the preset's `{key}`")
            if key == "docs":
                docs.append(_docs_instance(value if isinstance(value, dict) else {}, reader))
            else:
                blogs.append(_blog_instance(value if isinstance(value, dict) else {}, reader))
    for entry in reader.get(values, "plugins", list, []):
        name, options = _entry(entry)
        kind = _plugin_name(name)
        if name is UNKNOWN:
            reader.warn(
                "config.plugins",
                "a plugin the reader cannot evaluate is ignored; if it serves docs or a blog, "
                "their pages are not indexed",
            )
        if kind == "docs":
            docs.append(_docs_instance(options if isinstance(options, dict) else {}, reader))
        elif kind == "blog":
            blogs.append(_blog_instance(options if isinstance(options, dict) else {}, reader))
    return docs, blogs


def _magic_comments(values: dict[str, Any], reader: _Options) -> tuple[MagicComment, ...]:
    prism = reader.get(reader.get(values, "themeConfig", dict, {}), "prism", dict, {})
    configured = reader.get(prism, "magicComments", list, None)
    if configured is None:
        return DEFAULT_MAGIC_COMMENTS
    comments = []
    for item in configured:
        if not isinstance(item, dict):
            reader.warn("config.themeConfig.prism.magicComments", "an entry is not an object")
            continue
        block = item.get("block")
        block = block if isinstance(block, dict) else {}
        line, start, end = item.get("line"), block.get("start"), block.get("end")
        comments.append(
            MagicComment(
                line if isinstance(line, str) else None,
                start if isinstance(start, str) else None,
                end if isinstance(end, str) else None,
            )
        )
    return tuple(comments)


def read_site_options(site_dir: Path) -> SiteOptions:
    """Read the site's config file; a site with none gets Docusaurus's defaults.

    Never raises for a config it does not understand: the unknown parts are in ``warnings``.
    """
    config_file = next((site_dir / n for n in CONFIG_NAMES if (site_dir / n).is_file()), None)
    if config_file is None:
        return SiteOptions(
            SiteConfig(url="", base_url="/", trailing_slash=None),
            warnings=(ReadWarning("", "config.missing", "no docusaurus.config.* found"),),
        )
    reader = _Options(config_file.name)
    evaluator = ConfigEvaluator(
        config_file.read_bytes().removeprefix(b"\xef\xbb\xbf"),  # a BOM, as Node drops it
        typescript=config_file.suffix in {".ts", ".mts", ".cts"},
    )
    node = evaluator.config_object()
    if node is None:
        reader.warn("config.object", "no object with `baseUrl` found; Docusaurus defaults used")
    values = evaluator.object_value(node) if node is not None else {}
    if evaluator.exhausted:
        reader.warn(
            "config.budget",
            f"evaluating the config took over {MAX_STEPS} steps or built a string over "
            f"{MAX_STRING_CHARS} characters; the values past that are read as unknown",
        )
    docs, blogs = _content_instances(values, reader)
    if not reader.get(values, "presets", list, []) and not reader.get(values, "plugins", list, []):
        reader.warn(
            "config.presets",
            "the config names no preset or content plugin; read as the classic preset's "
            "defaults (docs/ at /docs, blog/ at /blog)",
        )
        docs, blogs = [DocsInstance()], [BlogInstance()]
    i18n = reader.get(values, "i18n", dict, {})
    default_locale = reader.get(i18n, "defaultLocale", str, "en")
    for locale, locale_config in reader.get(i18n, "localeConfigs", dict, {}).items():
        if isinstance(locale_config, dict) and {"path", "baseUrl", "url"} & set(locale_config):
            reader.warn(
                "config.i18n.localeConfigs",
                f"{locale}: a locale's own path/baseUrl/url is not interpreted; "
                "i18n/<locale> and the /<locale>/ prefix are assumed",
            )
    locales = reader.get(i18n, "locales", list, [default_locale])
    markdown = reader.get(values, "markdown", dict, {})
    anchors = reader.get(markdown, "anchors", dict, {})
    markdown_format = reader.get(markdown, "format", str, "mdx")
    future_v4 = (
        values.get("future", {}).get("v4") if isinstance(values.get("future"), dict) else None
    )
    v4_default = (
        reader.get(future_v4, "mdx1CompatDisabledByDefault", bool, False)
        if isinstance(future_v4, dict)
        else future_v4 is True
    )
    mdx1_comments = reader.get(
        reader.get(markdown, "mdx1Compat", dict, {}), "comments", bool, not v4_default
    )
    if markdown_format not in {"mdx", "md", "detect"}:
        reader.warn("config.markdown.format", f"unknown format {markdown_format!r}; 'mdx' assumed")
        markdown_format = "mdx"
    site = SiteConfig(
        url=reader.get(values, "url", str, "").rstrip("/"),
        base_url=normalize_base_url(reader.get(values, "baseUrl", str, "/")),
        trailing_slash=reader.get(values, "trailingSlash", bool, None),
        docs_route_base_path=next((d.route_base_path for d in docs if d.id == DEFAULT_ID), "docs"),
        title=reader.get(values, "title", str, ""),
        tagline=reader.get(values, "tagline", str, ""),
    )
    return SiteOptions(
        config=site,
        config_file=config_file.name,
        docs=tuple(docs),
        blogs=tuple(blogs),
        default_locale=default_locale,
        locales=tuple(str(locale) for locale in locales if isinstance(locale, str)),
        anchors_maintain_case=reader.get(anchors, "maintainCase", bool, False),
        magic_comments=_magic_comments(values, reader),
        markdown_format=markdown_format,
        emoji=reader.get(markdown, "emoji", bool, True),
        mdx1_comments=mdx1_comments,
        warnings=tuple(reader.warnings),
    )


def read_site_config(site_dir: Path) -> SiteConfig:
    """Read url, baseUrl, trailingSlash, title and the docs routeBasePath from the config.

    A site with no config file gets url "", baseUrl "/" and Docusaurus's defaults.
    """
    return read_site_options(site_dir).config
