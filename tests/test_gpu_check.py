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
