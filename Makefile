# Two commands for a new user: `make run` and `make test`. Everything else is optional.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
HOST ?= 127.0.0.1
PORT ?= 8000
# Tests against PostgreSQL/Redis run with DEBUG off, which needs a secret key: give one that is
# obviously not for production unless the caller set their own.
TEST_ENV := SECRET_KEY=$${SECRET_KEY:-make-test-only-not-a-secret-0123456789abcdef} PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://127.0.0.1:8000}

.PHONY: run worker test lint format bench install install-dev clean

$(VENV)/.runtime: requirements.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --disable-pip-version-check -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(PIP) install --quiet --disable-pip-version-check -r requirements-dev.txt
	touch $@

install: $(VENV)/.runtime
install-dev: $(VENV)/.dev

## Install, migrate, create the demo company and admin, serve on http://$(HOST):$(PORT)
run: install
	$(PY) manage.py migrate --noinput
	$(PY) manage.py compilemessages --ignore=.venv >/dev/null 2>&1 || true
	PUBLIC_BASE_URL=$${PUBLIC_BASE_URL:-http://$(HOST):$(PORT)} $(PY) manage.py bootstrap_demo
	$(PY) manage.py serve --host $(HOST) --port $(PORT)

## A separate WhatsApp worker process (production mode: needs DATABASE_URL and REDIS_URL)
worker: install
	$(PY) manage.py whatsapp_worker

## The whole test suite (PostgreSQL and Redis too when DATABASE_URL / REDIS_URL are set)
test: install-dev
	$(TEST_ENV) $(PY) manage.py compilemessages --ignore=.venv >/dev/null
	$(TEST_ENV) $(PY) -m pytest $(PYTEST_ARGS)

## ruff (lint and format check) and mypy: what CI runs before the tests
lint: install-dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy .

format: install-dev
	$(VENV)/bin/ruff format .

## Benchmarks: engine latency (sandbox), then what a linked company costs with the real neonize
bench: install-dev
	$(PY) bench/run.py
	$(PY) bench/neonize_cost.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache
