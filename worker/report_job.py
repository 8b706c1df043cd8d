"""The maintainer's report, built where the embedder and the index live (issue 20).

`build_report` runs the SQL sections of shared/report.py and adds the knowledge gaps: the
period's declined and down-voted questions grouped into topics by meaning. Grouping is
agglomerative clustering (scipy, average linkage over cosine distance) of the questions'
embeddings; each question is embedded once and its vector cached in `question_vector`, so a
report re-embeds only what is new. A topic's "nearest pages" are what the retriever ranks
first for its most central question: the page to extend, or the page that failed the reader.

Used by the report job (GET /v1/admin/report, on the chat queue: reports are short once the
vectors are cached) and in-process by `bookchat report`.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import async_sessionmaker
from sqlmodel import col, select
from sqlmodel.ext.asyncio.session import AsyncSession

from shared.errors import BookchatError, ErrorCode
from shared.models import QuestionVector
from shared.report import feedback_section, gap_questions, usage_section
from shared.report_model import (
    GapQuestion,
    GapsSection,
    GapTopic,
    NearestPage,
    Report,
    ReportPeriod,
)
from shared.settings import Settings
from shared.vectorstore import is_store_error

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt

    from ingestion_jobs.embedding import Embedder
    from worker.retrieval import Retriever
    from worker.runtime import ReportRuntime

__all__ = [
    "TOPIC_MAX_DISTANCE",
    "build_report",
    "gaps_section",
    "group_by_meaning",
    "process_report_job",
]

log = logging.getLogger(__name__)

#: Average-linkage cutoff in cosine distance (1 - cosine): questions merge into one topic while
#: their average distance stays below it. all-MiniLM-L6-v2 puts paraphrases of one question at
#: 0.15-0.45 and questions about different things at 0.7-1.0 (tests/unit/test_report.py's
#: slow test checks a set of both); 0.55 sits between them.
TOPIC_MAX_DISTANCE = 0.55
#: Topics shown, largest first; distinct example questions per topic; nearest pages per topic.
MAX_TOPICS = 20
EXAMPLES = 5
NEAREST = 3


def group_by_meaning(
    vectors: npt.NDArray[np.float32], max_distance: float = TOPIC_MAX_DISTANCE
) -> list[list[int]]:
    """Indices of `vectors` (n x d, L2-normalised) grouped into topics, largest first (ties:
    the topic holding the lowest index first)."""
    n = len(vectors)
    if n == 0:
        return []
    if n == 1:
        return [[0]]
    from scipy.cluster.hierarchy import fcluster, linkage  # type: ignore[import-untyped]

    tree = linkage(vectors, method="average", metric="cosine")
    labels = fcluster(tree, t=max_distance, criterion="distance")
    groups: dict[int, list[int]] = {}
    for index, label in enumerate(labels.tolist()):
        groups.setdefault(int(label), []).append(index)
    return sorted(groups.values(), key=lambda g: (-len(g), g[0]))


async def _vectors(
    sessionmaker: async_sessionmaker[AsyncSession],
    questions: Sequence[GapQuestion],
    embedder: Embedder,
) -> npt.NDArray[np.float32]:
    """The questions' embeddings: cached ones from `question_vector`, the rest embedded now
    (in a thread) and cached."""
    import numpy as np

    ids = [q.message_id for q in questions]
    cached: dict[uuid.UUID, bytes] = {}
    async with sessionmaker() as db:
        for start in range(0, len(ids), 500):
            rows = await db.exec(
                select(QuestionVector).where(
                    col(QuestionVector.message_id).in_(ids[start : start + 500]),
                    QuestionVector.model == embedder.name,
                )
            )
            cached.update({row.message_id: row.vector for row in rows})
    missing = [q for q in questions if q.message_id not in cached]
    if missing:
        fresh = await asyncio.to_thread(embedder.embed_passages, [q.text for q in missing])
        values: list[dict[str, Any]] = [
            {
                "message_id": q.message_id,
                "model": embedder.name,
                "vector": np.asarray(v, dtype="<f4").tobytes(),
            }
            for q, v in zip(missing, fresh, strict=True)
        ]
        async with sessionmaker() as db:
            dialect = postgresql if db.bind and db.bind.dialect.name == "postgresql" else sqlite
            insert = dialect.insert(QuestionVector)
            # Two reports at once may embed the same question: the last write wins.
            statement = insert.on_conflict_do_update(
                index_elements=["message_id"],
                set_={"model": insert.excluded.model, "vector": insert.excluded.vector},
            )
            for start in range(0, len(values), 500):
                await db.exec(statement.values(values[start : start + 500]))
            await db.commit()
        cached.update({q.message_id: row["vector"] for q, row in zip(missing, values, strict=True)})
    matrix = np.stack([np.frombuffer(cached[i], dtype="<f4") for i in ids]).astype(np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    result: npt.NDArray[np.float32] = matrix / np.clip(norms, 1e-12, None)
    return result


def _nearest_pages(retriever: Retriever, queries: list[str], site: str) -> list[list[NearestPage]]:
    from worker.retrieval import SearchFilters

    results = retriever.search_batch(queries, limit=8, filters=SearchFilters(site=site))
    pages: list[list[NearestPage]] = []
    for passages in results:
        seen: dict[str, NearestPage] = {}
        for passage in passages:
            if passage.path not in seen and len(seen) < NEAREST:
                seen[passage.path] = NearestPage(
                    path=passage.path, title=passage.title, heading=passage.heading, url=passage.url
                )
        pages.append(list(seen.values()))
    return pages


async def gaps_section(
    sessionmaker: async_sessionmaker[AsyncSession],
    period: ReportPeriod,
    *,
    settings: Settings,
    embedder: Embedder,
    retriever: Retriever | None,
) -> GapsSection:
    """The period's declined and down-voted questions grouped into topics (largest first).
    `retriever` None (the index could not be opened): topics without nearest pages."""
    import numpy as np

    async with sessionmaker() as db:
        total, questions = await gap_questions(db, period, limit=settings.report_max_gap_questions)
    note = None
    if total and not questions:
        note = "Question text is not stored (BOOKCHAT_HISTORY_STORE_QUESTION_TEXT=false)."
    elif total > len(questions):
        note = f"Grouped the {len(questions)} most recent of {total} questions."
    if not questions:
        return GapsSection(questions=total, grouped=0, topics=[], note=note)

    vectors = await _vectors(sessionmaker, questions, embedder)
    groups = group_by_meaning(vectors)[:MAX_TOPICS]
    topics: list[GapTopic] = []
    central: list[str] = []
    for members in groups:
        centre = vectors[members].mean(axis=0)
        closeness = vectors[members] @ (centre / max(float(np.linalg.norm(centre)), 1e-12))
        examples: list[str] = []
        seen: set[str] = set()
        for index in [members[i] for i in np.argsort(-closeness).tolist()]:
            text = questions[index].text.strip()
            if text.casefold() not in seen and len(examples) < EXAMPLES:
                seen.add(text.casefold())
                examples.append(text)
        central.append(examples[0])
        asked = [questions[i].asked_at for i in members]
        topics.append(
            GapTopic(
                questions=len(members),
                declined=sum(questions[i].declined for i in members),
                down_voted=sum(questions[i].down_voted for i in members),
                examples=examples,
                nearest_pages=[],
                first_seen=min(asked),
                last_seen=max(asked),
            )
        )
    if retriever is not None:
        try:
            nearest = await asyncio.to_thread(
                _nearest_pages, retriever, central, period.site or settings.site_name
            )
        except Exception as error:  # Qdrant down or the site not indexed: topics still help
            log.warning("report: nearest pages unavailable: %r", error)
            note = (note + " " if note else "") + "Nearest pages unavailable: index unreachable."
        else:
            for topic, pages in zip(topics, nearest, strict=True):
                topic.nearest_pages = pages
    else:
        note = (note + " " if note else "") + "Nearest pages unavailable: index not opened."
    return GapsSection(questions=total, grouped=len(questions), topics=topics, note=note)


async def build_report(
    sessionmaker: async_sessionmaker[AsyncSession],
    period: ReportPeriod,
    *,
    settings: Settings,
    embedder: Embedder,
    retriever: Retriever | None,
) -> Report:
    """The whole report for a period (see shared/report.py for each section)."""
    async with sessionmaker() as db:
        usage = await usage_section(db, period)
        feedback = await feedback_section(db, period)
    gaps = await gaps_section(
        sessionmaker, period, settings=settings, embedder=embedder, retriever=retriever
    )
    return Report(
        generated_at=datetime.now(UTC),
        period=period,
        question_text_stored=settings.history_store_question_text,
        usage=usage,
        feedback=feedback,
        gaps=gaps,
    )


async def process_report_job(runtime: ReportRuntime, job_id: str) -> None:
    """Build the report a queued job asks for (`meta.request` is a `ReportPeriod`); its result
    is the report as JSON. A job the API already gave up on is skipped."""
    jobs = runtime.jobs
    period = await jobs.start(job_id, ReportPeriod)
    if period is None:
        return
    try:
        retriever = runtime.retriever
    except Exception as error:
        if not (isinstance(error, BookchatError) or is_store_error(error)):
            raise  # a bug of ours, not the index being unavailable
        # The index cannot be opened (another process holds the embedded store...): a report
        # without nearest pages.
        log.warning("report job %s: index unavailable: %r", job_id, error)
        retriever = None
    try:
        report = await build_report(
            runtime.sessionmaker,
            period,
            settings=runtime.settings,
            embedder=runtime.embedder,
            retriever=retriever,
        )
    except BookchatError as error:
        await jobs.fail(job_id, error.code, error.message)
        return
    except (SQLAlchemyError, OSError) as error:
        log.error("report job %s: database unavailable: %r", job_id, error)
        await jobs.fail(
            job_id, ErrorCode.DATABASE_UNAVAILABLE, "History could not be read; retry shortly."
        )
        return
    await jobs.succeed(job_id, report.model_dump(mode="json"))
