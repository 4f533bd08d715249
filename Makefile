# health-equity-indicators: `make run` and `make test` are all a newcomer needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LANDING := var/landing
WAREHOUSE := duckdb:///var/warehouse.duckdb

AZURITE := tools/azurite/node_modules/.bin/azurite-blob

.PHONY: help install azurite run test test-fast test-unit test-dags test-integration test-e2e test-deploy \
	lint airflow bench clean

help:
	@echo "make run      set up .venv, generate synthetic data, run the pipeline into DuckDB"
	@echo "make test     the whole test suite (PostgreSQL tests need HEI_TEST_POSTGRES_URL)"
	@echo "make test-fast  unit and DAG tests, for the edit-test loop"
	@echo "make test-unit | test-dags | test-integration | test-e2e | test-deploy  one category"
	@echo "make azurite  install Azurite (Azure Storage emulator, npm) for the publication tests"
	@echo "make airflow  Airflow standalone with the project's DAGs (UI on localhost:8080)"
	@echo "make bench    benchmarks (figures go in the README)"

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# Azurite, the Azure Storage emulator, from the npm registry into tools/azurite (lock file
# there): the publication tests run against it.
azurite: $(AZURITE)

$(AZURITE): tools/azurite/package.json tools/azurite/package-lock.json
	npm ci --prefix tools/azurite --no-audit --no-fund --loglevel=error
	touch $(AZURITE)

$(LANDING)/truth.json: | $(STAMP)
	$(BIN)/hei synth --out $(LANDING)

run: $(STAMP) $(LANDING)/truth.json
	$(BIN)/hei run --landing $(LANDING) --warehouse $(WAREHOUSE)

# The whole suite, then one target per folder of tests/ (see the README's Tests section).
test: $(STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/dags

test-unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit

test-dags: $(STAMP)
	$(BIN)/python -m pytest -q tests/dags

test-integration: $(STAMP)
	$(BIN)/python -m pytest -q tests/integration

test-e2e: $(STAMP)
	$(BIN)/python -m pytest -q tests/e2e

test-deploy: $(STAMP)
	$(BIN)/python -m pytest -q tests/deploy

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

# Airflow standalone (api-server, scheduler, dag-processor, triggerer in one process) on the
# project's DAGs. With DuckDB only one process may write, so the `warehouse` pool gets 1 slot.
airflow: $(STAMP)
	$(BIN)/python -m hei.airflow_env standalone

bench: $(STAMP)
	$(BIN)/python bench/synth_speed.py
	$(BIN)/python bench/ingest_speed.py
	$(BIN)/python bench/indicators_speed.py
	$(BIN)/python bench/publish_speed.py

clean:
	rm -rf var
