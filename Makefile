# make demo | make test | make test-fast | make dev | make lint | make bench
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
DAGSTER_HOME_DIR := $(CURDIR)/.dagster_home
LOCK := requirements/dev.lock

.PHONY: install browser demo ui test test-fast dev worker lint format clean bench lock

install: $(VENV)/.installed

# Installs exactly the pinned versions of requirements/dev.lock, then the project itself.
$(VENV)/.installed: pyproject.toml $(LOCK)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -r $(LOCK)
	$(BIN)/pip install --quiet --no-deps -e .
	touch $@

lock: install  ## re-pin requirements/*.lock from pyproject.toml; ARGS=--upgrade moves every pin to the newest allowed
	for extra in dev deploy; do \
	  $(BIN)/pip-compile --quiet --strip-extras --no-emit-index-url --no-emit-find-links $(ARGS) \
	    --extra $$extra --output-file requirements/$$extra.lock pyproject.toml || exit 1; \
	done

demo: install  ## one day, then the next, against the embedded sample API into SQLite
	$(BIN)/python -m pipelines.demo $(ARGS)

ui: install  ## the Dagster UI on the last make demo's instance and warehouse: http://127.0.0.1:3000
	@test -f .demo/ui.env || { echo "no demo to show: run make demo first"; exit 1; }
	set -a && . ./.demo/ui.env && set +a && $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

browser:  ## Debian's chromium for the UI test (installed when missing and we are root)
	@command -v chromium >/dev/null || { [ "$$(id -u)" = 0 ] && apt-get update -qq \
	  && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; } \
	  || { echo "the UI test needs Debian's chromium: sudo apt-get install chromium"; exit 1; }

test: install browser  ## the whole suite on three workers (needs PostgreSQL and Redis on 127.0.0.1)
	$(BIN)/python -m pytest -n 3 $(ARGS)

test-fast: install  ## pure logic and the in-process sample API: no PostgreSQL, Redis, browser or server process
	$(BIN)/python -m pytest -m "not integration" -n 2 $(ARGS)

dev: install  ## the Dagster UI and daemon on http://127.0.0.1:3000
	mkdir -p $(DAGSTER_HOME_DIR) && cp dagster.yaml $(DAGSTER_HOME_DIR)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(BIN)/dagster dev -w workspace.yaml -h 127.0.0.1 -p 3000

worker: install  ## a Celery worker for SYNC_EXECUTOR=celery runs (Redis on 127.0.0.1:6379 by default)
	mkdir -p $(DAGSTER_HOME_DIR) && cp dagster.yaml $(DAGSTER_HOME_DIR)/dagster.yaml
	DAGSTER_HOME=$(DAGSTER_HOME_DIR) $(BIN)/celery -A pipelines.workers worker -Q dagster \
	  --concurrency $${WORKER_CONCURRENCY:-2} --prefetch-multiplier 1 --loglevel INFO

lint: install  ## ruff (style, format), mypy (types of pipelines/) and the import contracts (one-way layers)
	$(BIN)/ruff check pipelines pipelines_tests
	$(BIN)/ruff format --check pipelines pipelines_tests
	$(BIN)/mypy
	$(BIN)/lint-imports --no-cache

format: install
	$(BIN)/ruff check --fix pipelines pipelines_tests
	$(BIN)/ruff format pipelines pipelines_tests

clean:
	rm -rf $(VENV) .data .demo .dagster_home

bench: install  ## the benchmark (needs PostgreSQL and Redis on 127.0.0.1); ARGS="--n 3000" for a quick run
	$(BIN)/python -m pipelines.bench $(ARGS)
