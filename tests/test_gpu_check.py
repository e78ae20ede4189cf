"""`make test-gpu` (scripts/gpu_check.sh -> scripts/gpu_check.py) fails loudly where it cannot
test the GPU: here, a machine without one, it exits non-zero, prints its one table, and says what
is missing and what to install."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import gpu_count

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(gpu_count() > 0, reason="this machine has a GPU: `make test-gpu` runs there")
def test_gpu_check_fails_loudly_without_a_gpu():
    env = dict(os.environ, GPU_PYTHON=sys.executable)
    res = subprocess.run(["bash", "scripts/gpu_check.sh"], cwd=REPO, env=env, capture_output=True,
                         text=True, timeout=300)
    assert res.returncode == 1, res.stdout + res.stderr
    lines = res.stdout.splitlines()
    header = next(i for i, ln in enumerate(lines) if ln.startswith("check "))
    table = [ln.split()[0:2] for ln in lines[header + 2:] if ln.strip() and not ln.startswith("/")]
    assert ["NVIDIA", "GPU"] == table[0] and "missing" in lines[header + 2], res.stdout
    assert any(ln.startswith("gpu tests") and "skipped" in ln for ln in lines), res.stdout
    assert f"using {sys.executable}" in res.stderr
    assert "FAIL: the GPU check did not pass" in res.stderr
    assert "no NVIDIA GPU here" in res.stderr
    assert "no TensorRT: pip install 'pix2pix-edge[trt-cu12]'" in res.stderr
    if "+cpu" in __import__("torch").__version__:
        assert "cannot use the GPU (CPU build?): install a CUDA build of torch" in res.stderr


# A pytest plugin that makes this CPU machine look like a bare cloud GPU box to the gpu tests:
# the driver "sees" one GPU (the conftest's gpu_count, nothing else), and neither TensorRT nor
# onnxslim can be imported. Loaded with -p before the conftest runs its collection hook.
BARE_GPU_BOX = '''
import sys

sys.modules["tensorrt"] = None      # `import tensorrt` raises ImportError
sys.modules["onnxslim"] = None


def pytest_configure(config):
    import tests.conftest
    for name in ("conftest", "tests.conftest"):
        module = sys.modules.get(name)
        if module is not None and hasattr(module, "gpu_count"):
            module.gpu_count = lambda: 1
'''

TRT_GPU_TESTS = [
    "tests/test_gpu.py::test_gpu_engine_from_the_cli_runs_in_a_fresh_process_on_a_worker_thread",
    "tests/test_tensorrt.py::test_gpu_build_fp16_engine_and_parity_with_onnx",
    "tests/test_tensorrt.py::test_gpu_build_fp32_engine_static",
    "tests/test_backends.py::test_tensorrt_engine_matches_onnxruntime",
    "tests/test_backends.py::test_tensorrt_garbage_engine_is_a_clear_error",
]


def test_tensorrt_gpu_tests_skip_cleanly_on_a_gpu_box_without_tensorrt_or_onnxslim(tmp_path):
    """Issue 18: their model fixtures ran (and needed onnxslim) before the TensorRT skip, so a
    GPU box without onnxslim reported three failures that had nothing to do with the GPU. Now
    each TensorRT test skips, naming TensorRT, before any export work."""
    (tmp_path / "bare_gpu_box.py").write_text(BARE_GPU_BOX)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(tmp_path), str(REPO)]))
    res = subprocess.run([sys.executable, "-m", "pytest", "-p", "bare_gpu_box", "-q", "-rs",
                          "-o", "addopts=", "-p", "no:cacheprovider", *TRT_GPU_TESTS],
                         cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    out = res.stdout + res.stderr
    assert res.returncode == 0, out[-3000:]
    assert f"{len(TRT_GPU_TESTS)} skipped" in out and "error" not in out.lower(), out[-3000:]
    assert out.count("SKIPPED") == len(TRT_GPU_TESTS) and "tensorrt" in out.lower(), out[-3000:]


def test_gpu_test_model_exports_without_onnxslim(tmp_path, monkeypatch):
    """The model the gpu tests build engines from needs torch and onnx, never onnxslim."""
    pytest.importorskip("torch")
    from tests.test_gpu import export_test_model

    monkeypatch.setitem(sys.modules, "onnxslim", None)
    path = export_test_model(tmp_path / "m.onnx")
    assert path.is_file() and path.stat().st_size > 1_000_000
