"""The simpler design, for comparison only: one FastAPI endpoint that runs the agent inside the
request (no queue, no job store, no SSE), with the same history reads and writes as the worker.

    BOOKCHAT_... uvicorn bench.sync_baseline:app --port 8100

`POST /chat {"message": ...}` answers with the finished result as JSON, so its time to first
token is its whole latency. It lives in bench/ because the product never runs the agent in the
API process (see DESIGN.md); `bench/chat_load.py` starts it next to the real stack.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from pydantic import BaseModel

from ingestion_jobs.embedding import get_embedder
from shared.db import make_engine, make_sessionmaker
from shared.history import History
from shared.job_models import ChatRequest
from shared.settings import get_settings
from shared.vectorstore import open_store
from worker.chat_job import answer_and_record
from worker.retrieval import Retriever

__all__ = ["app"]


class Question(BaseModel):
    message: str
    session_id: str | None = None


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = get_settings()
    store = open_store(settings)
    engine = make_engine(settings.effective_database_url, settings)
    app.state.settings = settings
    app.state.retriever = Retriever(store, get_embedder(settings), settings.collection)
    app.state.sessionmaker = make_sessionmaker(engine)
    try:
        yield
    finally:
        await engine.dispose()
        store.close()


app = FastAPI(title="bookchat sync baseline", lifespan=lifespan)


@app.post("/chat")
async def chat(question: Question) -> dict[str, Any]:
    """Answer in the request: history, agent, history write, as the worker's chat job."""
    state = app.state
    session_id = question.session_id or str(uuid.uuid4())
    request = ChatRequest(message=question.message, session_id=uuid.UUID(session_id))
    answer, message_id = await answer_and_record(
        request,
        settings=state.settings,
        retriever=state.retriever,
        history=History(state.sessionmaker),
    )
    return answer.result(session_id, str(message_id)).model_dump(mode="json")
