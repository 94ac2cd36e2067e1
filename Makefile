# nightshift: two set-up commands on a fresh machine — `make demo` and `make test`;
# `make up` / `make down` run the same stack on your own datasets/ and store.
SHELL := /bin/bash
STATE := $(CURDIR)/.nightshift
VENV := $(STATE)/venv
UV := $(STATE)/uv/bin/uv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PYTHONDONTWRITEBYTECODE :=

.PHONY: demo up down test lint unit dags integration system bench clean venv services-deps browser-deps services-up services-down

# setuptools leaves the project's metadata in include/nightshift.egg-info when it builds the
# editable install; include/ is on sys.path (the .pth), so that copy would be a second
# distribution and Airflow would load the plugin's entry point twice ("already registered")
venv: $(VENV)/.synced
	@rm -rf include/nightshift.egg-info

$(UV):
	python3 -m venv $(STATE)/uv
	$(STATE)/uv/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python python3
	touch $@

# Debian's PostgreSQL and Redis for the local Celery topology (installed once, never started here)
services-deps:
	@command -v redis-server >/dev/null && { command -v initdb >/dev/null || ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; } || { \
	  echo "installing postgresql and redis-server from Debian's packages"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends postgresql redis-server >/dev/null || \
	  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends postgresql redis-server >/dev/null; }; }

# Debian's Chromium for the browser test of the Airflow UI (Playwright drives it; no browser download)
browser-deps:
	@command -v chromium >/dev/null || { \
	  echo "installing chromium from Debian's packages"; \
	  export DEBIAN_FRONTEND=noninteractive; \
	  apt-get install -y -q --no-install-recommends chromium >/dev/null || \
	  { apt-get update -q >/dev/null && apt-get install -y -q --no-install-recommends chromium >/dev/null; }; }

# the docker-compose topology without Docker (CeleryExecutor, workers on default and gpu)
services-up: venv services-deps
	$(PY) scripts/services.py up

services-down:
	@if [ -x $(PY) ]; then $(PY) scripts/services.py down; fi

demo: venv
	scripts/demo.sh

# the demo's stack (MLflow + Airflow on 127.0.0.1) on datasets/ and the store, generating nothing
up: venv
	scripts/up.sh

down:
	scripts/down.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff check --preview --select AIR .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: venv
	$(PY) -m pytest -q tests/unit

dags: venv
	$(PY) -m pytest -q tests/dags

integration: venv
	$(PY) -m pytest -q tests/integration

system: venv services-deps browser-deps
	$(PY) -m pytest -q tests/system

test: venv services-deps browser-deps lint
	$(PY) -m pytest -q -rfEs --durations=15 -n 2 --dist loadfile tests/unit tests/dags tests/integration tests/system

bench: venv
	$(PY) bench/ingest.py

clean: down
	@if [ -x $(PY) ]; then $(PY) scripts/services.py purge; fi
	rm -rf $(STATE)
