"""A git repository's URL: shown without its credentials, and compared by what it names.

Used by the ingestion (ingestion_jobs/site_repo.py) and by the push webhook (api/routes/hooks.py),
which queues a re-index only for a push to the configured repository.
"""

from __future__ import annotations

import re

__all__ = ["redact", "repo_identity"]

# The userinfo of a URL (`user:token@` in `https://user:token@host/...`).
_USERINFO = re.compile(r"(?P<scheme>\b[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]*@")


def redact(text: str) -> str:
    """``text`` with every URL's credentials replaced: ``https://***@github.com/org/site``."""
    return _USERINFO.sub(r"\g<scheme>***@", text)


def repo_identity(url: str) -> str:
    """The repository a URL names, whatever its form: ``https://github.com/Org/Site.git``,
    ``git@github.com:org/site`` and ``ssh://git@github.com/org/site`` are all
    ``github.com/org/site``; ``file:///srv/site.git`` is ``/srv/site``."""
    value = url.strip()
    scp = re.match(r"^(?:[^@/\s]+@)?(?P<host>[^:/\s]+):(?!//)(?P<path>.+)$", value)
    if scp and "://" not in value:
        host, path = scp.group("host"), scp.group("path")
    else:
        match = re.match(
            r"^[a-zA-Z][a-zA-Z0-9+.-]*://(?:[^/@]*@)?(?P<host>[^/]*)(?P<path>.*)$", value
        )
        host, path = (match.group("host"), match.group("path")) if match else ("", value)
        host = host.split(":")[0]  # a port does not change the repository
    path = path.rstrip("/").removesuffix(".git").strip("/")
    return f"{host.lower()}/{path.lower()}" if host else f"/{path}"
