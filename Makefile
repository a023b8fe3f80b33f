# The two commands that are the contract: `make demo` and `make test`. Each target installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

PIP    := $(BIN)/python -m pip install --quiet

.PHONY: install runtime demo test unit lint up bench reliability histories clean

# A virtual environment with pip up to date: shared by the development install and the Docker image.
venv:
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip

$(STAMP): pyproject.toml
	$(MAKE) venv
	$(PIP) -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

# What the Dockerfile runs: the same venv steps, then the project without its development tools.
runtime: venv
	$(PIP) .

demo: $(STAMP)
	$(BIN)/complaints demo

# The whole suite but the slow reliability scale (that is `make reliability`).
test: $(STAMP)
	$(BIN)/python -m pytest -m "not slow"

# The tests that start no server (no PostgreSQL, no Temporal, no codec server): the domain, policies, values and
# tokens (tests/unit), the JSON contract of the examples, and the replay of the kept workflow histories
# (Temporal's Replayer runs in-process). They ask for none of tests/conftest.py's server fixtures. Seconds.
unit: $(STAMP)
	$(BIN)/python -m pytest -q tests/unit tests/test_contract.py tests/test_replay.py

# ruff (rules in pyproject.toml) over the whole tree, then mypy over the source: strict on domain/ and workflows/.
lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy

up: $(STAMP)
	$(BIN)/complaints dev up

bench: $(STAMP)
	$(BIN)/python -m bench

# Faults and hostile input at full scale; writes docs/reliability.md from what each scenario recorded.
reliability: $(STAMP)
	rm -rf out/reliability
	RELIABILITY=full $(BIN)/python -m pytest tests/reliability -q
	$(BIN)/python -m tests.reliability.results

clean:
	rm -rf $(VENV) .data out .pytest_cache .mypy_cache .ruff_cache

# Record the workflow histories the replay test keeps (only for new paths: never to make a replay pass).
histories: $(STAMP)
	SAVE_HISTORIES=1 HISTORY_SET=$$(date +%F) $(BIN)/python -m pytest tests/workflows tests/customer -q
