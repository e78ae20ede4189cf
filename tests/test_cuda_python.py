"""The product's GPU probe against the real cuda-python packages: 12.6 (raises RuntimeError
"Failed to dlopen libcuda.so.1" where there is no driver), 12.9 and cuda-bindings 13 (return
cudaErrorInsufficientDriver, also for a driver that is too old for them).

Each package lives in its own folder under .cache/cuda-python (``make api-packages``); each case
runs the real ``pix2pix`` command in a subprocess with that package on its path and the real
TensorRT 10.3 bindings on stub libraries (tests/test_trt_api.py), so the path from the command
line to the probe is the user's. Absent folders skip, naming the command that fetches them.

"Too old a driver" is made with a stand-in libcuda.so.1 that reports a CUDA 12.2 driver
(tests/fake_driver.py; the hardware is absent here): cuda-python's own runtime then decides the
driver is too old.
"""

from __future__ import annotations

import ctypes
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests import fake_driver

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("api_packages", REPO / "scripts" / "api_packages.py")
api_packages = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(api_packages)

TRT_KEY = "10.3"


def _has_driver() -> bool:
    try:
        ctypes.CDLL("libcuda.so.1")
        return True
    except OSError:
        return False


def _env(key: str, tmp_path: Path, old_driver: bool = False) -> dict:
    if not api_packages.cuda_ready(key):
        pytest.skip(f"cuda-python {key} not fetched into {api_packages.cuda_dir(key)}: "
                    f"run `make api-packages`")
    if not api_packages.trt_ready(TRT_KEY):
        pytest.skip(f"TensorRT {TRT_KEY} bindings not fetched: run `make api-packages`")
    shim = tmp_path / "shim"
    shim.mkdir(exist_ok=True)
    # `import tensorrt` gives the real bindings (the tensorrt wheel's own module does the same)
    (shim / "tensorrt.py").write_text("import sys, tensorrt_bindings\n"
                                      "sys.modules['tensorrt'] = tensorrt_bindings\n")
    env = api_packages.trt_env(TRT_KEY)
    env["PYTHONPATH"] = os.pathsep.join([str(shim), str(api_packages.cuda_dir(key) / "site"),
                                         env["PYTHONPATH"]])
    if old_driver:
        env = fake_driver.env_with(fake_driver.build(tmp_path / "driver"), env)
    env.pop("PIX2PIX_DEBUG", None)
    return env


def _pix2pix(args, env, cwd):
    return subprocess.run([sys.executable, "-m", "pix2pix_edge.runtime.cli", *args], env=env,
                          cwd=cwd, capture_output=True, text=True, timeout=120)


def _one_line_error(res, needle):
    out = (res.stdout + res.stderr).strip()
    assert res.returncode == 5, out
    assert "Traceback" not in out, out
    lines = [ln for ln in out.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("Error: "), out
    assert needle in lines[0], out
    return lines[0]


@pytest.mark.parametrize("key", list(api_packages.CUDA_PYTHON))
def test_no_driver_is_the_one_line_no_gpu_error(key, tmp_path, tiny_onnx):
    if _has_driver():
        pytest.skip("this machine has an NVIDIA driver (libcuda.so.1 loads)")
    env = _env(key, tmp_path)
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not read: the GPU is probed first")
    line = _one_line_error(_pix2pix(["bench", str(engine)], env, tmp_path),
                           "the TensorRT backend needs an NVIDIA GPU; CUDA found none")
    if key == "12.6":   # the RuntimeError of 12.6, in one line
        assert "Failed to dlopen libcuda.so.1" in line
    else:
        assert "cudaErrorInsufficientDriver" in line
    res = _pix2pix(["export", "trt", str(tiny_onnx), "-o", str(tmp_path / "m.engine")], env,
                   tmp_path)
    _one_line_error(res, "needs an NVIDIA GPU; CUDA found none")
    assert not (tmp_path / "m.engine").exists()


@pytest.mark.parametrize("key", list(api_packages.CUDA_PYTHON))
def test_driver_too_old_names_the_cause_and_the_fix(key, tmp_path):
    env = _env(key, tmp_path, old_driver=True)
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"x")
    res = _pix2pix(["bench", str(engine)], env, tmp_path)
    if key == "13":   # CUDA 13 runtime on a CUDA 12.2 driver
        line = _one_line_error(res, "the NVIDIA driver supports CUDA 12.2 but cuda-python 13.")
        assert "needs a CUDA 13." in line and "(>= 580)" in line
        assert "pip install 'pix2pix-edge[trt-cu12]'" in line
        assert "cudaErrorInsufficientDriver" in line
    else:             # the stand-in driver lacks what these call next: still one line, exit 5
        _one_line_error(res, "")


PROBE_HANDLE = r"""
import sys
from pix2pix_edge.runtime.backends import nvidia
cudart = nvidia.import_cudart()
calls = []
try:
    import cuda.bindings.utils as utils
except ImportError:
    utils = None
else:
    real = utils.get_cuda_native_handle
    utils.get_cuda_native_handle = lambda obj: calls.append(obj) or real(obj)
stream = cudart.cudaStream_t(init_value=0x1234)
print(hex(nvidia.native_handle(cudart, stream)), utils is not None, len(calls))
"""


@pytest.mark.parametrize("key", list(api_packages.CUDA_PYTHON))
def test_stream_handle_uses_the_documented_accessor(key, tmp_path):
    """cuda-bindings 12.9 / 13 deprecate int(cudaStream_t) for
    cuda.bindings.utils.get_cuda_native_handle; 12.6 has only int()."""
    env = _env(key, tmp_path)
    res = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", PROBE_HANDLE],
                         env=env, capture_output=True, text=True, timeout=60, cwd=tmp_path)
    assert res.returncode == 0, res.stderr[-2000:]
    handle, has_utils, calls = res.stdout.split()
    assert handle == "0x1234"
    assert has_utils == ("False" if key == "12.6" else "True")
    assert calls == ("0" if key == "12.6" else "1")
