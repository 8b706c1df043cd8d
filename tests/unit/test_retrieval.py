"""Hybrid search: keywords rescue identifiers, filters hold, the reader's page comes first."""

from __future__ import annotations

import pytest

from ingestion_jobs.documents import Chunk
from ingestion_jobs.embedding import HashEmbedder
from ingestion_jobs.indexer import index_chunks
from shared.vectorstore import HybridQuery, VectorStore
from tests.unit.test_indexer import make_chunk
from worker.retrieval import Retriever

ALIAS = "book"


class BlindEmbedder(HashEmbedder):
    """Dense vectors that ignore a given word, as a real model blurs a rare identifier."""

    def __init__(self, blind_to: str) -> None:
        super().__init__(64)
        self._blind_to = blind_to

    def _vector(self, text: str) -> list[float]:
        return super()._vector(text.replace(self._blind_to, " "))


def corpus() -> dict[str, list[Chunk]]:
    pages: dict[str, list[Chunk]] = {
        "docs/config.md": [
            make_chunk(
                "docs/config.md",
                "Routing options",
                "The onBrokenLinks option of the site configuration decides what happens.",
            ),
        ],
        "docs/guides/deploy.md": [
            make_chunk("docs/guides/deploy.md", "Deploy", "Deploy the site configuration output."),
            make_chunk(
                "docs/guides/deploy.md",
                "Options",
                "Site configuration options for hosts.",
                ordinal=1,
            ),
        ],
        "docs/guides/search.md": [
            make_chunk("docs/guides/search.md", "Search", "Site search configuration options."),
        ],
    }
    for i in range(12):  # filler so that dense ranking alone has competition
        path = f"docs/filler{i}.md"
        pages[path] = [make_chunk(path, "Options", f"Site configuration options number {i}.")]
    return pages


@pytest.mark.unit
def test_hybrid_finds_an_exact_identifier_that_dense_misses(store: VectorStore) -> None:
    embedder = BlindEmbedder("onBrokenLinks")
    index_chunks(corpus(), store=store, embedder=embedder, collection=ALIAS)
    query = "what does onBrokenLinks do"
    dense_query = HybridQuery(dense=embedder.embed_query(query), sparse=None, limit=3, prefetch=3)
    dense_only = store.search(ALIAS, [dense_query])[0]
    assert "docs/config.md" not in [hit.payload["path"] for hit in dense_only]
    hits = Retriever(store, embedder, ALIAS).search(query, limit=3)
    assert hits[0].path == "docs/config.md"


@pytest.mark.unit
def test_passages_carry_fused_score_and_dense_cosine(store: VectorStore) -> None:
    embedder = HashEmbedder(64)
    index_chunks(corpus(), store=store, embedder=embedder, collection=ALIAS)
    hits = Retriever(store, embedder, ALIAS).search("deploy the site configuration output")
    assert hits[0].path == "docs/guides/deploy.md"
    assert hits[0].url.endswith("#deploy")
    assert hits[0].breadcrumb == ["Deploy", "Deploy"]
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)
    assert hits[0].dense_score is not None
    assert 0.5 < hits[0].dense_score <= 1.0 + 1e-6


@pytest.mark.unit
def test_filters_on_site_folder_version_and_locale(store: VectorStore) -> None:
    embedder = HashEmbedder(64)
    index_chunks(corpus(), store=store, embedder=embedder, collection=ALIAS)
    retriever = Retriever(store, embedder, ALIAS)
    in_guides = retriever.search("site configuration options", limit=10, path_prefix="docs/guides/")
    assert {h.path for h in in_guides} == {"docs/guides/deploy.md", "docs/guides/search.md"}
    assert retriever.search("site configuration options", site="elsewhere") == []
    assert retriever.search("site configuration options", version="2.x") == []
    assert retriever.search("site configuration options", locale="fr") == []


@pytest.mark.unit
def test_prefer_path_puts_the_readers_page_first_when_relevant(store: VectorStore) -> None:
    embedder = HashEmbedder(64)
    index_chunks(corpus(), store=store, embedder=embedder, collection=ALIAS)
    retriever = Retriever(store, embedder, ALIAS)
    # A query whose plain top hit is clear (search.md); "site configuration options" ties the
    # deploy page with every filler page, and which tie an engine lists first is its own affair.
    query = "options for search"
    plain = retriever.search(query, limit=5)
    assert plain[0].path != "docs/guides/deploy.md"
    preferred = retriever.search(query, limit=5, prefer_path="docs/guides/deploy.md")
    assert preferred[0].path == "docs/guides/deploy.md"
    assert len(preferred) == 5
    assert len({h.chunk_id for h in preferred}) == 5
    # An unrelated page is not forced in front of a question about something else.
    off_topic = retriever.search(
        "what does onBrokenLinks do", limit=5, prefer_path="docs/guides/search.md"
    )
    assert off_topic[0].path == "docs/config.md"


@pytest.mark.unit
def test_search_batch_keeps_query_order(store: VectorStore) -> None:
    embedder = HashEmbedder(64)
    index_chunks(corpus(), store=store, embedder=embedder, collection=ALIAS)
    results = Retriever(store, embedder, ALIAS).search_batch(
        ["site search configuration options", "deploy the site configuration output"], limit=1
    )
    assert [r[0].path for r in results] == ["docs/guides/search.md", "docs/guides/deploy.md"]
