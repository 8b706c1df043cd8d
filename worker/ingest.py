"""Ingestion as a job: index a site with progress reported to the job store."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import asdict
from pathlib import Path
from typing import Any

from ingestion_jobs.indexer import IngestProgress, IngestReport, index_site
from shared.errors import BookchatError, ErrorCode

__all__ = ["process_ingest_job", "report_dict"]

log = logging.getLogger(__name__)


def report_dict(report: IngestReport) -> dict[str, Any]:
    data = asdict(report)
    data["errors"] = [asdict(error) for error in report.errors]
    return data


async def process_ingest_job(runtime: Any, job_id: str) -> None:
    jobs = runtime.jobs
    job = await jobs.get(job_id)
    if job is None or job.status.terminal:
        return
    params = job.meta.get("request", {})
    site_dir = Path(params.get("site_dir") or runtime.settings.site_dir or "")
    if not site_dir.is_dir():
        await jobs.fail(job_id, ErrorCode.SITE_NOT_FOUND, f"No site folder at {site_dir}")
        return
    await jobs.mark_running(job_id)
    loop = asyncio.get_running_loop()

    def on_progress(progress: IngestProgress) -> None:
        # Called from the indexing thread: hand the write to the loop, don't wait for it.
        asyncio.run_coroutine_threadsafe(jobs.set_progress(job_id, asdict(progress)), loop)

    try:
        report = await asyncio.to_thread(
            index_site,
            site_dir,
            client=runtime.qdrant,
            embedder=runtime.embedder,
            collection=runtime.settings.collection,
            site=params.get("site") or runtime.settings.site_name,
            site_url=params.get("site_url") or runtime.settings.site_url,
            full_rebuild=bool(params.get("full_rebuild", False)),
            progress=on_progress,
        )
    except BookchatError as error:
        await jobs.fail(job_id, error.code, error.message)
        return
    await jobs.succeed(job_id, report_dict(report))
