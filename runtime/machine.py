"""Facts about this machine, for every result that must say where it was measured.

CPU model and features, core counts, the NVIDIA GPU (found without loading CUDA) and library
versions (read from package metadata: nothing heavy is imported for this). Used by
``pix2pix bench``, the benchmark suite, the ONNX Runtime backend (thread count) and training.
"""

from __future__ import annotations

import importlib
import os
import platform
import shutil
import subprocess
import sys
from importlib import metadata as _md
from pathlib import Path


def _read(path: str) -> str:
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            return f.read()
    except OSError:
        return ""


# --------------------------------------------------------------------------- CPU
def cpu_model() -> str:
    """The CPU's name (x86 ``model name``; ARM boards use ``Hardware`` / ``Processor``)."""
    info = _read("/proc/cpuinfo")
    for key in ("model name", "Hardware", "Processor", "cpu model"):
        for line in info.splitlines():
            k, _, v = line.partition(":")
            if k.strip() == key and v.strip():
                return v.strip()
    return platform.processor() or platform.machine()


def cpu_flags() -> list:
    """The CPU features that decide speed here (AVX-512, BF16, AMX, VNNI, FP16)."""
    wanted = ("avx2", "avx512f", "avx512_bf16", "avx512_vnni", "avx512_fp16", "amx_bf16",
              "amx_tile", "amx_int8")
    for line in _read("/proc/cpuinfo").splitlines():
        if line.startswith("flags"):
            have = set(line.split(":", 1)[1].split())
            return [f for f in wanted if f in have]
    return []


def usable_cpus() -> int:
    """Logical CPUs this process may use (affinity / container limits), not the host's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


def physical_cores() -> int:
    """Physical CPU cores this process may use (hyper-threads share one core's FP units)."""
    allowed = usable_cpus()
    cores = set()
    phys = core = None
    for line in (_read("/proc/cpuinfo") + "\n").splitlines():
        key, _, value = line.partition(":")
        key = key.strip()
        if key == "physical id":
            phys = value.strip()
        elif key == "core id":
            core = value.strip()
        elif not line.strip():
            if core is not None:
                cores.add((phys, core))
            phys = core = None
    return max(1, min(allowed, len(cores) or allowed))


def load_average():
    """The 1, 5 and 15 minute load averages, or None where the OS has none."""
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


# --------------------------------------------------------------------------- GPU
def gpu_info() -> dict | None:
    """The NVIDIA GPU without loading CUDA: ``{"name": ...}`` (plus ``"memory"`` where
    nvidia-smi reports it) from a Jetson's device-tree model, else the driver's /proc entry,
    else nvidia-smi. None when there is none."""
    model = _read("/proc/device-tree/model").strip("\x00 \n")
    if "jetson" in model.lower() or "nvidia" in model.lower():
        return {"name": model}
    gpus = Path("/proc/driver/nvidia/gpus")
    if gpus.is_dir():
        for info in sorted(gpus.glob("*/information")):
            for line in _read(str(info)).splitlines():
                if line.startswith("Model:"):
                    return {"name": line.split(":", 1)[1].strip()}
    if shutil.which("nvidia-smi"):
        try:
            out = subprocess.run(["nvidia-smi", "--query-gpu=name,memory.total",
                                  "--format=csv,noheader"], capture_output=True, text=True,
                                 timeout=10)
            if out.returncode == 0 and out.stdout.strip():
                name, _, mem = out.stdout.strip().splitlines()[0].partition(",")
                return {"name": name.strip(), **({"memory": mem.strip()} if mem.strip() else {})}
        except (OSError, subprocess.SubprocessError):
            pass
    return None


def gpu_name() -> str | None:
    """The NVIDIA GPU's name (see :func:`gpu_info`); None when there is none."""
    info = gpu_info()
    return info["name"] if info else None


# --------------------------------------------------------------------------- versions
# result key -> distribution names to try (first found wins), module name
_PACKAGES = {
    "pix2pix_edge": (("pix2pix-edge",), None),
    "numpy": (("numpy",), "numpy"),
    "opencv": (("opencv-python-headless", "opencv-python", "opencv-contrib-python",
                "opencv-contrib-python-headless"), "cv2"),
    "onnxruntime": (("onnxruntime-gpu", "onnxruntime", "onnxruntime-cpu"), "onnxruntime"),
    "tensorrt": (("tensorrt", "tensorrt-cu12", "tensorrt-cu13", "tensorrt_lean"), "tensorrt"),
    "torch": (("torch",), "torch"),
    "onnx": (("onnx",), "onnx"),
    "pillow": (("pillow", "Pillow"), "PIL"),
    "tqdm": (("tqdm",), "tqdm"),
}
RUNTIME_PACKAGES = ("pix2pix_edge", "numpy", "opencv", "onnxruntime", "tensorrt")


def version_of(key: str) -> str | None:
    """A library's version: the loaded module's own ``__version__`` (what really runs; numpy
    and OpenCV are imported for it, nothing heavy is), else its package metadata (JetPack's
    apt-installed TensorRT and OpenCV have none), else None."""
    dists, module = _PACKAGES[key]
    if module in ("numpy", "cv2"):   # the runtime's own dependencies: cheap, and what runs
        try:
            importlib.import_module(module)
        except ImportError:
            pass
    if module is not None and module in sys.modules:
        v = getattr(sys.modules[module], "__version__", None)
        if v:
            return str(v)
    for name in dists:
        try:
            return _md.version(name)
        except _md.PackageNotFoundError:
            continue
    return None


def versions(*extra: str) -> dict:
    """``python`` and the runtime's libraries (pix2pix_edge, numpy, opencv, onnxruntime,
    tensorrt), plus any of ``extra`` (``"torch"``, ``"onnx"``, ``"pillow"``, ``"tqdm"``);
    None for one that is not installed."""
    out = {"python": platform.python_version()}
    for key in RUNTIME_PACKAGES + tuple(k for k in extra if k not in RUNTIME_PACKAGES):
        out[key] = version_of(key)
    return out


# --------------------------------------------------------------------------- all of it
def machine_info() -> dict:
    """Host, OS, CPU (model, features, cores) and GPU of this machine."""
    return {
        "hostname": platform.node(),
        "os": platform.platform(),
        "arch": platform.machine(),
        "cpu": cpu_model(),
        "cpu_flags": cpu_flags(),
        "physical_cores": physical_cores(),
        "usable_cpus": usable_cpus(),
        "logical_cpus": os.cpu_count(),
        "gpu": gpu_name(),
    }
