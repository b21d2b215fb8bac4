# The two commands of a fresh machine (only Python and PyPI needed):
#   make demo   — the whole stack on its embedded default, and the demo through it
#   make test   — ruff, mypy and the test suite
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

.PHONY: install demo test lint

.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install -q uv

install: $(if $(shell command -v uv 2>/dev/null),,.tools/bin/uv)
	$(UV) sync --locked

demo: install
	$(UV) run chronic dev up --demo

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

test: install lint
	$(UV) run pytest -q
