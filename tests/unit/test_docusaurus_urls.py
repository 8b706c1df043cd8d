"""URL rules of the Docusaurus reader, on tmp fixtures, the sample site and both real corpora."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ingestion_jobs.chunking import chunk_page
from ingestion_jobs.docusaurus import doc_slug, read_site, read_site_config, strip_number_prefix

pytestmark = pytest.mark.unit

REPO = Path(__file__).resolve().parents[2]
SAMPLE = REPO / "examples" / "sample-site"
CORPORA = REPO.parent / "shared" / "corpora"
EVAL = REPO.parent / "shared" / "eval"


def make_site(root: Path, files: dict[str, str], config: str | None = None) -> Path:
    config = config or "module.exports = {url: 'https://ex.com', baseUrl: '/'};"
    root.mkdir(parents=True, exist_ok=True)
    (root / "docusaurus.config.js").write_text(config)
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def urls(site: Path, site_url: str | None = None) -> dict[str, str]:
    return {page.path: page.url for page in read_site(site, site_url=site_url).pages}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("01-intro", "intro"),
        ("1_intro", "intro"),
        ("003 - intro", "intro"),
        ("1.2-intro", "1.2-intro"),  # version-like: kept
        ("2021-05-intro", "2021-05-intro"),  # date-like: kept
        ("01-", "01-"),
        ("intro", "intro"),
        ("4.2-locomotion", "4.2-locomotion"),
    ],
)
def test_number_prefix(name: str, expected: str) -> None:
    assert strip_number_prefix(name) == expected


@pytest.mark.parametrize(
    ("source", "frontmatter", "expected"),
    [
        ("01-guides/02-setup.md", {}, "/guides/setup"),
        ("01-guides/02-setup.md", {"id": "install"}, "/guides/install"),
        ("01-guides/02-setup.md", {"slug": "/top"}, "/top"),
        ("01-guides/02-setup.md", {"slug": "other"}, "/guides/other"),
        ("01-guides/02-setup.md", {"slug": "../up"}, "/up"),
        ("01-guides/index.md", {}, "/guides/"),
        ("guides/README.md", {}, "/guides/"),
        ("guides/Guides.mdx", {}, "/guides/"),
        ("index.md", {}, "/"),
        ("01-guides/02-setup.md", {"parse_number_prefixes": False}, "/01-guides/02-setup"),
    ],
)
def test_doc_slug(source: str, frontmatter: dict[str, object], expected: str) -> None:
    assert doc_slug(source, frontmatter) == expected


def test_trailing_slash_modes(tmp_path: Path) -> None:
    files = {"docs/a/index.md": "# A\n\nx", "docs/a/b.md": "# B\n\nx"}
    for mode, index_url, page_url in [
        ("undefined", "https://ex.com/docs/a/", "https://ex.com/docs/a/b"),
        ("true", "https://ex.com/docs/a/", "https://ex.com/docs/a/b/"),
        ("false", "https://ex.com/docs/a", "https://ex.com/docs/a/b"),
    ]:
        site = make_site(
            tmp_path / mode,
            files,
            f"export default {{url: 'https://ex.com/', baseUrl: '/', trailingSlash: {mode}}};",
        )
        got = urls(site)
        assert got["docs/a/index.md"] == index_url
        assert got["docs/a/b.md"] == page_url


def test_route_base_path_root_and_base_url(tmp_path: Path) -> None:
    config = """
    const config = {
      url: 'https://ex.com', baseUrl: '/book/', trailingSlash: false,
      presets: [['classic', ({docs: {routeBasePath: '/'}})]],
    };
    export default config;
    """
    site = make_site(tmp_path, {"docs/index.md": "hi", "docs/x.md": "hi"}, config)
    got = urls(site)
    # The baseUrl itself keeps its trailing slash whatever trailingSlash says.
    assert got == {"docs/index.md": "https://ex.com/book/", "docs/x.md": "https://ex.com/book/x"}
    override = urls(site, site_url="https://other.org/manual")
    assert override["docs/x.md"] == "https://other.org/manual/x"


def test_drafts_unlisted_and_underscore_files_are_not_pages(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        {
            "docs/ok.md": "text",
            "docs/draft.md": "---\ndraft: true\n---\ntext",
            "docs/hidden.md": "---\nunlisted: true\n---\ntext",
            "docs/_partial.mdx": "text",
            "docs/_folder/page.md": "text",
        },
    )
    assert list(urls(site)) == ["docs/ok.md"]


def test_config_typescript_with_env_and_function(tmp_path: Path) -> None:
    (tmp_path / "docusaurus.config.ts").write_text(
        """
        import type {Config} from '@docusaurus/types';
        const baseUrl = process.env.BASE_URL ?? '/site/';
        const isPreview = !!process.env.NETLIFY && process.env.CONTEXT === 'deploy-preview';
        export default async function createConfig(): Promise<Config> {
          return {
            title: 'T', url: 'https://t.dev', baseUrl, trailingSlash: isPreview,
            plugins: [['@docusaurus/plugin-content-docs', {id: 'community', routeBasePath: 'c'}]],
            presets: [['classic', {docs: {routeBasePath: 'guide'}} satisfies object]],
          } as Config;
        }
        """
    )
    config = read_site_config(tmp_path)
    assert (config.url, config.base_url, config.trailing_slash) == (
        "https://t.dev",
        "/site/",
        False,
    )
    assert (config.docs_route_base_path, config.title) == ("guide", "T")


def test_versions_i18n_and_blog(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        {
            "versions.json": json.dumps(["2.0", "1.0"]),
            "docs/a.md": "x",
            "versioned_docs/version-2.0/a.md": "x",
            "versioned_docs/version-1.0/a.md": "x",
            "i18n/fr/docusaurus-plugin-content-docs/current/a.md": "x",
            "blog/2024-03-05-launch.md": "---\ntitle: Launch\n---\nx",
            "blog/2024-04-01-party/index.md": "x",
            "blog/other.md": "---\nslug: custom\n---\nx",
        },
        config="module.exports = {url: 'https://ex.com', baseUrl: '/', presets: [['classic', {}]],"
        " i18n: {defaultLocale: 'en', locales: ['en', 'fr']}};",
    )
    read = read_site(site)
    got = {(p.path, p.version, p.locale): p.url for p in read.pages}
    assert got[("docs/a.md", None, None)] == "https://ex.com/docs/next/a"
    assert got[("versioned_docs/version-2.0/a.md", "2.0", None)] == "https://ex.com/docs/a"
    assert got[("versioned_docs/version-1.0/a.md", "1.0", None)] == "https://ex.com/docs/1.0/a"
    fr = ("i18n/fr/docusaurus-plugin-content-docs/current/a.md", None, "fr")
    assert got[fr] == "https://ex.com/fr/docs/next/a"
    assert got[("blog/2024-03-05-launch.md", None, None)] == "https://ex.com/blog/2024/03/05/launch"
    party = ("blog/2024-04-01-party/index.md", None, None)
    assert got[party] == "https://ex.com/blog/2024/04/01/party"
    assert got[("blog/other.md", None, None)] == "https://ex.com/blog/custom"


def test_file_errors_are_reported_and_the_run_goes_on(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        {"docs/ok.md": "fine", "docs/bad-yaml.md": "---\ntitle: [unclosed\n---\nx"},
    )
    (site / "docs" / "latin1.md").write_bytes("caf\xe9".encode("latin-1"))
    (site / "docs" / "binary.md").write_bytes(b"\x89PNG\x00\x00")
    (site / "docs" / "big.md").write_text("x" * 2000)
    outside = tmp_path.parent / f"{tmp_path.name}-outside.md"
    outside.write_text("secret")
    (site / "docs" / "escape.md").symlink_to(outside)
    (site / "docs" / "loop").symlink_to(site / "docs")  # a cycle: must not recurse forever
    read = read_site(site, max_file_bytes=1000)
    assert [p.path for p in read.pages] == ["docs/ok.md"]
    codes = {e.path: e.code for e in read.errors}
    assert codes == {
        "docs/bad-yaml.md": "bad_frontmatter",
        "docs/big.md": "too_large",
        "docs/binary.md": "binary",
        "docs/escape.md": "outside_site",
        "docs/latin1.md": "invalid_utf8",
    }


def test_sample_site() -> None:
    read = read_site(SAMPLE)
    assert read.errors == []
    base = "https://lumen.example.org/lumen/manual"
    got = {p.path: p.url for p in read.pages}
    assert got == {
        "docs/01-getting-started/01-installation.mdx": f"{base}/getting-started/installation",
        "docs/01-getting-started/02-first-move.md": f"{base}/getting-started/first-move",
        "docs/02-guides/01-motion/01-trajectories.md": f"{base}/guides/motion/trajectory-planning",
        "docs/02-guides/02-safety.md": f"{base}/safety",
        "docs/02-guides/index.md": f"{base}/guides",
        "docs/index.md": base,
    }
    titles = {p.path: p.title for p in read.pages}
    assert titles["docs/01-getting-started/01-installation.mdx"] == "Installing Lumen"
    assert titles["docs/02-guides/index.md"] == "Guides"


# --- the two real corpora (read at run time, never copied) ----------------------------------


def corpus(name: str) -> Path:
    path = CORPORA / name
    if not path.is_dir():
        pytest.skip(f"corpus {name} not present")
    return path


@pytest.mark.parametrize("name", ["docusaurus-docs", "physical-ai-book"])
def test_corpus_reads_cleanly_and_every_page_chunks(name: str) -> None:
    read = read_site(corpus(name))
    assert read.errors == []
    assert len(read.pages) > 80
    for page in read.pages:
        assert chunk_page(page), page.path


def test_docusaurus_corpus_known_urls_and_anchors() -> None:
    read = read_site(corpus("docusaurus-docs"))
    assert read.site.url == "https://docusaurus.io"
    assert read.site.trailing_slash is False  # `isDeployPreview` is false in production
    pages = {p.path: p for p in read.pages}
    assert pages["docs/cli.mdx"].url == "https://docusaurus.io/docs/cli"
    assert pages["docs/introduction.mdx"].url == "https://docusaurus.io/docs"  # slug: /
    assert pages["docs/guides/docs/sidebar/index.mdx"].url == "https://docusaurus.io/docs/sidebar"
    assert pages["docs/i18n/i18n-introduction.mdx"].url.endswith("/docs/i18n/introduction")
    intro = {s.heading: s.anchor for s in pages["docs/introduction.mdx"].sections}
    assert intro["Fast Track ⏱️"] == "fast-track"  # explicit {#fast-track}
    cli = {s.heading: s.anchor for s in pages["docs/cli.mdx"].sections}
    assert cli["docusaurus start [siteDir]"] == "docusaurus-start-sitedir"


def test_physical_ai_corpus_known_urls() -> None:
    read = read_site(corpus("physical-ai-book"))
    base = "https://abduIIahKhaIid.github.io/physical-ai-robotics-textbook"
    pages = {p.path: p for p in read.pages}
    assert pages["docs/syllabus.md"].url == f"{base}/docs/syllabus"
    assert pages["docs/module-4/index.md"].url == f"{base}/docs/module-4"
    lab = "docs/module-4/4.2-locomotion-manipulation/dexterous-manipulation.md"
    assert (
        pages[lab].url == f"{base}/docs/module-4/4.2-locomotion-manipulation/dexterous-manipulation"
    )
    anchors = {s.heading: s.anchor for s in pages["docs/syllabus.md"].sections}
    assert anchors["Weekly Structure"] == "weekly-structure"


@pytest.mark.parametrize(
    ("name", "questions"),
    [
        ("docusaurus-docs", "dev-questions-docusaurus.jsonl"),
        ("physical-ai-book", "dev-questions-physical-ai.jsonl"),
    ],
)
def test_eval_expected_headings_are_chunk_headings(name: str, questions: str) -> None:
    """Every (expected path, expected heading) of the dev set must be a chunk's heading."""
    eval_file = EVAL / questions
    if not eval_file.is_file():
        pytest.skip("eval set not present")
    headings: dict[str, set[str]] = {}
    for page in read_site(corpus(name)).pages:
        for chunk in chunk_page(page):
            headings.setdefault(chunk.path, set()).add(chunk.heading.replace("`", ""))
    missing = []
    for line in eval_file.read_text().splitlines():
        question = json.loads(line)
        if not question.get("expected_paths") or not question.get("expected_heading"):
            continue
        wanted = question["expected_heading"].replace("`", "")
        if not any(wanted in headings.get(path, set()) for path in question["expected_paths"]):
            missing.append((question["id"], wanted))
    assert missing == []


def test_what_the_reader_cannot_interpret_is_a_warning_not_a_silent_url(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        {
            "docs/page.mdx": "import Gone from './_gone.mdx';\n\n# Page\n\n<Gone />\n",
            "i18n/de/docusaurus-plugin-content-docs/current/page.mdx": "# Seite\n",
        },
        config="const base = computeBase();\n"
        "module.exports = {url: 'https://ex.com', baseUrl: base,\n"
        "  presets: [['classic', {docs: {routeBasePath: process.env.DOCS_AT ?? 'manual'}}]],\n"
        "  plugins: [makePlugin()]};",
    )
    read = read_site(site)
    rules = {(w.path, w.rule) for w in read.warnings}
    assert ("docusaurus.config.js", "config.baseUrl") in rules
    assert ("docusaurus.config.js", "config.plugins") in rules
    assert ("docs/page.mdx", "mdx.import") in rules
    assert ("i18n/de", "i18n.locale") in rules
    # The evaluable part still counts: process.env is undefined, so `??` gives 'manual'.
    assert [p.url for p in read.pages] == ["https://ex.com/manual/page"]


def test_a_jsdoc_cast_preset_and_plugin_instances_are_read(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        {"docs/a.md": "# A", "blog/2024-01-02-b.md": "# B", "api/c.md": "# C"},
        config="module.exports = {url: 'https://ex.com', baseUrl: '/',\n"
        "  presets: [['classic', /** @type {import('x').Options} */ ({\n"
        "    docs: {routeBasePath: '/'}, // comment\n"
        "    blog: false})]],\n"
        "  plugins: [['content-docs', {id: 'api', path: 'api', routeBasePath: 'api'}]]};",
    )
    read = read_site(site)
    assert sorted(p.url for p in read.pages) == ["https://ex.com/a", "https://ex.com/api/c"]
    assert read.warnings == []


@pytest.mark.parametrize(
    ("source", "frontmatter", "expected"),
    [
        ("2024-01-02-hello.md", {}, "/2024/01/02/hello"),
        ("2023-8-9-short.md", {}, "/2023/8/9/short"),  # the date's digits as written
        ("2023-06-10-post/index.md", {}, "/2023/06/10/post"),
        ("nested/2023-07-15-under.md", {}, "/2023/07/15/nested/under"),
        ("topics/undated.mdx", {}, "/topics/undated"),
        ("topics/index.md", {}, "/topics"),
        ("x.md", {"slug": "chosen/url"}, "chosen/url"),
    ],
)
def test_blog_slugs_follow_docusaurus(
    source: str, frontmatter: dict[str, str], expected: str
) -> None:
    from ingestion_jobs.routes import blog_slug

    assert blog_slug(source, frontmatter) == expected


def test_config_evaluation_is_bounded(tmp_path: Path) -> None:
    """Issue 30: each `const` naming the one before twice doubled the work (40 of them: 2**40
    evaluations). Past MAX_STEPS the rest is unknown and the reader says so."""
    from ingestion_jobs.config_eval import MAX_STEPS
    from ingestion_jobs.site_config import read_site_options

    chain = "".join(
        f"const c{n + 1} = c{n} + c{n};\nconst l{n + 1} = [...l{n}, ...l{n}];\n" for n in range(40)
    )
    (tmp_path / "docusaurus.config.js").write_text(
        f"const c0 = 'x';\nconst l0 = ['x'];\n{chain}"
        "module.exports = {title: c40, url: 'https://t.dev', baseUrl: '/b/', presets: [],"
        " customFields: {l: l40}};\n"
    )
    options = read_site_options(tmp_path)
    assert (options.config.url, options.config.base_url) == ("https://t.dev", "/b/")
    assert options.config.title == ""  # unknown: past the budget
    assert [w.rule for w in options.warnings if w.rule == "config.budget"] == ["config.budget"]
    assert str(MAX_STEPS) in next(w.message for w in options.warnings if w.rule == "config.budget")


def test_urls_are_percent_encoded_as_the_site_serves_them(tmp_path: Path) -> None:
    site = make_site(
        tmp_path,
        {
            "docs/guides/über uns.md": "# Über\n\n## Größe des Hafens\n\nx\n",
            "docs/guides/what's-new.md": "# New\n\nx\n",
        },
    )
    read = read_site(site)
    got = {page.path: page.url for page in read.pages}
    # the build's sitemap.xml writes these (conformance fixture heading-rules)
    assert got["docs/guides/über uns.md"] == "https://ex.com/docs/guides/%C3%BCber%20uns"
    assert got["docs/guides/what's-new.md"] == "https://ex.com/docs/guides/what's-new"
    page = next(p for p in read.pages if p.path == "docs/guides/über uns.md")
    anchored = [c.url for c in chunk_page(page) if "#" in c.url]
    assert anchored == ["https://ex.com/docs/guides/%C3%BCber%20uns#gr%C3%B6%C3%9Fe-des-hafens"]


def test_a_byte_order_mark_is_tolerated_in_config_versions_and_pages(tmp_path: Path) -> None:
    bom = "\ufeff"
    site = make_site(
        tmp_path,
        {
            "versions.json": bom + json.dumps(["1.0"]),
            "docs/a.md": bom + "---\ntitle: Next\n---\nx",
            "versioned_docs/version-1.0/a.md": bom + "---\ntitle: One\n---\nx",
        },
        config=bom + "module.exports = {url: 'https://ex.com', baseUrl: '/book/',"
        " presets: [['classic', {}]]};",
    )
    read = read_site(site)
    assert not read.warnings, read.warnings
    got = {(p.path, p.title): p.url for p in read.pages}
    assert got == {
        ("docs/a.md", "Next"): "https://ex.com/book/docs/next/a",
        ("versioned_docs/version-1.0/a.md", "One"): "https://ex.com/book/docs/a",
    }


def test_a_translation_linked_outside_the_site_is_a_warning(tmp_path: Path) -> None:
    outside = tmp_path / "elsewhere.md"
    outside.write_text("# Ailleurs\n\nSECRET\n")
    site = make_site(
        tmp_path / "site",
        {"docs/a.md": "# A\n\nEnglish.\n"},
        config="module.exports = {url: 'https://ex.com', baseUrl: '/', presets: [['classic', {}]],"
        " i18n: {defaultLocale: 'en', locales: ['en', 'fr']}};",
    )
    translated = site / "i18n/fr/docusaurus-plugin-content-docs/current/a.md"
    translated.parent.mkdir(parents=True)
    translated.symlink_to(outside)
    read = read_site(site)
    assert not any("SECRET" in s.text for page in read.pages for s in page.sections)
    assert [(w.path, w.rule) for w in read.warnings] == [
        ("i18n/fr/docusaurus-plugin-content-docs/current/a.md", "content.outside_site")
    ]
