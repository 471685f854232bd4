# Everyday commands. Each target makes .venv if it is missing (torch pinned to the CPU wheel first).
PY      ?= python3.11
VENV    := .venv
BIN     := $(VENV)/bin
TORCH   := torch==2.13.0
STAMP   := $(VENV)/.installed
export WANDB_MODE ?= disabled

.PHONY: quickstart test bench lint clean install

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet $(TORCH)
	$(BIN)/pip install --quiet -e '.[dev,ray,slurm]'
	touch $(STAMP)

install: $(STAMP)

quickstart: $(STAMP)
	$(BIN)/ablate run experiments/quickstart.yaml

test: $(STAMP)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP)
	$(BIN)/ruff check ablate tests benchmarks

clean:
	rm -rf $(VENV) runs lightning_logs wandb .pytest_cache
