# Every target creates the virtual environment on first use; nothing to do first.
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test test-slow lint bench install clean

# TORCH_INDEX=https://download.pytorch.org/whl/cpu installs the CPU-only torch build first
# (see README); empty (the default) installs everything from the public package index.
TORCH_INDEX ?=
TORCH_PIN := $(shell grep -o '"torch==[^"]*"' pyproject.toml | tr -d '"')

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(if $(TORCH_INDEX),$(BIN)/python -m pip install --quiet '$(TORCH_PIN)' --index-url $(TORCH_INDEX))
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/ferrocim demo

test: $(STAMP)
	$(BIN)/python -m pytest

test-slow: $(STAMP)
	$(BIN)/python -m pytest -m slow

lint: $(STAMP)
	$(BIN)/ruff check ferrocim tests benchmarks

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

# the default output folders (runs/, data/, reports/, out/), caches and the environment
clean:
	rm -rf $(VENV) reports/ runs/ data/ out/ build/ dist/ *.egg-info .pytest_cache .ruff_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
