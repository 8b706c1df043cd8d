"""The embedded vector store: Qdrant Edge (`qdrant-edge-py`), the Qdrant engine in this process.

Why this module stays one file (over 350 lines): it is one thing, a single-process store over one
on-disk layout (the lock, the alias pointer files, the meta.json sidecars, the shards), and its
guarantees come from the order of steps across its methods (the sidecar written last and
removed first, the pointer replaced before the old collection is dropped, the write lock held
while ``maintain`` copies a shard, index builds in a child process, a search retried when an
alias switch closes its shard). Split, those orders would be read in pieces. What stands apart,
how bookchat's types map onto Edge's, is shared/vectorstore/edge_mapping.py.

Layout under the store's root (``settings.qdrant_path``)::

    .lock                      held by the one process that has the store open
    <alias>.alias              pointer file: {"collection": "<alias>_<timestamp>"}
    collections/<name>/shard/  one Edge shard per physical collection
    collections/<name>/meta.json   {"embedder", "dim", "schema"}: Edge has no collection metadata

Edge has neither aliases nor collections, so a pointer file stands for the alias: ``publish``
writes a new one beside it, fsyncs it and renames it over the old (atomic on POSIX and
Windows), then drops the collection the old one named.

One process only. With its write-ahead log (always on here) a shard directory cannot be opened
by a second process (``WouldBlock``), and Edge has no read-only mode: even loading a shard
rewrites files in it (edge_config.json, segment flags), so "read-only" readers in other
processes are not read-only either. Without the WAL a second writer's acknowledged points were
silently lost (../shared/notes/qdrant-edge.md). The root ``.lock`` makes the whole store (not
just the current shard) single-process, and both refusals surface as ``StoreLockedError``.

Every Edge call holds the GIL, and ``optimize()`` (building the HNSW graph) holds it for its
whole run: ~6 s at 15k points, ~65 s at 100k. A rebuilt collection is therefore optimized in a
child process before it is published, while this process goes on answering from the old one.

Incremental ingestion writes into Edge's plain (unindexed) segment, which every search scans. A
published collection is never optimized in place (that would freeze this process); instead
``maintain`` (after each incremental ingestion) counts the points written since the last HNSW
build and, past ``REINDEX_MIN_WRITTEN``, has a child copy the flushed shard, optimize the copy,
and switches the alias to it. Writes wait meanwhile; searches go on against the old shard.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator, Sequence
from functools import partial
from pathlib import Path
from typing import Any, Final

import qdrant_edge as edge
from filelock import FileLock, Timeout

from shared.errors import BookchatError, ErrorCode
from shared.vectorstore.edge_mapping import (
    edge_filter,
    edge_point,
    fetch_points,
    query_request,
    stored_point,
)
from shared.vectorstore.schema import (
    DENSE,
    INDEXED_FIELDS,
    SCHEMA_VERSION,
    SPARSE,
    CollectionSpace,
    Hit,
    HybridQuery,
    PointFilter,
    StoredPoint,
    StoreLockedError,
    assemble_hits,
    is_older_sibling,
    new_collection_name,
)

__all__ = ["OPTIMIZE_MIN_POINTS", "REINDEX_MIN_WRITTEN", "EdgeStore"]

log = logging.getLogger(__name__)

#: Below this many points a rebuilt collection is published without an HNSW build: Edge's
#: default indexing threshold (10 MB of vectors, ~6,600 at 384-d) would not build one, and a
#: plain scan of a few thousand points is ~1 ms.
OPTIMIZE_MIN_POINTS: Final = 5_000
#: Points written (upserted) into a published collection since its last HNSW build after which
#: ``maintain`` re-indexes it. Above Edge's own indexing threshold (~6,600 points at 384-d, which
#: ``optimize()`` respects), so the re-index does index them; a scan of this many is ~1-2 ms.
REINDEX_MIN_WRITTEN: Final = 10_000
_ALIAS_SUFFIX: Final = ".alias"
_WRITTEN: Final = "written_since_index"  # meta.json: points written since the last HNSW build


def _locked(path: Path) -> StoreLockedError:
    return StoreLockedError(
        ErrorCode.INDEX_UNAVAILABLE,
        f"the embedded vector store {path} is open in another bookchat process (the server, "
        "a worker or another CLI command); stop it, or set QDRANT_URL to use a Qdrant "
        "server that many processes can share",
    )


def _write_json_atomically(path: Path, data: dict[str, Any]) -> None:
    """Write, fsync, rename over: a reader sees the old file or the new one, never half."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with tmp.open("w", encoding="utf-8") as handle:
        json.dump(data, handle)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    if hasattr(os, "O_DIRECTORY"):  # POSIX: make the rename itself durable
        fd = os.open(path.parent, os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


class EdgeStore:
    """``VectorStore`` on Qdrant Edge under ``root`` (see the module docstring).

    Raises ``StoreLockedError`` when another process has the store open.
    """

    def __init__(
        self,
        root: Path,
        *,
        optimize_min_points: int = OPTIMIZE_MIN_POINTS,
        reindex_min_written: int = REINDEX_MIN_WRITTEN,
    ) -> None:
        self.root = root
        self.optimize_min_points = optimize_min_points
        self.reindex_min_written = reindex_min_written
        root.mkdir(parents=True, exist_ok=True)
        (root / "collections").mkdir(exist_ok=True)
        # thread_local=False: opened by one thread, closed by another (worker shutdown).
        self._file_lock = FileLock(root / ".lock", thread_local=False)
        try:
            self._file_lock.acquire(timeout=0)
        except Timeout as error:
            raise _locked(root) from error
        self._lock = threading.RLock()
        # Held by writes and by `maintain`, so no write lands in a shard while it is copied.
        self._write_lock = threading.RLock()
        self._shards: dict[str, edge.EdgeShard] = {}
        self._aliases: dict[str, str] = {}
        self._written: dict[str, int] = {}  # collection -> points upserted, not yet in meta.json
        self._remove_unfinished()

    def _remove_unfinished(self) -> None:
        """Removes collection directories without a sidecar: a ``create``, ``drop`` or
        re-index copy cut short (a crash, a kill) by an earlier holder of the store."""
        for entry in (self.root / "collections").iterdir():
            if entry.is_dir() and not (entry / "meta.json").is_file():
                log.info("removing the unfinished collection %s", entry.name)
                shutil.rmtree(entry, ignore_errors=True)

    # -- layout ----------------------------------------------------------------------------

    def _dir(self, collection: str) -> Path:
        if not collection or "/" in collection or "\\" in collection or collection[0] == ".":
            raise BookchatError(ErrorCode.INDEX_UNAVAILABLE, f"bad collection {collection!r}")
        return self.root / "collections" / collection

    def _open(self, name: str) -> edge.EdgeShard:
        """The open shard of a collection, or of the collection an alias points at."""
        collection = self.current(name) or name
        with self._lock:
            shard = self._shards.get(collection)
            if shard is not None:
                return shard
            directory = self._dir(collection)
            if not (directory / "meta.json").is_file():
                raise BookchatError(
                    ErrorCode.INDEX_UNAVAILABLE, f"collection {collection!r} not found"
                )
            try:
                shard = edge.EdgeShard.load(str(directory / "shard"))
            except Exception as error:  # Edge raises plain Exception; the text says why
                if "WouldBlock" in str(error):
                    raise _locked(directory) from error
                raise
            self._shards[collection] = shard
            return shard

    def _close_shard(self, collection: str) -> None:
        with self._lock:
            shard = self._shards.pop(collection, None)
        if shard is not None:
            shard.close()

    # -- VectorStore -----------------------------------------------------------------------

    def current(self, alias: str) -> str | None:
        # Only this process writes pointers (the store is single-process), so a pointer read
        # once stays true until our own `publish` changes it.
        if alias in self._aliases:
            return self._aliases[alias]
        pointer = self.root / f"{alias}{_ALIAS_SUFFIX}"
        try:
            data = json.loads(pointer.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        name = data.get("collection") if isinstance(data, dict) else None
        if not isinstance(name, str):
            return None
        self._aliases[alias] = name
        return name

    def exists(self, name: str) -> bool:
        return name in self.collections()

    def collections(self) -> list[str]:
        return sorted(
            entry.name
            for entry in (self.root / "collections").iterdir()
            if (entry / "meta.json").is_file()
        )

    def space(self, collection: str) -> CollectionSpace:
        try:
            meta = json.loads((self._dir(collection) / "meta.json").read_text(encoding="utf-8"))
        except FileNotFoundError as error:
            raise BookchatError(
                ErrorCode.INDEX_UNAVAILABLE, f"collection {collection!r} not found"
            ) from error
        embedder, dim, schema = meta.get("embedder"), meta.get("dim"), meta.get("schema")
        return CollectionSpace(
            embedder=embedder if isinstance(embedder, str) else None,
            dim=dim if isinstance(dim, int) else None,
            schema=schema if isinstance(schema, int) else None,
        )

    def create(self, alias: str, *, dim: int, embedder: str) -> str:
        name = new_collection_name(alias)
        directory = self._dir(name)
        directory.mkdir(parents=True)
        config = edge.EdgeConfig(
            vectors={DENSE: edge.EdgeVectorParams(size=dim, distance=edge.Distance.Cosine)},
            sparse_vectors={SPARSE: edge.EdgeSparseVectorParams(modifier=edge.Modifier.Idf)},
        )
        shard = edge.EdgeShard.create(str(directory / "shard"), config)
        for field in INDEXED_FIELDS:
            shard.update(
                edge.UpdateOperation.create_field_index(field, edge.PayloadSchemaType.Keyword)
            )
        # The sidecar last: a directory without it is a half-created collection (ignored).
        _write_json_atomically(
            directory / "meta.json", {"embedder": embedder, "dim": dim, "schema": SCHEMA_VERSION}
        )
        with self._lock:
            self._shards[name] = shard
        return name

    def publish(self, alias: str, collection: str) -> str | None:
        self._written.pop(collection, None)  # a new build: nothing written since
        if self.count(collection) >= self.optimize_min_points:
            self._close_shard(collection)
            self._run_child("optimize", self._dir(collection) / "shard")
        return self._switch(alias, collection)

    def maintain(self, alias: str) -> str | None:
        collection = self.current(alias)
        if collection is None:
            return None
        with self._write_lock:
            meta_path = self._dir(collection) / "meta.json"
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            written = int(meta.get(_WRITTEN, 0)) + self._written.pop(collection, 0)
            if written != meta.get(_WRITTEN, 0):  # first, so a re-index cut short is redone
                _write_json_atomically(meta_path, {**meta, _WRITTEN: written})
            if written < self.reindex_min_written or (
                self.count(collection) < self.optimize_min_points
            ):
                return None
            self._open(collection).flush()
            copy = new_collection_name(alias)
            self._dir(copy).mkdir(parents=True)
            try:
                self._run_child(
                    "reindex", self._dir(collection) / "shard", self._dir(copy) / "shard"
                )
            except BaseException:
                self.drop(copy)
                raise
            _write_json_atomically(self._dir(copy) / "meta.json", {**meta, _WRITTEN: 0})
            log.info("re-indexed %s as %s (%d points written since)", alias, copy, written)
            self._switch(alias, copy)
            return copy

    def _switch(self, alias: str, collection: str) -> str | None:
        """Points the alias at ``collection`` (pointer file) and drops what it pointed at."""
        old = self.current(alias)
        _write_json_atomically(self.root / f"{alias}{_ALIAS_SUFFIX}", {"collection": collection})
        self._aliases[alias] = collection
        if old is not None and old != collection:
            self.drop(old)
        for name in self.collections():
            if is_older_sibling(name, alias, collection):
                self.drop(name)
        return old

    def _run_child(self, command: str, *shards: Path) -> None:
        """``python -m shared.vectorstore.edge COMMAND SHARD...`` (see ``_child_main``): an HNSW
        build in this process would hold its GIL, and so every answer it serves, for the whole
        build. Raises BookchatError(index_unavailable) when the child fails."""
        log.info("%s %s in a child process", command, shards[-1].parent.name)
        done = subprocess.run(
            [sys.executable, "-m", "shared.vectorstore.edge", command, *map(str, shards)],
            capture_output=True,
            text=True,
            check=False,
        )
        if done.returncode != 0:
            raise BookchatError(
                ErrorCode.INDEX_UNAVAILABLE,
                f"building the search index of {shards[-1].parent.name} failed: "
                f"{done.stderr.strip()[-500:]}",
            )

    def drop(self, collection: str) -> None:
        self._close_shard(collection)
        directory = self._dir(collection)
        # The sidecar first, so a drop cut short leaves a directory the store ignores.
        (directory / "meta.json").unlink(missing_ok=True)
        shutil.rmtree(directory, ignore_errors=True)

    def upsert(self, collection: str, points: Sequence[StoredPoint]) -> None:
        if not points:
            return
        name = self.current(collection) or collection
        shard = self._open(name)
        edge_points = [edge_point(point) for point in points]
        with self._write_lock:
            shard.update(edge.UpdateOperation.upsert_points(edge_points))
            self._written[name] = self._written.get(name, 0) + len(edge_points)

    def delete(self, collection: str, ids: Sequence[str]) -> None:
        if ids:
            with self._write_lock:
                self._open(collection).update(edge.UpdateOperation.delete_points(list(ids)))

    def scroll(
        self,
        collection: str,
        *,
        filter: PointFilter | None = None,
        fields: Sequence[str] | None = None,
        vectors: bool = False,
        batch: int = 1024,
    ) -> Iterator[StoredPoint]:
        shard = self._open(collection)
        payload: Any = edge.PayloadSelector.Include(list(fields)) if fields is not None else True
        offset: Any = None
        while True:
            records, offset = shard.scroll(
                edge.ScrollRequest(
                    offset=offset,
                    limit=batch,
                    filter=edge_filter(filter),
                    with_payload=payload,
                    with_vector=vectors,
                )
            )
            for record in records:
                yield stored_point(record, vectors)
            if offset is None:
                return

    def count(self, collection: str, filter: PointFilter | None = None) -> int:
        return self._open(collection).count(
            edge.CountRequest(exact=True, filter=edge_filter(filter))
        )

    def search(self, collection: str, queries: Sequence[HybridQuery]) -> list[list[Hit]]:
        if not queries:
            return []
        request = edge.QueryBatchRequest([query_request(q) for q in queries])
        while True:
            shard = self._open(collection)
            try:
                results = shard.query_batch(request)
                fused = [[(str(p.id), p.score) for p in points] for points in results]
                return assemble_hits(queries, fused, partial(fetch_points, shard))
            except Exception:
                # A `publish` or `maintain` in another thread switched the alias and closed this
                # shard between our `_open` and its use ("Shard is not initialized"): the
                # search goes to the new collection. Anything else is raised.
                if self._open(collection) is shard:
                    raise

    def close(self) -> None:
        with self._lock:
            shards, self._shards = list(self._shards.values()), {}
        for shard in shards:
            shard.close()
        self._file_lock.release()


def _optimize(path: str) -> None:
    """Builds the HNSW index of the shard at ``path`` (a child of ``EdgeStore._run_child``)."""
    shard = edge.EdgeShard.load(path)
    try:
        shard.optimize()
        shard.flush()
    finally:
        shard.close()


def _copy_shard(source: str, target: str) -> None:
    """Copies a flushed shard directory that another process holds open (Edge's files are
    sparse: GNU ``cp --sparse=always`` keeps them so; elsewhere a plain copy, larger on disk)."""
    if sys.platform.startswith("linux") and shutil.which("cp"):
        subprocess.run(["cp", "-R", "--sparse=always", source, target], check=True)
    else:
        shutil.copytree(source, target)


def _child_main(argv: list[str]) -> None:
    """``optimize SHARD`` or ``reindex SOURCE TARGET`` (copy, then optimize the copy)."""
    match argv:
        case ["optimize", shard]:
            _optimize(shard)
        case ["reindex", source, target]:
            _copy_shard(source, target)
            _optimize(target)
        case _:
            sys.exit(
                "usage: python -m shared.vectorstore.edge optimize SHARD | reindex SOURCE TARGET"
            )


if __name__ == "__main__":
    _child_main(sys.argv[1:])
