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

help:
	@echo "make audit   the performance audit: A/B runs, report in reports/latest/ (AUDIT_PROFILE=quick|full)"
	@echo "make serve   run the service on the embedded defaults (JSON backend, demo data)"
	@echo "make test    run the whole test suite (starts nothing; needs PostgreSQL/Redis on loopback for those tests)"
	@echo "make lint    ruff check + format, mypy --strict on service/, import-linter layer contracts"
	@echo "make reliability  outages, crashes, hostile input and an OpenAPI fuzz run against real processes (~2 min)"
	@echo "make loadtest [WORKERS=n] [LOCUST_ARGS='--tags browse -u 50 -t 1m -H URL']  Locust against a running service"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --locked --all-groups --quiet
	rm -f .venv/.synced-* && touch $@

install: $(STAMP)

serve: install
	$(BIN)/pickup serve

# The whole suite: the main tests, then the reliability suite (which has its own command).
test: install
	$(BIN)/pytest
	$(BIN)/pytest tests/reliability -p no:randomly -q

reliability: install
	$(BIN)/pytest tests/reliability -p no:randomly -q

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

setup-dev: install
	$(BIN)/pickup setup-dev

check-config: install
	$(BIN)/pickup config check

seed: install
	$(BIN)/pickup seed

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache

# wrk measures ceilings independently of our code; HAProxy is the deploy drill's edge proxy.
# Installed when we can (root, Debian); without them the sections say they were not measured.
lab-tools:
	@command -v wrk >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get install -y -qq wrk >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 \
		&& apt-get install -y -qq wrk >/dev/null 2>&1)) ; } || true
	@command -v wrk >/dev/null 2>&1 || echo "lab: wrk is not installed; throughput sections will be marked not measured"
	@command -v haproxy >/dev/null 2>&1 || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 \
		&& (apt-get install -y -qq haproxy >/dev/null 2>&1 || (apt-get update -qq >/dev/null 2>&1 \
		&& apt-get install -y -qq haproxy >/dev/null 2>&1)) ; } || true
	@command -v haproxy >/dev/null 2>&1 || echo "lab: haproxy is not installed; the deploy drill will be marked not measured"

audit: install lab-tools
	cd notebooks && ../$(BIN)/python audit.py

lab: install
	$(BIN)/jupyter lab --notebook-dir=notebooks

# Locust against a running service (default http://127.0.0.1:3001, e.g. `make serve` in another
# terminal). WORKERS=n runs a master and n workers on this machine; outputs go to reports/.
loadtest: install
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
