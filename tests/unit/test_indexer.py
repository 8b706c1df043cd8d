"""Incremental indexing and the alias-switch rebuild, on each engine, with the hash embedder."""

from __future__ import annotations

import hashlib
import shutil
import uuid
from collections.abc import Sequence
from pathlib import Path

import pytest

from ingestion_jobs.documents import Chunk, PageError
from ingestion_jobs.embedding import HashEmbedder
from ingestion_jobs.indexer import IngestProgress, index_chunks, index_site
from shared.errors import BookchatError, ErrorCode
from shared.vectorstore import VectorStore, ensure_collection
from worker.retrieval import Retriever

ALIAS = "book"


class CountingEmbedder(HashEmbedder):
    """Counts what was embedded: the point of incremental indexing is embedding less."""

    def __init__(self, dim: int = 64) -> None:
        super().__init__(dim)
        self.embedded: list[str] = []

    def embed_passages(self, texts: Sequence[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return super().embed_passages(texts)


def make_chunk(
    path: str, heading: str, text: str, *, ordinal: int = 0, site: str = "default"
) -> Chunk:
    title = path.rsplit("/", 1)[-1].split(".")[0].title()
    breadcrumb = (title, heading)
    return Chunk(
        id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"{site}|{path}|{heading}|{ordinal}")),
        path=path,
        url=f"https://example.org/{path.split('.')[0]}#{heading.lower().replace(' ', '-')}",
        heading=heading,
        title=title,
        breadcrumb=breadcrumb,
        text=text,
        content_hash=hashlib.sha256((" > ".join(breadcrumb) + text).encode()).hexdigest(),
        page_hash=hashlib.sha256(path.encode()).hexdigest(),
    )


def make_site() -> dict[str, list[Chunk]]:
    return {
        "docs/install.md": [
            make_chunk("docs/install.md", "Requirements", "You need Node.js 18 or newer."),
            make_chunk(
                "docs/install.md", "Install", "Run npm install to add the package.", ordinal=1
            ),
        ],
        "docs/config.md": [
            make_chunk("docs/config.md", "Trailing slash", "Set trailingSlash to false."),
        ],
        "docs/deploy.md": [
            make_chunk("docs/deploy.md", "Deploy", "Deploy the build folder to any static host."),
        ],
    }


@pytest.mark.unit
def test_ensure_collection_is_idempotent(any_store: VectorStore) -> None:
    first = ensure_collection(any_store, ALIAS, dim=64, embedder="hash-64")
    assert ensure_collection(any_store, ALIAS, dim=64, embedder="hash-64") == first
    assert any_store.current(ALIAS) == first
    assert any_store.collections() == [first]


@pytest.mark.unit
def test_first_run_indexes_all_and_rerun_embeds_nothing(any_store: VectorStore) -> None:
    embedder = CountingEmbedder()
    stages: list[IngestProgress] = []
    report = index_chunks(
        make_site(), store=any_store, embedder=embedder, collection=ALIAS, progress=stages.append
    )
    assert report.full_rebuild
    assert (report.chunks_embedded, report.chunks_total, report.pages_changed) == (4, 4, 3)
    assert [s.stage for s in stages][0] == "discovered"
    assert stages[-1].stage == "indexed"
    assert any(s.stage == "embedded" and s.done == 4 and s.total == 4 for s in stages)

    embedder.embedded.clear()
    again = index_chunks(make_site(), store=any_store, embedder=embedder, collection=ALIAS)
    assert not again.full_rebuild
    assert embedder.embedded == []
    assert (again.chunks_embedded, again.chunks_deleted, again.pages_changed) == (0, 0, 0)
    assert again.chunks_total == 4


@pytest.mark.unit
def test_changed_page_reembeds_only_its_chunks(any_store: VectorStore) -> None:
    embedder = CountingEmbedder()
    index_chunks(make_site(), store=any_store, embedder=embedder, collection=ALIAS)
    embedder.embedded.clear()
    site = make_site()
    site["docs/config.md"] = [
        make_chunk("docs/config.md", "Trailing slash", "Set trailingSlash to true for folders.")
    ]
    report = index_chunks(site, store=any_store, embedder=embedder, collection=ALIAS)
    assert len(embedder.embedded) == 1
    assert "folders" in embedder.embedded[0]
    assert (report.pages_changed, report.chunks_embedded, report.chunks_deleted) == (1, 1, 0)


@pytest.mark.unit
def test_removed_page_and_chunk_vanish(any_store: VectorStore) -> None:
    embedder = CountingEmbedder()
    index_chunks(make_site(), store=any_store, embedder=embedder, collection=ALIAS)
    site = make_site()
    del site["docs/deploy.md"]
    site["docs/install.md"] = site["docs/install.md"][:1]
    report = index_chunks(site, store=any_store, embedder=embedder, collection=ALIAS)
    assert (report.pages_removed, report.chunks_deleted, report.chunks_total) == (1, 2, 2)
    hits = Retriever(any_store, embedder, ALIAS).search("deploy the build folder", limit=10)
    assert {h.path for h in hits} == {"docs/install.md", "docs/config.md"}


@pytest.mark.unit
def test_page_that_failed_to_read_keeps_its_chunks(any_store: VectorStore) -> None:
    embedder = CountingEmbedder()
    index_chunks(make_site(), store=any_store, embedder=embedder, collection=ALIAS)
    site = make_site()
    del site["docs/deploy.md"]
    error = PageError("docs/deploy.md", "bad_frontmatter", "unclosed front matter")
    report = index_chunks(
        site, store=any_store, embedder=embedder, collection=ALIAS, errors=[error]
    )
    assert report.chunks_deleted == 0
    assert report.errors == [error]
    assert report.chunks_total == 4


@pytest.mark.unit
def test_full_rebuild_swaps_alias_only_at_the_end(any_store: VectorStore) -> None:
    embedder = CountingEmbedder()
    first = index_chunks(make_site(), store=any_store, embedder=embedder, collection=ALIAS)
    retriever = Retriever(any_store, embedder, ALIAS)
    site = make_site()
    site["docs/new.md"] = [make_chunk("docs/new.md", "Brand new", "A zebra page.")]
    seen_during: list[set[str]] = []

    def watch(progress: IngestProgress) -> None:
        if progress.stage == "embedded" and progress.done:
            # Mid-rebuild, readers still search the old, complete index.
            seen_during.append({h.path for h in retriever.search("zebra page", limit=10)})
            assert any_store.current(ALIAS) == first.collection

    report = index_chunks(
        site,
        store=any_store,
        embedder=embedder,
        collection=ALIAS,
        full_rebuild=True,
        progress=watch,
    )
    assert seen_during
    assert all("docs/new.md" not in paths for paths in seen_during)
    assert report.full_rebuild
    assert report.collection != first.collection
    assert any_store.current(ALIAS) == report.collection
    assert any_store.collections() == [report.collection]
    assert retriever.search("zebra page", limit=1)[0].path == "docs/new.md"


@pytest.mark.unit
def test_other_embedder_forces_rebuild(any_store: VectorStore) -> None:
    index_chunks(make_site(), store=any_store, embedder=CountingEmbedder(64), collection=ALIAS)
    other = CountingEmbedder(32)
    report = index_chunks(make_site(), store=any_store, embedder=other, collection=ALIAS)
    assert report.full_rebuild
    assert len(other.embedded) == 4


@pytest.mark.unit
def test_sites_are_kept_apart(any_store: VectorStore) -> None:
    embedder = CountingEmbedder()
    index_chunks(make_site(), store=any_store, embedder=embedder, collection=ALIAS, site="a")
    other = {"docs/b.md": [make_chunk("docs/b.md", "B", "Site b text.", site="b")]}
    index_chunks(other, store=any_store, embedder=embedder, collection=ALIAS, site="b")
    rebuilt = index_chunks(
        make_site(),
        store=any_store,
        embedder=embedder,
        collection=ALIAS,
        site="a",
        full_rebuild=True,
    )
    assert rebuilt.chunks_total == 4
    hits = Retriever(any_store, embedder, ALIAS).search("site b text", site="b")
    assert [h.path for h in hits] == ["docs/b.md"]


@pytest.mark.unit
def test_index_site_reads_chunks_and_indexes_the_sample(
    any_store: VectorStore, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    shutil.copytree(Path(__file__).parents[2] / "examples" / "sample-site", site)
    embedder = CountingEmbedder()
    first = index_site(site, store=any_store, embedder=embedder, collection=ALIAS)
    assert first.pages_seen > 0
    assert first.chunks_embedded == first.chunks_total > 0
    page = sorted(site.joinpath("docs").rglob("*.md*"))[0]
    page.unlink()
    again = index_site(site, store=any_store, embedder=embedder, collection=ALIAS)
    assert (again.pages_removed, again.chunks_embedded) == (1, 0)
    assert again.chunks_total < first.chunks_total


@pytest.mark.unit
def test_searching_with_another_embedder_than_the_index_was_built_with_says_so(
    any_store: VectorStore,
) -> None:
    index_chunks(make_site(), store=any_store, embedder=HashEmbedder(64), collection=ALIAS)
    with pytest.raises(BookchatError) as raised:
        Retriever(any_store, HashEmbedder(32), ALIAS).search("deploy")
    assert raised.value.code == ErrorCode.INDEX_UNAVAILABLE
    assert "built with the embedder 'hash-64'" in str(raised.value)
    assert Retriever(any_store, HashEmbedder(64), ALIAS).search("deploy")


@pytest.mark.unit
def test_a_new_url_rewrites_the_points_though_the_text_is_the_same(
    any_store: VectorStore, tmp_path: Path
) -> None:
    site = tmp_path / "site"
    shutil.copytree(Path(__file__).parents[2] / "examples" / "sample-site", site)
    embedder = CountingEmbedder()
    index_site(site, store=any_store, embedder=embedder, collection=ALIAS)

    def urls() -> set[str]:
        return {str(p.payload["url"]) for p in any_store.scroll(ALIAS, fields=["url"])}

    page = site / "docs" / "02-guides" / "02-safety.md"
    page.write_text(page.read_text().replace("slug: /safety\n", "slug: /safety-rules\n"))
    moved = index_site(site, store=any_store, embedder=embedder, collection=ALIAS)
    assert moved.pages_changed == 1
    assert moved.chunks_embedded > 0
    assert any("/safety-rules#" in url for url in urls())
    assert not any("/safety#" in url for url in urls())

    elsewhere = index_site(
        site, store=any_store, embedder=embedder, collection=ALIAS, site_url="https://new.example"
    )
    assert elsewhere.chunks_embedded == elsewhere.chunks_total
    assert all(url.startswith("https://new.example/") for url in urls())


@pytest.mark.unit
def test_a_rebuild_killed_before_its_switch_leaves_nothing_behind_after_the_next(
    any_store: VectorStore,
) -> None:
    embedder = CountingEmbedder()
    first = index_chunks(make_site(), store=any_store, embedder=embedder, collection=ALIAS)
    # A full rebuild that died mid-run: its half-built collection, never behind the alias.
    orphan = any_store.create(ALIAS, dim=embedder.dim, embedder=embedder.name)
    assert any_store.current(ALIAS) == first.collection  # readers never saw it
    report = index_chunks(
        make_site(), store=any_store, embedder=embedder, collection=ALIAS, full_rebuild=True
    )
    names = any_store.collections()
    assert orphan not in names
    assert names == [report.collection]
