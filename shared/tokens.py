"""Session access tokens: an HMAC of the session id, so no token table is needed.

The token is returned when a session is created and travels in `status_url`/`events_url` (a
browser's EventSource cannot set headers). Whoever holds it may read that session's jobs and
history and continue the conversation; a job or session id alone is not enough.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from pathlib import Path

__all__ = ["load_or_create_secret", "session_token", "verify_session_token"]


def session_token(secret: bytes, session_id: str) -> str:
    digest = hmac.new(secret, f"session:{session_id}".encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode().rstrip("=")


def verify_session_token(secret: bytes, session_id: str, token: str | None) -> bool:
    if not token:
        return False
    # Bytes, not str: compare_digest refuses non-ASCII strings, and tokens come from clients.
    return hmac.compare_digest(session_token(secret, session_id).encode(), token.encode())


def load_or_create_secret(configured: str | None, data_dir: Path) -> bytes:
    """The configured secret, or (embedded default only) one generated once under data_dir."""
    if configured:
        return configured.encode()
    path = data_dir / "secret_key"
    if path.exists():
        return path.read_bytes().strip()
    data_dir.mkdir(parents=True, exist_ok=True)
    value = secrets.token_urlsafe(32).encode()
    path.write_bytes(value)
    path.chmod(0o600)
    return value
