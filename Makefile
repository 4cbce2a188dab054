# Every target bootstraps what it needs: a pinned uv in .tools/, then the locked set in .venv/.
SHELL := /bin/bash
PYTHON ?= python3
UV_VERSION := 0.13.9
UV := .tools/bin/uv
BIN := .venv/bin
STAMP := .venv/.synced-$(shell cat uv.lock pyproject.toml | cksum | cut -d' ' -f1)

.PHONY: help install serve test lint check-config seed clean

help:
	@echo "make serve   run the service on the embedded defaults (JSON backend, demo data)"
	@echo "make test    run the whole test suite (starts nothing; needs PostgreSQL/Redis on loopback for those tests)"
	@echo "make lint    ruff, mypy --strict on service/, import-linter layer contracts"

$(UV):
	$(PYTHON) -m venv .tools
	.tools/bin/pip install --quiet --disable-pip-version-check uv==$(UV_VERSION)

$(STAMP): uv.lock pyproject.toml | $(UV)
	$(UV) sync --locked --all-groups --quiet
	rm -f .venv/.synced-* && touch $@

install: $(STAMP)

serve: install
	$(BIN)/pickup serve

test: install
	$(BIN)/pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/hadolint Dockerfile

check-config: install
	$(BIN)/pickup config check

seed: install
	$(BIN)/pickup seed

clean:
	rm -rf .venv .tools .pytest_cache .mypy_cache .ruff_cache
