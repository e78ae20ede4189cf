# Every target creates .venv on a fresh machine and installs what it needs.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
# torch==2.13.0 from pip's configured index: from the public PyPI on Linux x86_64 that is the
# CUDA build (several GB of NVIDIA libraries). For the CPU build:
#   make install TORCH_INDEX=https://download.pytorch.org/whl/cpu
# (the development machines have a local 2.13.0+cpu wheel in pip's find-links).
TORCH  ?= torch==2.13.0
TORCH_INDEX ?=
# make bench REFERENCE_DIR=DIR: also time the reference code's training side by side
# (a checkout of junyanz/pytorch-CycleGAN-and-pix2pix with its own DIR/.venv; benchmarks/reference.py).
REFERENCE_DIR ?=

.PHONY: demo test test-gpu test-py38 api-packages tiny-onnx bench bench-quick install clean

$(VENV)/.installed: pyproject.toml Makefile
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q "$(TORCH)" $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX))
	$(PY) -m pip install -q -e ".[train,export,dev]"
	touch $@

install: $(VENV)/.installed

demo: install
	$(VENV)/bin/pix2pix demo

test: install
	$(PY) -m pytest -q

# The GPU check (scripts/gpu_check.py) with the Python that has CUDA torch (not the .venv's CPU
# build): machine facts, the gpu tests, training s/it, PyTorch / ONNX Runtime (/ TensorRT)
# latency in one table, also written to gpu_check.json (GPU_CHECK_JSON=path). Fails without a
# GPU or a CUDA torch, on a failed test or figure, or when nothing ran on the GPU; without
# TensorRT only when GPU_CHECK_REQUIRE_TRT=1.
test-gpu:
	bash scripts/gpu_check.sh

# The full measurement: every section, then the report step rewrites benchmarks/results/RESULTS.md,
# the plots, the README's Performance summary and the generated tables of docs/ (about an hour on a 2-core
# CPU: docs/development.md). Run it on an otherwise idle machine.
bench: install
	$(PY) -m benchmarks $(if $(REFERENCE_DIR),--reference-dir $(REFERENCE_DIR))

# Every section in its quick form (a check that all of it runs; not results): benchmarks/results/quick/
bench-quick: install
	$(PY) -m benchmarks --quick

# ---------------------------------------------------------------- GPU / Jetson readiness (CI)
# The real NVIDIA Python packages the CPU tests check against (tests/test_trt_api.py,
# tests/test_cuda_python.py): TensorRT 8.6 / 10.3 / 10.13 / 11.4 bindings on stub libraries,
# cuda-python 12.6 / 12.9 / cuda-bindings 13, into .cache/ (scripts/api_packages.py).
api-packages: install
	$(PY) scripts/api_packages.py

# The runtime on Python 3.8 (JetPack 5) without torch: run / bench / info and their tests.
# The environment is made by docs/jetson.md's JetPack 5 install block, run literally by
# scripts/jetpack5_steps.sh from a fresh venv of Ubuntu 20.04's pip 20.0.2 with JetPack's numpy
# 1.17 / OpenCV 4.5 stood in for (numpy 1.17.3, opencv-python 4.5.5.64); the venv is
# $(VENV38)/home/p2p (the doc's ~/p2p). Then the tests that need no ONNX Runtime run there on
# numpy 1.17.3 (with the doc's onnx 1.15 and cuda-python 11.5), and everything on numpy 1.21.0 +
# onnxruntime 1.12.1, the oldest ONNX Runtime that reads opset 17 (it needs numpy >= 1.21).
# opencv-python 4.5.5.64 is the oldest wheel that passes: 4.5.2 lacks VideoCapture(file, api,
# params), the FFmpeg of 4.5.3 / 4.5.4 fails to open the test's HTTP stream about 1 run in 3.
PY38      ?= $(firstword $(wildcard $(HOME)/.pyenv/versions/3.8*/bin/python3.8) python3.8)
VENV38    := .venv38
BIN38     := $(VENV38)/home/p2p/bin
PIP38     := $(BIN38)/python -m pip -q
PY38_OLD  := numpy==1.17.3 opencv-python==4.5.5.64 "onnx>=1.15,<1.16"
PY38_ORT  := numpy==1.21.0 onnxruntime==1.12.1 onnx==1.12.0 protobuf==3.20.1
PY38_NO_ORT_TESTS := tests/test_frames.py tests/test_video.py tests/test_model_info.py tests/test_tensorrt_backend.py \
                     tests/test_interrupt.py tests/test_cli.py tests/test_uri.py
PY38_TESTS := $(PY38_NO_ORT_TESTS) tests/test_py38.py tests/test_backends.py tests/test_bench.py \
              tests/test_pipeline.py tests/test_run_cli.py tests/test_no_torch.py

JP5_STEPS := docs/jetson.md scripts/jetpack5_steps.sh scripts/doc_commands.py

$(VENV38)/.installed: pyproject.toml Makefile $(JP5_STEPS)
	bash scripts/jetpack5_steps.sh $(VENV38) $(PY38)
	$(PIP38) install pytest pytest-timeout
	touch $@

test-py38: $(VENV38)/.installed
	$(BIN38)/python -c "import sys, importlib.util as u; assert sys.version_info[:2] == (3, 8); assert not u.find_spec('torch'), 'torch in $(BIN38)'"
	$(PIP38) uninstall -y onnxruntime
	$(PIP38) install $(PY38_OLD)
	$(BIN38)/python -m pytest -q -p no:cacheprovider $(PY38_NO_ORT_TESTS)
	$(PIP38) install $(PY38_ORT)
	$(BIN38)/python -m pytest -q -p no:cacheprovider $(PY38_TESTS)

# tests/data/tiny.onnx: the tiny model of tests/tiny_model.py, for the torch-free runs.
tiny-onnx: install
	$(PY) -m tests.tiny_model

clean:
	rm -rf $(VENV) $(VENV38) .cache demo .pytest_cache
