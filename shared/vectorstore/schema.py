"""The one schema and the one interface of the vector store, whichever engine is behind it.

Each point is one chunk: a named dense vector ``dense`` (cosine) and a named sparse vector
``sparse`` whose IDF the engine computes (``Modifier.IDF``), so we only send term frequencies.
Payload fields are in ``PAYLOAD_FIELDS``; the ones search filters on and the indexer scrolls by
(``INDEXED_FIELDS``) carry keyword payload indexes.

Readers and writers name a collection by its *alias* (``settings.collection``). The physical
collection behind it is ``<alias>_<timestamp>``: a full rebuild fills a fresh one and then
``publish`` repoints the alias at once, so a reader never sees a half-built index. A Qdrant
server does this with its aliases; the embedded engine (Qdrant Edge) with a pointer file.

Hybrid search is one shape on both engines: a dense and a sparse prefetch, fused by the engine
with Reciprocal Rank Fusion at ``RRF_K``. Fused scores tie often (the first of the dense list and
the first of the sparse list score the same; so do ranks (4, 38) and (6, 13) at k=2), and an
engine orders tied hits as it likes, also across the cut at ``limit``. So each search asks for
the whole fused list (ids and scores only), orders it by (score, id), keeps ``limit`` and then
reads those points' payloads: the same question gets the same passages in the same order from
either engine.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Protocol
from urllib.parse import unquote

from shared.errors import BookchatError
from shared.url_encoding import encode_url_path

__all__ = [
    "DENSE",
    "INDEXED_FIELDS",
    "PAYLOAD_FIELDS",
    "RRF_K",
    "SCHEMA_VERSION",
    "SPARSE",
    "SCORE_DECIMALS",
    "CollectionSpace",
    "Hit",
    "HybridQuery",
    "PointFilter",
    "SparseTerms",
    "StoreLockedError",
    "StoredPoint",
    "VectorStore",
    "assemble_hits",
    "fused_limit",
    "is_older_sibling",
    "new_collection_name",
    "order_hits",
    "page_url_key",
    "path_prefixes",
]

DENSE: Final = "dense"
SPARSE: Final = "sparse"
PAYLOAD_FIELDS: Final = (
    "site",
    "path",
    "url",
    "page_url",  # the page's URL without #anchor: how a reader's current page is found
    "heading",
    "title",
    "breadcrumb",
    "text",
    "content_hash",
    "page_hash",
    "version",
    "locale",
    "language",  # ISO 639-1 of the page's locale: how its text was tokenized
    "path_prefixes",  # the path's folders and the path itself: lets search filter by folder
)
INDEXED_FIELDS: Final = (
    "site",
    "path",
    "page_url",
    "version",
    "locale",
    "page_hash",
    "path_prefixes",
)
#: Bumped when the payload or vector layout changes; the indexer rebuilds on a mismatch.
# 2 added `page_url`, so the reader's current page can rank first; 3 tokenizes the sparse vectors
# in the page's language (CJK bigrams, per-language stems) and stores `language`.
SCHEMA_VERSION: Final = 3

#: RRF's constant: a hit at 0-based rank r in one list adds 1 / (r + RRF_K). 2 is the Qdrant
#: server's default (and qdrant-client's `DEFAULT_RANKING_CONSTANT_K`); Qdrant Edge has no
#: default and is given it explicitly, so both engines fuse identically.
RRF_K: Final = 2
#: Fused scores equal to this many decimals are ties. Qdrant (server and Edge) fuses in f32,
#: qdrant-client's local mode in f64: the same tie may differ in the last bits.
SCORE_DECIMALS: Final = 6


class StoreLockedError(BookchatError):
    """The embedded store is open in another process (only one process may open it)."""


def page_url_key(url: str) -> str:
    """A page URL as stored in `page_url` and looked up from a reader's `page_url`: no
    fragment, no query, no trailing slash (Docusaurus may serve both forms), percent-encoded
    one way whether it came encoded (a browser's `location.href`, our citations) or not."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    base = encode_url_path(unquote(base))
    return base.rstrip("/") or base


def path_prefixes(path: str) -> list[str]:
    """``docs/a/b.md`` -> ``["docs", "docs/a", "docs/a/b.md"]``: what a folder filter matches."""
    parts = path.strip("/").split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


@dataclass(frozen=True, slots=True)
class PointFilter:
    """Payload conditions that must all hold: ``key == value`` for each of ``equal`` (a list
    field matches when it contains the value) and ``key != value`` for each of ``not_equal``."""

    equal: tuple[tuple[str, str], ...] = ()
    not_equal: tuple[tuple[str, str], ...] = ()

    @classmethod
    def where(cls, **equal: str | None) -> PointFilter | None:
        """A filter of the given ``key=value`` conditions, ``None`` values left out; ``None``
        when nothing is left (no filter)."""
        conditions = tuple((key, value) for key, value in equal.items() if value is not None)
        return cls(equal=conditions) if conditions else None


@dataclass(frozen=True, slots=True)
class SparseTerms:
    """A sparse vector: term ids (uint32 hashes) and their weights, same length."""

    indices: list[int]
    values: list[float]


@dataclass(frozen=True, slots=True)
class StoredPoint:
    """One chunk as stored. ``dense`` is empty and ``sparse`` None when read without vectors."""

    id: str
    payload: dict[str, Any]
    dense: list[float] = field(default_factory=list)
    sparse: SparseTerms | None = None


@dataclass(frozen=True, slots=True)
class HybridQuery:
    """One hybrid search: the ``prefetch`` best by ``dense`` and by ``sparse`` (when given),
    both under ``filter``, fused by RRF; the ``limit`` best fused hits are returned."""

    dense: list[float]
    sparse: SparseTerms | None
    limit: int
    prefetch: int
    filter: PointFilter | None = None


@dataclass(frozen=True, slots=True)
class Hit:
    """A fused search hit: RRF ``score``, the full payload and the stored (normalised) dense
    vector."""

    id: str
    score: float
    payload: dict[str, Any]
    dense: list[float] | None


@dataclass(frozen=True, slots=True)
class CollectionSpace:
    """What a physical collection holds: which embedder's vectors, of which size, in which
    schema version. Two models can share a size (MiniLM and e5-small are both 384-d), so the
    embedder's name, not the size, says whether stored vectors compare with a new query's."""

    embedder: str | None
    dim: int | None
    schema: int | None


def new_collection_name(alias: str) -> str:
    """``<alias>_<UTC yyyymmddHHMMSS>_<ns>``: names of one alias sort in creation order (so
    orphans are found by being older than the collection a rebuild switches to)."""
    now_ns = time.time_ns()
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now_ns // 1_000_000_000))
    return f"{alias}_{stamp}_{now_ns % 1_000_000_000:09d}"


_STAMP = re.compile(r"\d{14}_\d{9}")  # what `new_collection_name` puts after "<alias>_"


def is_older_sibling(name: str, alias: str, current: str) -> bool:
    """Whether ``name`` is a physical collection of ``alias`` created before ``current``: the
    alias, then exactly a ``new_collection_name`` stamp (so alias ``book`` never claims the
    collections of an alias ``book_1``)."""
    prefix = f"{alias}_"
    stamp = name[len(prefix) :]
    return (
        name.startswith(prefix)
        and name != current
        and _STAMP.fullmatch(stamp) is not None
        and stamp < current[len(prefix) :]
    )


def order_hits(hits: Sequence[Hit], limit: int) -> list[Hit]:
    """The ``limit`` best hits by (score desc, id): ties ordered the same on every engine."""
    return sorted(hits, key=lambda hit: (-round(hit.score, SCORE_DECIMALS), hit.id))[:limit]


def fused_limit(query: HybridQuery) -> int:
    """How many fused hits make the whole fused list: every candidate of every prefetch."""
    return query.prefetch * (2 if query.sparse is not None and query.sparse.indices else 1)


def assemble_hits(
    queries: Sequence[HybridQuery],
    fused: Sequence[Sequence[tuple[str, float]]],
    fetch: Callable[[list[str]], dict[str, tuple[dict[str, Any], list[float] | None]]],
) -> list[list[Hit]]:
    """Orders each query's whole fused list (id, score), keeps its ``limit`` best and reads
    their payload and dense vector with one ``fetch`` (id -> (payload, dense)) for the batch.
    A point deleted between the two reads is left out."""
    chosen = [
        order_hits([Hit(id=i, score=s, payload={}, dense=None) for i, s in pairs], query.limit)
        for pairs, query in zip(fused, queries, strict=True)
    ]
    stored = fetch(sorted({hit.id for hits in chosen for hit in hits}))
    return [
        [
            Hit(id=hit.id, score=hit.score, payload=stored[hit.id][0], dense=stored[hit.id][1])
            for hit in hits
            if hit.id in stored
        ]
        for hits in chosen
    ]


class VectorStore(Protocol):
    """A vector store: collections of ``StoredPoint`` behind aliases. Sync and thread-safe.

    Engines: ``QdrantServerStore`` (a Qdrant server or Qdrant Cloud, through qdrant-client) and
    ``EdgeStore`` (Qdrant Edge in this process, on disk). Methods raise ``BookchatError`` with
    ``INDEX_UNAVAILABLE`` for a missing collection; network errors of a server pass through.
    """

    def current(self, alias: str) -> str | None:
        """The physical collection the alias points at, or None when there is no such alias."""
        ...

    def exists(self, name: str) -> bool:
        """Whether a physical collection of this name exists (aliases do not count)."""
        ...

    def collections(self) -> list[str]:
        """Names of every physical collection."""
        ...

    def space(self, collection: str) -> CollectionSpace:
        """Embedder, dense size and schema version the collection was created with."""
        ...

    def create(self, alias: str, *, dim: int, embedder: str) -> str:
        """Creates an empty ``<alias>_<timestamp>`` collection with the schema; returns its
        name. Nothing reads it until ``publish``."""
        ...

    def publish(self, alias: str, collection: str) -> str | None:
        """Points the alias at ``collection`` at once, drops the collection it pointed at
        before (returned, for logs) and any older one of this alias that none points at (left
        by a rebuild killed before its switch)."""
        ...

    def maintain(self, alias: str) -> str | None:
        """Keeps searching the alias fast after incremental writes; call it after an
        incremental ingestion. The embedded store re-indexes a collection that took many
        writes since its HNSW build into a new collection and switches the alias to it (the
        new name is returned); a Qdrant server's own optimizer does this (None)."""
        ...

    def drop(self, collection: str) -> None:
        """Deletes a physical collection and its points."""
        ...

    def upsert(self, collection: str, points: Sequence[StoredPoint]) -> None:
        """Inserts or replaces points by id; durable when it returns."""
        ...

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        """Deletes points by id (unknown ids are ignored); durable when it returns."""
        ...

    def scroll(
        self,
        collection: str,
        *,
        filter: PointFilter | None = None,
        fields: Sequence[str] | None = None,
        vectors: bool = False,
        batch: int = 1024,
    ) -> Iterator[StoredPoint]:
        """Every point matching ``filter``, with the payload ``fields`` (all when None) and,
        when ``vectors``, both vectors; read ``batch`` points at a time."""
        ...

    def count(self, collection: str, filter: PointFilter | None = None) -> int:
        """Exact number of points matching ``filter``."""
        ...

    def search(self, collection: str, queries: Sequence[HybridQuery]) -> list[list[Hit]]:
        """Runs the hybrid queries as one batch; one list of hits per query, best first,
        ordered by ``order_hits``."""
        ...

    def close(self) -> None:
        """Releases the store (and, embedded, its lock)."""
        ...
