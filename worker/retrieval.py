"""Hybrid retrieval: dense (meaning) and sparse (exact words, identifiers) fused in Qdrant.

Qdrant runs both searches as prefetches and fuses them with Reciprocal Rank Fusion, so a chunk
that names the reader's identifier surfaces even when the dense model blurs it, and a paraphrase
with no shared word still finds its chunk by meaning.

RRF scores only say rank, so each passage also carries ``dense_score``, the cosine between the
query and the chunk: a number that means the same thing from one query to the next, for the
decision to decline.

``prefer_path`` / ``prefer_url`` (the page the reader is on) puts that page's best chunks first
when they are about as relevant as the best hit anywhere: "this page" questions get this page,
while a question about something else still gets the right page.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from ingestion_jobs import sparse
from ingestion_jobs.embedding import Embedder
from shared.errors import BookchatError, ErrorCode
from shared.passages import Passage
from shared.vectorstore import Hit, HybridQuery, PointFilter, SparseTerms, VectorStore, page_url_key

__all__ = ["Retriever", "SearchFilters"]

#: Candidates each side (dense, sparse) hands to the fusion.
PREFETCH_LIMIT = 40
#: A chunk of the reader's page goes first when its cosine is at most this far below the best.
PREFER_MARGIN = 0.08
#: How many chunks of the reader's page may be put first.
PREFER_MAX = 2


@dataclass(frozen=True, slots=True)
class SearchFilters:
    """Payload filters; None means "any"."""

    site: str | None = None
    path_prefix: str | None = None
    version: str | None = None
    locale: str | None = None

    def to_filter(
        self, *, path: str | None = None, page_url: str | None = None
    ) -> PointFilter | None:
        return PointFilter.where(
            site=self.site,
            version=self.version,
            locale=self.locale,
            path_prefixes=self.path_prefix.strip("/") if self.path_prefix else None,
            path=path,
            page_url=page_url_key(page_url) if page_url is not None else None,
        )


def _cosine(a: Sequence[float], b: Sequence[float]) -> float:
    # Qdrant stores cosine vectors normalised; the query vector may not be.
    dot = sum(x * y for x, y in zip(a, b, strict=False))
    norm_a = sum(x * x for x in a) ** 0.5
    norm_b = sum(y * y for y in b) ** 0.5
    return dot / (norm_a * norm_b) if norm_a and norm_b else 0.0


class Retriever:
    """Searches one collection (an alias) with one embedder. Sync: callers use a thread."""

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        collection: str,
        *,
        follow_index: Callable[[str], Embedder | None] | None = None,
    ) -> None:
        """``follow_index`` gives the embedder for an index built with another one (by its
        name), or None: ingestion chose the bundled model by the site's languages
        (``embedding.embedder_for_index``)."""
        self._store = store
        self._embedder = embedder
        self._follow_index = follow_index
        self._collection = collection
        self._space_checked = False

    def _check_space(self) -> None:
        """Once: the index's vectors must come from this process's embedder (an index built
        with another `BOOKCHAT_EMBEDDER` fails every search with a dimension error, or worse,
        answers from meaningless scores). Raises BookchatError(index_unavailable)."""
        if self._space_checked:
            return
        current = self._store.current(self._collection)
        if current is None:
            return  # no index yet: the search says so; checked once there is one
        stored = self._store.space(current).embedder
        if stored is not None and stored != self._embedder.name and self._follow_index:
            self._embedder = self._follow_index(stored) or self._embedder
        if stored is not None and stored != self._embedder.name:
            raise BookchatError(
                ErrorCode.INDEX_UNAVAILABLE,
                f"the index {self._collection!r} was built with the embedder {stored!r}, but "
                f"this process embeds with {self._embedder.name!r} (BOOKCHAT_EMBEDDER): set it "
                "back, or rebuild the index with `bookchat ingest SITE_DIR --full`",
            )
        self._space_checked = True

    def _request(
        self,
        dense: list[float],
        query: str,
        *,
        limit: int,
        query_filter: PointFilter | None,
    ) -> HybridQuery:
        keywords = sparse.query_vector(query)
        return HybridQuery(
            dense=dense,
            sparse=SparseTerms(keywords.indices, keywords.values) if keywords.indices else None,
            limit=limit,
            prefetch=PREFETCH_LIMIT,
            filter=query_filter,
        )

    def _passages(self, hits: Sequence[Hit], dense: list[float]) -> list[Passage]:
        passages = []
        for hit in hits:
            payload: dict[str, Any] = hit.payload
            passages.append(
                Passage(
                    chunk_id=hit.id,
                    path=payload.get("path", ""),
                    url=payload.get("url", ""),
                    heading=payload.get("heading", ""),
                    title=payload.get("title", ""),
                    score=hit.score,
                    dense_score=_cosine(dense, hit.dense) if hit.dense else None,
                    text=payload.get("text", ""),
                    breadcrumb=list(payload.get("breadcrumb") or []),
                    site=payload.get("site", "default"),
                    version=payload.get("version"),
                    locale=payload.get("locale"),
                    language=payload.get("language") or "en",
                )
            )
        return passages

    def search(
        self,
        query: str,
        *,
        limit: int = 5,
        site: str | None = None,
        path_prefix: str | None = None,
        prefer_path: str | None = None,
        prefer_url: str | None = None,
        version: str | None = None,
        locale: str | None = None,
    ) -> list[Passage]:
        """The ``limit`` best passages for ``query``, best first."""
        filters = SearchFilters(site=site, path_prefix=path_prefix, version=version, locale=locale)
        return self.search_batch(
            [query], limit=limit, filters=filters, prefer_path=prefer_path, prefer_url=prefer_url
        )[0]

    def search_batch(
        self,
        queries: Sequence[str],
        *,
        limit: int = 5,
        filters: SearchFilters | None = None,
        prefer_path: str | None = None,
        prefer_url: str | None = None,
    ) -> list[list[Passage]]:
        """Searches many queries in one batch to the store; one result list per query."""
        if not queries:
            return []
        self._check_space()
        filters = filters or SearchFilters()
        query_filter = filters.to_filter()
        dense_vectors = [self._embedder.embed_query(query) for query in queries]
        requests = [
            self._request(dense, query, limit=limit, query_filter=query_filter)
            for dense, query in zip(dense_vectors, queries, strict=True)
        ]
        prefer = prefer_path is not None or prefer_url is not None
        if prefer:
            page_filter = filters.to_filter(path=prefer_path, page_url=prefer_url)
            requests += [
                self._request(dense, query, limit=PREFER_MAX, query_filter=page_filter)
                for dense, query in zip(dense_vectors, queries, strict=True)
            ]
        responses = self._store.search(self._collection, requests)
        results = [
            self._passages(hits, dense)
            for hits, dense in zip(responses[: len(queries)], dense_vectors, strict=True)
        ]
        if not prefer:
            return results
        preferred = [
            self._passages(hits, dense)
            for hits, dense in zip(responses[len(queries) :], dense_vectors, strict=True)
        ]
        return [
            _prefer(result, page, limit) for result, page in zip(results, preferred, strict=True)
        ]


def _prefer(result: list[Passage], page: list[Passage], limit: int) -> list[Passage]:
    """Puts the reader's page's chunks first when they are about as relevant as the best hit."""
    best = max((p.dense_score or 0.0 for p in result), default=0.0)
    first = [p for p in page if (p.dense_score or 0.0) >= best - PREFER_MARGIN]
    if not first:
        return result
    top = max(p.score for p in result) if result else 0.0
    boosted = [
        p.model_copy(update={"score": top + (len(first) - i) * 1e-3}) for i, p in enumerate(first)
    ]
    chosen = {p.chunk_id for p in boosted}
    return (boosted + [p for p in result if p.chunk_id not in chosen])[:limit]
