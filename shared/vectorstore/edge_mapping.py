"""How bookchat's store types map onto Qdrant Edge's (`qdrant-edge-py`): filters, points in and
out, and a hybrid query as one Edge request (dense and sparse prefetches fused by RRF).

Kept apart from shared/vectorstore/edge.py, which owns the store's files, lock and index builds;
shared/vectorstore/server.py does the same mapping for the Qdrant server's client.
"""

from __future__ import annotations

from typing import Any

import qdrant_edge as edge

from shared.vectorstore.schema import (
    DENSE,
    RRF_K,
    SPARSE,
    HybridQuery,
    PointFilter,
    SparseTerms,
    StoredPoint,
    fused_limit,
)

__all__ = ["edge_filter", "edge_point", "fetch_points", "query_request", "stored_point"]


def edge_filter(where: PointFilter | None) -> edge.Filter | None:
    if where is None:
        return None
    must: list[Any] = [
        edge.FieldCondition(key=key, match=edge.MatchValue(value)) for key, value in where.equal
    ]
    must_not: list[Any] = [
        edge.FieldCondition(key=key, match=edge.MatchValue(value)) for key, value in where.not_equal
    ]
    return edge.Filter(must=must or None, must_not=must_not or None)


def stored_point(record: Any, with_vectors: bool) -> StoredPoint:
    vector = record.vector if with_vectors and isinstance(record.vector, dict) else {}
    dense = vector.get(DENSE)
    sparse = vector.get(SPARSE)
    return StoredPoint(
        id=str(record.id),
        payload=dict(record.payload or {}),
        dense=list(dense) if isinstance(dense, list) else [],
        sparse=SparseTerms(list(sparse.indices), list(sparse.values))
        if isinstance(sparse, edge.SparseVector)
        else None,
    )


def query_request(query: HybridQuery) -> edge.QueryRequest:
    where = edge_filter(query.filter)
    prefetches = [
        edge.Prefetch(
            limit=query.prefetch,
            query=edge.Query.Nearest(query.dense, using=DENSE),
            filter=where,
        )
    ]
    if query.sparse is not None and query.sparse.indices:
        prefetches.append(
            edge.Prefetch(
                limit=query.prefetch,
                query=edge.Query.Nearest(
                    edge.SparseVector(query.sparse.indices, query.sparse.values), using=SPARSE
                ),
                filter=where,
            )
        )
    return edge.QueryRequest(
        limit=fused_limit(query),
        prefetches=prefetches,
        query=edge.Fusion.Rrf(k=RRF_K),  # type: ignore[arg-type]  # the stub omits Fusion.Rrf
        with_payload=False,
        with_vector=False,
    )


def fetch_points(
    shard: edge.EdgeShard, ids: list[str]
) -> dict[str, tuple[dict[str, Any], list[float] | None]]:
    if not ids:
        return {}
    out: dict[str, tuple[dict[str, Any], list[float] | None]] = {}
    point_ids: list[Any] = list(ids)
    for record in shard.retrieve(point_ids, with_payload=True, with_vector=[DENSE]):
        vector = record.vector.get(DENSE) if isinstance(record.vector, dict) else None
        dense = [float(x) for x in vector] if isinstance(vector, list) else None  # type: ignore[arg-type]
        out[str(record.id)] = (dict(record.payload or {}), dense)
    return out


def edge_point(point: StoredPoint) -> edge.Point:
    vector: dict[str, Any] = {DENSE: point.dense}
    if point.sparse is not None and point.sparse.indices:
        vector[SPARSE] = edge.SparseVector(point.sparse.indices, point.sparse.values)
    return edge.Point(point.id, vector, point.payload)
