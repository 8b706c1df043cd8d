"""The vector store: one schema and one interface (``schema.py``), two engines.

- ``QdrantServerStore`` (``server.py``): a Qdrant server or Qdrant Cloud (``QDRANT_URL``),
  through qdrant-client; many processes share it.
- ``EdgeStore`` (``edge.py``): the embedded default, Qdrant Edge in this process, on disk under
  ``BOOKCHAT_DATA_DIR``; one process at a time.

``open_store(settings)`` picks one. The engines are imported only when opened, so a process that
only needs one never loads the other.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from shared.errors import BookchatError, ErrorCode
from shared.vectorstore.schema import (
    DENSE,
    INDEXED_FIELDS,
    PAYLOAD_FIELDS,
    RRF_K,
    SCHEMA_VERSION,
    SCORE_DECIMALS,
    SPARSE,
    CollectionSpace,
    Hit,
    HybridQuery,
    PointFilter,
    SparseTerms,
    StoredPoint,
    StoreLockedError,
    VectorStore,
    order_hits,
    page_url_key,
    path_prefixes,
)

if TYPE_CHECKING:
    from shared.settings import Settings

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
    "ensure_collection",
    "is_store_error",
    "open_store",
    "order_hits",
    "page_url_key",
    "path_prefixes",
]


def open_store(settings: Settings) -> VectorStore:
    """The Qdrant server at ``qdrant_url`` (Qdrant Cloud too), or else the embedded store
    under ``data_dir``, created on demand.

    Raises ``StoreLockedError`` when another process already has the embedded store open.
    """
    if settings.qdrant_url:
        from qdrant_client import QdrantClient

        from shared.vectorstore.server import QdrantServerStore

        api_key = settings.qdrant_api_key.get_secret_value() if settings.qdrant_api_key else None
        return QdrantServerStore(QdrantClient(url=settings.qdrant_url, api_key=api_key, timeout=30))
    from shared.vectorstore.edge import EdgeStore

    return EdgeStore(settings.qdrant_path)


def is_store_error(error: BaseException) -> bool:
    """Whether `error` is the vector store failing (unreachable, refusing a request, its files
    unreadable) rather than a bug of ours: only these may be reported as `index_unavailable`.

    qdrant-client raises `ApiException`s (`UnexpectedResponse` for an HTTP error status,
    `ResponseHandlingException` for a refused connection or a timeout) and `QdrantException`s,
    and lets httpx's transport errors through; Qdrant Edge (Rust) raises plain `Exception`, never
    a subclass, and `OSError` for its files. A `TypeError`, `KeyError`, `AttributeError`... is
    not the store's: it must surface as an internal error, with its traceback in the log.
    (`BookchatError`s, `StoreLockedError` included, carry their own code and are not asked.)
    """
    import httpx

    if isinstance(error, httpx.TransportError | OSError):
        return True
    # qdrant-client's errors can only have been raised once it is imported (a Qdrant server is
    # configured): asking must not load it (~50 MB) into a worker on the embedded store.
    for module, name in (
        ("qdrant_client.http.exceptions", "ApiException"),
        ("qdrant_client.common.client_exceptions", "QdrantException"),
    ):
        loaded = sys.modules.get(module)
        if loaded is not None and isinstance(error, getattr(loaded, name)):
            return True
    return type(error) is Exception  # Qdrant Edge's errors


def ensure_collection(store: VectorStore, alias: str, *, dim: int, embedder: str) -> str:
    """Makes sure the alias exists and points at a collection with this schema; idempotent.

    Returns the physical collection name. Refuses (rather than silently mixing vector spaces)
    when the existing collection holds another embedder's vectors: that needs a full rebuild.
    """
    current = store.current(alias)
    if current is not None:
        space = store.space(current)
        if (space.embedder, space.dim) != (embedder, dim):
            raise BookchatError(
                ErrorCode.INDEX_UNAVAILABLE,
                f"collection {alias!r} holds vectors of {space.embedder} ({space.dim}-d) but "
                f"the embedder is {embedder} ({dim}-d); re-index with a full rebuild",
            )
        return current
    if store.exists(alias):
        raise BookchatError(
            ErrorCode.INDEX_UNAVAILABLE,
            f"{alias!r} is a collection, not an alias; delete it or choose another "
            "BOOKCHAT_COLLECTION",
        )
    name = store.create(alias, dim=dim, embedder=embedder)
    store.publish(alias, name)
    return name
