# Ensemble CRM. `make help` lists the targets; operations.md in the shared contracts is the law.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
HOST ?= 127.0.0.1
PORT ?= 8000
QUEUES ?= crm,sales,marketing,correspondence,integration
# One web process per CPU core (operations.md); WEB_WORKERS=n overrides.
WEB_WORKERS ?= $(shell nproc 2>/dev/null || echo 1)
PYTEST_ARGS ?=
BENCH_ARGS ?=

export HOST PORT

.DEFAULT_GOAL := help
.PHONY: help run test chaos bench web worker scheduler migrate check lint format lock venv venv-dev clean

help: ## List the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

$(VENV)/.base-installed: requirements/base.in requirements/constraints.txt
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/base.in -c requirements/constraints.txt
	@touch $@

$(VENV)/.dev-installed: $(VENV)/.base-installed requirements/dev.in
	$(PY) -m pip install -q --disable-pip-version-check -r requirements/dev.in -c requirements/constraints.txt
	@touch $@

venv: $(VENV)/.base-installed ## Create .venv with the runtime dependencies

venv-dev: $(VENV)/.dev-installed ## Create .venv with the test and check tools too

run: venv ## Everything on this machine: migrate, demo data, web + worker + scheduler (DEBUG on)
	@$(PY) -c 'from pathlib import Path; from config.env import dotenv_write; dotenv_write(Path.cwd()) and print("wrote .env (development settings for manage.py commands)")'
	DEBUG=$${DEBUG:-1} $(PY) manage.py runall --host $(HOST) --port $(PORT)

bench: venv-dev ## Benchmarks vs bare baselines (≤ 15 min): a table, var/bench/bench.json and .svg
	$(PY) benchmarks/run.py $(BENCH_ARGS)

web: venv ## The web server: HTTP and websockets on $HOST:$PORT
	$(PY) manage.py collectstatic --noinput -v0
	$(PY) manage.py integration_mode --from-environment
	exec $(PY) -m uvicorn config.asgi:application --host $(HOST) --port $(PORT) \
		--workers $(WEB_WORKERS) --http h11 --no-access-log --lifespan off \
		--timeout-graceful-shutdown 5

worker: venv ## A Celery worker for QUEUES=crm,sales,… (default: every component)
	exec $(PY) manage.py run_worker --queues $(QUEUES)

scheduler: venv ## Periodic work: outbox sweeper, stuck-process monitor, webhook retries
	exec $(PY) manage.py run_scheduler

migrate: venv ## Apply migrations (idempotent)
	$(PY) manage.py migrate --noinput

test: venv-dev ## Run the whole suite (services from the environment, embedded defaults otherwise)
	$(PY) -m pytest --ignore=tests/chaos $(PYTEST_ARGS)

chaos: venv-dev ## The fault-injection suite (real processes, real services)
	$(PY) -m pytest tests/chaos $(PYTEST_ARGS)

check: venv-dev ## Lint, format, types, import contracts, missing migrations
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	DEBUG=1 $(VENV)/bin/mypy .
	$(VENV)/bin/lint-imports
	DEBUG=1 $(PY) manage.py makemigrations --check --dry-run
	DEBUG=1 $(PY) manage.py spectacular --validate --fail-on-warn --file /dev/null

format: venv-dev ## Apply ruff's fixes and formatting
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock: ## Re-resolve every dependency and rewrite requirements/constraints.txt
	rm -rf .venv-lock && $(PYTHON) -m venv .venv-lock
	.venv-lock/bin/pip install -q -r requirements/dev.in
	.venv-lock/bin/pip freeze --exclude-editable > requirements/constraints.txt
	rm -rf .venv-lock

clean: ## Remove var/ (database, broker folders, mail) — the demo data comes back on make run
	rm -rf var
