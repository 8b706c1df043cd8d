"""The Qdrant store: how to connect, and the one collection schema the indexer and search share.

Readers and writers always go through an *alias* named after ``settings.collection``. The
physical collection behind it is ``<alias>_<timestamp>``: a full rebuild fills a fresh one and
then repoints the alias in a single aliases update, so a reader never sees a half-built index.

Each point is one chunk: a named dense vector ``dense`` (cosine) and a named sparse vector
``sparse`` whose IDF Qdrant computes (``Modifier.IDF``), so the client only sends term
frequencies. Payload fields are in ``PAYLOAD_FIELDS``; the ones search filters on and the
indexer scrolls by are indexed as keywords.
"""

from __future__ import annotations

import time
import warnings
from typing import Final

from qdrant_client import QdrantClient, models

from shared.errors import BookchatError, ErrorCode
from shared.settings import Settings

__all__ = [
    "DENSE",
    "INDEXED_FIELDS",
    "SCHEMA_VERSION",
    "PAYLOAD_FIELDS",
    "SPARSE",
    "StoreLockedError",
    "create_physical_collection",
    "collection_space",
    "ensure_collection",
    "make_client",
    "page_url_key",
    "path_prefixes",
    "resolve_alias",
    "switch_alias",
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
SCHEMA_VERSION: Final = 2  # 2 added `page_url`, so the reader's current page can rank first


def page_url_key(url: str) -> str:
    """A page URL as stored in `page_url` and looked up from a reader's `page_url`: no
    fragment, no query, no trailing slash (Docusaurus may serve both forms)."""
    base = url.split("#", 1)[0].split("?", 1)[0]
    return base.rstrip("/") or base


class StoreLockedError(BookchatError):
    """The local store is open in another process (local mode allows only one)."""


def path_prefixes(path: str) -> list[str]:
    """``docs/a/b.md`` -> ``["docs", "docs/a", "docs/a/b.md"]``: what a folder filter matches."""
    parts = path.strip("/").split("/")
    return ["/".join(parts[: i + 1]) for i in range(len(parts))]


def make_client(settings: Settings) -> QdrantClient:
    """A client for the Qdrant server at ``qdrant_url`` (Qdrant Cloud too), or else the local
    on-disk store under ``data_dir``, created on demand.

    Raises ``StoreLockedError`` when another process already holds the local store.
    """
    if settings.qdrant_url:
        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=30)
    path = settings.qdrant_path
    path.mkdir(parents=True, exist_ok=True)
    try:
        return QdrantClient(path=str(path))
    except RuntimeError as exc:
        if "already accessed" not in str(exc):
            raise
        raise StoreLockedError(
            ErrorCode.INDEX_UNAVAILABLE,
            f"the local vector store {path} is open in another bookchat process (the server, "
            "a worker or another CLI command); stop it, or set QDRANT_URL to use a Qdrant "
            "server that many processes can share",
        ) from exc


def resolve_alias(client: QdrantClient, alias: str) -> str | None:
    """The physical collection the alias points at, or None when there is no such alias."""
    for item in client.get_aliases().aliases:
        if item.alias_name == alias:
            return item.collection_name
    return None


def collection_space(client: QdrantClient, collection: str) -> tuple[str | None, int | None]:
    """The embedder name (from the collection's metadata) and dense size of a collection.

    Two models can share a size (MiniLM and e5-small are both 384-d), so the name, not the
    size, says whether stored vectors are comparable with a new query's.
    """
    config = client.get_collection(collection).config
    vectors = config.params.vectors
    dim = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
    metadata = config.metadata or {}
    embedder = metadata.get("embedder")
    return (embedder if isinstance(embedder, str) else None), dim


def create_physical_collection(client: QdrantClient, alias: str, *, dim: int, embedder: str) -> str:
    """Creates an empty ``<alias>_<timestamp>`` collection with the schema; returns its name."""
    # One clock reading for both parts, so names sort in creation order (orphans are found
    # by being older than the collection a rebuild switches to).
    now_ns = time.time_ns()
    stamp = time.strftime("%Y%m%d%H%M%S", time.gmtime(now_ns // 1_000_000_000))
    name = f"{alias}_{stamp}_{now_ns % 1_000_000_000:09d}"
    client.create_collection(
        collection_name=name,
        vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
        sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
        metadata={"embedder": embedder, "schema": SCHEMA_VERSION},
    )
    with warnings.catch_warnings():
        # Local mode ignores payload indexes and says so; a server uses them.
        warnings.filterwarnings("ignore", message="Payload indexes have no effect")
        for field in INDEXED_FIELDS:
            client.create_payload_index(
                collection_name=name,
                field_name=field,
                field_schema=models.PayloadSchemaType.KEYWORD,
            )
    return name


def switch_alias(client: QdrantClient, alias: str, collection: str) -> str | None:
    """Points the alias at ``collection`` in one atomic update and drops the collection it
    pointed at before (returned, for logs)."""
    old = resolve_alias(client, alias)
    operations: list[models.AliasOperations] = []
    if old is not None:
        operations.append(
            models.DeleteAliasOperation(delete_alias=models.DeleteAlias(alias_name=alias))
        )
    operations.append(
        models.CreateAliasOperation(
            create_alias=models.CreateAlias(collection_name=collection, alias_name=alias)
        )
    )
    client.update_collection_aliases(change_aliases_operations=operations)
    if old is not None and old != collection:
        client.delete_collection(old)
    _drop_orphans(client, alias, collection)
    return old


def _drop_orphans(client: QdrantClient, alias: str, current: str) -> None:
    """Drops physical collections of this alias older than `current` that no alias points at:
    what a rebuild killed before its switch left behind (readers never saw them)."""
    prefix = f"{alias}_"
    for description in client.get_collections().collections:
        name = description.name
        stamp = name[len(prefix) :]
        if (
            name.startswith(prefix)
            and name != current
            and stamp.replace("_", "").isdigit()
            and stamp < current[len(prefix) :]
        ):
            client.delete_collection(name)


def ensure_collection(client: QdrantClient, alias: str, *, dim: int, embedder: str) -> str:
    """Makes sure the alias exists and points at a collection with this schema; idempotent.

    Returns the physical collection name. Refuses (rather than silently mixing vector spaces)
    when the existing collection holds another embedder's vectors: that needs a full rebuild.
    """
    current = resolve_alias(client, alias)
    if current is not None:
        existing = collection_space(client, current)
        if existing != (embedder, dim):
            raise BookchatError(
                ErrorCode.INDEX_UNAVAILABLE,
                f"collection {alias!r} holds vectors of {existing[0]} ({existing[1]}-d) but the "
                f"embedder is {embedder} ({dim}-d); re-index with a full rebuild",
            )
        return current
    if client.collection_exists(alias):
        raise BookchatError(
            ErrorCode.INDEX_UNAVAILABLE,
            f"{alias!r} is a collection, not an alias; delete it or choose another "
            "BOOKCHAT_COLLECTION",
        )
    name = create_physical_collection(client, alias, dim=dim, embedder=embedder)
    switch_alias(client, alias, name)
    return name
