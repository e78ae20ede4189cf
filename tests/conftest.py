"""Shared fixtures. GPU tests (marked ``gpu``) skip cleanly where CUDA is absent."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"
FACADES = SHARED / "datasets" / "facades"
VIDEO = SHARED / "videos" / "big_buck_bunny.mp4"


def _cuda_available() -> bool:
    try:
        import torch
        return torch.cuda.is_available()
    except ImportError:
        pass
    try:  # no torch: ask the driver through cuda-python
        try:
            from cuda.bindings import runtime as cudart
        except ImportError:
            from cuda import cudart
        err, n = cudart.cudaGetDeviceCount()
        return int(err) == 0 and n > 0
    except Exception:
        return False


def pytest_collection_modifyitems(config, items):
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs an NVIDIA GPU with CUDA (none on this machine)")
    for item in items:
        if "gpu" in item.keywords:
            item.add_marker(skip)


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
