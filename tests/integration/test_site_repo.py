"""The index follows the docs' git repository (issue 25), with real processes: a bare repository
on disk pushed to over file://, `bookchat dev --repo` (its Celery worker fetches with git), and
the signed push webhook."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.routes.hooks import signature_of
from tests.integration.test_first_run import (
    BOOKCHAT,
    Dev,
    _env,
    _follow,
    _free_port,
    _stop,
    _wait_healthz,
)

pytestmark = [pytest.mark.integration, pytest.mark.timeout(600)]

MONOREPO = Path(__file__).resolve().parents[1] / "docusaurus" / "repos" / "monorepo"
SECRET = "repo-webhook-secret"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def push(work: Path, message: str, branch: str = "main") -> str:
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    git(work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    return git(work, "rev-parse", "HEAD")


def hook(http: httpx.Client, dev: Dev, bare: Path, ref: str) -> httpx.Response:
    # Each push's payload names the commit it pushed (`after`): two pushes are two bodies (the
    # hook deduplicates by the signed body).
    body = json.dumps(
        {
            "ref": ref,
            "after": uuid.uuid4().hex,
            "repository": {"full_name": "acme/quay", "clone_url": bare.as_uri()},
        }
    ).encode()
    headers = {
        "X-Hub-Signature-256": signature_of(SECRET.encode(), body),
        "X-GitHub-Event": "push",
        "Content-Type": "application/json",
    }
    return http.post(f"{dev.url}/v1/hooks/reindex", content=body, headers=headers)


def paths_found(http: httpx.Client, dev: Dev, query: str) -> set[str]:
    response = http.post(f"{dev.url}/v1/retrieve", json={"query": query, "limit": 20}, timeout=60)
    assert response.status_code == 200, response.text
    return {passage["path"] for passage in response.json()}


def ingestion(http: httpx.Client, dev: Dev, accepted: httpx.Response) -> dict[str, Any]:
    assert accepted.status_code == 202, accepted.text
    return _follow(http, dev, accepted.json()["status_url"])


def test_dev_indexes_the_repository_and_follows_its_pushes(tmp_path: Path) -> None:
    bare, work = tmp_path / "quay.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    shutil.copytree(MONOREPO, work)
    git(work, "init", "-q", "-b", "main")
    git(work, "config", "user.email", "docs@example.org")
    git(work, "config", "user.name", "Docs")
    git(work, "remote", "add", "origin", bare.as_uri())
    first = push(work, "the site")

    data = tmp_path / "data"
    port = _free_port()
    log_path = tmp_path / "dev.log"
    env = _env(data, BOOKCHAT_WEBHOOK_SECRET=SECRET)
    process = subprocess.Popen(
        [*BOOKCHAT, "dev", "--port", str(port), "--repo", bare.as_uri(), "--subdir", "website"],
        env=env,
        cwd=tmp_path,
        stdout=log_path.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    dev = Dev(process, f"http://127.0.0.1:{port}", log_path)
    try:
        with httpx.Client(timeout=30) as http:
            _wait_healthz(dev, http)
            deadline = time.monotonic() + 180
            while (ready := http.get(f"{dev.url}/readyz").json()).get("index_commit") != first:
                assert time.monotonic() < deadline, (ready, dev.output())
                time.sleep(0.5)
            # The docs beside the site folder (docs: {path: '../docs'}) are indexed.
            assert "../docs/guides/mooring.md" in paths_found(http, dev, "bollard bow line")

            # A push: one page added, one deleted; the signed webhook re-indexes that commit.
            (work / "docs" / "guides" / "mooring.md").unlink()
            (work / "docs" / "guides" / "fenders.md").write_text(
                "# Fenders\n\n## Inflating fenders\n\nPump each fender to half a bar.\n"
            )
            second = push(work, "fenders instead of mooring")
            job = ingestion(http, dev, hook(http, dev, bare, "refs/heads/main"))
            assert job["status"] == "succeeded", (job, dev.output())
            assert job["result"]["commit"] == second
            assert job["result"]["repo"] == bare.as_uri()
            found = paths_found(http, dev, "fender pump half a bar")
            assert "../docs/guides/fenders.md" in found
            assert "../docs/guides/mooring.md" not in paths_found(http, dev, "bollard bow line")
            chat = http.post(f"{dev.url}/v1/chat", json={"message": "How far are fenders pumped?"})
            answer = _follow(http, dev, chat.json()["status_url"])
            assert answer["status"] == "succeeded", answer
            cited = {c["path"] for c in answer["result"]["citations"]}
            assert "../docs/guides/fenders.md" in cited, answer["result"]
            # The history keeps the commit of the index the answer came from.
            session = chat.json()
            messages = http.get(
                f"{dev.url}/v1/sessions/{session['session_id']}/messages",
                headers={"X-Session-Token": session["session_token"]},
            ).json()
            assert [m["index_commit"] for m in messages if m["role"] == "assistant"] == [second]

            # A push to another branch queues nothing and changes nothing.
            git(work, "checkout", "-q", "-b", "draft")
            (work / "docs" / "guides" / "draft.md").write_text("# Draft\n\nUnreleased dredging.\n")
            push(work, "a draft", branch="draft")
            other = hook(http, dev, bare, "refs/heads/draft")
            assert other.status_code == 200, other.text
            assert other.json()["status"] == "ignored"

            # The repository unreachable: the job fails with its code, the index keeps serving.
            bare.rename(tmp_path / "moved.git")
            failed = ingestion(http, dev, hook(http, dev, bare, "refs/heads/main"))
            assert failed["status"] == "failed", failed
            assert failed["error"]["code"] == "repo_fetch_failed"
            assert "../docs/guides/fenders.md" in paths_found(http, dev, "fender pump half a bar")
            assert http.get(f"{dev.url}/readyz").json()["index_commit"] == second

        # The operator's own settings name the repository; the running dev's Redis is found.
        sites = subprocess.run(
            [*BOOKCHAT, "sites", "--json"], env={**env, "BOOKCHAT_SITE_REPO": bare.as_uri()},
            cwd=tmp_path,
            capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert sites.returncode == 0, sites.stderr
        row = json.loads(sites.stdout)[0]
        assert row["repo"] == bare.as_uri()
        assert row["last_ingestion"]["error"] == "repo_fetch_failed"
        assert row["last_ingestion"]["commit"] is None  # the failed job indexed nothing
    finally:
        _stop(dev)
    assert "draft.md" not in dev.output()
