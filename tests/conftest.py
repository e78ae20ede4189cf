"""Shared fixtures. GPU tests (marked ``gpu``) skip cleanly where CUDA is absent."""

from __future__ import annotations

import ctypes
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FACADES = SHARED / "datasets" / "facades"
VIDEO = SHARED / "videos" / "big_buck_bunny.mp4"


# PyTorch's default Linux wheel is built for the newest CUDA (recently CUDA 13, driver >= 580);
# older drivers need a build from PyTorch's own index.
TORCH_CUDA_HINT = ("pip install torch (the default Linux x86_64 wheel; recent ones need a CUDA 13 "
                   "driver, >= 580), or for a CUDA 12 driver pip install torch --index-url "
                   "https://download.pytorch.org/whl/cu126")


def gpu_count() -> int:
    """NVIDIA GPUs the driver sees (libcuda's cuDeviceGetCount).

    Asked of the driver itself, not of torch or cuda-python: the .venv holds the CPU build of
    torch, and a GPU host must not skip its gpu tests because of that (they then fail, saying
    what to install: see the cuda_torch fixture)."""
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError:
        return 0
    count = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(count)) != 0:
        return 0
    return count.value


def pytest_collection_modifyitems(config, items):
    if gpu_count() > 0:
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA (none on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def cuda_torch():
    """torch with CUDA, on a machine that has a GPU (gpu tests only run there). A CPU build of
    torch on a GPU host fails the test: a skip would hide that nothing was tested."""
    torch = pytest.importorskip("torch")
    if not torch.cuda.is_available():
        pytest.fail(f"this machine has {gpu_count()} NVIDIA GPU(s) but torch {torch.__version__} "
                    f"cannot use them (CPU build, or a CUDA build too new for the driver): install "
                    f"a CUDA build of torch for the driver: {TORCH_CUDA_HINT}",
                    pytrace=False)
    return torch


@pytest.fixture(scope="session")
def tensorrt_module():
    """``tensorrt``, or a skip naming what to install. Session-scoped and listed first in a
    test's arguments, so it is resolved before the test's own (module-scoped) model fixtures:
    a machine without TensorRT skips before any export work that could fail for other reasons
    (issue 18: onnxslim missing on a bare GPU box)."""
    return pytest.importorskip("tensorrt", reason="TensorRT is not installed: pip install "
                                                  "'pix2pix-edge[trt-cu12]' or '[trt-cu13]'")


@pytest.fixture(scope="session")
def facades_dir() -> Path:
    if not (FACADES / "train").is_dir():
        pytest.skip(f"shared facades dataset not found at {FACADES} (it lives outside the repo)")
    return FACADES


@pytest.fixture(scope="session")
def real_video() -> Path:
    if not VIDEO.is_file():
        pytest.skip(f"shared video not found at {VIDEO} (it lives outside the repo)")
    return VIDEO


@pytest.fixture(scope="session")
def tiny_onnx(tmp_path_factory) -> Path:
    """A tiny pix2pix-edge generator (depth 5, ngf 4, 64x64) exported to ONNX with metadata.

    Built with the legacy exporter directly (tests/tiny_model.py) so runtime tests do not depend
    on export/. Without torch (the Python 3.8 runtime tests) the committed copy of the same
    export is used; tests/test_tiny_model.py keeps it up to date."""
    from tests.tiny_model import COMMITTED, export_tiny_onnx

    path = tmp_path_factory.mktemp("onnx") / "tiny.onnx"
    try:
        import torch  # noqa: F401
    except ImportError:
        if not COMMITTED.is_file():
            pytest.skip(f"no torch and no committed tiny model at {COMMITTED}")
        shutil.copyfile(COMMITTED, path)
        return path
    pytest.importorskip("onnx")
    return export_tiny_onnx(path)


@pytest.fixture(scope="module")
def one_torch_thread():
    """One intra-op thread while a module's tests run: on a shared 2-core machine OpenMP threads
    that spin against other processes make tiny models 50x slower. Restored afterwards."""
    torch = pytest.importorskip("torch")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def small_disk(tmp_path):
    """``small_disk(kib)``: an empty folder on a tmpfs of that size, for full-disk tests (a real
    ENOSPC, not a mock). Mounting needs root or CAP_SYS_ADMIN: elsewhere the test skips, saying
    so. Unmounted afterwards."""
    import subprocess

    mounted = []

    def make(kib: int) -> Path:
        folder = tmp_path / f"disk{len(mounted)}"
        folder.mkdir()
        try:
            r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={int(kib)}k", "tmpfs",
                                str(folder)], capture_output=True, text=True, timeout=30)
            why = r.stderr.strip() if r.returncode else ""
        except (OSError, subprocess.SubprocessError) as e:
            why = str(e)
        if why:
            pytest.skip(f"cannot mount a {kib} KiB tmpfs here for a full-disk test ({why}): "
                        "needs root or CAP_SYS_ADMIN")
        mounted.append(folder)
        return folder

    yield make
    for folder in mounted:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True, timeout=30)
