"""`make test-gpu`: the GPU check, with the Python that runs it (scripts/gpu_check.sh finds one
with a CUDA build of torch). Installs nothing, needs no network, fits in about 5 minutes
(``--budget``, default 280 s: every stage runs a fixed number of iterations and starts only
when its share of the budget is left).

It prints ONE table and writes it as JSON (``--json``, default ./gpu_check.json: the machine,
the date, the command and every row, for docs/performance.md):

* the machine: GPU, driver, torch, TensorRT, cuda-python, onnxruntime;
* the ``gpu`` tests (when pytest is there);
* training seconds per iteration, unet_256 + basic PatchGAN, 256x256, batch 1, for fp32 / bf16
  (where the GPU has it natively) / fp16 + GradScaler: the training loop's own step and batch
  loading, synchronised, after a warm-up; nothing is saved (no checkpoints, no run directory);
* inference latency of the same generator at 256x256, batch 1: PyTorch CUDA fp32 / fp16 / bf16
  autocast timed with CUDA events after a warm-up, ONNX Runtime on the CPU for comparison, ONNX
  Runtime's CUDA provider where it loads, and where TensorRT is installed the FP16 engine of
  ``pix2pix export trt`` (build time and latency).

Only torch and numpy are required; a part whose module is missing is reported as skipped, with
the reason. It exits 1, saying what to install, when there is no GPU or no CUDA build of torch,
when a test or a measurement failed, or when nothing ran on the GPU at all: a check that cannot
fail is worth nothing. A missing TensorRT is a skipped row, and a failure only with
``--require-trt`` (or GPU_CHECK_REQUIRE_TRT=1; CI on GPUs and Jetsons use it). Everything it
writes lives in a temporary folder, deleted at the end (the ONNX file and the engine, a few
hundred MB). The package need not be installed: a temporary ``pix2pix_edge`` folder of links to
train/, export/ and runtime/ is put on the path.
"""

from __future__ import annotations

import argparse
import ctypes
import datetime
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
START = time.monotonic()
ROWS: list = []        # {"section", "what", "status", "detail", "value", "unit"}
PROBLEMS: list = []    # why the check fails, each with what to install or look at

# Iterations per measurement: fixed, so a run's length does not depend on guesses about speed.
TRAIN_WARMUP, TRAIN_TIMED = 5, 30
TORCH_WARMUP, TORCH_TIMED = 20, 100
ORT_CPU_WARMUP, ORT_CPU_TIMED = 3, 20
GPU_WARMUP, GPU_TIMED = 10, 50
# Seconds of budget a stage needs left before it starts (measured stages stop early otherwise).
NEED_S = {"train": 45, "inference": 40, "tensorrt": 150}
TORCH_HINT = ("pip install torch (the default Linux x86_64 wheel; recent ones need a CUDA 13 "
              "driver, >= 580), or for a CUDA 12 driver pip install torch --index-url "
              "https://download.pytorch.org/whl/cu126; on a Jetson, NVIDIA's PyTorch wheel for "
              "its JetPack")
TRT_HINT = ("pip install 'pix2pix-edge[trt-cu12]' (driver >= 525) or 'pix2pix-edge[trt-cu13]' "
            "(driver >= 580); on Jetson it comes with JetPack")


def row(section: str, what: str, status: str, detail: str = "", value=None, unit=None) -> None:
    ROWS.append({"section": section, "what": what, "status": status, "detail": detail,
                 "value": value, "unit": unit})


class Budget:
    def __init__(self, seconds: float):
        self.seconds = seconds

    def left(self) -> float:
        return self.seconds - (time.monotonic() - START)

    def allows(self, stage: str) -> bool:
        return self.left() >= NEED_S[stage]


# --------------------------------------------------------------------------- the verdict
def verdict(rows: list, require_trt: bool) -> list:
    """Why the check fails (empty: it passed), from the table alone.

    Fails on: no GPU, no CUDA torch, a FAILED row, nothing that ran on the GPU (no gpu test
    passed and no GPU figure measured), and, with ``require_trt``, a missing TensorRT. A part
    skipped because a module is missing (TensorRT, onnx, onnxruntime, pytest) is not a failure:
    its row says why."""
    problems = []
    status = {r["what"]: r["status"] for r in rows}
    if status.get("NVIDIA GPU") != "ran":
        problems.append("no NVIDIA GPU here (libcuda.so.1 sees none): run this on a machine "
                        "with an NVIDIA GPU and its driver")
    if status.get("torch") != "ran":
        problems.append(f"torch cannot use the GPU (missing, or a CPU build): {TORCH_HINT}")
    for r in rows:
        if r["status"] == "FAILED":
            problems.append(f"{r['what']} failed: {r['detail']}")
    if not problems and not any(ran_on_gpu(r) for r in rows):
        problems.append("nothing ran on the GPU: every gpu test and every GPU figure was skipped")
    if require_trt and status.get("TensorRT") != "ran":
        problems.append(f"no TensorRT (--require-trt / GPU_CHECK_REQUIRE_TRT=1): {TRT_HINT}")
    return problems


def ran_on_gpu(r: dict) -> bool:
    """A gpu test that passed, or a figure measured on the GPU (not ONNX Runtime's CPU row)."""
    return r["status"] == "ran" and (r["section"] in ("tests", "training") or bool(r.get("gpu")))


# --------------------------------------------------------------------------- the machine
def put_package_on_path(tmp: Path) -> None:
    """``pix2pix_edge.{train,export,runtime}`` without installing: links in a temp folder."""
    try:
        import pix2pix_edge.runtime  # noqa: F401  (installed, e.g. the editable .venv)
        return
    except ImportError:
        pass
    pkg = tmp / "pix2pix_edge"
    pkg.mkdir()
    for part in ("train", "export", "runtime"):
        os.symlink(REPO / part, pkg / part)
    sys.path.insert(0, str(tmp))
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (str(tmp), str(REPO),
                                                           os.environ.get("PYTHONPATH")) if p)


def driver_gpus() -> int:
    try:
        lib = ctypes.CDLL("libcuda.so.1")
    except OSError as e:
        row("machine", "NVIDIA GPU", "missing", f"no driver: {e}")
        return 0
    n = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(n)) != 0 or n.value < 1:
        row("machine", "NVIDIA GPU", "missing", "the driver loads but sees no GPU")
        return 0
    names = ""
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True)
        names = "; ".join(line.strip() for line in out.stdout.splitlines() if line.strip())
    row("machine", "NVIDIA GPU", "ran", f"{n.value}: {names}" if names else str(n.value))
    return n.value


def check_torch():
    """torch when it can use the GPU, else None (the row says why)."""
    try:
        import torch
    except ImportError:
        row("machine", "torch", "missing", "not installed")
        return None
    if not torch.cuda.is_available():
        row("machine", "torch", "missing", f"{torch.__version__} cannot use the GPU (a CPU build, "
                                           f"or a CUDA build too new for the driver)")
        return None
    major, minor = torch.cuda.get_device_capability(0)
    row("machine", "torch", "ran", f"{torch.__version__}, CUDA {torch.version.cuda}, "
                                   f"{torch.cuda.get_device_name(0)} (sm_{major}{minor})")
    return torch


def check_libraries() -> dict:
    found = {}
    try:
        import tensorrt
        found["tensorrt"] = tensorrt
        row("machine", "TensorRT", "ran", tensorrt.__version__)
    except ImportError:
        row("machine", "TensorRT", "skipped", f"not installed: its rows are skipped ({TRT_HINT})")
    try:
        from pix2pix_edge.runtime.backends.nvidia import gpu_properties, import_cudart
        from pix2pix_edge.runtime.errors import Pix2PixError

        try:
            name, cc = gpu_properties(import_cudart(), 0)
            row("machine", "cuda-python", "ran", f"GPU 0: {name} (sm {cc})")
        except Pix2PixError as e:
            row("machine", "cuda-python", "skipped", str(e))
    except ImportError as e:
        row("machine", "cuda-python", "FAILED", f"the product does not import: {e}")
    try:
        import onnxruntime as ort
        from pix2pix_edge.runtime.backends.onnxruntime import CUDA_EP, usable_providers, why_not

        usable = usable_providers()
        found["ort_cuda"] = CUDA_EP in usable
        detail = f"{ort.__version__} ({ort.get_device()} build): {', '.join(usable)}"
        if CUDA_EP not in usable:
            detail += f"; CUDA provider: {why_not(CUDA_EP)}"
        row("machine", "onnxruntime", "ran", detail)
    except ImportError as e:
        row("machine", "onnxruntime", "skipped", f"needs the module {e.name!r}")
    return found


# --------------------------------------------------------------------------- gpu tests
def run_gpu_tests(tmp: Path, limit: float) -> None:
    try:
        import pytest  # noqa: F401
    except ImportError:
        row("tests", "gpu tests", "skipped", f"pytest is not installed in {sys.executable}")
        return
    junit = tmp / "gpu.xml"
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
           f"--junitxml={junit}", "-o", "addopts=", "--continue-on-collection-errors",
           f"--basetemp={tmp / 'pytest'}",
           "tests/test_gpu.py", "tests/test_backends.py", "tests/test_tensorrt.py",
           "tests/test_int8.py"]
    try:
        subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        row("tests", "gpu tests", "FAILED", f"did not finish in {limit:.0f} s")
        return
    if not junit.is_file():
        row("tests", "gpu tests", "FAILED", "pytest wrote no report")
        return
    read_junit(junit)


def read_junit(junit: Path) -> None:
    """One row per test case of pytest's JUnit report. A test module that cannot be imported
    for want of a module (a collection error "No module named ...") is skipped, not failed."""
    for case in ET.parse(junit).iter("testcase"):
        name, seconds = case.get("name"), float(case.get("time", 0))
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        collection = failed is not None and failed.get("message") == "collection failure"
        missing = re.search(r"No module named '([^']+)'", failed.text or "") if collection else None
        if missing:
            row("tests", f"test {name}", "skipped", f"needs the module {missing.group(1)!r}")
        elif failed is not None:
            msg = ((failed.get("message") or "").splitlines() or [""])[0][:150]
            row("tests", f"test {name}", "FAILED", msg)
        elif case.find("skipped") is not None:
            row("tests", f"test {name}", "skipped",
                (case.find("skipped").get("message") or "")[:150])
        else:
            row("tests", f"test {name}", "ran", f"passed in {seconds:.1f} s", seconds, "s")


# --------------------------------------------------------------------------- training
def train_seconds_per_iter(torch, data: Path, amp: str, device: str = "cuda", **model) -> tuple:
    """Median seconds per iteration of the training loop's own step (train.loop: its data
    loading, gan_step, optimiser updates), synchronised, after a warm-up. Nothing is saved.
    ``model``: TrainOptions fields to change (the default is the reference unet_256 config)."""
    from pix2pix_edge.train.loop import TrainOptions, load_data, pix2pix_objective, setup

    o = TrainOptions(data=str(data), run="unused", device=device, amp=amp, workers=0,
                     progress=False, tensorboard=False, **model)
    sync = torch.cuda.synchronize if device.startswith("cuda") else (lambda: None)
    env = setup(o)
    loaded = load_data(o, env)
    objective = pix2pix_objective(o)
    models = objective.build(o, env, loaded)
    models.wrap(o, env)
    seconds, epoch = [], 0
    while len(seconds) < TRAIN_WARMUP + TRAIN_TIMED:
        t0 = time.perf_counter()
        for real_a, real_b in loaded.batches(epoch, 0, env):
            objective.step(models, real_a, real_b, o, env.autocast())
            sync()
            seconds.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            if len(seconds) >= TRAIN_WARMUP + TRAIN_TIMED:
                break
        epoch += 1
    return statistics.median(seconds[TRAIN_WARMUP:]), env.precision, env.channels_last


def measure_training(torch, tmp: Path, budget: Budget) -> None:
    from pix2pix_edge.train.loop import cuda_native_bf16
    from pix2pix_edge.train.synth import make_dataset

    data = make_dataset(tmp / "synth", n=8, size=256, seed=0, workers=1)
    for amp, label in (("off", "fp32"), ("bf16", "bf16"), ("fp16", "fp16 + GradScaler")):
        what = f"train {label}"
        if amp == "bf16" and not cuda_native_bf16(torch.device("cuda", 0)):
            major, minor = torch.cuda.get_device_capability(0)
            row("training", what, "skipped", f"bf16 is only emulated on sm_{major}{minor} "
                                             f"(native from compute capability 8.0)")
            continue
        if not budget.allows("train"):
            row("training", what, "skipped", f"out of time ({budget.left():.0f} s left)")
            continue
        try:
            s, precision, channels_last = train_seconds_per_iter(torch, data, amp)
        except Exception as e:
            row("training", what, "FAILED", f"{type(e).__name__}: {str(e)[:150]}")
            continue
        row("training", what, "ran",
            f"{s:.4f} s/it (median of {TRAIN_TIMED} after {TRAIN_WARMUP}; unet_256 + basic D, "
            f"256x256, batch 1, {precision}, channels_last {channels_last})", s, "s/it")
        torch.cuda.empty_cache()


# --------------------------------------------------------------------------- inference
def cuda_event_ms(torch, fn, warmup: int, timed: int) -> list:
    """Milliseconds of ``fn()`` on the GPU, each timed with a pair of CUDA events
    (``torch.cuda.Event(enable_timing=True)``: record, record, synchronize, elapsed_time)."""
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start = torch.cuda.Event(enable_timing=True)
    end = torch.cuda.Event(enable_timing=True)
    times = []
    for _ in range(timed):
        start.record()
        fn()
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return times


def wall_ms(fn, warmup: int, timed: int) -> list:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(timed):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return times


def latency_row(what: str, times: list, detail: str, gpu: bool) -> None:
    p50 = statistics.median(times)
    row("inference", what, "ran", f"{p50:.2f} ms p50 ({len(times)} runs; {detail})", p50, "ms")
    ROWS[-1]["gpu"] = gpu


def measure_inference(torch, found: dict, tmp: Path, budget: Budget) -> None:
    import numpy as np

    from pix2pix_edge.train.loop import cuda_native_bf16
    from pix2pix_edge.train.models import UNetGenerator, inference_copy, init_weights

    torch.manual_seed(0)
    g = inference_copy(init_weights(UNetGenerator()), "per-image")
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (1, 3, 256, 256))
                         .astype(np.float32))
    gpu_g, gpu_x = g.cuda(), x.cuda()
    # as training sets them (train.loop.pick_device): cuDNN autotuning, TF32 for FP32 work
    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True
    for dtype, label in ((None, "fp32"), (torch.float16, "fp16"), (torch.bfloat16, "bf16")):
        what = f"PyTorch CUDA {label}"
        if dtype is torch.bfloat16 and not cuda_native_bf16(torch.device("cuda", 0)):
            row("inference", what, "skipped", "bf16 is only emulated on this GPU")
            continue

        def forward():
            with torch.inference_mode(), torch.autocast("cuda", dtype=dtype or torch.float32,
                                                        enabled=dtype is not None):
                gpu_g(gpu_x)
        try:
            times = cuda_event_ms(torch, forward, TORCH_WARMUP, TORCH_TIMED)
        except Exception as e:
            row("inference", what, "FAILED", f"{type(e).__name__}: {str(e)[:150]}")
            continue
        mode = f"autocast {label}" if dtype else "TF32 allowed"
        latency_row(what, times, f"CUDA events after {TORCH_WARMUP} warm-up; unet_256 ngf 64, "
                                 f"256x256, batch 1, {mode}", gpu=True)
    g = gpu_g.cpu()
    del gpu_g, gpu_x
    torch.cuda.empty_cache()

    try:
        import onnxruntime  # noqa: F401

        from pix2pix_edge.export.to_onnx import export_model, make_info
    except ImportError as e:
        for what in ("ONNX Runtime CPU fp32", "ONNX Runtime CUDA fp32", "TensorRT fp16 engine"):
            row("inference", what, "skipped", f"needs the module {e.name!r}")
        return
    info = make_info(g.config, {}, height=256, width=256, dynamic=False, norm_mode="per-image",
                     source="gpu_check")
    with torch.no_grad():
        onnx_path = export_model(g, tmp / "unet256.onnx", height=256, width=256, info=info,
                                 simplify=False)
    xn = x.numpy()
    from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend

    cpu = OnnxRuntimeBackend(onnx_path, providers=["cpu"])
    latency_row("ONNX Runtime CPU fp32", wall_ms(lambda: cpu.infer(xn), ORT_CPU_WARMUP,
                                                 ORT_CPU_TIMED),
                f"{cpu.threads} threads, for comparison", gpu=False)
    cpu.close()
    if not found.get("ort_cuda"):
        row("inference", "ONNX Runtime CUDA fp32", "skipped",
            "its CUDA provider cannot load here (see the onnxruntime row)")
    elif budget.allows("inference"):
        be = OnnxRuntimeBackend(onnx_path, providers=["cuda"])
        latency_row("ONNX Runtime CUDA fp32", wall_ms(lambda: be.infer(xn), GPU_WARMUP,
                                                      GPU_TIMED),
                    "wall clock, host copies included", gpu=True)
        be.close()
    else:
        row("inference", "ONNX Runtime CUDA fp32", "skipped", "out of time")
    measure_tensorrt(found, onnx_path, xn, tmp, budget)


def measure_tensorrt(found: dict, onnx_path: Path, xn, tmp: Path, budget: Budget) -> None:
    what = "TensorRT fp16 engine"
    if "tensorrt" not in found:
        row("inference", what, "skipped", "TensorRT is not installed")
        return
    if not budget.allows("tensorrt"):
        row("inference", what, "skipped", f"out of time ({budget.left():.0f} s left, an "
                                          f"engine build needs about {NEED_S['tensorrt']} s)")
        return
    from pix2pix_edge.export.to_tensorrt import build_engine
    from pix2pix_edge.runtime.backends.tensorrt import TensorRTBackend

    report = build_engine(onnx_path, tmp / "unet256.engine", log=lambda s: None)
    row("inference", "TensorRT engine build", "ran",
        f"{report['build_s']:.1f} s, {report['precision']}, "
        f"{report['engine_bytes'] / 2**20:.1f} MiB", report["build_s"], "s")
    with TensorRTBackend(tmp / "unet256.engine") as be:
        latency_row(what, wall_ms(lambda: be.infer(xn), GPU_WARMUP, GPU_TIMED),
                    "wall clock, host copies included", gpu=True)


# --------------------------------------------------------------------------- output
def stage(section: str, name: str, fn, *args) -> None:
    """Run one part; a module this Python lacks is a skipped row (nothing is installed here)."""
    try:
        fn(*args)
    except ImportError as e:
        row(section, name, "skipped", f"needs the module {e.name!r}, not installed in this Python")
    except Exception as e:   # a figure that failed is a finding, not a crash of the check
        row(section, name, "FAILED", f"{type(e).__name__}: {str(e)[:150]}")


def print_table() -> None:
    w1 = max(len(r["what"]) for r in ROWS)
    w2 = max(len(r["status"]) for r in ROWS)
    print(f"\n{'check':<{w1}}  {'status':<{w2}}  detail")
    print(f"{'-' * w1}  {'-' * w2}  {'-' * 40}")
    for r in ROWS:
        print(f"{r['what']:<{w1}}  {r['status']:<{w2}}  {r['detail']}")
    print(f"\n{sys.executable} (Python {sys.version.split()[0]}), "
          f"{time.monotonic() - START:.0f} s")


def machine_facts() -> dict:
    try:
        from pix2pix_edge.runtime import machine
        return {**machine.machine_info(), "versions": machine.versions("torch", "onnx")}
    except Exception as e:   # the table still says everything the check itself found
        return {"error": f"{type(e).__name__}: {e}"}


def write_json(path: Path, problems: list, argv: list, budget: Budget) -> None:
    record = {
        "command": " ".join([sys.executable, str(Path(__file__).resolve().relative_to(REPO)), *argv]),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "machine": machine_facts(),
        "passed": not problems, "problems": problems, "rows": ROWS,
        "budget_s": budget.seconds, "elapsed_s": round(time.monotonic() - START, 1),
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n", encoding="utf-8")
    print(f"table written to {path}")


def parse_args(argv: list) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="gpu_check", description=__doc__.split("\n\n")[0])
    p.add_argument("--require-trt", action="store_true",
                   default=os.environ.get("GPU_CHECK_REQUIRE_TRT") == "1",
                   help="fail without TensorRT (also GPU_CHECK_REQUIRE_TRT=1)")
    p.add_argument("--json", type=Path, default=Path(os.environ.get("GPU_CHECK_JSON",
                                                                    "gpu_check.json")),
                   help="where to write the table as JSON (also GPU_CHECK_JSON)")
    p.add_argument("--budget", type=float,
                   default=float(os.environ.get("GPU_CHECK_BUDGET_S", "280")),
                   help="seconds for the whole check (also GPU_CHECK_BUDGET_S)")
    return p.parse_args(argv)


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = parse_args(argv)
    budget = Budget(args.budget)
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as name:
        tmp = Path(name)
        put_package_on_path(tmp)
        gpus = driver_gpus()
        torch = check_torch()
        found = check_libraries()
        if gpus and torch is not None:
            limit = max(60.0, min(200.0 if "tensorrt" in found else 120.0, budget.left() - 150))
            stage("tests", "gpu tests", run_gpu_tests, tmp, limit)
            stage("training", "training figures", measure_training, torch, tmp, budget)
            stage("inference", "inference figures", measure_inference, torch, found, tmp, budget)
        else:
            row("tests", "gpu tests", "skipped", "needs a GPU and a CUDA build of torch")
            row("training", "training and inference figures", "skipped",
                "need a GPU and a CUDA build of torch")
    problems = verdict(ROWS, args.require_trt)
    print_table()
    write_json(args.json, problems, argv, budget)
    if problems:
        print("\nFAIL: the GPU check did not pass:", file=sys.stderr)
        for p in problems:
            print(f"  - {p}", file=sys.stderr)
        return 1
    skipped = [r["what"] for r in ROWS if r["status"] == "skipped"]
    print("\nOK: the GPU check passed" + (f" (skipped, see the table: {', '.join(skipped)})"
                                          if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
