# Two commands (README): `make run` serves the dashboard on the demo city; `make test` runs every test.
# Both work from a fresh clone on a machine with python3, pip and apt-get, and are safe to repeat.

PYTHON ?= python3
VENV   ?= .venv
PORT   ?= 8501
BIN    := $(VENV)/bin
# The demo warehouse lives here unless ILP_WAREHOUSE says otherwise.
export ILP_WAREHOUSE ?= data/warehouse

.PHONY: run test lint install install-test warehouse browser clean

run: install warehouse
	@echo "==> Starting the dashboard on http://localhost:$(PORT) (demo city; Ctrl-C stops it)"
	$(BIN)/ilp --warehouse $(ILP_WAREHOUSE) serve --address 0.0.0.0 --port $(PORT)

# Two worker processes (pytest-xdist), a test file to each in turn: the CI machine has two cores, and much of an
# end-to-end test is spent waiting on a server or a browser. Module fixtures (a server, a browser) stay in one
# process; what a session builds once (the demo city, the shapes) is shared between them (tests/once.py).
TEST_WORKERS ?= 2

test: lint browser
	@echo "==> Running the test suite ($(TEST_WORKERS) worker processes)"
	$(BIN)/python -m pytest -n $(TEST_WORKERS) --dist loadfile

# ruff (lint and format) on the Python, sqlfluff (DuckDB dialect) on the named queries; configured in pyproject.toml
lint: install-test
	@echo "==> Linting: ruff check, ruff format --check, sqlfluff lint"
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/sqlfluff lint --disable-progress-bar queries/ ilp/harm.sql ilp/summaries.sql

# --- environment -----------------------------------------------------------------------------------
$(BIN)/python:
	@echo "==> Creating the virtual environment in $(VENV)"
	@$(PYTHON) -m venv $(VENV) 2>/dev/null || { \
	  echo "==> python3-venv is missing; installing it with apt-get"; \
	  apt-get update -qq && apt-get install -y -qq python3-venv >/dev/null && $(PYTHON) -m venv $(VENV); }
	@$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	@echo "==> Installing the project and its dependencies"
	$(BIN)/python -m pip install --quiet -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed
	@echo "==> Installing the test extras"
	$(BIN)/python -m pip install --quiet -e '.[test]'
	@touch $@

install: $(VENV)/.installed
install-test: $(VENV)/.installed-test

# --- data ------------------------------------------------------------------------------------------
warehouse: install
	@$(BIN)/ilp demo --if-missing

# --- browser for end-to-end tests (Debian's chromium; Playwright drives it, downloads nothing) -------
# haproxy: the end-to-end test of several dashboard processes behind a sticky proxy (tests/test_e2e_proxy.py)
browser:
	@if command -v chromium >/dev/null 2>&1 && command -v pdftoppm >/dev/null 2>&1 && command -v haproxy >/dev/null 2>&1; then \
	  echo "==> Chromium, poppler-utils and haproxy present: $$(command -v chromium)"; \
	else \
	  echo "==> Installing Debian's chromium, poppler-utils and haproxy with apt-get"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium poppler-utils haproxy >/dev/null; \
	fi

clean:
	rm -rf $(VENV) data/warehouse data/state.sqlite* .pytest_cache
