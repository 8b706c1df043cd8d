"""The vector store on a Qdrant server or Qdrant Cloud, through qdrant-client.

Aliases are the server's own: ``publish`` repoints one in a single aliases update. Collection
metadata carries the embedder and schema version. Any ``QdrantClient`` works, including its
in-memory local mode, which tests use as the reference to compare the embedded engine with.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any

from qdrant_client import QdrantClient, models

from shared.errors import BookchatError, ErrorCode
from shared.vectorstore.schema import (
    DENSE,
    INDEXED_FIELDS,
    SCHEMA_VERSION,
    SPARSE,
    CollectionSpace,
    Hit,
    HybridQuery,
    PointFilter,
    SparseTerms,
    StoredPoint,
    assemble_hits,
    fused_limit,
    is_older_sibling,
    new_collection_name,
)

__all__ = ["QdrantServerStore", "qdrant_filter"]


def qdrant_filter(where: PointFilter | None) -> models.Filter | None:
    if where is None:
        return None
    return models.Filter(
        must=[
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in where.equal
        ]
        or None,
        must_not=[
            models.FieldCondition(key=key, match=models.MatchValue(value=value))
            for key, value in where.not_equal
        ]
        or None,
    )


def _vectors(point: StoredPoint) -> dict[str, Any]:
    vector: dict[str, Any] = {DENSE: point.dense}
    if point.sparse is not None and point.sparse.indices:
        vector[SPARSE] = models.SparseVector(
            indices=point.sparse.indices, values=point.sparse.values
        )
    return vector


class QdrantServerStore:
    """``VectorStore`` over a ``QdrantClient`` (see ``shared.vectorstore.schema``)."""

    def __init__(self, client: QdrantClient) -> None:
        self.client = client

    def current(self, alias: str) -> str | None:
        for item in self.client.get_aliases().aliases:
            if item.alias_name == alias:
                return item.collection_name
        return None

    def exists(self, name: str) -> bool:
        return name in self.collections()

    def collections(self) -> list[str]:
        return [c.name for c in self.client.get_collections().collections]

    def space(self, collection: str) -> CollectionSpace:
        config = self.client.get_collection(collection).config
        vectors = config.params.vectors
        dim = vectors[DENSE].size if isinstance(vectors, dict) and DENSE in vectors else None
        metadata = config.metadata or {}
        embedder, schema = metadata.get("embedder"), metadata.get("schema")
        return CollectionSpace(
            embedder=embedder if isinstance(embedder, str) else None,
            dim=dim,
            schema=schema if isinstance(schema, int) else None,
        )

    def create(self, alias: str, *, dim: int, embedder: str) -> str:
        name = new_collection_name(alias)
        self.client.create_collection(
            collection_name=name,
            vectors_config={DENSE: models.VectorParams(size=dim, distance=models.Distance.COSINE)},
            sparse_vectors_config={SPARSE: models.SparseVectorParams(modifier=models.Modifier.IDF)},
            metadata={"embedder": embedder, "schema": SCHEMA_VERSION},
        )
        with warnings.catch_warnings():
            # Local mode (tests) ignores payload indexes and says so; a server uses them.
            warnings.filterwarnings("ignore", message="Payload indexes have no effect")
            for field in INDEXED_FIELDS:
                self.client.create_payload_index(
                    collection_name=name,
                    field_name=field,
                    field_schema=models.PayloadSchemaType.KEYWORD,
                )
        return name

    def publish(self, alias: str, collection: str) -> str | None:
        old = self.current(alias)
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
        self.client.update_collection_aliases(change_aliases_operations=operations)
        if old is not None and old != collection:
            self.client.delete_collection(old)
        for name in self.collections():
            if is_older_sibling(name, alias, collection):
                self.client.delete_collection(name)
        return old

    def maintain(self, alias: str) -> str | None:
        return None  # the server's optimizer indexes new points itself

    def drop(self, collection: str) -> None:
        self.client.delete_collection(collection)

    def upsert(self, collection: str, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        self.client.upsert(
            collection_name=collection,
            points=[
                models.PointStruct(id=p.id, vector=_vectors(p), payload=p.payload) for p in points
            ],
            wait=True,
        )

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        if not ids:
            return
        self.client.delete(
            collection_name=collection,
            points_selector=models.PointIdsList(points=list(ids)),
            wait=True,
        )

    def scroll(
        self,
        collection: str,
        *,
        filter: PointFilter | None = None,
        fields: Sequence[str] | None = None,
        vectors: bool = False,
        batch: int = 1024,
    ) -> Iterator[StoredPoint]:
        offset: Any = None
        while True:
            points, offset = self.client.scroll(
                collection_name=collection,
                scroll_filter=qdrant_filter(filter),
                limit=batch,
                offset=offset,
                with_payload=list(fields) if fields is not None else True,
                with_vectors=vectors,
            )
            for point in points:
                vector = point.vector if isinstance(point.vector, dict) else {}
                dense = vector.get(DENSE)
                sparse = vector.get(SPARSE)
                yield StoredPoint(
                    id=str(point.id),
                    payload=dict(point.payload or {}),
                    dense=list(dense) if isinstance(dense, list) else [],  # type: ignore[arg-type]
                    sparse=SparseTerms(list(sparse.indices), list(sparse.values))
                    if isinstance(sparse, models.SparseVector)
                    else None,
                )
            if offset is None:
                return

    def count(self, collection: str, filter: PointFilter | None = None) -> int:
        return self.client.count(collection, count_filter=qdrant_filter(filter), exact=True).count

    def search(self, collection: str, queries: Sequence[HybridQuery]) -> list[list[Hit]]:
        if not queries:
            return []
        try:
            responses = self.client.query_batch_points(
                collection, requests=[_request(query) for query in queries]
            )
        except ValueError as error:  # local mode: "Collection ... not found"
            if "not found" not in str(error):
                raise
            raise BookchatError(ErrorCode.INDEX_UNAVAILABLE, str(error)) from error
        fused = [[(str(p.id), p.score) for p in response.points] for response in responses]
        return assemble_hits(queries, fused, lambda ids: self._fetch(collection, ids))

    def _fetch(
        self, collection: str, ids: list[str]
    ) -> dict[str, tuple[dict[str, Any], list[float] | None]]:
        if not ids:
            return {}
        records = self.client.retrieve(collection, ids, with_payload=True, with_vectors=[DENSE])
        out: dict[str, tuple[dict[str, Any], list[float] | None]] = {}
        for record in records:
            vector = record.vector.get(DENSE) if isinstance(record.vector, dict) else None
            dense = [float(x) for x in vector] if isinstance(vector, list) else None  # type: ignore[arg-type]
            out[str(record.id)] = (dict(record.payload or {}), dense)
        return out

    def close(self) -> None:
        self.client.close()


def _request(query: HybridQuery) -> models.QueryRequest:
    where = qdrant_filter(query.filter)
    prefetch = [models.Prefetch(query=query.dense, using=DENSE, limit=query.prefetch, filter=where)]
    if query.sparse is not None and query.sparse.indices:
        prefetch.append(
            models.Prefetch(
                query=models.SparseVector(indices=query.sparse.indices, values=query.sparse.values),
                using=SPARSE,
                limit=query.prefetch,
                filter=where,
            )
        )
    return models.QueryRequest(
        prefetch=prefetch,
        # The server's RRF constant is RRF_K (2) by default; a parametrised RrfQuery would
        # shut out servers older than 1.16 for no change in results.
        query=models.FusionQuery(fusion=models.Fusion.RRF),
        limit=fused_limit(query),
        with_payload=False,
        with_vector=False,
    )
