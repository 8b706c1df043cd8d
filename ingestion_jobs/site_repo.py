"""A site read from its git repository: a shallow clone of our own, fetched before each ingestion.

Docs teams keep their site in git, so a push is what should change the index. The ingestion
(worker job or ``bookchat ingest --repo``) calls ``check_out`` first: it brings the clone under
``<data dir>/repos/`` to the newest commit of the configured ref and returns the folder to read
and the commit read, which the ingestion records.

Git itself does the work (``subprocess``): every protocol, credential helper and ssh setting of
the machine then works as it does for the operator, with no reimplementation to trust. Each
fetch is shallow (``--depth 1``) and never asks for a password (``GIT_TERMINAL_PROMPT=0``, ssh in
batch mode): a missing credential fails at once. The URL (which may hold a token, as in
``https://x-access-token:TOKEN@github.com/org/site.git``) is passed on the command line of the
fetch and never written to the clone's config; every message this module makes or relays has
its credentials replaced by ``***`` (``redact``).

Errors: ``RepoFetchError`` (code ``repo_fetch_failed``) when git fails or times out, with git's
own message redacted; ``BookchatError`` ``site_not_found`` when the subdir is not in the
repository or escapes it.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from shared.errors import BookchatError, ErrorCode
from shared.repo_url import redact, repo_identity
from shared.settings import Settings

__all__ = [
    "Checkout",
    "RepoFetchError",
    "SiteRepo",
    "check_out",
    "clone_dir",
    "redact",
    "repo_identity",
]

#: How long one git command may take (a first clone of a large docs repository included).
GIT_TIMEOUT_S = 600.0


@dataclass(frozen=True, slots=True)
class SiteRepo:
    """Where a site's source lives: the repository URL, the ref (branch or tag; None: the
    remote's HEAD) and the folder holding ``docusaurus.config.*`` ("" for the root)."""

    url: str
    ref: str | None = None
    subdir: str = ""

    @property
    def shown_url(self) -> str:
        """The URL without its credentials, for logs, job results and reports."""
        return redact(self.url)

    @classmethod
    def from_settings(cls, settings: Settings) -> SiteRepo | None:
        """The configured repository (`BOOKCHAT_SITE_REPO`, `_SITE_REF`, `_SITE_SUBDIR`)."""
        if settings.site_repo is None:
            return None
        return cls(
            settings.site_repo.get_secret_value(), settings.site_ref or None, settings.site_subdir
        )


@dataclass(frozen=True, slots=True)
class Checkout:
    """A repository brought to a commit: the work tree, the site folder in it, the commit."""

    root: Path
    site_dir: Path
    commit: str
    ref: str


class RepoFetchError(BookchatError):
    """Git could not fetch or check out the site's repository (the index is left as it was)."""

    def __init__(self, message: str) -> None:
        super().__init__(ErrorCode.REPO_FETCH_FAILED, redact(message))


def clone_dir(data_dir: Path, repo: SiteRepo) -> Path:
    """Where the clone of ``repo`` lives: one per repository, ref and subdir (credentials
    aside), so two sites of one repository (each under its own ingestion lock) never run git
    in the same clone at once."""
    source = "\0".join((repo_identity(repo.url), repo.ref or "", repo.subdir.strip("/")))
    return Path(data_dir) / "repos" / hashlib.sha256(source.encode()).hexdigest()[:16]


def _environment() -> dict[str, str]:
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"}
    # Never wait for a password or a host key prompt; the operator's own ssh command is kept.
    env.setdefault("GIT_SSH_COMMAND", "ssh -o BatchMode=yes")
    return env


def _git(*args: str, cwd: Path, timeout_s: float) -> str:
    command = ["git", "-c", "advice.detachedHead=false", *args]
    try:
        done = subprocess.run(
            command,
            cwd=cwd,
            env=_environment(),
            capture_output=True,
            text=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired as error:
        raise RepoFetchError(f"git {args[0]} took more than {timeout_s:.0f} s") from error
    except FileNotFoundError as error:
        raise RepoFetchError("git is not installed (it must be on the PATH)") from error
    if done.returncode != 0:
        lines = [line.strip() for line in (done.stderr or done.stdout).splitlines()]
        tail = [line for line in lines if line][-3:]
        raise RepoFetchError(f"git {args[0]} failed: {' '.join(tail) or done.returncode}")
    return done.stdout.strip()


def _site_folder(root: Path, subdir: str) -> Path:
    parts = PurePosixPath(subdir.strip().strip("/")).parts if subdir.strip("/") else ()
    site_dir = root.joinpath(*parts)
    if ".." in parts or not site_dir.resolve().is_relative_to(root.resolve()):
        raise BookchatError(
            ErrorCode.SITE_NOT_FOUND, f"the site subdir {subdir!r} is outside the repository"
        )
    return site_dir


def _remote_head(repo: SiteRepo, root: Path, timeout_s: float) -> str:
    """The branch the remote's HEAD names (``main``), so that a push webhook can be matched
    to it; ``HEAD`` itself when the remote does not say (then the fetch follows HEAD)."""
    listing = _git("ls-remote", "--symref", "--", repo.url, "HEAD", cwd=root, timeout_s=timeout_s)
    for line in listing.splitlines():
        target, _, name = line.partition("\t")
        if name == "HEAD" and target.startswith("ref: refs/heads/"):
            return target.removeprefix("ref: refs/heads/")
    return "HEAD"


def check_out(repo: SiteRepo, data_dir: Path, *, timeout_s: float = GIT_TIMEOUT_S) -> Checkout:
    """Fetch the newest commit of ``repo.ref`` (shallow) into our clone and check it out.

    Files the previous commit had and this one lacks are gone afterwards (a clean checkout),
    so a page deleted upstream leaves the index at the next ingestion. Blocking: call it from
    a thread in async code. Raises ``RepoFetchError`` or ``BookchatError`` (see the module).
    """
    root = clone_dir(data_dir, repo)
    if not (root / ".git").is_dir():
        root.mkdir(parents=True, exist_ok=True)
        _git("init", "--quiet", str(root), cwd=root.parent, timeout_s=timeout_s)
    ref = repo.ref or _remote_head(repo, root, timeout_s)
    _git(
        "fetch", "--quiet", "--depth=1", "--no-tags", "--", repo.url, ref,
        cwd=root,
        timeout_s=timeout_s,
    )  # fmt: skip
    commit = _git("rev-parse", "--verify", "FETCH_HEAD^{commit}", cwd=root, timeout_s=timeout_s)
    _git("checkout", "--quiet", "--force", "--detach", commit, cwd=root, timeout_s=timeout_s)
    _git("clean", "--quiet", "-ffdx", cwd=root, timeout_s=timeout_s)
    site_dir = _site_folder(root, repo.subdir)
    if not site_dir.is_dir():
        raise BookchatError(
            ErrorCode.SITE_NOT_FOUND,
            f"no folder {repo.subdir!r} in {repo.shown_url} at {commit[:12]}",
        )
    return Checkout(root=root, site_dir=site_dir, commit=commit, ref=ref)
