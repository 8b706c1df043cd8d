"""Embedders: the hash fake is a usable vector space; the real model stays out of unit tests."""

from __future__ import annotations

import math

import pytest

from ingestion_jobs.embedding import Embedder, HashEmbedder, get_embedder, make_embedder
from ingestion_jobs.sparse import document_vector, query_vector, term_index, tokenize
from shared.settings import EmbedderKind, Settings


def _cos(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.mark.unit
def test_hash_embedder_is_deterministic_normalised_and_lexical() -> None:
    embedder = HashEmbedder(dim=128)
    a, b, c = embedder.embed_passages(
        ["configure the trailing slash", "trailing slash configuration", "robot arm kinematics"]
    )
    assert embedder.embed_passages(["configure the trailing slash"])[0] == a
    assert math.isclose(sum(x * x for x in a), 1.0)
    assert len(a) == embedder.dim == 128
    assert _cos(a, b) > _cos(a, c)
    assert isinstance(embedder, Embedder)


@pytest.mark.unit
def test_get_embedder_is_cached_per_settings() -> None:
    settings = Settings(embedder=EmbedderKind.HASH)
    assert get_embedder(settings) is get_embedder(settings)
    assert make_embedder(settings).name == "hash-256"


@pytest.mark.unit
def test_bundled_embedder_loads_nothing_until_used() -> None:
    # Celery forks after import: constructing must not load the model.
    embedder = make_embedder(Settings(embedder=EmbedderKind.BUNDLED))
    assert embedder.dim == 384
    assert embedder._model._model is None  # type: ignore[attr-defined]


@pytest.mark.unit
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("trailingSlash", {"trailingslash", "trail", "slash"}),
        ("docs:version", {"docs:version", "doc", "version"}),
        ("QoS profiles", {"qos", "profil"}),
        ("ros2 launch", {"ros2", "ros", "2", "launch"}),
        ("use_sim_time", {"use_sim_time", "sim", "time"}),
        ("the onBrokenLinks option", {"onbrokenlinks", "broken", "link", "option"}),
    ],
)
def test_tokenize_keeps_identifiers_whole_and_split(text: str, expected: set[str]) -> None:
    assert expected <= set(tokenize(text))


@pytest.mark.unit
def test_tokenize_drops_stopwords_and_stems() -> None:
    assert tokenize("How do I install the plugins?") == ["instal", "plugin"]


@pytest.mark.unit
def test_sparse_vectors_saturate_and_are_stable() -> None:
    assert term_index("slash") == term_index("slash")
    once = document_vector("slash")
    many = document_vector("slash " * 20)
    assert once.indices == many.indices
    assert many.values[0] > once.values[0]
    assert many.values[0] < 2.2 * once.values[0]  # BM25 saturation, not linear growth
    query = query_vector("trailing slash trailing")
    assert sorted(query.indices) == query.indices
    assert query.values == [1.0] * len(query.indices)


@pytest.mark.slow
def test_bundled_model_embeds_meaningfully() -> None:
    embedder = make_embedder(Settings(embedder=EmbedderKind.BUNDLED))
    docs = embedder.embed_passages(["Install the package with npm.", "The robot's arm joints."])
    query = embedder.embed_query("how do I install it")
    assert _cos(query, docs[0]) > _cos(query, docs[1])
