# health-equity-indicators: `make run` and `make test` are all a newcomer needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
UV_VERSION := 0.13.9
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LANDING := var/landing
WAREHOUSE := duckdb:///var/warehouse.duckdb

NODE_TOOLS := tools/node_modules/.installed

# Python keeps each module's compiled bytecode beside it, so only the first process compiles
# it. uv, unlike pip, installs without bytecode, and a shell that sets PYTHONDONTWRITEBYTECODE
# would then have every process compile Airflow, Great Expectations and pandas again from
# source (an import of 20-22 s instead of 7, measured). Caches are written on first import, not
# all at install time, which would compile thousands of modules no run imports (47 s).
unexport PYTHONDONTWRITEBYTECODE

.PHONY: help install node-tools system-libs run test test-fast test-unit test-dags test-integration test-e2e test-deploy \
	test-scheduler test-celery lint airflow bench clean

help:
	@echo "make run      set up .venv, generate synthetic data, run the pipeline into DuckDB"
	@echo "make test     the whole test suite (PostgreSQL tests need HEI_TEST_POSTGRES_URL)"
	@echo "make test-fast  unit and DAG tests, for the edit-test loop"
	@echo "make test-unit | test-dags | test-integration | test-e2e | test-deploy  one category"
	@echo "make test-scheduler  the chain under Airflow's scheduler, DAG processor and API server"
	@echo "make test-celery  the chain on two Celery workers (Redis), one killed mid-load"
	@echo "make node-tools  Azurite and axe-core (npm) for the publication and report tests"
	@echo "make airflow  Airflow standalone with the project's DAGs (UI on localhost:8080)"
	@echo "make bench    benchmarks (figures go in the README)"

install: $(STAMP)

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)
	$(BIN)/uv pip sync --quiet --python $(BIN)/python requirements.lock
	$(BIN)/uv pip install --quiet --python $(BIN)/python --no-deps -e .
	touch $(STAMP)

# From the npm registry into tools/node_modules (lock file in tools/): Azurite, the Azure
# Storage emulator the publication tests publish to, and axe-core, which checks the
# assurance report's accessibility in Chromium.
node-tools: $(NODE_TOOLS)

$(NODE_TOOLS): tools/package.json tools/package-lock.json
	npm ci --prefix tools --no-audit --no-fund --loglevel=error
	touch $(NODE_TOOLS)

# WeasyPrint (the report's PDF) needs Pango from the system; Debian's packages if missing.
system-libs:
	@ldconfig -p | grep -q libpangoft2-1.0 || { \
		echo "installing Pango for WeasyPrint (the assurance report's PDF)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
			libpango-1.0-0 libpangoft2-1.0-0 fonts-dejavu-core >/dev/null; }

$(LANDING)/truth.json: | $(STAMP)
	$(BIN)/hei synth --out $(LANDING)

run: $(STAMP) system-libs $(LANDING)/truth.json
	$(BIN)/hei run --landing $(LANDING) --warehouse $(WAREHOUSE)

# The whole suite, then one target per folder of tests/ (see the README's Tests section).
test: $(STAMP) system-libs
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

# Airflow's own components as processes on PostgreSQL (HEI_TEST_POSTGRES_URL): a few minutes.
test-scheduler: $(STAMP) system-libs
	$(BIN)/python -m pytest -q tests/scheduler -m scheduler

# The same chain under the CeleryExecutor (Redis on 127.0.0.1:6379, database 5, or
# HEI_TEST_REDIS_URL), compared with the LocalExecutor's, which it runs first.
test-celery: $(STAMP) system-libs
	$(BIN)/python -m pytest -q tests/scheduler -m celery

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
	$(BIN)/python bench/report_speed.py
	$(BIN)/python bench/pipeline_scale.py --scale 1 --months 12 --warehouse postgres

clean:
	rm -rf var
