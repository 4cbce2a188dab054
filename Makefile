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

.PHONY: help install serve test lint check-config seed clean audit audit-compare audit-baseline lab lab-tools loadtest setup-dev reliability

# `make help` prints the `## ` line after each target, so a new target documents itself here.
help: ## this list
	@grep -E '^[a-z][a-z-]*:.*## ' $(MAKEFILE_LIST) | sed -E 's/^([a-z-]+):[^#]*## /\1\t/' \
		| awk -F'\t' '{printf "make %-15s %s\n", $$1, $$2}'

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
test: install ## the whole suite, then the reliability suite (PostgreSQL/Redis: on loopback if running, else private ones; see README)
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

# wrk measures ceilings independently of our code; HAProxy is the deploy drill's edge proxy.
# Installed when we can (root, Debian); without them the sections say they were not measured.
lab-tools: ## install wrk and haproxy when possible (root + apt); otherwise say what is not measured
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 \
		&& apt-get install -y -qq wrk >/dev/null 2>&1)) ; } || true
	@command -v wrk >/dev/null 2>&1 || echo "lab: wrk is not installed; throughput sections will be marked not measured"
	@command -v haproxy >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get install -y -qq haproxy >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 \
		&& apt-get install -y -qq haproxy >/dev/null 2>&1)) ; } || true
	@command -v haproxy >/dev/null 2>&1 || echo "lab: haproxy is not installed; the deploy drill will be marked not measured"

# BASE=reports/<ts> picks what the run is compared with (default: the previous report of the same
# profile, else reports/baseline.json). AUDIT_SECTIONS="cache overall" runs only those sections.
audit: install lab-tools ## the performance audit: interleaved A/B rounds, report in reports/latest/ (AUDIT_PROFILE=quick|full, BASE=reports/<ts>)
	$(BIN)/python notebooks/audit.py

# Exit 1 when a target of HEAD regressed significantly against BASE (both report folders or
# summary/baseline JSON files).
audit-compare: install ## BASE=<report> HEAD=<report>: per-target comparison; exit 1 on a significant regression
	@test -n "$(BASE)" -a -n "$(HEAD)" || { echo "usage: make audit-compare BASE=reports/<ts> HEAD=reports/<ts>"; exit 2; }
	$(BIN)/python notebooks/audit.py compare $(BASE) $(HEAD)

# Refresh the committed baseline deliberately, from REPORT: one run or several of one commit,
# whose samples are pooled (default reports/latest).
audit-baseline: install ## [REPORT="reports/<ts> ..."] refresh the committed reports/baseline.json from runs
	$(BIN)/python notebooks/audit.py baseline $(or $(REPORT),reports/latest)

# JupyterLab on the notebooks; LAB_ARGS are passed on (e.g. LAB_ARGS="--port 8899 --no-browser").
lab: install ## JupyterLab on the audit notebooks [LAB_ARGS=...] (works as root)
	$(BIN)/jupyter lab --notebook-dir=notebooks $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# Locust with results in reports/loadtest/<timestamp>/ and the summary printed. Without a host it
# starts its own `pickup serve` with the load profile (limiter on with budgets no run exhausts,
# metrics, access log, a staff key for every store). TARGET=URL (or -H in LOCUST_ARGS) drives a
# running service instead. WORKERS=n runs a master and n workers on this machine.
loadtest: install ## Locust [WORKERS=n] [TARGET=URL] [LOCUST_ARGS='-u 50 -t 1m']; own server unless TARGET, results in reports/loadtest/<ts>/
	$(BIN)/python loadtests/run.py $(if $(TARGET),--target $(TARGET)) --workers $(WORKERS) \
		--master-port $(LOCUST_PORT) -- $(LOCUST_ARGS)
