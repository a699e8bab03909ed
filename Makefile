# Two commands do all set-up on a fresh machine with Python 3.11 and pip:
#   make run   install, then start the embedded node (a demo consortium on first run)
#   make test  install (with Debian's etcd and Chromium if missing), then ruff, mypy and pytest
PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
DATA ?= .carechain

.PHONY: install test-deps run test lint typecheck unit bench clean

install: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

run: install
	$(BIN)/carechain up --data $(DATA) --demo

lint: install
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/ruff check src tests benchmarks

typecheck: install
	$(BIN)/mypy

# Debian's etcd and Chromium, which the tests run for real (installed if missing).
test-deps:
	bash .ci/test-deps

unit: install test-deps
	$(BIN)/pytest -q

test: lint typecheck unit

bench: install
	$(BIN)/python benchmarks/ledger_throughput.py

clean:
	rm -rf $(VENV) $(DATA) .pytest_cache .mypy_cache .ruff_cache
