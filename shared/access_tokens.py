"""Access tokens: who may read a session or follow a job (issue 16).

Two kinds, both JWTs signed with the deployment's secret (HS256, PyJWT), told apart by audience:

- **Session token** (`aud` `bookchat:session`, claims `sid`, `iat`, `exp`): whoever holds it may
  read that session's jobs and history and continue the conversation. It travels only in the
  `X-Session-Token` header, never in a URL. It expires `session_token_ttl_s` after it was issued
  (every accepted question returns a fresh one, so an active reader never sees it expire), and
  it can be revoked: `revoke_session` records a time in Redis before which every token of that
  session is refused.
- **Stream token** (`aud` `bookchat:stream`, claims `job`, `exp`): reads ONE job (its status and
  event stream) and nothing else, and expires with the job. It is what `status_url` and
  `events_url` carry (a browser's EventSource cannot set headers), so a URL that reaches a log,
  a proxy or a Referer gives at most read access to one answer until the job expires; and the
  API's access log redacts it anyway (`shared/logging.py`, `RedactQueryFilter`).
"""

from __future__ import annotations

import hashlib
import math
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

import jwt
from redis.asyncio import Redis

__all__ = [
    "CLOCK_LEEWAY_S",
    "SessionClaims",
    "issue_session_token",
    "issue_stream_token",
    "load_or_create_secret",
    "read_session_token",
    "read_stream_token",
    "revoke_session",
    "session_revoked_at",
]

_SESSION = "bookchat:session"
_STREAM = "bookchat:stream"
_ALGORITHM = "HS256"
_REVOKED_KEY = "bookchat:session:{}:revoked_at"
_MAX_TOKEN_CHARS = 1024  # ours are ~200; anything longer is not worth decoding
#: How far apart the clocks of the API replicas may be (seconds). A token issued by a replica
#: whose clock is ahead carries an `iat` in another replica's future (PyJWT refused it as "not
#: yet valid"), and its `iat` may fall after a revocation recorded by a replica whose clock is
#: behind (it escaped the revocation): both are read with this leeway (issue 30).
CLOCK_LEEWAY_S = 60


def _key(secret: bytes) -> bytes:
    """The signing key: derived from the deployment secret, so it is always 32 bytes (RFC 7518
    3.2 asks at least that for HS256) and serves no other purpose."""
    return hashlib.sha256(b"bookchat access tokens\0" + secret).digest()


@dataclass(frozen=True, slots=True)
class SessionClaims:
    session_id: str
    issued_at: float


def issue_session_token(
    secret: bytes, session_id: str, *, ttl_s: int, now: float | None = None
) -> str:
    """A session token valid for `ttl_s` seconds from `now`."""
    issued = time.time() if now is None else now
    claims = {"aud": _SESSION, "sid": session_id, "iat": issued, "exp": int(issued + ttl_s)}
    return jwt.encode(claims, _key(secret), algorithm=_ALGORITHM)


def read_session_token(secret: bytes, token: str | None) -> SessionClaims | None:
    """The session a token opens, or None when it is missing, forged, expired or not a session
    token. Revocation is checked separately (`session_revoked_at`: it needs Redis)."""
    claims = _decode(secret, token, _SESSION)
    if claims is None or not isinstance(claims.get("sid"), str):
        return None
    issued = claims.get("iat")
    return SessionClaims(
        str(claims["sid"]), float(issued) if isinstance(issued, int | float) else 0
    )


def issue_stream_token(secret: bytes, job_id: str, *, expires_at: float) -> str:
    """A token that reads job `job_id` only, until `expires_at` (the job's own expiry)."""
    return jwt.encode(
        {"aud": _STREAM, "job": job_id, "exp": math.ceil(expires_at)},
        _key(secret),
        algorithm=_ALGORITHM,
    )


def read_stream_token(secret: bytes, token: str | None) -> str | None:
    """The job id a stream token reads, or None when missing, forged, expired or another kind."""
    claims = _decode(secret, token, _STREAM)
    job = claims.get("job") if claims else None
    return job if isinstance(job, str) else None


async def revoke_session(redis: Redis, session_id: str, *, ttl_s: int) -> None:
    """Refuse every token of the session issued up to now (kept `ttl_s`: by then they have
    expired anyway)."""
    await redis.set(_REVOKED_KEY.format(session_id), repr(time.time()), ex=ttl_s)


async def session_revoked_at(redis: Redis, session_id: str) -> float | None:
    """When the session was revoked, plus CLOCK_LEEWAY_S: a token issued up to then (by any
    replica's clock) is refused. None when it was not."""
    value = await redis.get(_REVOKED_KEY.format(session_id))
    return float(value) + CLOCK_LEEWAY_S if value is not None else None


def _decode(secret: bytes, token: str | None, audience: str) -> dict[str, object] | None:
    if not token or len(token) > _MAX_TOKEN_CHARS:
        return None
    try:
        claims: dict[str, object] = jwt.decode(
            token,
            _key(secret),
            algorithms=[_ALGORITHM],
            audience=audience,
            options={"require": ["exp", "aud"]},
            leeway=CLOCK_LEEWAY_S,
        )
    except jwt.PyJWTError:
        return None
    return claims


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
