"""/llms.txt, /llms-full.txt, the `.md` pages and GET /v1/page, checked against the index an
ingestion built: a versioned site with two more docs instances (tests/docusaurus/sites/
ts-versions), indexed as `bookchat ingest` indexes it (page catalog included), served by the
real API over HTTP (no worker: these read the catalog, not the queue)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import httpx
import pytest
import redis

from cli.embedded import migrate_embedded
from cli.progress import ingest_with_progress
from shared.settings import EmbedderKind, Settings
from shared.vectorstore import open_store
from tests.conftest import ROOT
from tests.stack import api_only

pytestmark = pytest.mark.integration

SITE = ROOT / "tests" / "docusaurus" / "sites" / "ts-versions"
LINK = re.compile(r"^- \[(?P<title>[^\]]+)\]\((?P<url>[^)]+)\)", re.MULTILINE)


def _links(http: httpx.Client, query: str = "") -> list[tuple[str, str]]:
    response = http.get(f"/llms.txt{query}")
    assert response.status_code == 200, response.text
    return [(m["title"], m["url"]) for m in LINK.finditer(response.text)]


def _indexed_pages(settings: Settings) -> set[str]:
    store = open_store(settings)
    try:
        return {
            point.payload["page_url"]
            for point in store.scroll(settings.collection, fields=["page_url"])
        }
    finally:
        store.close()


@pytest.fixture
def settings(tmp_path: Path, redis_url: str) -> Settings:
    redis.Redis.from_url(redis_url).flushdb()  # no rate-limit count left by an earlier test
    site = tmp_path / "site"
    shutil.copytree(SITE, site, ignore=shutil.ignore_patterns("node_modules", "build"))
    settings = Settings(
        data_dir=tmp_path / "data",
        redis_url=redis_url,
        embedder=EmbedderKind.HASH,
        secret_key="llms-test-secret-0123456789",  # type: ignore[arg-type]
        site_dir=site,
    )
    migrate_embedded(settings)  # as `bookchat dev` does before it serves
    return settings


def test_llms_txt_lists_every_indexed_page_once_by_version(settings: Settings) -> None:
    assert settings.site_dir is not None
    with api_only(settings) as http:
        before = http.get("/llms.txt")
        ingest_with_progress(settings, settings.site_dir, site_url=None, full_rebuild=False)
        default = _links(http)
        current = _links(http, "?version=current")
        legacy = _links(http, "?version=1.0")
        manual = _links(http, "?version=1.x")
        unknown = http.get("/llms.txt?version=9.9")
        every_link = [url for _, url in default + current + legacy]
        pages = {url: http.get(url) for url in every_link}
        full = http.get("/llms-full.txt").text
        by_anchor = http.get("/v1/page", params={"ref": "/docs/legacy/codes#anything"})
        by_path = http.get("/v1/page", params={"ref": "versioned_docs/version-2.0/codes.md"})
        missing = http.get("/v1/page", params={"ref": "/docs/no-such-page"})
        indexed = _indexed_pages(settings)

        # A page removed from the site leaves the catalog with the next ingestion.
        (settings.site_dir / "manual" / "operating.md").unlink()
        ingest_with_progress(settings, settings.site_dir, site_url=None, full_rebuild=False)
        after_removal = _links(http)

    assert before.status_code == 404
    assert before.json()["code"] == "index_empty"

    # What a reader sees by default: the docs root's version (2.0), the tools instance's only
    # version, the manual's current (its lastVersion). Each page once.
    assert sorted(title for title, _ in default) == [
        "Codes in release 2.0",
        "Lamp tester",
        "Operating the lamp (current)",
        "Signal codes",
    ]
    for listing in (default, current, legacy):
        assert len(listing) == len(set(listing))
    assert sorted(title for title, _ in current) == [
        "Codes in the next release",
        "Comment ids in CommonMark",
        "Comment ids in MDX",
        "Operating the lamp (current)",
        "Shortcodes as written",
    ]
    assert [title for title, _ in legacy] == ["Codes in release 1.0"]
    assert unknown.status_code == 404
    assert unknown.json()["code"] == "page_not_found"

    # Every link is a page's Markdown, headed by that page's title.
    for title, url in default + current + legacy:
        response = pages[url]
        assert response.status_code == 200, (url, response.text)
        assert response.headers["content-type"].startswith("text/markdown")
        assert response.text.startswith(f"# {title}\n"), url

    # The catalog and the vector index hold the same pages (every version and instance).
    listed = set(re.findall(r"^url: (\S+)$", full, re.MULTILINE))
    assert len(re.findall(r"^url: ", full, re.MULTILINE)) == len(listed) == 4
    catalog_urls = {by_anchor.json()["url"], by_path.json()["url"], *listed}
    assert catalog_urls <= indexed
    # Every indexed page is in the listing of its version (the manual's current is the
    # default listing's too).
    all_versions = {url for listing in (default, current, legacy, manual) for _, url in listing}
    assert len(all_versions) == len(indexed) == 10
    assert [title for title, _ in manual] == ["Operating the lamp (1.x)"]

    assert by_anchor.json()["title"] == "Codes in release 1.0"
    assert by_anchor.json()["version"] == "1.0"
    assert by_path.json()["url"] == "https://codes.example.com/docs/codes"
    assert missing.status_code == 404
    assert missing.json()["code"] == "page_not_found"
    assert "Operating the lamp (current)" not in {title for title, _ in after_removal}
