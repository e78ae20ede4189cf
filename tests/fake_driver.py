"""A stand-in NVIDIA driver for GPU-less machines: a libcuda.so.1 that reports a CUDA 12.2
driver, loads, and answers "not found" for everything else. With it first on LD_LIBRARY_PATH a
subprocess sees "a driver is installed" (the real cuda-python then finds it too old, and the
real onnxruntime-gpu finds its CUDA libraries missing), which is what a pip-only desktop or an
old driver looks like. Built with gcc into the test's own folder."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

SOURCE = r"""
#include <dlfcn.h>
int cuDriverGetVersion(int *v) { *v = 12020; return 0; }
int cuInit(unsigned int flags) { return 0; }
int cuGetProcAddress_v2(const char *s, void **p, int v, unsigned long long f, int *st) {
    *p = dlsym(RTLD_DEFAULT, s); if (st) *st = *p ? 1 : 0; return *p ? 0 : 500; }
int cuGetProcAddress(const char *s, void **p, int v, unsigned long long f) {
    *p = dlsym(RTLD_DEFAULT, s); return *p ? 0 : 500; }
int cuGetErrorString(int e, const char **s) { *s = "stand-in"; return 0; }
int cuGetErrorName(int e, const char **s) { *s = "stand-in"; return 0; }
"""


def build(folder: Path) -> Path:
    """Compile the stand-in into ``folder/libcuda.so.1``; returns ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "cuda.c").write_text(SOURCE)
    subprocess.run(["gcc", "-shared", "-fPIC", "-o", str(folder / "libcuda.so.1"),
                    "-Wl,-soname,libcuda.so.1", str(folder / "cuda.c"), "-ldl"], check=True)
    return folder


def env_with(folder: Path, env=None) -> dict:
    env = dict(os.environ if env is None else env)
    env["LD_LIBRARY_PATH"] = os.pathsep.join(p for p in (str(folder), env.get("LD_LIBRARY_PATH", ""))
                                             if p)
    return env
