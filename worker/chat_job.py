"""The chat job around the pipeline: job state and events, streamed tokens, history.

`answer_and_record` (load the session's history, answer, save the exchange) is the one path
from a question to a stored answer: the Celery chat job, `bookchat ask` and
bench/sync_baseline.py all call it. `process_chat_job` adds the job store around it.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from shared import metrics
from shared.errors import BookchatError, ErrorCode
from shared.history import Exchange, History
from shared.index_state import indexed_commit
from shared.job_models import ChatJobRequest, ChatRequest
from shared.jobs import EventType, Job, JobStatus, JobStore
from shared.link_policy import LinkPolicy
from shared.llm_status import OPERATOR_CODES, record_refusal
from shared.passages import Passage
from shared.settings import Settings
from worker.chat import Answer, answer_question
from worker.retrieval import Retriever

if TYPE_CHECKING:
    from worker.runtime import ChatRuntime

__all__ = ["TokenRelay", "answer_and_record", "process_chat_job", "reading_progress"]

log = logging.getLogger(__name__)


async def answer_and_record(
    request: ChatRequest,
    *,
    settings: Settings,
    retriever: Retriever,
    history: History,
    job_id: str | None = None,
    asked_at: float | None = None,
    on_token: Callable[[str], Awaitable[None]] | None = None,
    on_restart: Callable[[], Awaitable[None]] | None = None,
    stream_pace_s: float = 0.0,
    on_search: Callable[[str, list[Passage]], Awaitable[None]] | None = None,
    index_commit: str | None = None,
    replaces_job: str | None = None,
) -> tuple[Answer, uuid.UUID]:
    """Answer `request` in the context of its session and store the exchange.

    The history read leaves out this job's own messages (a redelivered job must not see its
    first delivery's answer). `replaces_job`: the job this one retries; its exchange and what
    followed it are left out of the history read and replaced when this answer is stored
    (`History.record`). `job_id` keys the stored rows (None: a fresh id, for callers with
    no job). `asked_at` (epoch seconds; None = now) is when the question arrived: the stored
    `answer_ms` counts from it, queue wait included. With BOOKCHAT_HISTORY_STORE_QUESTION_TEXT
    false the question is stored without its text. `index_commit`: the git commit the site's
    index was built from, stored with the answer. Returns the answer and the stored assistant
    message's id. Raises BookchatError
    (see `answer_question`) and SQLAlchemyError/OSError when the database is unreachable.
    """
    job_id = job_id or str(uuid.uuid4())
    asked_at = time.time() if asked_at is None else asked_at
    if request.session_id is None:  # the API always sets it; a caller without one starts one
        request = request.model_copy(update={"session_id": uuid.uuid4()})
    session_id = str(request.session_id)
    turns = await history.recent_turns(
        session_id, turns=settings.history_turns, before_job=job_id, from_job=replaces_job
    )
    answer = await answer_question(
        request,
        settings=settings,
        retriever=retriever,
        history=turns,
        on_token=on_token,
        on_restart=on_restart,
        stream_pace_s=stream_pace_s,
        on_search=on_search,
    )
    message_id = await history.record(
        Exchange(
            job_id=job_id,
            session_id=session_id,
            site=settings.site_name,
            question=request.message,
            selection=request.selection,
            page_url=request.page_url,
            answer=answer.answer,
            citations=answer.citations,
            refused=answer.refused,
            truncated=answer.truncated,
            model=answer.model,
            usage=answer.usage,
            answer_ms=max(0, round((time.time() - asked_at) * 1000)),
            index_commit=index_commit,
        ),
        store_question_text=settings.history_store_question_text,
        replaces_job=replaces_job,
    )
    return answer, message_id


async def _record_timings(redis: Redis, answer: Answer) -> None:
    """Per-answer figures for /metrics (the API reads them from Redis, see shared/metrics.py),
    in one round trip."""
    batch = metrics.MetricsBatch(redis)
    for seconds in answer.search_seconds:
        batch.observe("bookchat_retrieval_seconds", seconds)
    if answer.usage.get("requests"):
        batch.observe("bookchat_llm_seconds", answer.llm_seconds, model=answer.model)
    await batch.write()


class TokenRelay:
    """Relays the answer's token deltas to the job's event stream, coalesced: the first delta
    at once, then at most one event per `interval_s` carrying all deltas since. Readers see
    the same text, and a fast model costs a few Redis writes (and SSE wake-ups in the API) per
    answer instead of one per token (bench/chat_load.py measured the difference). Each event
    costs the worker a script call, the API a stream read and an SSE frame, the reader a
    parse: 100 ms (ten updates a second, still smooth reading) halved them against 50 ms
    (docs/benchmarks.md, "Queue path CPU").

    Every delta passes the link policy first (`links`, shared/link_policy.py): a link split
    across deltas is held back until it can be judged whole, so no external link is ever
    streamed to a client."""

    def __init__(
        self, jobs: JobStore, job_id: str, interval_s: float = 0.1, links: LinkPolicy | None = None
    ) -> None:
        self._jobs, self._job_id, self._interval_s = jobs, job_id, interval_s
        self._links = (links or LinkPolicy()).stream()
        self._pending: list[str] = []
        self._closing = asyncio.Event()
        self._holding = False  # finish(): what is pending is the caller's to write
        self._task: asyncio.Task[None] | None = None

    async def add(self, delta: str) -> None:
        delta = self._links.feed(delta)
        if not delta:
            return
        self._pending.append(delta)
        if self._task is None or self._task.done():
            if self._task is not None:
                self._task.result()  # a failed write fails the job, as before
            self._task = asyncio.create_task(self._drain())

    async def _drain(self) -> None:
        while self._pending and not self._holding:
            text = "".join(self._pending)
            self._pending.clear()
            await self._jobs.emit(self._job_id, EventType.TOKEN, {"delta": text})
            if not self._closing.is_set():
                # asyncio.timeout, not wait_for: no extra task per interval.
                with suppress(TimeoutError):
                    async with asyncio.timeout(self._interval_s):
                        await self._closing.wait()

    async def restart(self) -> None:
        """The attempt that streamed so far failed and another starts: drop what is pending and
        tell readers (a `status` event marked `restarted`) to drop what they were shown."""
        self._pending.clear()
        self._links.reset()
        if self._task is not None:
            await self._task
            self._task = None
        await self._jobs.emit(
            self._job_id, EventType.STATUS, {"status": "running", "restarted": True}
        )

    async def close(self) -> None:
        """Write what is pending now (no waiting out the interval) and stop."""
        if rest := await self.finish():
            await self._jobs.emit(self._job_id, EventType.TOKEN, {"delta": rest})

    async def finish(self) -> str:
        """Stop relaying (no waiting out the interval) and return the text not yet written, in
        order after every delta written so far: for the caller's last write of the answer
        (`JobStore.succeed(events=...)`), one round trip instead of two."""
        if rest := self._links.flush():  # what the link filter held back until the end
            self._pending.append(rest)
        self._holding = True
        self._closing.set()
        if self._task is not None:
            await self._task
        text = "".join(self._pending)
        self._pending.clear()
        return text


async def process_chat_job(runtime: ChatRuntime, job_id: str, *, job: Job | None = None) -> None:
    """Answer one queued chat job: state and events to the job store, the exchange to history.
    `job`: the job as the caller just read it, to save reading it again (None: read here)."""
    jobs = runtime.jobs
    if job is None:
        job = await jobs.get(job_id)
    if job is None:
        log.warning("chat job %s is gone (expired?); nothing to do", job_id)
        return
    if job.status.terminal:
        log.info("chat job %s already %s; redelivery ignored", job_id, job.status)
        return
    request = ChatJobRequest.model_validate(job.meta["request"])
    # The queue wait counts from when the job last entered the queue (its `updated_at` while
    # queued): a job the cleanup requeued after losing its worker was silent for the whole
    # stale threshold first, and counted from `created_at` it always expired (issue 30).
    if job.status is JobStatus.QUEUED and time.time() - job.updated_at > (
        runtime.settings.chat_job_expire_s
    ):
        log.warning("chat job %s waited too long in the queue; expired", job_id)
        await jobs.expire(job_id, "The question waited too long in the queue; please ask again.")
        return
    await jobs.mark_running(job_id)
    try:
        async with jobs.heartbeating(job_id):
            await _answer_job(runtime, job_id, request, asked_at=job.created_at)
    except BookchatError as error:
        log.warning("chat job %s failed: %s", job_id, error.message)
        await jobs.fail(job_id, error.code, error.message)
        if error.code in OPERATOR_CODES:  # for /readyz: the operator has to act
            try:
                await record_refusal(runtime.redis, error.code, error.message)
            except RedisError as unrecorded:
                log.warning("could not record the provider's refusal: %r", unrecorded)
    except (SQLAlchemyError, OSError) as error:
        # The engine already retried the connection with a bounded backoff
        # (BOOKCHAT_DB_CONNECT_RETRIES); past that, say so rather than crash as internal_error.
        log.error("chat job %s: database unavailable: %r", job_id, error)
        await jobs.fail(
            job_id,
            ErrorCode.DATABASE_UNAVAILABLE,
            "The conversation history could not be read or saved; ask again shortly.",
        )


READING_PAGES_SHOWN = 5


def reading_progress(hits: list[Passage]) -> dict[str, Any]:
    """The `progress` a chat job reports after a search: the pages it is reading, so a reader
    sees where the answer will come from before its text arrives.

    Shape: `{"message": "Reading 3 pages…", "pages": [{"title", "heading", "url"}]}`, one entry
    per page (the best-ranked section of it), at most READING_PAGES_SHOWN, in rank order."""
    pages: dict[str, dict[str, str]] = {}
    for hit in hits:
        page = hit.url.split("#", 1)[0]
        if page not in pages:
            pages[page] = {"title": hit.title, "heading": hit.heading, "url": hit.url}
    shown = list(pages.values())[:READING_PAGES_SHOWN]
    count = len(pages)
    message = f"Reading {count} page{'s' if count != 1 else ''}…" if count else "Searching…"
    return {"message": message, "pages": shown}


async def _answer_job(
    runtime: ChatRuntime, job_id: str, request: ChatJobRequest, *, asked_at: float
) -> None:
    jobs = runtime.jobs
    relay = TokenRelay(jobs, job_id, links=LinkPolicy.for_site(runtime.settings.site_url))

    async def show_pages(query: str, hits: list[Passage]) -> None:
        # Progress is for readers watching; a job-store blip here must not fail the search (the
        # SDK would turn it into a failed tool call, then a failed model and a failed job).
        try:
            await jobs.set_progress(job_id, reading_progress(hits))
        except RedisError as error:
            log.warning("could not report the pages being read: %s", error)

    index_commit = None
    if runtime.settings.site_repo is not None:
        try:
            index_commit, _ = await indexed_commit(runtime.redis, runtime.settings.site_name)
        except RedisError as error:  # the answer matters more than its provenance
            log.warning("chat job %s: the index's commit is unknown: %r", job_id, error)
    try:
        answer, message_id = await answer_and_record(
            request,
            settings=runtime.settings,
            retriever=runtime.retriever,
            history=History(runtime.sessionmaker),
            job_id=job_id,
            asked_at=asked_at,
            on_token=relay.add,
            on_restart=relay.restart,
            stream_pace_s=runtime.settings.offline_stream_pace_s,
            on_search=show_pages,
            index_commit=index_commit,
            replaces_job=str(request.retry_of) if request.retry_of else None,
        )
    except BaseException:
        await relay.close()
        raise
    # The answer's end in one write: the text not yet streamed, the citations, `done`.
    last: list[tuple[EventType, dict[str, Any]]] = []
    if rest := await relay.finish():
        last.append((EventType.TOKEN, {"delta": rest}))
    last.append((EventType.CITATIONS, {"citations": answer.citations}))
    result = answer.result(str(request.session_id), str(message_id))
    await jobs.succeed(job_id, result.model_dump(mode="json"), events=last)
    try:
        await _record_timings(runtime.redis, answer)
    except RedisError as error:  # metrics must not fail an answered job
        log.warning("chat job %s: timings not recorded: %r", job_id, error)
