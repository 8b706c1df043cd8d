"""Every language Docusaurus serves (issue 33, items 1 and 2): Chinese, Japanese and Korean text
in the keyword index, chunks within what the embedder reads, and questions in the site's own
language answered by the offline model, on small sites of our own (tests/language_sites.py)."""

from __future__ import annotations

import tempfile
from pathlib import Path
from urllib.parse import quote

import pytest

from ingestion_jobs.chunking import chunk_page, embedding_text, estimate_tokens
from ingestion_jobs.documents import Page, Section
from ingestion_jobs.docusaurus import read_site
from ingestion_jobs.embedding import (
    E5Embedder,
    MiniLMEmbedder,
    embedder_for_index,
    get_embedder,
    site_embedder,
)
from ingestion_jobs.indexer import chunk_limits, index_site
from ingestion_jobs.languages import detect_language, language_of
from ingestion_jobs.sparse import document_vector, query_vector, tokenize
from shared.job_models import ChatRequest
from shared.passages import Passage
from shared.settings import EmbedderKind, Settings
from shared.vectorstore.edge import EdgeStore
from tests.language_sites import SITES, SITES_DIR, evaluate
from worker.chat import answer_question
from worker.decline_rule import decline_reason
from worker.retrieval import Retriever

pytestmark = pytest.mark.unit

BUNDLED = Settings(embedder=EmbedderKind.BUNDLED)
# MiniLM named: the multilingual default embeds ~6x slower, and the rules under test (terms,
# coverage, chunk sizes) hold with either; bench/language_quality.py measures both.
MINILM = Settings(embedder=EmbedderKind.BUNDLED, embedding_bundled_model="minilm")


def test_cjk_text_becomes_bigram_terms() -> None:
    assert tokenize("缓存目录在哪里设置？", "zh")[:3] == ["缓存", "存目", "目录"]
    assert "保存" in tokenize("バックアップの保存期間", "ja")
    assert tokenize("설정 파일", "ko") == ["설정", "파일"]
    assert tokenize("九", "zh") == ["九"]  # a lone character is its own term
    # English is tokenized as it always was; Latin words in CJK text are English.
    assert tokenize("Set trailingSlash in the config") == [
        "set",
        "trailingslash",
        "trail",
        "slash",
        "config",
    ]
    assert tokenize("用 Docker 运行", "zh") == ["用", "docker", "运行"]


def test_words_are_stemmed_and_stopped_in_their_language() -> None:
    assert tokenize("Welche Adresse hat der Support?", "de") == ["adress", "support"]
    assert tokenize("Die maximale Größe", "de") == ["maximal", "gross"]
    assert "größe" not in tokenize("Größe", "de")  # whole words beyond ASCII, stemmed


def test_a_question_is_read_in_the_language_it_is_written_in() -> None:
    assert detect_language("缓存目录在哪里设置？") == "zh"
    assert detect_language("バックアップの保存期間は？") == "ja"
    assert detect_language("Welche Adresse hat der Support?") == "de"
    assert detect_language("How do I configure the cache?") == "en"
    assert detect_language("Plugins in Docusaurus") == "en"  # a tie goes to English
    assert detect_language("trailingSlash") is None
    assert language_of("zh-Hans") == "zh"
    assert language_of("pt-BR") == "pt"
    assert language_of(None) == "en"
    # A query with no stop word is stemmed in every language, so a German site finds it.
    assert set(query_vector("Zwischenspeicher").indices) >= set(
        query_vector("der Zwischenspeicher").indices
    )


def test_an_exact_chinese_phrase_finds_the_one_chunk_that_holds_it() -> None:
    """The keyword index alone (each chunk's sparse vector against the query's): four
    questions about four sections rank four different chunks first; `九十秒` occurs in one."""
    read = read_site(SITES_DIR / "lang-zh")
    chunks = [chunk for page in read.pages for chunk in chunk_page(page)]
    vectors = [document_vector(embedding_text(c), c.language) for c in chunks]

    def first(question: str) -> str:
        asked = set(query_vector(question).indices)
        scores = [
            sum(w for i, w in zip(v.indices, v.values, strict=True) if i in asked) for v in vectors
        ]
        best = max(range(len(chunks)), key=scores.__getitem__)
        assert scores[best] > 0
        return chunks[best].heading

    assert [first(q) for q in ("九十秒", "缓存目录在哪里", "冲突的文件", "支持团队的邮箱")] == [
        "超时",
        "缓存目录",
        "冲突处理",
        "联系支持团队",
    ]


def test_a_long_chinese_section_is_chunked_within_what_minilm_reads() -> None:
    """933 characters of Chinese were estimated at 96 tokens and kept as one chunk that MiniLM
    truncated at 256: now each chunk, breadcrumb included, fits in MiniLM's own tokens."""
    sentence = "同步任务会先比较本地文件和远端文件的修改时间，然后只上传发生变化的部分。"
    text = sentence * 26  # 936 characters, one paragraph
    assert estimate_tokens(text) >= len(text) - 26  # a CJK character is at least a token
    page = Page(
        path="docs/sync.md",
        url="https://x.example/docs/sync",
        title="同步",
        description="",
        content_hash="h",
        sections=(Section("细节", "细节", 2, ("同步", "细节"), text),),
        language="zh",
    )
    embedder = MiniLMEmbedder()
    max_tokens, count = chunk_limits(embedder)
    chunks = chunk_page(page, max_tokens=max_tokens, count_tokens=count)
    assert len(chunks) >= 4
    assert all(embedder.count_tokens(embedding_text(c)) <= embedder.max_tokens for c in chunks)
    assert "".join(c.text for c in chunks).count(sentence) >= 26  # nothing lost


def passage(text: str, heading: str, language: str) -> Passage:
    return Passage(
        chunk_id="c1",
        path="docs/hilfe.md",
        url="https://p.example/docs/hilfe#kontakt",
        heading=heading,
        title="Hilfe",
        score=1.0,
        text=text,
        breadcrumb=["Hilfe", heading],
        language=language,
    )


def test_german_stop_words_do_not_count_against_the_coverage_rule() -> None:
    found = passage("Die Adresse des Supports ist hilfe@postbote.example.de.", "Kontakt", "de")
    assert decline_reason("Welche Adresse hat der Support?", {1: found}) is None
    # German capitalises every noun: a capital is no name that must be on the page.
    assert decline_reason("Wie lautet die Adresse des Supports?", {1: found}) is None
    assert decline_reason("Wie backe ich einen Apfelkuchen?", {1: found}) is not None


@pytest.mark.parametrize("site", sorted(SITES))
async def test_questions_in_the_sites_language_are_answered(site: str) -> None:
    """The bundled MiniLM and the offline model: retrieval hit@1 and cited answers >= 0.8 on
    each site's answerable questions; what it does not cover is declined."""
    figures = await evaluate(site, MINILM)
    assert figures.hit_at_1 >= 0.8, figures.misses
    assert figures.cited_rate >= 0.8, figures.misses
    assert figures.declined == figures.uncovered, figures.misses


async def test_a_chinese_question_on_the_translated_site_cites_the_zh_hans_page() -> None:
    embedder = MiniLMEmbedder()
    with tempfile.TemporaryDirectory() as data:
        store = EdgeStore(Path(data))
        try:
            index_site(SITES_DIR / "lang-en-zh", store=store, embedder=embedder, collection="b")
            retriever = Retriever(store, embedder, "b")
            answer = await answer_question(
                ChatRequest(message="免费版的指标保留多久？"), settings=MINILM, retriever=retriever
            )
            english = await answer_question(
                ChatRequest(message="How long are metrics kept on the free plan?"),
                settings=MINILM,
                retriever=retriever,
            )
        finally:
            store.close()
    assert not answer.refused
    assert [c["url"] for c in answer.citations] == [  # the fragment as the browser sends it
        "https://beacon.example.com/zh-Hans/docs/retention#" + quote("指标保留多久")
    ]
    assert "三十天" in answer.answer
    assert {c["url"] for c in english.citations} == {
        "https://beacon.example.com/docs/retention#how-long-metrics-are-kept"
    }


async def test_a_site_not_in_english_only_is_embedded_with_the_multilingual_model() -> None:
    """No model named: ingestion picks e5 for a Chinese site (MiniLM is English-only), and
    search, built with the settings' embedder, follows the index to e5."""
    with tempfile.TemporaryDirectory() as data:
        store = EdgeStore(Path(data))
        try:
            index_site(
                SITES_DIR / "lang-zh", store=store, embedder=site_embedder(BUNDLED), collection="b"
            )
            current = store.current("b")
            assert current is not None
            assert store.space(current).embedder == E5Embedder.name
            retriever = Retriever(
                store,
                get_embedder(BUNDLED),  # MiniLM: no site known here
                "b",
                follow_index=lambda stored: embedder_for_index(BUNDLED, stored),
            )
            top = retriever.search("缓存目录在哪里设置？", limit=3)
        finally:
            store.close()
    assert top[0].heading == "缓存目录"
    assert embedder_for_index(MINILM, E5Embedder.name) is None  # a named model is kept
