"""Indexes a Docusaurus site into Qdrant, incrementally: only new or changed chunks are embedded.

Each chunk's ``content_hash`` (of what is embedded) and the payload a reader sees of it (URL,
title, heading, version, locale: ``COMPARED_FIELDS``) are compared with what the store holds for
the site; unchanged chunks cost nothing but reading the page, changed ones are re-embedded and
upserted under their deterministic ids, and points of chunks or pages that are gone are deleted
(after the upserts, so a page never vanishes from search mid-run).

A full rebuild (asked for, or the first run, or a different embedder than the one the stored
vectors came from) fills a fresh physical collection and switches the alias at the end, so
readers keep the old index until the new one is complete.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ingestion_jobs import sparse
from ingestion_jobs.chunking import TokenCount, chunk_page, embedding_text, estimate_tokens
from ingestion_jobs.documents import Chunk, PageError, ReadWarning, SiteRead
from ingestion_jobs.docusaurus import read_site
from ingestion_jobs.embedding import Embedder, EmbedderChoice
from shared.vectorstore import (
    SCHEMA_VERSION,
    PointFilter,
    SparseTerms,
    StoredPoint,
    VectorStore,
    page_url_key,
    path_prefixes,
)

__all__ = [
    "IngestProgress",
    "IngestReport",
    "chunk_limits",
    "chunk_payload",
    "chunk_text_for_embedding",
    "index_chunks",
    "index_site",
]

log = logging.getLogger(__name__)

#: Chunks embedded and upserted together: bounds memory and makes progress move steadily.
UPSERT_BATCH = 64


@dataclass(frozen=True, slots=True)
class IngestProgress:
    """One step of an ingestion, for a progress bar or a job's stored progress.

    ``stage`` is ``discovered`` (pages and chunks known), ``embedded`` (``done`` of ``total``
    chunks to embed are stored) or ``indexed`` (finished).
    """

    stage: str
    done: int = 0
    total: int = 0
    pages: int = 0
    chunks: int = 0


@dataclass(slots=True)
class IngestReport:
    pages_seen: int = 0
    pages_changed: int = 0
    pages_removed: int = 0
    chunks_embedded: int = 0
    chunks_deleted: int = 0
    chunks_total: int = 0
    full_rebuild: bool = False
    collection: str = ""  # the physical collection now behind the alias
    errors: list[PageError] = field(default_factory=list)
    warnings: list[ReadWarning] = field(default_factory=list)
    seconds: float = 0.0
    # A site from git (ingestion_jobs/site_repo.py): the commit read, the repository (no
    # credentials) and the ref fetched.
    commit: str | None = None
    repo: str | None = None
    ref: str | None = None


def chunk_text_for_embedding(chunk: Chunk) -> str:
    """What is embedded (dense and sparse) for a chunk: the chunker's definition, which puts
    the breadcrumb before the text so the page and heading context count."""
    return embedding_text(chunk)


#: Chunk size when the embedder reads more (or says no limit), in its tokens: the chunker's
#: default, which the retrieval benchmark chose.
CHUNK_TOKENS = 350
#: What is embedded beyond the breadcrumb and the text: the blank line between them and the
#: tokenizer's special tokens ([CLS] ... [SEP], <s> ... </s>).
FRAME_TOKENS = 4


def chunk_limits(embedder: Embedder) -> tuple[int, TokenCount]:
    """The chunker's size bound for this embedder and how it counts: ``CHUNK_TOKENS`` of the
    embedder's own tokens, or less when it reads less (MiniLM: 256), so no chunk is cut short
    when embedded; for an embedder that states no limit, ``CHUNK_TOKENS`` as estimated."""
    if embedder.max_tokens is None:
        return CHUNK_TOKENS, estimate_tokens
    return min(CHUNK_TOKENS, embedder.max_tokens - FRAME_TOKENS), embedder.count_tokens


def chunk_payload(chunk: Chunk, site: str) -> dict[str, Any]:
    """The stored payload of a chunk (the fields of ``shared.vectorstore.PAYLOAD_FIELDS``)."""
    return {
        "site": site,
        "path": chunk.path,
        "url": chunk.url,
        "page_url": page_url_key(chunk.url),
        "heading": chunk.heading,
        "title": chunk.title,
        "breadcrumb": list(chunk.breadcrumb),
        "text": chunk.text,
        "content_hash": chunk.content_hash,
        "page_hash": chunk.page_hash,
        "version": chunk.version,
        "locale": chunk.locale,
        "language": chunk.language,
        "path_prefixes": path_prefixes(chunk.path),
    }


def _site_filter(site: str) -> PointFilter:
    return PointFilter(equal=(("site", site),))


#: The payload fields whose change rewrites a point: what is embedded (``content_hash``) and what
#: a citation shows (a new ``slug``, ``--site-url`` or heading id changes only the URL). Not
#: ``page_hash``: any edit of a page changes it, and unchanged chunks are not rewritten for it.
COMPARED_FIELDS = (
    "path",
    "content_hash",
    "url",
    "title",
    "heading",
    "version",
    "locale",
    "language",
)


def _identity(payload: Mapping[str, Any]) -> tuple[Any, ...]:
    return tuple(payload.get(name) for name in COMPARED_FIELDS)


def _stored_identities(
    store: VectorStore, collection: str, site: str
) -> dict[str, tuple[Any, ...]]:
    """point id -> the ``COMPARED_FIELDS`` (path first) of every point the site has stored."""
    return {
        point.id: _identity(point.payload)
        for point in store.scroll(collection, filter=_site_filter(site), fields=COMPARED_FIELDS)
    }


def _copy_other_sites(store: VectorStore, source: str, target: str, site: str) -> None:
    """On a rebuild with the same embedder, keeps the other sites' points (vectors included)."""
    batch: list[StoredPoint] = []
    other = PointFilter(not_equal=(("site", site),))
    for point in store.scroll(source, filter=other, vectors=True, batch=256):
        batch.append(point)
        if len(batch) == 256:
            store.upsert(target, batch)
            batch = []
    store.upsert(target, batch)


def _point(chunk: Chunk, site: str, dense: list[float]) -> StoredPoint:
    keywords = sparse.document_vector(chunk_text_for_embedding(chunk), chunk.language)
    return StoredPoint(
        id=chunk.id,
        payload=chunk_payload(chunk, site),
        dense=dense,
        sparse=SparseTerms(keywords.indices, keywords.values) if keywords.indices else None,
    )


def _same_space(store: VectorStore, collection: str, embedder: Embedder) -> bool:
    space = store.space(collection)
    return (space.embedder, space.dim) == (embedder.name, embedder.dim)


def _needs_rebuild(store: VectorStore, current: str | None, embedder: Embedder) -> bool:
    if current is None:
        return True
    if not _same_space(store, current, embedder):
        log.info("stored vectors come from another embedder: rebuilding %s", current)
        return True
    return store.space(current).schema != SCHEMA_VERSION


def index_chunks(
    chunks_by_page: Mapping[str, Sequence[Chunk]],
    *,
    store: VectorStore,
    embedder: Embedder,
    collection: str,
    site: str = "default",
    full_rebuild: bool = False,
    errors: Sequence[PageError] = (),
    progress: Callable[[IngestProgress], None] | None = None,
) -> IngestReport:
    """Brings the site's points in the ``collection`` alias in line with these chunks.

    ``chunks_by_page`` maps every page path of the site to its chunks; pages absent from it are
    removed from the index, except pages in ``errors`` (a page that failed to read this time
    keeps its old chunks rather than vanishing from search).

    ``progress`` is called before every write (each upsert batch, the deletes, the publish) and
    once at the end; an exception it raises stops the run there and propagates (the ingest job
    raises when it lost its site lock). A stopped rebuild drops its half-built collection.
    """
    started = time.perf_counter()
    notify = progress or (lambda _: None)
    report = IngestReport(pages_seen=len(chunks_by_page), errors=list(errors))
    total_chunks = sum(len(chunks) for chunks in chunks_by_page.values())
    notify(IngestProgress("discovered", pages=len(chunks_by_page), chunks=total_chunks))

    current = store.current(collection)
    rebuild = full_rebuild or _needs_rebuild(store, current, embedder)
    if rebuild:
        target = store.create(collection, dim=embedder.dim, embedder=embedder.name)
        if current is not None and _same_space(store, current, embedder):
            _copy_other_sites(store, current, target, site)
        stored: dict[str, tuple[Any, ...]] = {}
    else:
        assert current is not None  # _needs_rebuild is True without a collection
        target = current
        stored = _stored_identities(store, target, site)
    report.full_rebuild = rebuild

    wanted: dict[str, Chunk] = {}
    page_of: dict[str, str] = {}
    for path, chunks in chunks_by_page.items():
        for chunk in chunks:
            wanted[chunk.id] = chunk
            page_of[chunk.id] = path
    to_embed = [c for c in wanted.values() if stored.get(c.id) != _identity(chunk_payload(c, site))]
    changed_pages = {page_of[c.id] for c in to_embed}

    failed_paths = {error.path for error in errors}
    stale = [
        point_id
        for point_id, (path, *_) in stored.items()
        if point_id not in wanted and path not in failed_paths
    ]
    for path in {stored[point_id][0] for point_id in stale}:
        if path in chunks_by_page:
            changed_pages.add(path)
        else:
            report.pages_removed += 1

    try:
        notify(IngestProgress("embedded", done=0, total=len(to_embed)))
        for start in range(0, len(to_embed), UPSERT_BATCH):
            batch = to_embed[start : start + UPSERT_BATCH]
            vectors = embedder.embed_passages([chunk_text_for_embedding(c) for c in batch])
            store.upsert(target, [_point(c, site, v) for c, v in zip(batch, vectors, strict=True)])
            report.chunks_embedded += len(batch)
            notify(IngestProgress("embedded", done=report.chunks_embedded, total=len(to_embed)))
        if stale:
            store.delete(target, stale)
    except BaseException:
        if rebuild:  # never leave an orphan half-built collection behind
            store.drop(target)
        raise
    if rebuild:
        store.publish(collection, target)
    elif to_embed or stale:
        target = store.maintain(collection) or target

    report.chunks_deleted = len(stale)
    report.pages_changed = len(changed_pages)
    report.chunks_total = store.count(target, _site_filter(site))
    report.collection = target
    report.seconds = time.perf_counter() - started
    notify(IngestProgress("indexed", pages=report.pages_seen, chunks=report.chunks_total))
    return report


def index_site(
    site_dir: Path,
    *,
    store: VectorStore,
    embedder: Embedder | EmbedderChoice,
    collection: str,
    site: str = "default",
    site_url: str | None = None,
    full_rebuild: bool = False,
    progress: Callable[[IngestProgress], None] | None = None,
    on_indexed: Callable[[SiteRead], None] | None = None,
    repo_root: Path | None = None,
) -> IngestReport:
    """Reads the site, chunks every page and indexes the chunks (see ``index_chunks``).

    ``embedder`` is the embedder, or what picks it from the languages of the site's pages
    (``embedding.site_embedder``). Files that cannot be read are reported in
    ``IngestReport.errors``, not raised.
    ``on_indexed`` is handed the site as read once its chunks are indexed (the caller writes
    the page catalog from it: ``ingestion_jobs.page_catalog``); not called when indexing raised.
    ``repo_root``: the site is in this git checkout (its content folders may be anywhere in it).
    """
    started = time.perf_counter()
    read = read_site(site_dir, site_url=site_url, repo_root=repo_root)
    # Not isinstance(embedder, Embedder): on Python 3.11 that reads every property, and
    # OpenAIEmbedder.dim sends a request.
    if callable(embedder):
        chosen = embedder(frozenset(page.language for page in read.pages))
    else:
        chosen = embedder
    max_tokens, count_tokens = chunk_limits(chosen)
    chunks_by_page = {
        page.path: chunk_page(page, site=site, max_tokens=max_tokens, count_tokens=count_tokens)
        for page in read.pages
    }
    report = index_chunks(
        chunks_by_page,
        store=store,
        embedder=chosen,
        collection=collection,
        site=site,
        full_rebuild=full_rebuild,
        errors=read.errors,
        progress=progress,
    )
    report.warnings = list(read.warnings)
    if on_indexed is not None:
        on_indexed(read)
    report.seconds = time.perf_counter() - started
    return report
