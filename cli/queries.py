"""`bookchat search` and `bookchat ask` here, in this process: the retriever over the index
`bookchat ingest` wrote, answering (and recording) questions one by one, and their output (text,
or one JSON object a line with --json / --batch). cli/main.py parses the commands' arguments.
"""

from __future__ import annotations

import json
import re
import sys
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

import pydantic
import typer

from cli.errors import USAGE_ERROR, CliError, ExitCode
from shared.errors import BookchatError, ErrorCode
from shared.settings import Settings

if TYPE_CHECKING:
    from shared.job_models import ChatRequest

__all__ = [
    "ask_all",
    "chat_request",
    "emit",
    "local_retriever",
    "numbered_answer",
    "read_lines",
    "search_index",
]


def read_lines(batch: str) -> Iterator[str | CliError]:
    """The lines of FILE (stdin for `-`) a `--batch` answers, in order, one output line each.

    Blank and whitespace-only lines are skipped (so the output maps 1:1 to the non-blank input
    lines). A line that is not UTF-8 comes as a `validation_error` in its place, and the batch
    goes on. The file is opened here, before any work: a missing file is `not_found`, a folder
    a usage error."""
    if batch == "-":
        stream: IO[bytes] | None = getattr(sys.stdin, "buffer", None)
        if stream is None:  # a text-only stdin (tests, embedding): it is already decoded
            return _non_blank(enumerate(sys.stdin, 1))
        return _decoded(stream, close=False)
    path = Path(batch)
    if path.is_dir():
        raise CliError(
            USAGE_ERROR,
            f"--batch {batch} is a folder: give a file of one query a line, or - for stdin",
            ExitCode.USAGE,
        )
    return _decoded(path.open("rb"), close=True)


def _decoded(stream: IO[bytes], *, close: bool) -> Iterator[str | CliError]:
    def lines() -> Iterator[tuple[int, str | CliError]]:
        try:
            for number, raw in enumerate(stream, 1):
                try:
                    yield number, raw.decode("utf-8")
                except UnicodeDecodeError as error:
                    yield (
                        number,
                        CliError(
                            ErrorCode.VALIDATION_ERROR,
                            f"line {number}: not UTF-8 text ({error.reason} at byte {error.start})",
                            ExitCode.USAGE,
                        ),
                    )
        finally:
            if close:
                stream.close()

    return _non_blank(lines())


def _non_blank(lines: Iterable[tuple[int, str | CliError]]) -> Iterator[str | CliError]:
    for _, line in lines:
        if isinstance(line, CliError):
            yield line
            continue
        line = line.rstrip("\r\n")
        if line.strip():
            yield line


def emit(obj: Any) -> None:
    sys.stdout.write(json.dumps(obj, ensure_ascii=False) + "\n")
    sys.stdout.flush()


def local_retriever(settings: Settings) -> Any:
    """The retriever over the index `bookchat ingest` wrote; a missing index is a one-line
    failure that says how to build it (not the store's `Collection not found`)."""
    from cli.embedded import running_dev
    from ingestion_jobs.embedding import embedder_for_index, get_embedder
    from shared.vectorstore import StoreLockedError, open_store
    from worker.retrieval import Retriever

    try:
        store = open_store(settings)
    except StoreLockedError as error:
        dev = running_dev(settings.data_dir)
        if dev is None:
            raise
        raise CliError(
            ErrorCode.INDEX_UNAVAILABLE,
            f"bookchat dev (pid {dev.pid}) holds the local index in {settings.qdrant_path}: "
            f"stop it first, or ask it: curl -X POST {dev.api_url}/v1/retrieve "
            "-H 'Content-Type: application/json' -d '{\"query\": \"...\"}'",
        ) from error
    if store.current(settings.collection) is None:
        store.close()
        where = settings.qdrant_url or str(settings.qdrant_path)
        raise CliError(
            ErrorCode.INDEX_EMPTY,
            f"no index yet in {where}: run `bookchat ingest SITE_DIR` first "
            "(with the same BOOKCHAT_DATA_DIR or QDRANT_URL)",
        )
    return Retriever(
        store,
        get_embedder(settings),
        settings.collection,
        follow_index=lambda stored: embedder_for_index(settings, stored),
    )


def search_index(
    settings: Settings, query: str | None, *, batch: str | None, limit: int, as_json: bool
) -> ExitCode | None:
    """Prints the best passages for `query`, or for each line of `batch` (one JSON list a line;
    a line that cannot be searched prints its error instead and the batch goes on). Returns the
    exit code of the batch's last failed line (None: none)."""
    from cli.errors import describe, error_object
    from worker.retrieve_job import public_passage

    lines = read_lines(batch) if batch is not None else None
    retriever = local_retriever(settings)

    def run(q: str) -> list[dict[str, Any]]:
        hits = retriever.search(q, limit=limit, site=settings.site_name)
        return [public_passage(hit).model_dump() for hit in hits]

    if lines is not None:
        failed: ExitCode | None = None
        for line in lines:
            try:
                if isinstance(line, CliError):
                    raise line
                emit(run(line))
            except (CliError, BookchatError) as error:
                failure = describe(error)
                failed = failure.exit_code
                emit(error_object(failure))
        return failed
    assert query is not None
    results = run(query)
    if as_json:
        emit(results)
        return None
    for rank, hit in enumerate(results, 1):
        typer.echo(
            f"{rank}. [{hit['score']:.3f}] {hit['title']} > {hit['heading']}\n   {hit['url']}"
        )
    return None


def chat_request(
    text: str, session: str | None, selection: str | None, page_url: str | None
) -> ChatRequest:
    """The job request `bookchat ask` answers, validated like the API's body (pydantic
    ValidationError: a blank or oversized question, a bad page URL…)."""
    from shared.job_models import ChatRequest

    return ChatRequest(
        message=text,
        session_id=uuid.UUID(session) if session else uuid.uuid4(),
        selection=selection,
        page_url=page_url,
    )


def numbered_answer(answer: str, citations: list[dict[str, Any]]) -> str:
    """An answer as text, its `[n]` markers renumbered as its sources are listed under it
    (`[1] Title > Heading: URL`), as the widget numbers them. A citation's `number` is the
    passage number the model cited; the reader sees the source's place in the list."""
    shown = {int(c["number"]): i for i, c in enumerate(citations, 1) if "number" in c}

    def renumber(match: re.Match[str]) -> str:
        place = shown.get(int(match.group(1)))
        return f"[{place}]" if place is not None else match.group(0)

    text = re.sub(r"\[(\d{1,3})\]", renumber, answer)
    sources = [
        f"[{i}] {c['title']} > {c['heading']}: {c['url']}" for i, c in enumerate(citations, 1)
    ]
    return "\n".join([text, *(["", "Sources:", *sources] if sources else [])])


async def ask_all(
    settings: Settings,
    questions: list[str | CliError],
    batch: bool,
    as_json: bool,
    selection: str | None,
    page_url: str | None,
    session: str | None,
) -> ExitCode | None:
    """Answers each question in turn. A failed question of a batch prints its error in place of
    its result and the batch goes on; returns the exit code of the last failure (None: none)."""
    from cli.errors import describe, error_object
    from shared.db import make_engine, make_sessionmaker
    from shared.history import History
    from worker.chat_job import answer_and_record
    from worker.llm import configure_tracing

    configure_tracing(settings)
    failed: ExitCode | None = None
    retriever = local_retriever(settings)
    engine = make_engine(settings.effective_database_url, settings)
    sessionmaker = make_sessionmaker(engine)
    try:
        for text in questions:
            try:
                if isinstance(text, CliError):
                    raise text  # a line of the batch that is no question (not UTF-8)
                request = chat_request(text, session, selection, page_url)
                answer, _ = await answer_and_record(
                    request, settings=settings, retriever=retriever, history=History(sessionmaker)
                )
            except (BookchatError, CliError, pydantic.ValidationError) as error:
                if not batch:
                    raise  # `main` reports it (JSON under --json)
                failure = describe(error)
                failed = failure.exit_code
                emit(error_object(failure))
                continue
            if as_json or batch:
                emit(
                    {
                        "answer": answer.answer,
                        "citations": answer.citations,
                        "refused": answer.refused,
                        "session_id": str(request.session_id),
                        # Only when true: the contract's four keys stay as they were.
                        **({"truncated": True} if answer.truncated else {}),
                    }
                )
            else:
                typer.echo(numbered_answer(answer.answer, answer.citations))
    finally:
        await engine.dispose()
    return failed
