"""The vector store's two engines behind one interface: Qdrant Edge (embedded) answers exactly
as qdrant-client does (the client a Qdrant server is reached with; in memory here), and the
embedded store is one process's alone."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from qdrant_client import QdrantClient

from ingestion_jobs import sparse
from shared.errors import BookchatError, ErrorCode
from shared.vectorstore import (
    SCHEMA_VERSION,
    Hit,
    HybridQuery,
    PointFilter,
    SparseTerms,
    StoredPoint,
    StoreLockedError,
    VectorStore,
    order_hits,
)
from shared.vectorstore.edge import EdgeStore
from shared.vectorstore.server import QdrantServerStore

pytestmark = pytest.mark.unit

WORDS = [f"term{i}" for i in range(30)]


def unit_vector(rng: random.Random, dim: int) -> list[float]:
    vector = [rng.gauss(0, 1) for _ in range(dim)]
    norm = sum(x * x for x in vector) ** 0.5
    return [x / norm for x in vector]


def corpus(n: int, dim: int) -> list[StoredPoint]:
    """Random dense vectors and sparse vectors of text made of the words above, every chunk
    its own length: neither the dense nor the sparse list has (near-)ties, which an engine may
    order as it likes or as its float precision says, moving RRF ranks; the fused list has
    plenty (a chunk first by one list ties one first by the other)."""
    rng = random.Random(7)
    points = []
    for i in range(n):
        text = " ".join(rng.choices(WORDS, k=3 + i))
        terms = sparse.document_vector(text)
        points.append(
            StoredPoint(
                id=f"00000000-0000-4000-8000-{i:012d}",
                payload={"site": "ab"[i % 2], "path": f"docs/p{i % 17}.md", "text": text},
                dense=unit_vector(rng, dim),
                sparse=SparseTerms(terms.indices, terms.values) if terms.indices else None,
            )
        )
    return points


def queries(dim: int) -> list[HybridQuery]:
    rng = random.Random(11)
    out = []
    for i in range(24):
        text = " ".join(rng.choices(WORDS, k=rng.randint(1, 4)))
        terms = sparse.query_vector(text)
        out.append(
            HybridQuery(
                dense=unit_vector(rng, dim),
                sparse=SparseTerms(terms.indices, terms.values) if terms.indices else None,
                limit=10,
                prefetch=40,
                filter=PointFilter.where(site="a") if i % 3 == 0 else None,
            )
        )
    return out


def fill(store: VectorStore, points: list[StoredPoint], dim: int) -> str:
    name = store.create("book", dim=dim, embedder=f"hash-{dim}")
    store.upsert(name, points)
    store.publish("book", name)
    return name


def test_edge_answers_hybrid_queries_exactly_as_qdrant_client(store: VectorStore) -> None:
    points = corpus(200, 32)
    reference = QdrantServerStore(QdrantClient(location=":memory:"))
    fill(store, points, 32)
    fill(reference, points, 32)
    asked = queries(32)
    got, expected = store.search("book", asked), reference.search("book", asked)
    for edge_hits, client_hits in zip(got, expected, strict=True):
        assert [h.id for h in edge_hits] == [h.id for h in client_hits]
        assert [h.score for h in edge_hits] == pytest.approx([h.score for h in client_hits])
        assert [h.payload for h in edge_hits] == [h.payload for h in client_hits]
        for edge_hit, client_hit in zip(edge_hits, client_hits, strict=True):
            assert edge_hit.dense == pytest.approx(client_hit.dense, abs=1e-6)
    # The fixture has ties, so the order of tied hits was really put to the test.
    assert any(len({h.score for h in hits}) < len(hits) for hits in got)
    assert store.count("book", PointFilter.where(site="a")) == 100
    assert reference.count("book", PointFilter(not_equal=(("site", "a"),))) == 100


def test_ties_are_ordered_by_id() -> None:
    hits = [Hit(id=i, score=s, payload={}, dense=None) for i, s in [("b", 1), ("c", 2), ("a", 1)]]
    assert [h.id for h in order_hits(hits, 2)] == ["c", "a"]


def test_scroll_reads_payload_fields_and_vectors(store: VectorStore) -> None:
    points = corpus(40, 8)
    name = fill(store, points, 8)
    only_paths = list(store.scroll(name, filter=PointFilter.where(site="b"), fields=["path"]))
    assert len(only_paths) == 20
    assert all(set(p.payload) == {"path"} and p.dense == [] for p in only_paths)
    full = {p.id: p for p in store.scroll(name, vectors=True, batch=7)}
    assert len(full) == 40
    stored = full[points[3].id].sparse
    assert stored is not None
    assert points[3].sparse is not None
    assert stored.indices == points[3].sparse.indices
    assert stored.values == pytest.approx(points[3].sparse.values)  # float32 in the store
    store.delete(name, [points[3].id])
    assert store.count(name) == 39


def test_a_rebuild_is_optimized_in_a_child_and_answers_the_same(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path, optimize_min_points=50)
    try:
        points = corpus(120, 16)
        first = fill(store, points, 16)
        before = store.search("book", queries(16))
        rebuilt = store.create("book", dim=16, embedder="hash-16")
        store.upsert(rebuilt, points)
        assert store.publish("book", rebuilt) == first
        assert store.current("book") == rebuilt
        assert store.collections() == [rebuilt]  # the old one is dropped
        assert store.search("book", queries(16)) == before
    finally:
        store.close()
    reopened = EdgeStore(tmp_path)  # the pointer file and the metadata sidecar are on disk
    try:
        assert reopened.current("book") == rebuilt
        space = reopened.space(rebuilt)
        assert (space.embedder, space.dim, space.schema) == ("hash-16", 16, SCHEMA_VERSION)
        assert reopened.count("book") == 120
    finally:
        reopened.close()


def test_many_incremental_writes_are_reindexed_into_a_new_collection(tmp_path: Path) -> None:
    points = corpus(120, 16)
    store = EdgeStore(tmp_path, optimize_min_points=50, reindex_min_written=100)
    try:
        first = fill(store, points, 16)
        assert store.maintain("book") is None  # the build itself counts as no writes
        store.upsert("book", points[:60])
        store.delete("book", [points[60].id])
        assert store.maintain("book") is None  # 60 written: below the threshold
    finally:
        store.close()
    store = EdgeStore(tmp_path, optimize_min_points=50, reindex_min_written=100)
    try:  # the count survives a restart (meta.json)
        store.upsert("book", points[:40])
        before = store.search("book", queries(16))
        reindexed = store.maintain("book")
        assert reindexed is not None
        assert reindexed != first
        assert store.current("book") == reindexed
        assert store.collections() == [reindexed]
        assert store.count("book") == 119
        assert store.search("book", queries(16)) == before
        store.upsert("book", points[:10])
        assert store.maintain("book") is None  # counting starts again from the new build
    finally:
        store.close()


def test_a_search_that_meets_a_switch_midway_is_answered_by_the_new_collection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = EdgeStore(tmp_path)
    try:
        points = corpus(60, 16)
        old = fill(store, points, 16)
        stale = store._open(old)
        expected = store.search("book", queries(16)[:2])
        rebuilt = store.create("book", dim=16, embedder="hash-16")
        store.upsert(rebuilt, points)
        store.publish("book", rebuilt)  # closes the old shard
        real_open = EdgeStore._open
        handed = iter([stale])  # the first lookup happened just before the switch

        def racing_open(self: EdgeStore, name: str) -> object:
            return next(handed, None) or real_open(self, name)

        monkeypatch.setattr(EdgeStore, "_open", racing_open)
        assert store.search("book", queries(16)[:2]) == expected
    finally:
        monkeypatch.undo()
        store.close()


def test_a_second_process_is_refused_with_the_store_locked_error(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path)
    try:
        fill(store, corpus(5, 8), 8)
        with pytest.raises(StoreLockedError) as refused:
            EdgeStore(tmp_path)
        assert refused.value.code is ErrorCode.INDEX_UNAVAILABLE
        child = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys, pathlib\n"
                "from shared.vectorstore import StoreLockedError\n"
                "from shared.vectorstore.edge import EdgeStore\n"
                "try:\n"
                "    EdgeStore(pathlib.Path(sys.argv[1]))\n"
                "except StoreLockedError:\n"
                "    sys.exit(3)\n",
                str(tmp_path),
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        assert child.returncode == 3, child.stderr
    finally:
        store.close()


def test_edges_own_lock_on_a_shard_is_the_store_locked_error(tmp_path: Path) -> None:
    store = EdgeStore(tmp_path)
    name = fill(store, corpus(5, 8), 8)
    store.close()
    shard = tmp_path / "collections" / name / "shard"
    # Another process opens the shard itself (as an old bookchat, or a stray optimizer would).
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, qdrant_edge
                shard = qdrant_edge.EdgeShard.load(sys.argv[1])
                print("open", flush=True)
                sys.stdin.read()
                shard.close()
                """
            ),
            str(shard),
        ],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None
        assert holder.stdout.readline().strip() == "open"
        again = EdgeStore(tmp_path)
        try:
            with pytest.raises(StoreLockedError):
                again.count("book")
        finally:
            again.close()
    finally:
        holder.communicate("", timeout=30)


def test_a_missing_collection_is_index_unavailable(store: VectorStore) -> None:
    with pytest.raises(BookchatError) as missing:
        store.search("nothing", queries(8)[:1])
    assert missing.value.code is ErrorCode.INDEX_UNAVAILABLE


def test_only_the_stores_own_failures_are_store_errors() -> None:
    """What may be reported as `index_unavailable` (shared.vectorstore.is_store_error)."""
    import httpx
    from qdrant_client.http.exceptions import ResponseHandlingException, UnexpectedResponse

    from shared.vectorstore import is_store_error

    unexpected = UnexpectedResponse(500, "Internal Server Error", b"", httpx.Headers())
    for failure in (
        Exception("Vector dimension error: expected dim: 4, got 2"),  # Qdrant Edge
        ResponseHandlingException(httpx.ConnectError("refused")),
        unexpected,
        httpx.ReadTimeout("timed out"),
        ConnectionRefusedError(111, "Connection refused"),
        FileNotFoundError("meta.json"),
    ):
        assert is_store_error(failure), failure
    for bug in (TypeError("bad argument"), KeyError("dense"), AttributeError("x"), ValueError()):
        assert not is_store_error(bug), bug


def test_a_rebuild_of_one_alias_keeps_the_collections_of_an_alias_that_extends_its_name(
    tmp_path: Path,
) -> None:
    store = EdgeStore(tmp_path)
    try:
        points = corpus(20, 8)
        other = store.create("book_1", dim=8, embedder="hash-8")
        store.upsert(other, points)
        store.publish("book_1", other)
        fill(store, points, 8)
        rebuilt = fill(store, points, 8)  # drops the older "book" collections only
        assert store.collections() == sorted([other, rebuilt])
        assert store.count("book_1") == 20
    finally:
        store.close()


def test_what_a_killed_holder_left_half_done_is_cleaned_up_and_its_writes_still_count(
    tmp_path: Path,
) -> None:
    points = corpus(120, 16)
    store = EdgeStore(tmp_path, optimize_min_points=50, reindex_min_written=100)
    try:
        fill(store, points, 16)
        store.upsert("book", points[:110])
        # The re-index fails; a holder killed outright would also leave the copy's directory.
        store._run_child = lambda *_: (_ for _ in ()).throw(RuntimeError("killed"))  # type: ignore[method-assign]
        with pytest.raises(RuntimeError):
            store.maintain("book")
        (tmp_path / "collections" / "book_20990101000000_000000000" / "shard").mkdir(parents=True)
    finally:
        store.close()
    store = EdgeStore(tmp_path, optimize_min_points=50, reindex_min_written=100)
    try:
        assert len(list((tmp_path / "collections").iterdir())) == 1  # only the live one
        assert store.maintain("book") is not None  # the 110 writes were kept in meta.json
    finally:
        store.close()


def test_page_url_key_is_the_same_for_an_encoded_and_a_decoded_url() -> None:
    from shared.vectorstore import page_url_key

    encoded = "https://ex.com/docs/%C3%BCber%20uns/"
    assert page_url_key(encoded) == page_url_key("https://ex.com/docs/über uns#größe")
    assert page_url_key(encoded) == "https://ex.com/docs/%C3%BCber%20uns"
