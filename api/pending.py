"""Answers still being written, as a conversation read back shows them: a reader who reloads
the page (or whose connection dropped) right after asking finds the question and the answer
so far, and how to follow the rest.

The question is in history from the moment it was queued (api/enqueue.py, `enqueue_chat`);
its answer row is written when the job ends. In between, the job's event stream holds the
answer so far (`JobReader.answer_so_far`). GET /v1/sessions/{id}/messages and the ChatKit
store (api/chatkit_store.py) both read unanswered questions through `pending_answers`.
"""

from __future__ import annotations

import uuid

from api.deps import AppState
from api.enqueue import job_urls
from api.schemas import PendingAnswer

__all__ = ["pending_answers"]


async def pending_answers(state: AppState, session_id: uuid.UUID) -> dict[uuid.UUID, PendingAnswer]:
    """Per job id, the pending answer of each question of the session with no answer row:
    running or queued (its text so far), failed or expired (its error), or `gone` (the job's
    keys have expired: nothing will follow)."""
    pending: dict[uuid.UUID, PendingAnswer] = {}
    for job_id in await state.history.unanswered_jobs(session_id):
        job = await state.jobs.get(str(job_id))
        text, last = ("", "0-0") if job is None else await state.jobs.answer_so_far(job.id)
        status_url, events_url = job_urls(state, str(job_id), job.created_at if job else None)
        pending[job_id] = PendingAnswer(
            job_id=str(job_id),
            status=str(job.status) if job else "gone",
            answer_so_far=text,
            progress=job.progress if job else None,
            error=job.error if job else None,
            last_event_id=last,
            status_url=status_url,
            events_url=events_url,
        )
    return pending
