"""Stable error codes: what clients, logs and job results carry when something goes wrong."""

from __future__ import annotations

from enum import StrEnum

__all__ = ["BookchatError", "ErrorCode", "known_code"]


class ErrorCode(StrEnum):
    # Bad input (4xx)
    VALIDATION_ERROR = "validation_error"
    MALFORMED_JSON = "malformed_json"
    INVALID_ENCODING = "invalid_encoding"
    PAYLOAD_TOO_LARGE = "payload_too_large"
    REQUEST_TIMEOUT = "request_timeout"  # the body arrived too slowly (408)
    UNSUPPORTED_MEDIA_TYPE = "unsupported_media_type"
    NOT_FOUND = "not_found"
    JOB_NOT_FOUND = "job_not_found"
    SESSION_NOT_FOUND = "session_not_found"
    MESSAGE_NOT_FOUND = "message_not_found"
    PAGE_NOT_FOUND = "page_not_found"
    UNAUTHORIZED = "unauthorized"
    FORBIDDEN = "forbidden"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    RATE_LIMITED = "rate_limited"
    # More connections following one job than BOOKCHAT_MAX_JOB_FOLLOWERS (429).
    TOO_MANY_STREAMS = "too_many_streams"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    # A Last-Event-ID / ?after= that is not an event id of this job's stream (malformed, beyond
    # 64 bits, or past the end of a job still running).
    INVALID_EVENT_ID = "invalid_event_id"
    # Service state (5xx)
    QUEUE_UNAVAILABLE = "queue_unavailable"
    QUEUE_FULL = "queue_full"
    DATABASE_UNAVAILABLE = "database_unavailable"
    INTERNAL_ERROR = "internal_error"
    # Job failures (in a failed job's `error`)
    LLM_UNAVAILABLE = "llm_unavailable"
    LLM_BAD_RESPONSE = "llm_bad_response"
    # The provider refuses for a reason waiting will not fix (worker/provider_errors.py): the
    # account is out of credits (402), a quota is used up until a reset past the deadline, the
    # configured model does not exist there.
    LLM_OUT_OF_CREDITS = "llm_out_of_credits"
    LLM_QUOTA_EXHAUSTED = "llm_quota_exhausted"
    LLM_MODEL_NOT_FOUND = "llm_model_not_found"
    INDEX_UNAVAILABLE = "index_unavailable"
    INDEX_EMPTY = "index_empty"
    # The site's first index is still being built (503 + Retry-After; a chat job waits for it).
    INDEX_BUILDING = "index_building"
    JOB_TIMEOUT = "job_timeout"
    JOB_EXPIRED = "job_expired"
    WORKER_LOST = "worker_lost"
    INGEST_FAILED = "ingest_failed"
    # The ingestion's site lock expired or was taken over mid-run: it stopped, and the run that
    # holds the lock now brings the index up to date.
    INGEST_LOCK_LOST = "ingest_lock_lost"
    SITE_NOT_FOUND = "site_not_found"
    # git could not fetch or check out BOOKCHAT_SITE_REPO (the index is left as it was).
    REPO_FETCH_FAILED = "repo_fetch_failed"
    # Drop-in deployments: /v1/retrieve waited too long for its job (504); a ChatKit operation
    # bookchat does not offer (attachments, widget actions, client tools: 400).
    RETRIEVE_TIMEOUT = "retrieve_timeout"
    # GET /v1/admin/report waited longer than BOOKCHAT_REPORT_TIMEOUT_S for its job (504).
    REPORT_TIMEOUT = "report_timeout"
    UNSUPPORTED_OPERATION = "unsupported_operation"


class BookchatError(Exception):
    """An error with a stable code and a message a person can act on."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def as_dict(self) -> dict[str, str]:
        return {"code": str(self.code), "message": self.message}


def known_code(code: str) -> ErrorCode:
    """`code` as an ErrorCode; `internal_error` for one we do not know (a newer server's)."""
    return ErrorCode(code) if code in ErrorCode.__members__.values() else ErrorCode.INTERNAL_ERROR
