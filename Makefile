# driftloop — every target installs what it needs; `make help` lists them.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
VENV := .venv
BIN := $(VENV)/bin
# A fresh install marker: re-sync when the lock file or a pyproject changes.
SYNCED := $(VENV)/.synced
PYPROJECTS := pyproject.toml $(wildcard libs/*/pyproject.toml services/*/pyproject.toml)

.PHONY: help install test test-e2e test-chaos test-unit test-integration lint fmt proto bench bench-bus bench-monitor bench-features bench-tracking bench-serving bench-loop bench-autonomy bench-console bench-keyed up broker demo config clean test-deploy

help: ## Show this help
	@awk 'BEGIN {FS = ":.*## "; printf "driftloop targets:\n"} /^[a-zA-Z_-]+:.*## / {printf "  \033[36m%-18s\033[0m %s\n", $$1, $$2}' $(MAKEFILE_LIST)

$(UV):
	@echo "==> installing uv $(UV_VERSION) into $(TOOLS)/"
	@($(PYTHON) -m venv $(TOOLS) >/dev/null 2>&1 && $(TOOLS)/bin/pip install --quiet "uv==$(UV_VERSION)") \
	  || $(PYTHON) -m pip install --quiet --target $(TOOLS) "uv==$(UV_VERSION)"

$(SYNCED): $(UV) uv.lock $(PYPROJECTS)
	@echo "==> installing driftloop and its dependencies into $(VENV)/ (uv sync --locked)"
	@$(UV) sync --locked --all-packages --python 3.11
	@touch $@

install: $(SYNCED) ## Install driftloop, its libraries, services and dev tools into .venv/

# Test files run on this many processes (pytest-xdist; a file stays on one process).
TEST_WORKERS ?= 2

# `make test` (what .ci/run calls) runs the lint first: a change that breaks a layer
# boundary or a type fails the run as a broken test does.
test: install lint ## Lint, then the unit and integration tests against a real broker and databases
	@tests/browser/chromium.sh || echo "==> the browser tests will skip (or fail under DRIFTLOOP_REQUIRE_SERVICES=1)"
	@$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile --durations=20 -m "not e2e and not deploy"

test-e2e: install ## The whole loop end to end: both demo worlds, iris on PostgreSQL and Redis, the console in a browser, driftloop up with the whole suite (about 12 minutes)
	@tests/browser/chromium.sh || echo "==> the browser tests will skip (or fail under DRIFTLOOP_REQUIRE_SERVICES=1)"
	@$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m e2e --ignore=tests/chaos

test-chaos: install ## The loop while each service is killed (kill -9) once and the broker stops for 30 s (about 5 minutes)
	@$(BIN)/pytest -n $(TEST_WORKERS) --dist loadfile -m e2e tests/chaos

test-deploy: install ## The compose stack for real: Docker engine, images from Debian's mirror, the loop from the host (deploy/README.md)
	@deploy/testing/engine.sh; code=$$?; \
	  if [ $$code -eq 3 ]; then DRIFTLOOP_TEST_DEPLOY=1 $(BIN)/pytest -m deploy tests/deploy; exit $$?; fi; \
	  [ $$code -eq 0 ] || exit $$code
	@deploy/testing/build.sh
	@DRIFTLOOP_TEST_DEPLOY=1 $(BIN)/pytest -m deploy tests/deploy -s -p no:cacheprovider

test-unit: install ## Run the unit tests only (no I/O)
	@$(BIN)/pytest -m unit

test-integration: install ## Run the integration tests only (real broker, SQLite, PostgreSQL, Redis)
	@$(BIN)/pytest -m integration

lint: install ## ruff (lint + format check), mypy (code and tests), import boundaries, generated code (events, V2 gRPC) current
	@$(BIN)/ruff check .
	@$(BIN)/ruff format --check .
	@$(BIN)/mypy libs $(wildcard services/*/src) tests
	@$(BIN)/lint-imports --no-cache
	@$(BIN)/python -m driftloop_events.codegen --check
	@$(BIN)/python -m driftloop_events.docs --check

fmt: install ## Format the code and apply safe lint fixes
	@$(BIN)/ruff check --fix .
	@$(BIN)/ruff format .

proto: install ## Generate the Python code of the event contract and of serving's V2 gRPC protocol (proto/) with grpcio-tools
	@$(BIN)/python -m driftloop_events.codegen

bench: bench-bus bench-features bench-tracking bench-monitor bench-serving bench-keyed bench-loop bench-autonomy bench-console ## Run every benchmark (driftloop vs its peer, same run)

bench-bus: install ## Bus: events/s through driftloop's publisher vs raw aiokafka
	@$(BIN)/python bench/bus.py

bench-features: install ## Features: online retrieval vs feast serve and Feast in process; Kafka ingestion rows/s; labels in and a training set vs Feast
	@$(BIN)/python bench/features.py
	@$(BIN)/python bench/labels.py

bench-tracking: install ## Tracking: mlflow client vs mlflow server 3.17.2 and driftloop (SQLite)
	@$(BIN)/python bench/tracking.py

bench-monitor: install ## Monitor: events/s through one monitor; a drift decision vs Evidently's report
	@$(BIN)/python bench/monitor.py

bench-serving: install ## Serving: 1-row sklearn req/s and p99 vs mlflow models serve 3.17.2 and MLServer 1.7.1 (wrk)
	@$(BIN)/python bench/serving.py

bench-keyed: install ## Keyed prediction: entity key -> serving -> features -> model, p50/p99 vs inline features and feast serve + mlflow models serve
	@$(BIN)/python bench/keyed.py

bench-loop: install ## Loop latency: drift onset -> first answer from the new champion (the demo, 3 runs)
	@$(BIN)/python bench/loop.py

bench-autonomy: install ## Judgment of the loop: alerts, retrains, promotions per scenario (stationary, shift, flapping, poisoned labels, ...)
	@$(BIN)/python bench/autonomy.py

bench-console: install ## Console: each page's server time (p50/p99) with 1,000 versions, 10,000 drift windows and 10,000 runs seeded, against 300 ms
	@$(BIN)/python bench/console.py

broker: install ## Run the embedded Kafka-compatible broker on 127.0.0.1:9092
	@$(BIN)/driftloop broker

up: install ## Start the broker and every installed service (Ctrl-C stops all)
	@$(BIN)/driftloop up

config: install ## Print every configuration variable
	@$(BIN)/driftloop config

demo: install ## Run the closed loop end to end on embedded defaults (exit 0 only if it closed)
	@$(BIN)/driftloop demo

clean: ## Remove the virtual environments, caches and local state (.driftloop/)
	rm -rf $(VENV) $(TOOLS) .driftloop .pytest_cache .mypy_cache .ruff_cache .hypothesis
