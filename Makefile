# One task runner. `make test` and `make lab` both set everything up from nothing
# (only python3 >= 3.11 and make are needed), so CI runs what a developer runs.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp
LAB_STAMP := $(VENV)/.lab-stamp
BROWSER_STAMP := $(VENV)/.browser-stamp
PORT   ?= $(or $(EXECCTX_LAB_PORT),8888)
PYTEST_ARGS ?=

.PHONY: test lab lab-reset lint format generate typecheck unit notebooks bench clean browser-deps

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $(STAMP) $(LAB_STAMP)

# The lab needs the notebook extra only (no test toolchain, no Playwright).
$(LAB_STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[notebook]'
	@touch $(LAB_STAMP)

# Debian's chromium for the Playwright browser test (Playwright's own browser download
# does not work offline). Installed once; skipped where apt-get is missing.
$(BROWSER_STAMP): | $(STAMP)
	@if command -v chromium >/dev/null 2>&1 || test -x /usr/bin/chromium; then :; \
	elif command -v apt-get >/dev/null 2>&1; then \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null; \
	else echo "note: no apt-get; install chromium yourself to run the browser test"; fi
	@touch $(BROWSER_STAMP)

browser-deps: $(BROWSER_STAMP)

SOURCES := execctx_nb tests benchmarks scripts

# The sync store, subscriber and client factories are generated from their async sources
# (scripts/unasync.py); lint fails while a generated file is stale.
lint: $(STAMP)
	$(BIN)/python scripts/unasync.py --check
	$(BIN)/ruff check $(SOURCES)
	$(BIN)/ruff format --check $(SOURCES)

generate: $(STAMP)
	$(BIN)/python scripts/unasync.py

format: $(STAMP)
	$(BIN)/ruff format $(SOURCES)

typecheck: $(STAMP)
	$(BIN)/mypy

unit: $(STAMP) $(BROWSER_STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

test: lint typecheck unit

lab: $(LAB_STAMP)
	$(BIN)/python -m execctx_nb.lab --port $(PORT)

bench: $(STAMP)
	@for b in benchmarks/bench_*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

# The lab's data: its Valkey (AOF), cold-tier objects and JupyterLab settings.
lab-reset:
	rm -rf .execctx/lab

clean: lab-reset
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis .execctx
