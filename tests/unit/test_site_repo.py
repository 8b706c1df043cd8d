"""The site from git: URL identity and redaction, and the checkout with git itself."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from ingestion_jobs.site_repo import RepoFetchError, SiteRepo, check_out
from shared.repo_url import redact, repo_identity

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "url",
    [
        "https://github.com/Acme/Site.git",
        "https://x-access-token:secret@github.com/acme/site",
        "git@github.com:acme/site.git",
        "ssh://git@github.com:22/acme/site.git/",
    ],
)
def test_every_form_of_a_url_names_the_same_repository(url: str) -> None:
    assert repo_identity(url) == "github.com/acme/site"


def test_file_urls_name_their_path() -> None:
    assert repo_identity("file:///srv/site.git") == "/srv/site"


def test_credentials_are_redacted_wherever_a_url_appears() -> None:
    text = "fatal: could not read from https://user:t0ken@github.com/acme/site.git (403)"
    assert redact(text) == "fatal: could not read from https://***@github.com/acme/site.git (403)"
    assert redact("git@github.com:acme/site.git") == "git@github.com:acme/site.git"


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True)
    return done.stdout.strip()


def make_remote(tmp_path: Path) -> tuple[Path, Path]:
    """A bare repository on disk and a work tree that pushes to it."""
    bare, work = tmp_path / "site.git", tmp_path / "work"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(bare)], check=True)
    subprocess.run(["git", "init", "-q", "-b", "main", str(work)], check=True)
    git(work, "config", "user.email", "t@example.org")
    git(work, "config", "user.name", "T")
    git(work, "remote", "add", "origin", bare.as_uri())
    return bare, work


def commit_all(work: Path, message: str, branch: str = "main") -> str:
    git(work, "add", "-A")
    git(work, "commit", "-q", "-m", message)
    git(work, "push", "-q", "origin", f"HEAD:refs/heads/{branch}")
    return git(work, "rev-parse", "HEAD")


def test_check_out_follows_the_ref_and_removes_deleted_files(tmp_path: Path) -> None:
    bare, work = make_remote(tmp_path)
    (work / "website").mkdir()
    (work / "website" / "a.md").write_text("a\n")
    first = commit_all(work, "first")
    data = tmp_path / "data"
    repo = SiteRepo(bare.as_uri(), None, "website")
    checkout = check_out(repo, data)
    assert (checkout.commit, checkout.ref) == (first, "main")  # the branch HEAD names
    assert (checkout.site_dir / "a.md").read_text() == "a\n"

    (work / "website" / "a.md").unlink()
    (work / "website" / "b.md").write_text("b\n")
    second = commit_all(work, "second")
    git(work, "checkout", "-q", "-b", "other")
    (work / "website" / "c.md").write_text("c\n")
    commit_all(work, "other branch", branch="other")
    checkout = check_out(repo, data)
    assert checkout.commit == second
    assert sorted(p.name for p in checkout.site_dir.iterdir()) == ["b.md"]
    # shallow: one commit in our clone
    assert git(checkout.root, "rev-list", "--count", "HEAD") == "1"
    assert check_out(SiteRepo(bare.as_uri(), "other", "website"), data).commit != second


def test_a_fetch_failure_is_a_stable_code_without_the_token(tmp_path: Path) -> None:
    repo = SiteRepo("https://user:s3cret-token@127.0.0.1:9/acme/site.git")
    with pytest.raises(RepoFetchError) as raised:
        check_out(repo, tmp_path / "data", timeout_s=30)
    assert raised.value.code == "repo_fetch_failed"
    assert "s3cret-token" not in raised.value.message


def test_a_subdir_outside_the_repository_is_refused(tmp_path: Path) -> None:
    bare, work = make_remote(tmp_path)
    (work / "x.md").write_text("x\n")
    commit_all(work, "first")
    with pytest.raises(Exception, match="outside the repository"):
        check_out(SiteRepo(bare.as_uri(), None, "../.."), tmp_path / "data")
