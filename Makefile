# nightshift: two set-up commands on a fresh machine — `make demo` and `make test`.
SHELL := /bin/bash
STATE := $(CURDIR)/.nightshift
VENV := $(STATE)/venv
UV := $(STATE)/uv/bin/uv
PY := $(VENV)/bin/python
UV_VERSION := 0.13.8
export UV_PROJECT_ENVIRONMENT := $(VENV)
export PYTHONDONTWRITEBYTECODE :=

.PHONY: demo down test lint unit dags integration system bench clean venv

venv: $(VENV)/.synced

$(UV):
	python3 -m venv $(STATE)/uv
	$(STATE)/uv/bin/pip install -q uv==$(UV_VERSION)

$(VENV)/.synced: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen --python python3
	touch $@

demo: venv
	scripts/demo.sh

down:
	scripts/down.sh

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

unit: venv
	$(PY) -m pytest -q tests/unit

dags: venv
	$(PY) -m pytest -q tests/dags

integration: venv
	$(PY) -m pytest -q tests/integration

system: venv
	$(PY) -m pytest -q tests/system

test: venv lint
	$(PY) -m pytest -q -rs --durations=15 tests/unit tests/dags tests/integration tests/system

bench: venv
	$(PY) bench/ingest.py

clean: down
	rm -rf $(STATE)
