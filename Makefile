# Two commands on a fresh machine (Python 3.11+ and make):  make demo   and   make test
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Use this machine's Python (uv takes the first python3 on PATH that fits requires-python);
# never let uv download an interpreter.
export UV_PYTHON_DOWNLOADS := never
# Compile bytecode at install: where PYTHONDONTWRITEBYTECODE is set (containers, CI), every
# `voipstudio sync` would otherwise compile dlt again, 1-2 s of each scheduled run.
export UV_COMPILE_BYTECODE := 1

TOOLS := .tools
UV := $(shell command -v uv 2>/dev/null || echo $(TOOLS)/bin/uv)
# The `demo` extra (uvicorn, for the bundled emulator) is part of a checkout's environment.
RUN := $(UV) run --locked --extra demo

.PHONY: help setup demo test lint format bench emulator screenshots clean

help: ## list the targets
	@grep -E '^[a-z]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-9s %s\n", $$1, $$2}'

$(TOOLS)/bin/uv:
	@echo "uv not found: installing it into $(TOOLS)/ from PyPI"
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/python -m pip install --quiet --disable-pip-version-check uv

.venv/.synced: pyproject.toml uv.lock | $(UV)
	$(UV) sync --locked --extra demo
	@touch $@

setup: .venv/.synced ## install everything from uv.lock

demo: setup ## run the main job on the embedded default (emulator + DuckDB)
	$(RUN) voipstudio demo

test: setup ## run the whole test suite
	$(RUN) pytest

lint: setup ## ruff (lint + format check) and mypy
	$(RUN) ruff check .
	$(RUN) ruff format --check .
	$(RUN) mypy

format: setup ## apply ruff's fixes and formatting
	$(RUN) ruff check --fix .
	$(RUN) ruff format .

bench: setup ## benchmark the sync against dlt's rest_api source and a plain-httpx floor
	$(RUN) python -m pipelines.benchmark

screenshots: setup ## the README's dashboard screenshots (docs/report-*.png), from two demos
	$(RUN) python tests/report/screenshots.py

emulator: setup ## serve the emulator on http://127.0.0.1:8787/v1.2/voipstudio
	$(RUN) voipstudio-emulator

clean: ## remove the environment and local data
	rm -rf .venv $(TOOLS) data .pytest_cache .mypy_cache .ruff_cache
