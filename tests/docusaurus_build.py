"""Build a Docusaurus site with the real, pinned Docusaurus 3.x, cached, for tests.

Use it when a test must see what Docusaurus itself serves (URLs, element ids, page text), e.g.
the conformance suite (tests/integration/test_docusaurus_conformance.py) or an e2e test that
needs a real built site::

    from tests.docusaurus_build import build_site

    built = build_site(Path("tests/docusaurus/sites/basic"))  # -> folder with index.html, ...
    built = build_site(src, out=tmp_path / "site")            # also copied to `out`

What it does:

1. ``install()``: ``npm install`` of ``tests/docusaurus/package.json`` + ``package-lock.json``
   (the lock's versions: the pinned ``@docusaurus/core``, ``@docusaurus/preset-classic``,
   ``@docusaurus/faster``, React) ONCE per lock file into ``<cache>/deps-<lockhash>/
   node_modules``. ``.ci/docusaurus`` runs it before the tests so the (1-2 min) install is not
   charged to a test's timeout. Only the npm registry is contacted.
2. ``build_site(src)``: copies ``src`` (a site root with ``docusaurus.config.*``) to a scratch
   folder, links the cached ``node_modules`` into it and runs ``docusaurus build --no-minify``
   (minifying changes only whitespace in HTML/JS, and costs build time). The result is kept
   in ``<cache>/builds/<key>``, keyed by the lock file hash, the Node major version and every
   file of ``src`` (paths and bytes), so an unchanged fixture is built once, across runs too.
   Every locale the config declares is built (``build/<locale>/...`` for non-default ones).

``<cache>`` is ``$BOOKCHAT_DOCUSAURUS_CACHE`` or ``~/.cache/bookchat/docusaurus``. Concurrent
callers (pytest workers, two helpers on one machine) are serialised by file locks.

Speed: put ``future: {faster: {...rspackBundler: true, swcJsLoader: true, ...,
rspackPersistentCache: false, ssgWorkerThreads: false}}`` in a fixture's config (see the
fixtures under ``tests/docusaurus/sites``): ``@docusaurus/faster`` is in the lock, and on the
classic-docs-only fixture it gave the same HTML (pages, ids, heading and section texts) for
5.4 s of CPU instead of 16.3 s (14 s wall instead of 39 s). Measured on the shared 2-core
machine at load ~11: the install with a cold npm cache ~130 s (once per lock file), a small
fixture 15-40 s to build, a cache hit ~0 s.

Errors: ``DocusaurusBuildError`` with the command's output tail when npm or the build fails;
``FileNotFoundError`` when ``node``/``npm`` are not installed.

Run ``python -m tests.docusaurus_build [SITE_DIR ...]`` to install, and build each SITE_DIR,
printing where the build went.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["DocusaurusBuildError", "build_seconds", "build_site", "cache_dir", "install"]

PACKAGE_DIR = Path(__file__).resolve().parent / "docusaurus"
LOCK_FILE = PACKAGE_DIR / "package-lock.json"
# What never belongs to a fixture's content (a previous local build, editor droppings).
_IGNORED = {"node_modules", "build", ".docusaurus", ".cache-loader", ".DS_Store"}


class DocusaurusBuildError(RuntimeError):
    """npm or ``docusaurus build`` failed; the message ends with the command's output."""


def cache_dir() -> Path:
    """The cache root: ``$BOOKCHAT_DOCUSAURUS_CACHE`` or ``~/.cache/bookchat/docusaurus``."""
    configured = os.environ.get("BOOKCHAT_DOCUSAURUS_CACHE")
    root = Path(configured) if configured else Path.home() / ".cache" / "bookchat" / "docusaurus"
    root.mkdir(parents=True, exist_ok=True)
    return root


def _lock_hash() -> str:
    return hashlib.sha256(LOCK_FILE.read_bytes()).hexdigest()[:16]


def _node_major() -> str:
    out = subprocess.run(["node", "--version"], capture_output=True, text=True, check=True)
    return out.stdout.strip().lstrip("v").split(".")[0]


@contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _run(command: list[str], cwd: Path, what: str) -> None:
    # No webpack persistent cache: it would be written into the shared node_modules by
    # concurrent builds of different sites; each fixture is built once per content anyway.
    env = {**os.environ, "NODE_ENV": "production", "DOCUSAURUS_NO_PERSISTENT_CACHE": "true"}
    env.pop("NODE_OPTIONS", None)
    done = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, check=False, timeout=900
    )
    if done.returncode != 0:
        tail = (done.stdout + done.stderr)[-4000:]
        raise DocusaurusBuildError(f"{what} failed (exit {done.returncode}):\n{tail}")


def install() -> Path:
    """Install the pinned Docusaurus once per lock file; returns the ``node_modules`` path."""
    target = cache_dir() / f"deps-{_lock_hash()}"
    modules = target / "node_modules"
    if (target / ".complete").exists():
        return modules
    with _file_lock(cache_dir() / f"deps-{_lock_hash()}.lock"):
        if (target / ".complete").exists():
            return modules
        scratch = Path(tempfile.mkdtemp(prefix="deps-", dir=cache_dir()))
        try:
            shutil.copy2(PACKAGE_DIR / "package.json", scratch / "package.json")
            shutil.copy2(LOCK_FILE, scratch / "package-lock.json")
            # `npm install` honours the lock's versions; `npm ci` refuses this lock because the
            # registry here lacks @swc/html's binaries for other platforms (macOS, Windows), so
            # the lock cannot list them and `npm ci`'s strict sync check fails (measured).
            _run(
                ["npm", "install", "--no-audit", "--no-fund", "--loglevel=error"],
                scratch,
                "npm install (tests/docusaurus)",
            )
            (scratch / ".complete").touch()
            shutil.rmtree(target, ignore_errors=True)
            scratch.rename(target)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)
    return modules


def _content_hash(src: Path) -> str:
    digest = hashlib.sha256()
    for path in sorted(src.rglob("*")):
        rel = path.relative_to(src)
        if any(part in _IGNORED for part in rel.parts) or not path.is_file():
            continue
        digest.update(rel.as_posix().encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()[:20]


def build_site(src: Path, out: Path | None = None, *, subdir: str = "") -> Path:
    """Build the site rooted at ``src`` with the pinned Docusaurus; returns the build folder.

    The returned folder is the shared cache entry: read it, never write into it. Pass ``out``
    to get a private copy there instead (``out`` must not exist yet); ``out`` is then returned.
    ``subdir``: ``src`` is a repository whose site is in that folder (a monorepo, whose config
    may name ``../docs``): all of ``src`` is copied and the build runs in ``subdir``.
    Takes ~12 s for a small site on a cache miss, nothing on a hit.
    """
    src = Path(src).resolve()
    modules = install()
    key = f"{_lock_hash()}-node{_node_major()}-{_content_hash(src)}"
    if subdir:
        key += "-" + hashlib.sha256(subdir.encode()).hexdigest()[:8]
    built = cache_dir() / "builds" / key
    if not (built / ".complete").exists():
        with _file_lock(cache_dir() / "builds" / f"{key}.lock"):
            if not (built / ".complete").exists():
                _build_into(src, modules, built, subdir)
    if out is None:
        return built
    shutil.copytree(built, out, ignore=shutil.ignore_patterns(".complete", ".build-seconds"))
    return out


def _build_into(src: Path, modules: Path, built: Path, subdir: str = "") -> None:
    with tempfile.TemporaryDirectory(prefix="site-", dir=cache_dir()) as scratch_name:
        repo = Path(scratch_name) / "site"
        shutil.copytree(src, repo, ignore=shutil.ignore_patterns(*_IGNORED))
        site = repo / subdir if subdir else repo
        (site / "node_modules").symlink_to(modules, target_is_directory=True)
        if not (site / "package.json").exists():
            # Docusaurus warns without one and resolves the site's packages from here.
            (site / "package.json").write_text('{"name": "fixture-site", "private": true}\n')
        output = Path(scratch_name) / "build"
        started = time.monotonic()
        _run(
            [
                "node",
                str(modules / "@docusaurus" / "core" / "bin" / "docusaurus.mjs"),
                "build",
                "--no-minify",
                "--out-dir",
                str(output),
            ],
            site,
            f"docusaurus build of {src}",
        )
        (output / ".build-seconds").write_text(f"{time.monotonic() - started:.1f}\n")
        (output / ".complete").touch()
        shutil.rmtree(built, ignore_errors=True)
        built.parent.mkdir(parents=True, exist_ok=True)
        shutil.move(str(output), built)


def build_seconds(built: Path) -> float | None:
    """How long the build in ``built`` took when it was made (None if unknown)."""
    try:
        return float((built / ".build-seconds").read_text())
    except (OSError, ValueError):
        return None


if __name__ == "__main__":
    print(f"node_modules: {install()}")
    for argument in sys.argv[1:]:
        result = build_site(Path(argument))
        print(f"{argument}: {result} ({build_seconds(result)} s)")
