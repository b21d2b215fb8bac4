# The two commands of a fresh machine (only Python and PyPI needed):
#   make demo   — the whole stack on its embedded default, and the demo through it
#   make test   — ruff, mypy and the test suite
#   make proof  — the proof tests: faults under load, scale-out, the bench, `dev up`'s kills
SHELL := /bin/bash
UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)

.PHONY: install demo test proof lint browser fonts

.tools/bin/uv:
	python3 -m venv .tools && .tools/bin/pip install -q uv

install: $(if $(shell command -v uv 2>/dev/null),,.tools/bin/uv)
	$(UV) sync --locked

demo: install fonts
	$(UV) run chronic dev up --demo

lint: install
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	$(UV) run mypy

# A CJK font (Debian's fonts-wqy-microhei) for the benefit card (`chronic benefit card`) and so
# Chinese text renders in the UI test's screenshots; apt-get as root, else sudo without a password.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo "sudo -n")
fonts:
	@fc-list 2>/dev/null | grep -qi wqy || { \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    fontconfig fonts-wqy-microhei >/dev/null; \
	} || echo "could not install a Chinese font: benefit cards need one (or CHRONIC_CJK_FONT)"

# Debian's chromium for the UI test (headless).
browser: fonts
	@command -v chromium >/dev/null || { \
	  $(SUDO) apt-get update -qq && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq \
	    chromium >/dev/null; \
	} || echo "could not install chromium: the UI test will be skipped (outside CI)"

# The type check (about 35 s from a fresh clone) runs beside the suite, which mostly waits on
# servers; either failing fails the target, and mypy's report follows the suite's.
test: install browser
	$(UV) run ruff check .
	$(UV) run ruff format --check .
	@$(UV) run mypy > .mypy-report 2>&1 & types=$$!; \
	  $(UV) run pytest -q; suite=$$?; \
	  wait $$types; checked=$$?; cat .mypy-report; rm -f .mypy-report; \
	  exit $$(( suite || checked ))

# Four loads of 100 applications on one `dev up` stack: kill -9 of each worker role, of
# Temporal and of Postgres mid-load, and the assignment role on four processes; `chronic bench`
# and `dev up` supervising on a stack of their own: a worker, Temporal, a crash loop killed.
proof: install
	$(UV) run pytest -m "faults or proof" -q tests/test_bench.py tests/test_supervisor.py \
	  tests/test_faults.py
