"""`make test-gpu` (scripts/gpu_check.sh -> scripts/gpu_check.py) fails loudly where it cannot
test the GPU: here, a machine without one, it exits non-zero, prints its one table, writes it as
JSON and says what is missing and what to install. Its verdict on a CUDA machine without
TensorRT (the table such a machine produces: passes unless --require-trt) and its CUDA-event
timing are checked on stand-ins; the gpu tests skip cleanly on a bare GPU box."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import gpu_count

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("gpu_check", REPO / "scripts" / "gpu_check.py")
gpu_check = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(gpu_check)


@pytest.mark.skipif(gpu_count() > 0, reason="this machine has a GPU: `make test-gpu` runs there")
@pytest.mark.parametrize("require_trt", [False, True])
def test_gpu_check_fails_loudly_without_a_gpu(tmp_path, require_trt):
    env = dict(os.environ, GPU_PYTHON=sys.executable, GPU_CHECK_JSON=str(tmp_path / "t.json"))
    env.pop("GPU_CHECK_REQUIRE_TRT", None)
    if require_trt:
        env["GPU_CHECK_REQUIRE_TRT"] = "1"
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
    # a missing TensorRT is a skipped row; a failure only when it is required
    assert any(ln.startswith("TensorRT") and "skipped" in ln for ln in lines), res.stdout
    assert ("no TensorRT (--require-trt" in res.stderr) == require_trt, res.stderr
    if "+cpu" in __import__("torch").__version__:
        assert "torch cannot use the GPU (missing, or a CPU build)" in res.stderr
        assert "--index-url https://download.pytorch.org/whl/cu126" in res.stderr
    record = json.loads((tmp_path / "t.json").read_text())
    assert record["passed"] is False and record["problems"] and record["date"]
    assert record["command"].endswith("scripts/gpu_check.py")
    assert record["machine"]["cpu"] and record["rows"][0]["what"] == "NVIDIA GPU"


def _rows(*rows):
    return [{"section": s, "what": w, "status": st, "detail": "", "value": None, "unit": None,
             **({"gpu": True} if s == "inference" and w != "ONNX Runtime CPU fp32" else {})}
            for s, w, st in rows]


CUDA_WITHOUT_TENSORRT = _rows(
    ("machine", "NVIDIA GPU", "ran"), ("machine", "torch", "ran"),
    ("machine", "TensorRT", "skipped"), ("machine", "onnxruntime", "ran"),
    ("tests", "test test_gpu_training_mixed_precision_and_resume[bf16]", "ran"),
    ("tests", "test test_gpu_engine_from_the_cli_runs_in_a_fresh_process_on_a_worker_thread",
     "skipped"),
    ("training", "train fp32", "ran"), ("training", "train bf16", "ran"),
    ("training", "train fp16 + GradScaler", "ran"),
    ("inference", "PyTorch CUDA fp32", "ran"), ("inference", "PyTorch CUDA fp16", "ran"),
    ("inference", "PyTorch CUDA bf16", "ran"), ("inference", "ONNX Runtime CPU fp32", "ran"),
    ("inference", "ONNX Runtime CUDA fp32", "skipped"),
    ("inference", "TensorRT fp16 engine", "skipped"))


def test_verdict_cuda_machine_without_tensorrt_passes_unless_tensorrt_is_required():
    assert gpu_check.verdict(CUDA_WITHOUT_TENSORRT, require_trt=False) == []
    problems = gpu_check.verdict(CUDA_WITHOUT_TENSORRT, require_trt=True)
    assert len(problems) == 1 and problems[0].startswith("no TensorRT (--require-trt")


def test_verdict_fails_on_a_failed_row_and_when_nothing_ran_on_the_gpu():
    failed = [dict(r) for r in CUDA_WITHOUT_TENSORRT]
    failed[6] = {**failed[6], "status": "FAILED", "detail": "RuntimeError: CUDA error"}
    assert gpu_check.verdict(failed, False) == ["train fp32 failed: RuntimeError: CUDA error"]
    # only the CPU row measured and every test skipped: nothing was checked on the GPU
    idle = [dict(r, status="skipped") if r["section"] in ("tests", "training", "inference")
            and r["what"] != "ONNX Runtime CPU fp32" else r for r in CUDA_WITHOUT_TENSORRT]
    assert gpu_check.verdict(idle, False) == [
        "nothing ran on the GPU: every gpu test and every GPU figure was skipped"]


def test_cuda_event_timing_records_around_each_call_after_the_warm_up():
    """torch.cuda.Event(enable_timing=True): record, call, record, synchronize, elapsed_time
    (ms), on a stand-in (no GPU here)."""
    calls = []

    class Event:
        made = 0

        def __init__(self, enable_timing=False):
            assert enable_timing
            Event.made += 1
            self.name = "start" if Event.made == 1 else "end"

        def record(self):
            calls.append(f"record {self.name}")

        def synchronize(self):
            calls.append(f"sync {self.name}")

        def elapsed_time(self, end):
            assert self.name == "start" and end.name == "end"
            return 2.5

    cuda = type("cuda", (), {"Event": Event, "synchronize": staticmethod(
        lambda: calls.append("device sync"))})
    times = gpu_check.cuda_event_ms(type("torch", (), {"cuda": cuda}),
                                    lambda: calls.append("fn"), warmup=2, timed=3)
    assert times == [2.5, 2.5, 2.5]
    assert calls[:3] == ["fn", "fn", "device sync"]
    assert calls[3:] == ["record start", "fn", "record end", "sync end"] * 3


def test_training_figure_runs_the_loops_own_step_and_saves_nothing(tmp_path, monkeypatch,
                                                                   one_torch_thread):
    """The training figure's code path (train.loop's setup, data, objective, step), here on the
    CPU with a tiny model: it measures, and writes nothing but the dataset it was given."""
    import torch

    from pix2pix_edge.train.synth import make_dataset

    data = make_dataset(tmp_path / "d", n=4, size=64, seed=0, workers=1)
    before = sorted(tmp_path.rglob("*"))
    monkeypatch.setattr(gpu_check, "TRAIN_WARMUP", 1)
    monkeypatch.setattr(gpu_check, "TRAIN_TIMED", 5)     # more than one epoch of 4 pairs
    monkeypatch.chdir(tmp_path)
    s, precision, channels_last = gpu_check.train_seconds_per_iter(
        torch, data, "off", device="cpu", depth=5, ngf=4, ndf=4, load_size=64, crop_size=64)
    assert 0 < s < 30 and precision == "fp32" and channels_last is False
    assert sorted(tmp_path.rglob("*")) == before


def test_gpu_test_report_rows(tmp_path, monkeypatch):
    """pytest's real JUnit report: passed, failed and skipped tests are rows; a test module
    that cannot be imported for want of a module is skipped with its name, not failed."""
    (tmp_path / "test_some.py").write_text(
        "import pytest\n"
        "def test_ok():\n    pass\n"
        "def test_bad():\n    assert 1 == 2, 'wrong'\n"
        "def test_later():\n    pytest.skip('TensorRT is not installed')\n"
        "def test_body_import():\n    import no_such_module_in_a_test_body\n")
    (tmp_path / "test_needs.py").write_text("import no_such_module_xyz\n")
    junit = tmp_path / "r.xml"
    subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                    "-o", "addopts=", f"--junitxml={junit}", "--continue-on-collection-errors",
                    "--rootdir", str(tmp_path), str(tmp_path)],
                   cwd=tmp_path, capture_output=True, text=True, timeout=120)
    monkeypatch.setattr(gpu_check, "ROWS", [])
    gpu_check.read_junit(junit)
    status = {r["what"]: (r["status"], r["detail"]) for r in gpu_check.ROWS}
    assert status["test test_ok"][0] == "ran"
    assert status["test test_bad"][0] == "FAILED" and "wrong" in status["test test_bad"][1]
    assert status["test test_later"] == ("skipped", "TensorRT is not installed")
    assert status["test test_body_import"][0] == "FAILED"       # a bug, not a missing extra
    needs = [v for k, v in status.items() if "test_needs" in k]
    assert needs == [("skipped", "needs the module 'no_such_module_xyz'")], status


def test_a_stage_without_enough_budget_is_skipped_with_the_reason(monkeypatch):
    monkeypatch.setattr(gpu_check, "ROWS", [])
    budget = gpu_check.Budget(seconds=0)
    assert not budget.allows("tensorrt")
    gpu_check.measure_tensorrt({"tensorrt": object()}, Path("m.onnx"), None, Path("."), budget)
    assert gpu_check.ROWS[0]["status"] == "skipped" and "out of time" in gpu_check.ROWS[0]["detail"]


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
    "tests/test_int8.py::test_gpu_build_int8_engine_and_parity_with_onnx",
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
