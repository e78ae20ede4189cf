"""The real NVIDIA Python packages the CPU tests check the product against, fetched into .cache/.

* TensorRT: the Python bindings of each supported TensorRT version are real wheels on the package
  index (``tensorrt-bindings`` 8.6, ``tensorrt-cu12-bindings`` 10.x / 11.x) holding only
  ``tensorrt_bindings/tensorrt.so``. That library links libnvinfer / libnvonnxparser /
  libnvinfer_plugin (and libnvparsers for 8.6) but calls only a few C factory functions from
  them, and only when a Builder / Runtime / parser is created. Stub libraries with those sonames
  that define exactly the undefined symbols (never called; they return NULL) let the real module
  import on a machine without TensorRT or a GPU, so every class, method and enum member of each
  version can be read. tests/test_trt_api.py does that.
* cuda-python 12.6 / 12.9 and cuda-bindings 13: each installed into its own folder, so
  tests/test_cuda_python.py can run the product's GPU probe against each real package.

``python scripts/api_packages.py`` fetches what is missing (``make api-packages``; CI runs it).
Tests never download: they skip, naming this command, where a folder is absent.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CACHE = Path(os.environ.get("PIX2PIX_API_CACHE", REPO / ".cache"))

# TensorRT version -> the bindings wheel. 8.5 (JetPack 5) has no bindings on the package index:
# it takes the same code branches as 8.6 (tests/test_trt_api.py checks the version parsing).
TRT_BINDINGS = {
    "8.6": "tensorrt-bindings==8.6.1",            # JetPack 5.1 (8.5 / 8.6), desktop 8.6
    "10.3": "tensorrt-cu12-bindings==10.3.0",     # JetPack 6
    "10.13": "tensorrt-cu12-bindings==10.13.3.9",  # JetPack 7, the newest 10.x line
    "11.4": "tensorrt-cu12-bindings==11.4.0.106",  # desktop / server
}
# cuda-python flavour -> what to install.
CUDA_PYTHON = {
    "12.6": "cuda-python==12.6.*",    # raises RuntimeError where libcuda.so.1 is missing
    "12.9": "cuda-python==12.9.*",    # returns error tuples
    "13": "cuda-bindings==13.*",      # needs a CUDA 13 driver (>= 580)
}
# Symbols the bindings take from libc / libstdc++ / the toolchain, never from TensorRT.
_NOT_TENSORRT = ("_ITM", "__gmon", "_ZGT", "__pthread", "Py", "_Py", "__cxa", "_Jv")
_LIBC = {"dlopen", "dlsym", "dlclose", "dlerror", "pthread_once"}


def trt_dir(key: str) -> Path:
    return CACHE / "trt-bindings" / key


def cuda_dir(key: str) -> Path:
    return CACHE / "cuda-python" / key


def trt_ready(key: str) -> bool:
    return (trt_dir(key) / "ok.json").is_file()


def cuda_ready(key: str) -> bool:
    return (cuda_dir(key) / "ok.json").is_file()


def trt_env(key: str) -> dict:
    """Environment in which ``import tensorrt_bindings`` loads version ``key`` on its stubs."""
    env = dict(os.environ)
    root = trt_dir(key)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(root / "site"), env.get("PYTHONPATH", ""))
                                        if p)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(
        p for p in (str(root / "lib"), env.get("LD_LIBRARY_PATH", "")) if p)
    return env


def _pip(*args: str) -> None:
    subprocess.run([sys.executable, "-m", "pip", "-q", *args], check=True)


def _undefined_tensorrt_symbols(so: Path) -> list[str]:
    out = subprocess.run(["nm", "-D", "--undefined-only", str(so)], check=True,
                         capture_output=True, text=True).stdout
    names = [line.split()[-1] for line in out.splitlines() if line.strip()]
    return sorted(n for n in names
                  if "@" not in n and not n.startswith(_NOT_TENSORRT) and n not in _LIBC)


def _needed_nvidia_libs(so: Path) -> list[str]:
    out = subprocess.run(["readelf", "-d", str(so)], check=True, capture_output=True,
                         text=True).stdout
    libs = [line.split("[", 1)[1].split("]", 1)[0] for line in out.splitlines() if "(NEEDED)" in line]
    return [lib for lib in libs if lib.startswith("libnv")]


def stub_source(symbols: list[str]) -> str:
    lines = ["/* Never called: lets the real TensorRT bindings import so their API can be read. */"]
    for i, name in enumerate(symbols):
        lines.append(f'void *stub_{i}(void) __asm__("{name}");')
        lines.append(f"void *stub_{i}(void) {{ return 0; }}")
    return "\n".join(lines) + "\n"


def fetch_trt(key: str) -> Path:
    root = trt_dir(key)
    if trt_ready(key):
        return root
    shutil.rmtree(root, ignore_errors=True)
    (root / "lib").mkdir(parents=True)
    with tempfile.TemporaryDirectory() as tmp:
        _pip("download", "--no-deps", "--only-binary=:all:", "-d", tmp, TRT_BINDINGS[key])
        (wheel,) = Path(tmp).glob("*.whl")
        with zipfile.ZipFile(wheel) as z:
            z.extractall(root / "site")
    so = next((root / "site" / "tensorrt_bindings").glob("tensorrt*.so"))
    source = root / "stub.c"
    source.write_text(stub_source(_undefined_tensorrt_symbols(so)))
    libs = _needed_nvidia_libs(so)
    for lib in libs:
        subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(root / "lib" / lib),
                        f"-Wl,-soname,{lib}", str(source)], check=True)
    (root / "ok.json").write_text(json.dumps({"wheel": wheel.name, "stubs": libs}) + "\n")
    return root


def fetch_cuda(key: str) -> Path:
    root = cuda_dir(key)
    if cuda_ready(key):
        return root
    shutil.rmtree(root, ignore_errors=True)
    root.mkdir(parents=True)
    _pip("install", "--target", str(root / "site"), "--only-binary=:all:", "--no-compile",
         CUDA_PYTHON[key])
    (root / "ok.json").write_text(json.dumps({"spec": CUDA_PYTHON[key]}) + "\n")
    return root


def main() -> int:
    for key in TRT_BINDINGS:
        print(f"TensorRT {key} bindings: {fetch_trt(key)}")
    for key in CUDA_PYTHON:
        print(f"cuda-python {key}: {fetch_cuda(key)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
