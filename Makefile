# Two entry points for a fresh machine with Python 3.11 and make:
#   make demo   create .venv, install, run the pipeline on the embedded AWS
#   make test   create .venv, install dev extras, run lint, types and the whole suite
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev
DEMO_ARGS ?=

.PHONY: demo test lint browser bench soak install install-dev clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A stamp file per extra, newer than pyproject.toml: a second run installs nothing.
$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e .
	touch $@

$(DEV_STAMP): pyproject.toml $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $@

install: $(STAMP)
install-dev: $(DEV_STAMP)

demo: $(STAMP)
	$(BIN)/lake demo $(DEMO_ARGS)

lint: $(DEV_STAMP)
	$(BIN)/ruff check lake lambdas glue_jobs examples tests benchmarks
	$(BIN)/mypy

# The dashboard's browser tests need Debian's Chromium: installed here when missing and we are root
# (CI); otherwise those tests fail and say how to install it (a skip would hide a missing browser).
browser:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ]; then \
	    echo "installing chromium (apt-get)"; \
	    export DEBIAN_FRONTEND=noninteractive; \
	    apt-get install -y -qq chromium >/dev/null 2>&1 || \
	      { apt-get update -qq >/dev/null && apt-get install -y -qq chromium >/dev/null; } || exit 1; \
	  else echo "chromium is missing and we are not root: sudo apt-get install -y chromium (browser tests will fail)"; fi; \
	fi

test: lint browser
	$(BIN)/python -m pytest -q -p no:cacheprovider --durations=15 -n 2 --dist loadfile

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The local lake under load and faults, with a kill -9 and a restart (SOAK_CHANGES, default 100000):
# prints a table and writes soak-report.json; exits 1 when a change is lost, doubled or out of order.
soak: $(STAMP)
	$(BIN)/python -m lake.local.soak

clean:
	rm -rf $(VENV) .lake-state
