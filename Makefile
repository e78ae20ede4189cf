# Every target creates .venv on a fresh machine and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch==2.13.0: the CPU build (no multi-GB CUDA download on CPU-only machines and CI).
TORCH  ?= torch==2.13.0

.PHONY: demo test test-gpu bench bench-quick install clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)"
	$(PY) -m pip install -q -e ".[train,export,dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/pix2pix demo

test: install
	$(PY) -m pytest -q

test-gpu: install
	$(PY) -m pytest -q -m gpu

bench: install
	$(PY) -m benchmarks

bench-quick: install
	$(PY) -m benchmarks --quick

clean:
	rm -rf $(VENV) demo .pytest_cache
