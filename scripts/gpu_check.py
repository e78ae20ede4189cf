"""`make test-gpu`: the GPU check, with the Python that runs it (scripts/gpu_check.sh finds one
with a CUDA build of torch). Installs nothing; needs no network; about 2-5 minutes.

It reports what this machine has (GPU, driver, torch, TensorRT, cuda-python, onnxruntime),
runs the ``gpu`` tests when pytest is there, measures CUDA training seconds per iteration for
fp32 / bf16 / fp16 (unet_256 + PatchGAN, 256x256, batch 1), and where TensorRT exists the
engine build time and latency of ``pix2pix export trt``'s FP16 engine, then prints ONE table.

It exits non-zero, saying what to install, when there is no GPU, no CUDA build of torch or no
TensorRT, when a check failed, or when every gpu test was skipped: a check that cannot fail is
worth nothing. The package need not be installed: a temporary ``pix2pix_edge`` folder of links
to train/, export/ and runtime/ is put on the path.
"""

from __future__ import annotations

import ctypes
import os
import shutil
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ET
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUDGET_S = float(os.environ.get("GPU_CHECK_BUDGET_S", "280"))
START = time.monotonic()
ROWS: list[tuple[str, str, str]] = []      # (what, ran | skipped | FAILED | missing, detail)
PROBLEMS: list[str] = []                    # why the check fails, each with what to install


def row(what: str, status: str, detail: str = "") -> None:
    ROWS.append((what, status, detail))


def left() -> float:
    return BUDGET_S - (time.monotonic() - START)


def put_package_on_path(tmp: Path) -> None:
    """``pix2pix_edge.{train,export,runtime}`` without installing: links in a temp folder."""
    try:
        import pix2pix_edge.runtime as rt  # noqa: F401  (installed, e.g. the editable .venv)
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
        row("NVIDIA GPU", "missing", f"no driver: {e}")
        return 0
    n = ctypes.c_int(0)
    if lib.cuInit(0) != 0 or lib.cuDeviceGetCount(ctypes.byref(n)) != 0 or n.value < 1:
        row("NVIDIA GPU", "missing", "the driver loads but sees no GPU")
        return 0
    names = ""
    if shutil.which("nvidia-smi"):
        out = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total",
                              "--format=csv,noheader"], capture_output=True, text=True)
        names = "; ".join(line.strip() for line in out.stdout.splitlines() if line.strip())
    row("NVIDIA GPU", "ran", f"{n.value}: {names}" if names else str(n.value))
    return n.value


def check_torch(gpus: int):
    try:
        import torch
    except ImportError:
        row("torch", "missing", "not installed")
        PROBLEMS.append("no PyTorch: pip install torch (the default Linux x86_64 wheel is CUDA)")
        return None
    cuda = torch.cuda.is_available()
    detail = f"{torch.__version__}, CUDA {torch.version.cuda}"
    if cuda:
        detail += f", {torch.cuda.get_device_name(0)}, bf16 {torch.cuda.is_bf16_supported()}"
    row("torch", "ran" if cuda else "missing", detail)
    if not cuda:
        PROBLEMS.append(f"torch {torch.__version__} cannot use the GPU (CPU build?): install a "
                        f"CUDA build of torch (pip install torch, the default Linux wheel)")
    return torch if cuda else None


def check_libraries(gpus: int) -> dict:
    found = {}
    try:
        import tensorrt
        found["tensorrt"] = tensorrt
        row("TensorRT", "ran", tensorrt.__version__)
    except ImportError:
        row("TensorRT", "missing", "not installed")
        PROBLEMS.append("no TensorRT: pip install 'pix2pix-edge[trt-cu12]' (driver >= 525) or "
                        "'pix2pix-edge[trt-cu13]' (driver >= 580); on Jetson it comes with "
                        "JetPack")
    try:
        from pix2pix_edge.runtime.backends.nvidia import gpu_properties, import_cudart
        from pix2pix_edge.runtime.errors import Pix2PixError

        try:
            name, cc = gpu_properties(import_cudart(), 0)
            row("cuda-python", "ran", f"GPU 0: {name} (sm {cc})")
            found["cudart"] = True
        except Pix2PixError as e:
            row("cuda-python", "missing", str(e))
            if gpus:
                PROBLEMS.append(f"cuda-python: {e}")
    except ImportError as e:
        row("cuda-python", "FAILED", f"the product does not import: {e}")
        PROBLEMS.append(f"pix2pix_edge does not import here: {e}")
    try:
        import onnxruntime as ort
        from pix2pix_edge.runtime.backends.onnxruntime import CUDA_EP, usable_providers, why_not

        usable = usable_providers()
        found["ort_cuda"] = CUDA_EP in usable
        detail = f"{ort.__version__} ({ort.get_device()} build): {', '.join(usable)}"
        if CUDA_EP not in usable:
            detail += f"; CUDA: {why_not(CUDA_EP)}"
        row("onnxruntime", "ran", detail)
    except ImportError:
        row("onnxruntime", "missing", "not installed")
    return found


def run_gpu_tests(tmp: Path) -> None:
    try:
        import pytest  # noqa: F401
    except ImportError:
        row("gpu tests", "skipped", "pytest is not installed in this Python")
        PROBLEMS.append(f"no pytest in {sys.executable}: the gpu tests did not run")
        return
    junit = tmp / "gpu.xml"
    limit = max(60.0, min(200.0, left() - 90))
    cmd = [sys.executable, "-m", "pytest", "-q", "-m", "gpu", "-p", "no:cacheprovider",
           f"--junitxml={junit}", "-o", "addopts=", "--continue-on-collection-errors",
           "tests/test_gpu.py", "tests/test_backends.py", "tests/test_tensorrt.py"]
    try:
        subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=limit)
    except subprocess.TimeoutExpired:
        PROBLEMS.append(f"the gpu tests did not finish in {limit:.0f} s")
    if not junit.is_file():
        row("gpu tests", "FAILED", "pytest wrote no report")
        PROBLEMS.append("the gpu tests did not run (no junit report)")
        return
    ran = 0
    for case in ET.parse(junit).iter("testcase"):
        name = case.get("name")
        t = float(case.get("time", 0))
        skipped = case.find("skipped")
        failed = case.find("failure") if case.find("failure") is not None else case.find("error")
        if failed is not None:
            msg = (failed.get("message") or "").splitlines()[0][:150]
            row(f"test {name}", "FAILED", msg)
            PROBLEMS.append(f"gpu test failed: {name}")
        elif skipped is not None:
            row(f"test {name}", "skipped", (skipped.get("message") or "")[:150])
        else:
            row(f"test {name}", "ran", f"passed in {t:.1f} s")
            ran += 1
    if ran == 0:
        PROBLEMS.append("every gpu test was skipped or failed: nothing on the GPU was tested")


def measure_training(torch, tmp: Path) -> None:
    from pix2pix_edge.train.loop import TrainOptions, train
    from pix2pix_edge.train.synth import make_dataset

    data = make_dataset(tmp / "synth", n=8, size=256, seed=0, workers=1)
    for amp in ("off", "bf16", "fp16"):
        label = {"off": "fp32"}.get(amp, amp)
        if left() < 60:
            row(f"train {label} s/it", "skipped", "out of time")
            continue
        if amp == "bf16" and not torch.cuda.is_bf16_supported():
            row(f"train {label} s/it", "skipped", "no bf16 on this GPU")
            continue
        def one():
            r = train(TrainOptions(data=str(data), run=str(tmp / f"run-{amp}"), device="cuda",
                                   amp=amp, max_iters=24, epochs=3, epochs_decay=0,
                                   workers=0, progress=False, tensorboard=False, log_every=8))
            row(f"train {label} s/it", "ran",
                f"{r['seconds_per_iter']:.4f} s/it (median of {len(r['seconds']) - 3}; unet_256 "
                f"+ basic D, 256x256, batch 1, channels_last {r['channels_last']})")
        stage(f"train {label} s/it", one)


def measure_inference(found: dict, torch, tmp: Path) -> None:
    import numpy as np

    from pix2pix_edge.export.to_onnx import export_model, make_info
    from pix2pix_edge.train.models import UNetGenerator, inference_copy, init_weights

    torch.manual_seed(0)
    g = inference_copy(init_weights(UNetGenerator()), "per-image")
    info = make_info(g.config, {}, height=256, width=256, dynamic=False, norm_mode="per-image",
                     source="gpu_check")
    with torch.no_grad():
        onnx_path = export_model(g, tmp / "unet256.onnx", height=256, width=256, info=info,
                                 simplify=False)
    x = np.random.default_rng(0).uniform(-1, 1, (1, 3, 256, 256)).astype(np.float32)

    def p50_ms(be, n=50):
        for _ in range(5):
            be.infer(x)
        times = []
        for _ in range(n):
            t0 = time.perf_counter()
            be.infer(x)
            times.append((time.perf_counter() - t0) * 1000)
        return float(np.median(times))

    if found.get("ort_cuda"):
        from pix2pix_edge.runtime.backends.onnxruntime import OnnxRuntimeBackend

        be = OnnxRuntimeBackend(onnx_path, providers=["cuda"])
        row("ORT CUDA unet_256 fp32", "ran", f"{p50_ms(be):.2f} ms p50 (host copies included)")
    else:
        row("ORT CUDA unet_256 fp32", "skipped", "the CUDA provider cannot load here")
    if "tensorrt" not in found or left() < 60:
        row("TensorRT engine build", "skipped",
            "no TensorRT" if "tensorrt" not in found else "out of time")
        return
    from pix2pix_edge.export.to_tensorrt import build_engine
    from pix2pix_edge.runtime.backends.tensorrt import TensorRTBackend

    engine = tmp / "unet256.engine"
    report = build_engine(onnx_path, engine, log=lambda s: None)
    row("TensorRT engine build", "ran", f"{report['build_s']:.1f} s, {report['precision']}, "
                                        f"{report['engine_bytes'] / 2**20:.1f} MiB")
    be = TensorRTBackend(engine)
    row("TensorRT unet_256 fp16", "ran", f"{p50_ms(be):.2f} ms p50 (host copies included)")
    be.close()


def print_table() -> None:
    w1 = max(len(r[0]) for r in ROWS)
    w2 = max(len(r[1]) for r in ROWS)
    print(f"\n{'check':<{w1}}  {'status':<{w2}}  detail")
    print(f"{'-' * w1}  {'-' * w2}  {'-' * 40}")
    for what, status, detail in ROWS:
        print(f"{what:<{w1}}  {status:<{w2}}  {detail}")
    print(f"\n{sys.executable} (Python {sys.version.split()[0]}), "
          f"{time.monotonic() - START:.0f} s")


def stage(name: str, fn, *args) -> None:
    """Run one part; a module this Python lacks is reported (nothing is installed here)."""
    try:
        fn(*args)
    except ImportError as e:
        row(name, "skipped", f"needs the module {e.name!r}, not installed in this Python")
        PROBLEMS.append(f"{name} not measured: {e.name} is not installed in {sys.executable}")
    except Exception as e:   # a figure that failed is a finding, not a crash of the check
        row(name, "FAILED", f"{type(e).__name__}: {str(e)[:150]}")
        PROBLEMS.append(f"{name} failed")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="gpu-check-") as name:
        tmp = Path(name)
        put_package_on_path(tmp)
        gpus = driver_gpus()
        if not gpus:
            PROBLEMS.append("no NVIDIA GPU here (libcuda.so.1 sees none): run this on a machine "
                            "with an NVIDIA GPU and its driver")
        torch = check_torch(gpus)
        found = check_libraries(gpus)
        if gpus:
            stage("gpu tests", run_gpu_tests, tmp)
        else:
            row("gpu tests", "skipped", "no GPU")
        if gpus and torch is not None:
            stage("training figures", measure_training, torch, tmp)
            stage("inference figures", measure_inference, found, torch, tmp)
        else:
            row("figures", "skipped", "need a GPU and a CUDA build of torch")
        print_table()
    if PROBLEMS:
        print("\nFAIL: the GPU check did not pass:", file=sys.stderr)
        for p in PROBLEMS:
            print(f"  - {p}", file=sys.stderr)
        return 1
    print("\nOK: every check ran on the GPU")
    return 0


if __name__ == "__main__":
    sys.exit(main())
