# The two commands that are the contract: `make demo` and `make test`. Each target installs what it needs.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: install demo test up bench reliability histories clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Python 3.11+ is required"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/complaints demo

test: $(STAMP)
	$(BIN)/python -m pytest

up: $(STAMP)
	$(BIN)/complaints dev up

bench: $(STAMP)
	$(BIN)/python -m bench

reliability: $(STAMP)
	$(BIN)/python -m pytest -m slow tests/reliability

clean:
	rm -rf $(VENV) .data out .pytest_cache

# Record the workflow histories the replay test keeps (only for new paths: never to make a replay pass).
histories: $(STAMP)
	SAVE_HISTORIES=1 $(BIN)/python -m pytest tests/workflows -q
