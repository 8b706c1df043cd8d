# The two set-up commands of the README: `make dev` and `make test`.
# Each installs what it needs (uv, the locked dependencies) on a fresh machine.
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo python3 -m uv)
PYTEST_ARGS ?=
# `make dev PORT=8001 SITE=path/to/docusaurus-site HOST=0.0.0.0 SITE_URL=http://localhost:3000/`
PORT ?= 8000
HOST ?= 127.0.0.1
SITE ?=
SITE_URL ?=

.PHONY: dev test install services lint bench

install:
	@command -v uv >/dev/null 2>&1 || python3 -m uv --version >/dev/null 2>&1 \
		|| python3 -m pip install --quiet uv
	$(UV) sync --frozen

dev: install
	@command -v redis-server >/dev/null 2>&1 || { \
		echo "bookchat dev needs the redis-server binary; installing it (apt)"; \
		$$( [ "$$(id -u)" -ne 0 ] && echo sudo ) apt-get install -y -qq redis-server; }
	$(UV) run bookchat dev --port $(PORT) --host $(HOST) $(if $(SITE),--site "$(SITE)") \
		$(if $(SITE_URL),--site-url "$(SITE_URL)")

services:
	.ci/services

# `make test PYTEST_ARGS="-m unit"`: the unit tier needs no service, so none is started or
# installed (the integration and e2e tiers need Redis, PostgreSQL and chromium: .ci/services).
UNIT_ONLY := $(if $(filter unit,$(word 2,$(PYTEST_ARGS))),$(filter -m,$(word 1,$(PYTEST_ARGS))))

test: install $(if $(UNIT_ONLY),,services)
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy
	$(UV) run lint-imports
	$(UV) run pytest $(PYTEST_ARGS)
