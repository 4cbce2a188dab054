# Every target bootstraps what it needs: a pinned uv in .tools/, then the locked set in .venv/.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
BIN := .venv/bin
STAMP := .venv/.synced-$(shell cat uv.lock pyproject.toml | cksum | cut -d' ' -f1)

AUDIT_PROFILE ?= full
export AUDIT_PROFILE

WORKERS ?= 0
LOCUST_PORT ?= 5557
LOCUST_ARGS ?=
LOCUST_OUT := --csv reports/loadtest --html reports/loadtest.html --json-file reports/loadtest \
	--counters-file reports/loadtest.counters.json

.PHONY: help install serve test lint check-config seed clean audit lab lab-tools loadtest setup-dev reliability

# `make help` prints the `## ` line after each target, so a new target documents itself here.
help: ## this list
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):[^#]*## /\1\t/' \
		| awk -F'\t' '{printf "make %-13s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --locked --all-groups --quiet
	rm -f .venv/.synced-* && touch $@

install: $(STAMP) ## bootstrap .tools/ (pinned uv) and .venv/ (the locked dependency set)

serve: install ## run the service on :3001 with the backend .env names (PostgreSQL after setup-dev; JSON file + demo data without .env)
	$(BIN)/pickup serve

# The whole suite: the main tests, then the reliability suite (which has its own command).
test: install ## the whole suite, then the reliability suite (PostgreSQL/Redis on loopback for those tests)
	$(BIN)/pytest
	$(BIN)/pytest tests/reliability -p no:randomly -q

reliability: install ## outages, crashes, hostile input, an OpenAPI fuzz run against real processes (~2 min)
	$(BIN)/pytest tests/reliability -p no:randomly -q

lint: install ## ruff check + format, mypy --strict on service/, import-linter contracts, hadolint
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

setup-dev: install ## .env with dev secrets; creates, migrates and seeds pickup_dev when PostgreSQL answers
	$(BIN)/pickup setup-dev

check-config: install ## validate the configuration (.env and environment) without starting anything
	$(BIN)/pickup config check

seed: install ## load the demo dataset into the configured backend (an upsert: twice changes nothing)
	$(BIN)/pickup seed

clean: ## delete .venv, .tools and the tool caches
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache

# wrk measures ceilings independently of our code. Installed when we can (root, Debian);
# without it the audit's throughput sections say they were not measured.
lab-tools: ## install wrk when possible (root + apt); otherwise say throughput is not measured
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 \
		&& apt-get install -y -qq wrk >/dev/null 2>&1)) ; } || true
	@command -v wrk >/dev/null 2>&1 || echo "lab: wrk is not installed; throughput sections will be marked not measured"

audit: install lab-tools ## the performance audit: A/B runs, report in reports/latest/ (AUDIT_PROFILE=quick|full)
	cd notebooks && ../$(BIN)/python audit.py

lab: install ## JupyterLab on notebooks/
	$(BIN)/jupyter lab --notebook-dir=notebooks

# Locust against a running service (default http://127.0.0.1:3001, e.g. `make serve` in another
# terminal). WORKERS=n runs a master and n workers on this machine; outputs go to reports/.
loadtest: install ## Locust against a running service [WORKERS=n] [LOCUST_ARGS='-u 50 -t 1m -H URL']
	@mkdir -p reports
	@if [ "$(WORKERS)" -gt 0 ]; then \
		for i in $$(seq $(WORKERS)); do \
			$(BIN)/locust --config loadtests/locust.conf --worker --master-port $(LOCUST_PORT) & \
		done; \
		$(BIN)/locust --config loadtests/locust.conf --master --master-bind-port $(LOCUST_PORT) \
			--expect-workers $(WORKERS) --expect-workers-max-wait 30 $(LOCUST_ARGS) $(LOCUST_OUT); \
		status=$$?; wait; exit $$status; \
	else \
		$(BIN)/locust --config loadtests/locust.conf $(LOCUST_ARGS) $(LOCUST_OUT); \
	fi
