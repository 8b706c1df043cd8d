"""`bookchat ingest` with a progress bar (rich) over the indexer's progress callback."""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from cli.embedded import migrate_embedded
from ingestion_jobs.documents import SiteRead
from ingestion_jobs.embedding import site_embedder
from ingestion_jobs.indexer import IngestProgress, IngestReport, index_site
from ingestion_jobs.page_catalog import site_catalog
from shared.db import make_engine, make_sessionmaker
from shared.settings import Settings
from shared.site_pages import PageCatalog
from shared.vectorstore import open_store

__all__ = ["ingest_with_progress", "write_page_catalog"]

log = logging.getLogger(__name__)


def write_page_catalog(settings: Settings, read: SiteRead) -> None:
    """The page catalog of `read` into the settings' database (the embedded one is migrated
    first). A failure is logged, not raised: the index is good, only `llms.txt` and the `.md`
    pages stay as they were."""

    async def write() -> None:
        engine = make_engine(settings.effective_database_url, settings)
        try:
            await PageCatalog(make_sessionmaker(engine)).replace(
                *site_catalog(read, settings.site_name)
            )
        finally:
            await engine.dispose()

    try:
        migrate_embedded(settings)
        # Its own thread and loop: a caller may be inside a running event loop (asyncio.run
        # refuses to start a second one in a thread that has one).
        with ThreadPoolExecutor(max_workers=1) as pool:
            pool.submit(lambda: asyncio.run(write())).result()
    except Exception as error:
        log.error("the page catalog was not written: %r", error)


def ingest_with_progress(
    settings: Settings,
    site_dir: Path,
    *,
    site_url: str | None,
    full_rebuild: bool,
    repo_root: Path | None = None,
) -> IngestReport:
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    store = open_store(settings)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
    )
    try:
        with Progress(*columns, transient=False) as bar:
            task = bar.add_task("reading site", total=None)

            def on_progress(step: IngestProgress) -> None:
                if step.stage == "discovered":
                    bar.update(
                        task,
                        description=f"{step.pages} pages, {step.chunks} chunks; embedding",
                        total=step.total or 0,
                        completed=0,
                    )
                elif step.stage == "embedded":
                    bar.update(task, completed=step.done, total=step.total)
                elif step.stage == "indexed":
                    total = bar.tasks[0].total or 1
                    bar.update(task, description="indexed", completed=total, total=total)

            return index_site(
                site_dir,
                store=store,
                embedder=site_embedder(settings),
                collection=settings.collection,
                site=settings.site_name,
                site_url=site_url or settings.site_url,
                full_rebuild=full_rebuild,
                progress=on_progress,
                on_indexed=lambda read: write_page_catalog(settings, read),
                repo_root=repo_root,
            )
    finally:
        store.close()
